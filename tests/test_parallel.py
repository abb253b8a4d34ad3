"""resnetlab.runs.parallel.train_many: several runs at once in separate processes."""

import pytest

from resnetlab.runs.parallel import TrainMany, train_many
from resnetlab.runs import load_record, make_config, run_id
from resnetlab.testing import fabricate_cifar

TINY = {"widths": (4, 8, 16)}
SHORT = dict(iterations=8, milestones=(4, 6), eval_every=4, checkpoint_every=4)  # a shorter smoke run


def tiny(**kw):
    return make_config("resnet8", profile="smoke", model_options=TINY, **{**SHORT, **kw})


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = fabricate_cifar(tmp_path_factory.mktemp("data"), "cifar10", "pickle", n_train=256, n_test=64)
    runs = tmp_path_factory.mktemp("runs")
    good = [tiny(seed=s) for s in (0, 1)]
    diverges = tiny(lr=1e6)
    crashes = {**tiny(seed=7), "model": "resnet21"}  # build_model raises in the child
    configs = [*good, diverges, crashes]
    result = train_many(configs, jobs=2, runs=runs, data=root, device="cpu", save_weights=[True, False, False, False],
                        progress=False)
    return root, runs, configs, result


def test_runs_are_recorded_in_order(setup):
    _, runs, configs, result = setup
    assert isinstance(result, TrainMany) and len(result) == len(configs)
    assert [r.status for r in result] == ["complete", "complete", "failed", "error"]
    for config, rec in zip(configs[:3], result):
        assert rec.id == run_id(config)
        assert load_record(runs / run_id(config)).status == rec.status
    assert result[0].weights_path is not None and result[1].weights_path is None


def test_a_diverging_run_is_recorded_failed_and_a_crash_is_reported(setup):
    _, runs, configs, result = setup
    assert "non-finite" in result[2].summary["failure_reason"]
    assert [e.run_id for e in result.errors] == [run_id(configs[3])]
    assert "6n+2" in result.errors[0].message and result.errors[0].exitcode not in (0, None)
    assert not (runs / run_id(configs[3]) / "summary.json").exists()


def test_aggregate_throughput(setup):
    _, _, _, result = setup
    assert result.trained == 3 and result.skipped == 0
    smoke = 8 * 32  # iterations x batch of one run
    assert smoke * 2 < result.images <= smoke * 3
    assert result.wall_s > 0 and result.images_per_s == pytest.approx(result.images / result.wall_s)


def test_recorded_runs_are_skipped(setup, monkeypatch):
    root, runs, configs, first = setup
    import resnetlab.runs.parallel as parallel

    monkeypatch.setattr(parallel._Pool, "run", lambda *a, **k: pytest.fail("started a process for a recorded run"))
    again = train_many(configs[:3], jobs=2, runs=runs, data=root, progress=False)
    assert again.skipped == 3 and again.trained == 0 and again.images == 0
    assert [r.summary for r in again] == [r.summary for r in first[:3]]


def test_bad_arguments():
    with pytest.raises(ValueError, match="jobs"):
        train_many([], jobs=0)
    with pytest.raises(ValueError, match="save_weights"):
        train_many([make_config("resnet8", profile="smoke")], jobs=1, save_weights=[True, False])
