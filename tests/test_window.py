"""``python -m resnetlab window`` and ``import-runs`` on a CPU: the GPU window's dry run.

End to end in a temporary folder: check, measure, train two smoke runs, pack them, import
them into a fresh runs folder, find and draw them there. Then the parts one by one: the
packer's limits, what the importer refuses, a checkpoint that travels and resumes, the
deadline, the priority order. No timing is asserted: a speed only decides what starts.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import tarfile
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

import resnetlab.experiments as experiments
from resnetlab.experiments import collect, draw, get_experiment
from resnetlab.runs import (checkpoint_path, get_or_train, import_packs, load_cifar, load_record, make_config,
                            pack_runs, run_id, save_record)
from resnetlab.runs.transfer import _Item, _write_part
from resnetlab.testing import fabricate_cifar
from resnetlab.tools import window
from resnetlab.tools.window_measure import SpeedModel, fit
from resnetlab.tools.window_train import Job, Queue, Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ROOT = Path(__file__).resolve().parents[1]
TINY = {"widths": (4, 8, 16)}


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    for var in ("RESNETLAB_RUNS", "RESNETLAB_CHECKPOINTS", "RESNETLAB_DATA"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return fabricate_cifar(tmp_path_factory.mktemp("data"), "cifar10", "pickle", n_train=256, n_test=64)


def _args(add, argv):
    p = argparse.ArgumentParser()
    add(p)
    return p.parse_args(argv)


def _tiny(**kw):
    base = dict(iterations=8, milestones=(4, 6), eval_every=4, checkpoint_every=4, batch_size=8, train_subset=128,
                test_subset=32)
    return make_config("resnet8", profile="smoke", model_options=TINY, **{**base, **kw})


def _fast_speed(jobs=1):
    return SpeedModel("cpu", a=0.0, b=0.0, k=0.0, jobs=jobs, slowdown={1: 1.0, jobs: 1.0}, startup_s=0.0,
                      setup_s=0.0)


def test_window_cpu_smoke_end_to_end(tmp_path, data, capsys):
    out, runs = tmp_path / "out", tmp_path / "runs"
    rc = window.main(_args(window.add_arguments, [
        "--budget", "60", "--out", str(out), "--device", "cpu", "--profile", "smoke", "--data", str(data),
        "--runs", str(runs), "--checkpoints", str(tmp_path / "ckpt"), "--max-runs", "2", "--threads", "1",
        "--measure-jobs", "none"]), experiments)
    assert rc == 0, capsys.readouterr().out
    files = sorted(p.name for p in out.iterdir())
    assert {"bench.json", "window.json", "window.log"} <= set(files) and len(files) <= 8
    assert all((out / f).stat().st_size <= 16 * 2**20 for f in files)
    bench = json.loads((out / "bench.json").read_text())
    assert {r["model"] for r in bench["results"]} >= {"resnet20", "resnet56", "resnet110"}
    assert bench["environment"]["torch"] == torch.__version__ and bench["fit"]["jobs"] == 1
    report = json.loads((out / "window.json").read_text())
    assert set(report["phases"]) == {"check", "measure", "train", "pack"} and report["check"]["ok"]
    trained = [r for r in report["runs"] if r["status"] == "complete"]
    assert trained and [r["experiment"] for r in trained] == ["r-fig6"] * len(trained)
    assert all(r["precision"] == "fp32" for r in trained)
    assert sorted(report["packed"]["records"]) == sorted(r["run_id"] for r in trained)

    fresh = tmp_path / "fresh"
    args = _args(window.add_import_arguments, [str(out), "--runs", str(fresh), "--checkpoints", str(tmp_path / "c2")])
    assert window.import_main(args) == 0
    for r in trained:
        assert load_record(fresh / r["run_id"]).status == "complete"
    found = collect("r-fig6", "smoke", fresh)
    assert sorted(r.id for r in found.all_records) == sorted(r["run_id"] for r in trained)
    drawn = draw("r-fig1", "smoke", runs=fresh, figures_dir=tmp_path / "figures", show_missing=False, quiet=True)
    assert (tmp_path / "figures" / "r_fig1_degradation.png").exists() and drawn.tables
    assert window.import_main(args) == 0  # a second import finds them all identical
    assert "already there (identical)" in capsys.readouterr().out


def test_the_out_folder_must_be_empty(tmp_path):
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(ValueError, match="empty"):
        window.main(_args(window.add_arguments, ["--budget", "5", "--out", str(tmp_path)]), experiments)


def _record(runs, config, error=50.0, weights_bytes=0):
    total = config["recipe"]["iterations"]
    history = pd.DataFrame({"iteration": [total], "test_error": [error], "train_error": [error]})
    summary = {"status": "complete", "iterations": total, "final_test_error": error, "precision": "fp32"}
    weights = {"w": torch.randn(weights_bytes // 4)} if weights_bytes else None
    return save_record(runs / run_id(config), config, history, summary, weights)


def test_packs_keep_to_their_limits_and_import_back(tmp_path):
    runs = tmp_path / "runs"
    recs = [_record(runs, _tiny(seed=s), weights_bytes=700_000) for s in range(6)]  # ~0.7 MB each, incompressible
    packed = pack_runs(tmp_path / "out", [r.path for r in recs], max_files=2, max_file_bytes=2 * 2**20,
                       max_total_bytes=3 * 2**20)
    assert 1 <= len(packed.files) <= 2 and all(f.stat().st_size <= 2 * 2**20 for f in packed.files)
    assert packed.bytes <= 3 * 2**20 and packed.left_out
    assert len(packed.records) + len(packed.left_out) == 6
    result = import_packs(packed.files, tmp_path / "fresh")
    assert result.ok and sorted(result.imported) == sorted(packed.records)
    for rid in packed.records:
        assert (tmp_path / "fresh" / rid / "weights.pt").read_bytes() == (runs / rid / "weights.pt").read_bytes()


def test_import_refuses_conflicts_damage_and_strange_members(tmp_path):
    config = _tiny()
    rid = run_id(config)
    rec = _record(tmp_path / "a", config, error=40.0)
    packed = pack_runs(tmp_path / "out", [rec.path])
    _record(tmp_path / "b", config, error=60.0)  # a different record of the same id
    result = import_packs(packed.files, tmp_path / "b")
    assert not result.ok and result.refused[0][0] == rid and "conflicts" in result.refused[0][1]
    assert load_record(tmp_path / "b" / rid).final_test_error == 60.0  # left as it was

    files = [(f"records/{rid}/{n}", (rec.path / n).read_bytes()) for n in ("config.json", "history.csv")]
    bad = json.loads((rec.path / "summary.json").read_text()) | {"final_test_error": 12.0}  # edited
    _write_part(tmp_path / "edited.tar.gz", [_Item("record", rid, files + [(f"records/{rid}/summary.json",
                                                                             json.dumps(bad).encode())])])
    result = import_packs([tmp_path / "edited.tar.gz"], tmp_path / "c")
    assert not result.ok and "does not check out" in result.refused[0][1] and not (tmp_path / "c" / rid).exists()

    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    result = import_packs([evil], tmp_path / "c")
    assert not result.ok and "unexpected member" in result.refused[0][1] and not (tmp_path / "escape.txt").exists()

    blob = packed.files[0].read_bytes()  # a pack cut short in transit
    (tmp_path / "cut.tar.gz").write_bytes(blob[: len(blob) // 2])
    assert not import_packs([tmp_path / "cut.tar.gz"], tmp_path / "c").ok


def test_a_checkpoint_travels_and_the_run_resumes_from_it(tmp_path, data):
    config = _tiny()
    arrays = load_cifar("cifar10", data, progress=False)
    ck = tmp_path / "ck"
    rec = get_or_train(config, runs=tmp_path / "runs", dataset=arrays, progress=False, stop_after=4, checkpoints=ck)
    assert rec.status == "interrupted" and checkpoint_path(config, checkpoints=ck).exists()
    packed = pack_runs(tmp_path / "out", [], [(checkpoint_path(config, checkpoints=ck), config)])
    assert packed.checkpoints == [run_id(config)]
    dest = tmp_path / "ck2"
    result = import_packs(packed.files, tmp_path / "fresh", dest)
    assert result.ok and result.checkpoints == [(run_id(config), checkpoint_path(config, checkpoints=dest))]
    again = import_packs(packed.files, tmp_path / "fresh", dest)
    assert "as far along" in again.checkpoints_skipped[0][1]
    resumed = get_or_train(config, runs=tmp_path / "fresh", dataset=arrays, progress=False, checkpoints=dest)
    whole = get_or_train(config, runs=tmp_path / "whole", dataset=arrays, progress=False, checkpoints=tmp_path / "c3")
    assert resumed.status == "complete" and resumed.final_test_error == whole.final_test_error
    assert list(resumed.history["iteration"]) == [4, 8]
    late = import_packs(packed.files, tmp_path / "fresh", tmp_path / "ck4")  # the run is recorded by now
    assert late.checkpoints_skipped[0][1] == "the run is recorded already"


def test_no_run_starts_that_the_speed_model_says_cannot_finish(tmp_path, data):
    slow = SpeedModel("cpu", a=1.0, b=0.0, k=0.0, setup_s=0.0)  # one second a step: 8 steps do not fit in 5 s
    q = Queue(iter([Job(_tiny(), False, "test", "smoke")]))
    logs = []
    t = Trainer(slow, tmp_path / "runs", str(data), "cpu", tmp_path / "ck", time.monotonic() + 5, logs.append)
    assert t.run(q) == [] and len(q.items) == 1 and not (tmp_path / "runs").exists()


def test_the_deadline_stops_a_run_in_the_window_process_and_keeps_its_checkpoint(tmp_path, data):
    long = _tiny(iterations=100_000, milestones=(50_000, 75_000), eval_every=2, checkpoint_every=2)
    q = Queue(iter([Job(long, False, "test", "smoke")]))
    t = Trainer(_fast_speed(), tmp_path / "runs", str(data), "cpu", tmp_path / "ck", time.monotonic() + 6,
                lambda _m: None)
    [outcome] = t.run(q)
    assert outcome.status == "stopped" and outcome.detail == "checkpoint kept"
    assert checkpoint_path(long, checkpoints=tmp_path / "ck").exists()


@pytest.mark.slow
def test_several_runs_at_once_train_in_their_own_processes(tmp_path, data):
    jobs = [Job(_tiny(seed=s), s == 0, "test", "smoke") for s in (0, 1)]
    logs = []
    t = Trainer(_fast_speed(jobs=2), tmp_path / "runs", str(data), "cpu", tmp_path / "ck", time.monotonic() + 300,
                logs.append, threads=1)
    outcomes = t.run(Queue(iter(jobs)))
    assert sorted(o.status for o in outcomes) == ["complete", "complete"], logs
    assert load_record(tmp_path / "runs" / jobs[0].rid).weights_path is not None


def test_where_fusion_pays_the_window_trains_seeds_as_one_fused_net(tmp_path, data):
    speed = _fast_speed()
    speed.fuse, speed.fused_members, speed.fused_gain = True, 3, 2.0
    jobs = [Job(_tiny(seed=s), s == 0, "test", "smoke") for s in (0, 1, 2)] + [Job(_tiny(lr=0.05), False, "t", "smoke")]
    logs = []
    t = Trainer(speed, tmp_path / "runs", str(data), "cpu", tmp_path / "ck", time.monotonic() + 300, logs.append,
                threads=1)
    outcomes = t.run(Queue(iter(jobs)))
    assert [o.status for o in outcomes] == ["complete"] * 4, logs
    assert [load_record(tmp_path / "runs" / j.rid).summary.get("fused") for j in jobs] == [3, 3, 3, None]
    assert speed.group_estimate([10.0, 12.0, 11.0]) == pytest.approx(12.0 * 3 / 2.0)
    assert speed.group_estimate([10.0, 12.0]) == pytest.approx(12.0 * 2 / 1.5)


def test_the_priority_order_is_one_tuple_and_the_plan_follows_it(tmp_path, data):
    names = [n for n, _ in window.PRIORITY]
    assert window.PRIORITY[0] == ("r-fig6", "quick") and ("r-fig6", "paper") in window.PRIORITY
    assert window.PRIORITY.index(("r-fig6", "paper")) > max(i for i, (_, p) in enumerate(window.PRIORITY)
                                                            if p == "quick")
    assert all(get_experiment(n) for n in names)
    assert window.priority("smoke") == tuple(dict.fromkeys((n, "smoke") for n in names))
    runs, counts = tmp_path / "runs", {}
    first = [arm.config("smoke", 0, "torchvision") for arm in get_experiment("r-fig6").arms[:3]]
    _record(runs, first[0])
    plan = window.plan(experiments, "smoke", data=data, runs=runs, checkpoints=tmp_path / "ck",
                       log=lambda _m: None, counts=counts)
    got = [next(plan), next(plan)]
    assert [j.rid for j in got] == [run_id(c) for c in first[1:]] and counts == {"recorded": 1}
    assert [j.weights for j in got] == [False, False]  # plain-32, plain-44: R-Fig. 7 needs neither


def test_speed_fit_recovers_a_known_model():
    rows = [{"layers": layers, "batch_size": 128, "gmacs": g, "step_ms": 1e3 * (2e-3 + 1e-4 * layers + 5e-6 * 128 * g)}
            for layers, g in ((40, 0.04), (112, 0.12), (220, 0.25), (40, 0.55))]
    a, b, k = fit(rows)
    assert a == pytest.approx(2e-3, rel=1e-6) and b == pytest.approx(1e-4, rel=1e-6) and k == pytest.approx(5e-6)
    model = SpeedModel("cuda", a, b, k, jobs=2, slowdown={1: 1.0, 2: 1.2})
    quick = make_config("resnet56", profile="quick")
    fp32 = make_config("resnet56", profile="quick", precision="fp32")
    assert model.estimate(fp32) > model.estimate(quick) > model.estimate(quick, start=3200) > 0


def test_the_gpu_script_fits_one_command_line():
    script = ROOT / "scripts" / "gpu-window.sh"
    text = script.read_text()
    assert len(text) <= 2000
    assert "python3}\" -m resnetlab window" in text and "$OUT" in text and ".carry/cifar10-jpeg.tar.gz" in text
    subprocess.run(["bash", "-n", str(script)], check=True)
