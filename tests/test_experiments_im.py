"""The Identity Mappings experiments: registry, shared configs, tables, one smoke reproduce."""

from __future__ import annotations

import dataclasses

import matplotlib
import pytest

matplotlib.use("Agg")

from resnetlab import paper  # noqa: E402
from resnetlab.experiments import EXPERIMENTS, collect, draw, get_experiment, reproduce  # noqa: E402
from resnetlab.experiments import im_table1  # noqa: E402
from resnetlab.experiments.tables import results_row  # noqa: E402
from resnetlab.runs import make_config, run_id  # noqa: E402
from resnetlab.testing import fabricate_cifar  # noqa: E402

IM_NAMES = ("im-table1", "im-table2", "im-fig6", "im-fig1", "im-table3", "im-propagation")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _ids(name, profile="paper", seed=0, keys=None):
    exp = get_experiment(name)
    return {a.key: run_id(a.config(profile, seed)) for a in exp.arms if keys is None or a.key in keys}


def test_registered():
    for name in IM_NAMES:
        exp = get_experiment(name)
        assert exp.draw is not None and exp.arms
        for arm in exp.arms:
            assert arm.recipe["warmup"] == "fixed", f"{name}/{arm.key}: IM warms up every run"
            assert set(arm.recipe) <= {"warmup", "precision"}  # gating arms: fp32
    assert get_experiment("im-table1").seeds["paper"] == 5  # IM: median of 5 runs


def test_table1_covers_every_paper_row_with_the_right_options():
    exp = get_experiment("im-table1")
    rows = {row for _, _, row in im_table1.TABLE1_CASES.values()}
    assert rows == set(paper.IM_TABLE1_ERROR)
    arms = {a.key: a for a in exp.arms}
    assert set(arms) == set(im_table1.TABLE1_CASES)
    for key, bias in (("exclusive_gating_0", 0), ("exclusive_gating_-6", -6), ("exclusive_gating_-7", -7),
                      ("shortcut_only_gating_0", 0), ("shortcut_only_gating_-6", -6)):
        cfg = arms[key].config("paper", 0)
        assert cfg["model_options"]["gate_bias"] == bias
        assert cfg["model_options"]["variant"] == key.rsplit("_", 1)[0]
        assert cfg["model"] == "resnet110"
    assert arms["scale_0.5"].options == {"variant": "constant_scaling", "shortcut_scale": 0.5}
    assert arms["scale_0.5_0.5"].options["residual_scale"] == 0.5
    assert arms["plain"].model == "plain110"
    assert arms["dropout_shortcut"].options["dropout_p"] == 0.5


def test_table2_and_table3_cover_the_paper():
    t2 = {(a.key.rsplit("-", 1)[0], f"resnet{a.key.rsplit('-', 1)[1]}") for a in get_experiment("im-table2").arms}
    assert t2 == {(act, d) for act, v in paper.IM_TABLE2_ERROR.items() for d in v}
    t3 = get_experiment("im-table3")
    assert len(t3.arms) == 2 * len(paper.IM_TABLE3_ERROR)
    assert {a.dataset for a in t3.arms} == {"cifar10", "cifar100"}
    assert {a.model for a in t3.arms if a.key.startswith("cifar100")} == {
        "resnet164", "preresnet164", "resnet1001", "preresnet1001"}


@pytest.mark.parametrize("profile", ["smoke", "quick", "paper"])
def test_shared_configs_are_identical(profile):
    """Nothing trains twice: im-fig6 reuses im-table2, im-fig1 and im-table3 share ResNet-1001,
    im-table3's CIFAR-10 110/164 rows are im-table2's, im-table1's original is im-table2's."""
    t2, f6 = _ids("im-table2", profile), _ids("im-fig6", profile)
    assert f6 == {k: t2[k] for k in f6}
    t3, f1 = _ids("im-table3", profile), _ids("im-fig1", profile)
    assert f1 == {k: t3[k] for k in f1}
    for act in ("original", "full_preact"):
        for d in (110, 164):
            assert t3[f"cifar10-{act}-{d}"] == t2[f"{act}-{d}"]
    t1, prop = _ids("im-table1", profile), _ids("im-propagation", profile)
    assert t1["original"] == t2["original-110"] == prop["original"]
    assert t1["scale_0.5"] == prop["scale_0.5"] and t1["plain"] == prop["plain"]
    assert prop["full_preact"] == t2["full_preact-110"]


def test_arm_configs_equal_make_config():
    """An arm's configs are make_config's, with the smoke stand-in in the smoke profile."""
    for name in ("im-table1", "im-table3"):
        for arm in get_experiment(name).arms[:3]:
            for profile in ("smoke", "quick", "paper"):
                overrides = {**arm.recipe, **(arm.smoke if profile == "smoke" else {})}
                model = arm.smoke_model if profile == "smoke" and arm.smoke_model else arm.model
                want = make_config(model, profile=profile, seed=3, dataset=arm.dataset, model_options=arm.options,
                                   **overrides)
                assert arm.config(profile, 3) == want


def test_weights_recorded_where_propagation_needs_them():
    for name in IM_NAMES:
        for arm in get_experiment(name).arms:
            cfg = arm.config("paper", 0)
            needed = run_id(cfg) in set(_ids("im-propagation").values())
            assert arm.save_weights == needed, f"{name}/{arm.key}"


def test_smoke_uses_small_stand_ins():
    for arm in get_experiment("im-table3").arms:
        assert arm.config("smoke", 0)["model"] != arm.model
        assert arm.config("paper", 0)["model"] == arm.model


def test_draw_on_empty_collection_gives_placeholders_and_paper_column(tmp_path):
    drawn = draw("im-table1", "recorded", runs=tmp_path / "runs", figures_dir=tmp_path / "fig", show_missing=False)
    table = drawn.tables["im_table1_shortcuts"]
    assert list(table.columns) == ["case", "paper error (%)", "ours median (%)", "ours min-max", "runs", "status"]
    assert table["paper error (%)"].iloc[0] == "6.61"
    assert (table["paper error (%)"] == "fail").sum() == 4
    assert set(table["ours median (%)"]) == {"–"} and set(table["status"]) == {"not recorded"}
    fig = drawn.figures["im_fig3_shortcuts"]
    assert any(t.get_gid() == "placeholder" for ax in fig.axes for t in ax.texts)
    for stem in ("im_fig3_shortcuts", "im_table1_shortcuts"):
        assert (tmp_path / "fig" / f"{stem}.png").exists() and (tmp_path / "fig" / f"{stem}.pdf").exists()
    t3 = draw("im-table3", "recorded", runs=tmp_path / "runs", figures_dir=None, show_missing=False)
    assert t3.tables["im_table3_preact"]["paper error (%)"].tolist()[:4] == ["9.90", "8.91", "6.61", "6.37"]


def test_results_row_failed_runs_are_shown_as_fail():
    class R:
        def __init__(self, err, failed=False):
            self.failed = failed
            self.final_test_error = err
            self.status = "failed" if failed else "complete"
            self.summary = {"failure_reason": "non-finite loss by iteration 800"} if failed else {}

    row = results_row("x", paper.FAIL, [R(7.0), R(None, True), R(None, True)], 3)
    assert row["paper error (%)"] == "fail"
    assert row["ours median (%)"].startswith("fail (diverged: non-finite loss")
    assert row["ours min-max"] == "7.00-fail"
    assert row["status"].startswith("2 of 3 diverged")
    row = results_row("x", 6.61, [R(7.0), R(6.0), R(None, True)], 5)
    assert row["ours median (%)"] == "7.00" and "3 of 5 runs recorded" in row["status"]


def test_results_row_tells_ims_fail_from_a_diverged_run():
    """IM's "fail" is a test error above 20%; ours ("failed") is a diverged run: both are
    shown, each named (fidelity issue, item 2)."""
    class R:
        def __init__(self, err, failed=False):
            self.failed, self.final_test_error = failed, err
            self.status = "failed" if failed else "complete"
            self.summary = {"failure_reason": "non-finite loss by iteration 80"} if failed else {}

    above = results_row("x", paper.FAIL, [R(23.4), R(25.0), R(8.0)], 3)
    assert above["ours median (%)"] == "23.40 (fail: >20%)"
    assert above["status"] == "2 of 3 above IM's 20% line"
    diverged = results_row("x", paper.FAIL, [R(None, True)], 1)
    assert diverged["ours median (%)"].startswith("fail (diverged:")
    assert diverged["status"] == "1 of 1 diverged"
    assert results_row("x", 6.61, [R(19.9)], 1)["ours median (%)"] == "19.90"


def test_smoke_reproduce_with_a_failed_run(tmp_path, monkeypatch):
    """A subset of im-table1 (stand-in nets) trained in the smoke profile on fabricated data;
    the dropout arm is made to diverge (huge learning rate) and must read "fail (...)"."""
    data = fabricate_cifar(tmp_path / "data", "cifar10", "pickle", n_train=200, n_test=64)
    base = get_experiment("im-table1")
    arms = {a.key: a for a in base.arms}
    diverging = dataclasses.replace(arms["dropout_shortcut"],
                                    smoke={**arms["dropout_shortcut"].smoke, "lr": 1e30, "warmup": "none"})
    exp = dataclasses.replace(base, name="im-table1-test", arms=(arms["original"], arms["scale_0.5"], diverging))
    monkeypatch.setitem(EXPERIMENTS, exp.name, exp)
    runs = tmp_path / "runs"
    collected = reproduce(exp.name, "smoke", runs=runs, data=data, progress=False)
    assert collected.complete and len(collected.all_records) == 3
    assert collected.records["dropout_shortcut"][0].failed
    assert not collected.records["original"][0].failed
    drawn = exp.draw(collected)
    table = drawn.tables["im_table1_shortcuts"].set_index("case")
    row = table.loc[[c for c in table.index if c.startswith("dropout")][0]]
    assert row["paper error (%)"] == "fail"
    assert row["ours median (%)"].startswith("fail (diverged")
    assert row["status"].startswith("1 of 1 diverged")
    assert "smoke stand-in" in table.index[0]
    ok = table.loc[[c for c in table.index if c.startswith("original")][0]]
    assert float(ok["ours median (%)"].split()[0]) == pytest.approx(collected.records["original"][0].final_test_error, abs=0.01)
    assert set(drawn.figures) == {"im_fig3_shortcuts", "im_table1_shortcuts"}
    # smoke runs live in the tmp runs dir only, and "recorded" never draws them
    assert not collect(exp.name, "recorded", runs).all_records
