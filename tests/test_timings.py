"""How long a notebook takes: measured execution times and the recorded runs' own wall times."""

import json

from resnetlab.experiments.timings import duration, notebook_experiments, notebook_timings
from resnetlab.paths import project_root


def test_durations_read_as_people_say_them():
    assert [duration(s) for s in (12.4, 89, 600, 3725, 10_200)] == ["12 s", "89 s", "10 min", "1 h 02 min",
                                                                    "2 h 50 min"]
    assert duration(float("nan")) == "n/a"


def test_a_notebook_knows_its_figures():
    assert notebook_experiments("02_degradation_problem") == ["r-fig1"]
    assert "r-fig6" in notebook_experiments("03_residual_learning_cifar")
    assert notebook_experiments("no_such_notebook") == []


def test_the_table_gives_measured_times_and_says_what_is_missing(tmp_path):
    measured = tmp_path / "times.json"
    measured.write_text(json.dumps({"machine": "CPU (test)", "date": "2026-12-01T00:00:00+00:00",
                                    "notebooks": {"02_degradation_problem": {"recorded_s": 7.5, "smoke_s": 75.0}}}))
    course = project_root() / "data" / "runs"
    table = notebook_timings("02_degradation_problem", runs=[course], measured=measured)
    rows = {(r.profile, r.time) for r in table.itertuples()}
    assert ("recorded", "8 s") in rows and ("smoke", "75 s") in rows
    quick = table[table.profile == "quick"]
    # R-Fig. 1 needs plain-20 and plain-56: each recorded one is timed on its own device
    recorded = quick[quick.runs.str.contains("recorded") & ~quick.runs.str.contains("not")]
    assert recorded.runs.str.fullmatch(r"\d of 2 recorded").all() and recorded["measured on"].str.contains("CPU").all()
    paper = table[table.profile == "paper"]
    assert paper.time.tolist() == ["not measured yet"] and paper.runs.tolist() == ["10 of 10 not recorded yet"]
    empty = notebook_timings("02_degradation_problem", runs=[tmp_path / "none"], measured=tmp_path / "absent.json")
    assert set(empty.time) == {"not measured yet"}
