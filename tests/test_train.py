"""The training engine: schedule, warm-up, learning, failure, resume, records."""

import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from resnetlab.data import load_cifar
from resnetlab.runs import RecordError, find_records, get_or_train, load_record, make_config, run_id
from resnetlab.train import PAPER, PROFILES, Recipe, get_recipe, learning_rate, load_checkpoint, train, wants_warmup

TINY = {"widths": (4, 8, 16)}  # a ResNet-8 this narrow trains in a blink on CPU


@pytest.fixture(scope="module")
def arrays(tmp_path_factory):
    from resnetlab.testing import fabricate_cifar

    root = fabricate_cifar(tmp_path_factory.mktemp("data"), "cifar10", "pickle", n_train=256, n_test=64)
    return load_cifar("cifar10", root, progress=False)


def tiny_recipe(**kw):
    base = dict(iterations=16, batch_size=32, milestones=(8, 12), eval_every=4, checkpoint_every=8, warmup="none")
    return Recipe(**{**base, **kw})


@pytest.mark.parametrize("it,lr", [(0, 0.1), (31_999, 0.1), (32_000, 0.01), (47_999, 0.01), (48_000, 0.001), (63_999, 0.001)])
def test_learning_rate_at_the_schedule_boundaries(it, lr):
    assert learning_rate(PAPER, it, warmup_end=0) == pytest.approx(lr)
    assert learning_rate(PAPER, it, warmup_end=None) == 0.01  # still warming up
    # a pure function of the iteration: warm-up lr before the warm-up's end, the schedule from it on
    assert learning_rate(PAPER, it, warmup_end=it + 1) == 0.01
    assert learning_rate(PAPER, it, warmup_end=it) == pytest.approx(lr)


def test_profiles_follow_the_paper():
    assert (PAPER.batch_size, PAPER.momentum, PAPER.weight_decay, PAPER.iterations) == (128, 0.9, 1e-4, 64_000)
    assert PROFILES["quick"].iterations == 6400 and PROFILES["quick"].milestones == (3200, 4800)
    with pytest.raises(ValueError, match="smoke, quick|paper"):
        get_recipe("fast")


def test_warmup_rule():
    assert wants_warmup(PAPER, "resnet110") and wants_warmup(PAPER, "resnet1202")
    assert not wants_warmup(PAPER, "resnet56")
    assert wants_warmup(Recipe(warmup="fixed"), "resnet20")
    assert not wants_warmup(Recipe(warmup="none"), "resnet110")


def test_warmup_switches_when_training_error_drops(arrays):
    # auto warm-up (R-Sec. 4.2) on a tiny net: lr 0.01 until the training error is below the threshold
    r = tiny_recipe(warmup="auto", warmup_min_depth=8, warmup_threshold=99.0, warmup_window=10)
    res = train("resnet8", arrays, r, model_options=TINY, progress=False)
    assert res.summary["warmup_end"] == 10  # checked every 10 iterations, once the window is full
    assert res.summary["warmup_ended_by"] == "threshold"
    assert res.history.loc[res.history.iteration == 8, "lr"].item() == 0.01
    assert res.history.loc[res.history.iteration == 12, "lr"].item() == pytest.approx(0.01)  # first milestone
    # fixed warm-up (IM): exactly warmup_iterations
    res = train("resnet8", arrays, tiny_recipe(warmup="fixed", warmup_iterations=6), model_options=TINY, progress=False)
    assert res.summary["warmup_end"] == 6
    assert res.history.lr.iloc[0] == 0.01


def test_a_smoke_run_lowers_the_loss(arrays):
    res = train("resnet8", arrays, tiny_recipe(iterations=32, milestones=(24, 28), eval_every=8), model_options=TINY,
                progress=False)
    h = res.history
    assert list(h.columns) == ["iteration", "epoch", "lr", "train_loss", "train_error", "test_loss", "test_error", "wall_time"]
    assert h.train_loss.iloc[-1] < h.train_loss.iloc[0]
    assert res.summary["status"] == "complete"
    assert res.summary["final_test_error"] == h.test_error.iloc[-1]  # final iterate, not the best


def test_absurd_learning_rate_is_recorded_as_failed(arrays, tmp_path):
    cfg = make_config("resnet8", profile="smoke", model_options=TINY, lr=1e6)
    rec = get_or_train(cfg, runs=tmp_path, dataset=arrays, progress=False)
    assert rec.failed and "non-finite" in rec.summary["failure_reason"]
    again = load_record(tmp_path / run_id(cfg))
    assert again.failed and len(again.history) >= 1
    assert math.isnan(again.final_test_error) or again.final_test_error >= 0


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_resume_is_equivalent_to_an_uninterrupted_run(arrays, tmp_path):
    # the dropout shortcut draws random masks: resume must restore the RNG too
    opts = {**TINY, "variant": "dropout_shortcut"}
    r = tiny_recipe()
    whole = train("resnet8", arrays, r, model_options=opts, seed=3, progress=False)
    ckpt = tmp_path / "ck.pt"
    part = train("resnet8", arrays, r, model_options=opts, seed=3, checkpoint=ckpt, stop_after=8, progress=False)
    assert part.summary["status"] == "interrupted" and ckpt.exists()
    rest = train("resnet8", arrays, r, model_options=opts, seed=3, checkpoint=ckpt, progress=False)
    a, b = _weights(whole.model), _weights(rest.model)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert rest.history.iteration.tolist() == whole.history.iteration.tolist()
    assert rest.history.test_error.tolist() == whole.history.test_error.tolist()


def test_a_corrupt_checkpoint_is_set_aside_not_used(arrays, tmp_path):
    r = tiny_recipe(iterations=24, milestones=(12, 18))
    ckpt = tmp_path / "ck.pt"
    train("resnet8", arrays, r, model_options=TINY, checkpoint=ckpt, stop_after=16, progress=False)
    ckpt.write_bytes(ckpt.read_bytes()[:100])  # truncated
    with pytest.warns(RuntimeWarning, match="unusable"):
        res = train("resnet8", arrays, r, model_options=TINY, checkpoint=ckpt, progress=False)
    assert res.summary["status"] == "complete"
    assert (tmp_path / "ck.pt.corrupt").exists()  # kept for inspection, nothing lost
    assert res.history.iteration.tolist() == [4, 8, 12, 16, 20, 24]  # resumed from the previous checkpoint (8)


def test_an_interrupted_run_never_looks_complete(arrays, tmp_path):
    cfg = make_config("resnet8", profile="smoke", model_options=TINY)
    rec = get_or_train(cfg, runs=tmp_path, dataset=arrays, progress=False, stop_after=8)
    assert rec.status == "interrupted"
    with pytest.raises(RecordError, match="not a finished run"):
        load_record(tmp_path / run_id(cfg))
    assert find_records(tmp_path) == []
    done = get_or_train(cfg, runs=tmp_path, dataset=arrays, progress=False, save_weights=True)
    assert done.status == "complete" and done.summary["iterations"] == PROFILES["smoke"].iterations
    assert not (done.path / "checkpoints").exists()
    assert [r.id for r in find_records(tmp_path)] == [run_id(cfg)]
    # weights are half precision and load safely
    state = torch.load(done.path / "weights.pt", weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    model = done.load_model()
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
    summary = json.loads((done.path / "summary.json").read_text())
    for key in ("status", "final_test_error", "device", "torch_version", "wall_time_s", "images_per_s", "data_source"):
        assert key in summary


def test_get_or_train_reads_a_recorded_run_instead_of_training(arrays, tmp_path, monkeypatch):
    cfg = make_config("resnet8", profile="smoke", model_options=TINY)
    first = get_or_train(cfg, runs=tmp_path, dataset=arrays, progress=False)
    import resnetlab.runs.execute as runs

    monkeypatch.setattr(runs, "train", lambda *a, **k: pytest.fail("retrained a recorded run"))
    again = get_or_train(cfg, runs=tmp_path, dataset=arrays, progress=False)
    assert again.summary == first.summary


def test_run_ids_are_stable_and_config_sensitive():
    a = make_config("resnet20", profile="quick", seed=0)
    assert run_id(a) == run_id(make_config("resnet20", profile="quick", seed=0))
    assert run_id(a) != run_id(make_config("resnet20", profile="quick", seed=1))
    assert run_id(a) != run_id(make_config("resnet20", profile="quick", model_options={"shortcut": "B"}))
    with pytest.raises(ValueError, match="6n\\+2"):
        make_config("resnet21")
    with pytest.raises(ValueError, match="valid choices"):
        make_config("resnet20", model_options={"variant": "nope"})


def test_cli_train_and_list(cifar_folder, tmp_path, capsys):
    from resnetlab.cli import main

    rc = main(["train", "resnet8", "--profile", "smoke", "--data", str(cifar_folder), "--runs", str(tmp_path / "runs"),
               "--option", "widths=[4,8,16]", "--set", "iterations=8", "--set", "milestones=[4,6]",
               "--set", "eval_every=4", "--set", "checkpoint_every=4", "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "complete" in out and "test error" in out
    assert main(["list", "--runs", str(tmp_path / "runs")]) == 0
    assert "resnet8" in capsys.readouterr().out


def test_cli_train_reports_missing_data(tmp_path, capsys):
    from resnetlab.cli import main

    rc = main(["train", "resnet20", "--profile", "smoke", "--data", str(tmp_path / "nothing"), "--runs", str(tmp_path)])
    assert rc == 2
    assert "RESNETLAB_DATA" in capsys.readouterr().err


def test_activation_checkpointing_gives_the_same_gradients():
    from resnetlab.models import build_model

    x = torch.randn(4, 3, 32, 32)
    grads = []
    for segments in (0, 2):
        torch.manual_seed(0)
        net = build_model("resnet20")
        net.set_activation_checkpointing(segments)
        net(x).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
    assert torch.allclose(grads[0], grads[1], atol=1e-5)


def test_the_checkpoint_is_one_dict_of_checkpoint_keys(arrays, tmp_path):
    from resnetlab.train import CHECKPOINT_KEYS, load_checkpoint, save_checkpoint

    ckpt = tmp_path / "ck.pt"
    train("resnet8", arrays, tiny_recipe(), model_options=TINY, checkpoint=ckpt, stop_after=8, progress=False)
    state = load_checkpoint(ckpt)
    assert sorted(state) == sorted(CHECKPOINT_KEYS) and state["iteration"] == 8
    short = {k: v for k, v in state.items() if k != "rng"}
    with pytest.raises(ValueError, match="missing rng"):
        save_checkpoint(tmp_path / "other.pt", short)  # written by the same keys ...
    torch.save(short, ckpt)
    with pytest.warns(RuntimeWarning, match="missing rng"):
        assert load_checkpoint(ckpt) is None  # ... and read by them
    assert (tmp_path / "ck.pt.corrupt").exists()


# ----------------------------------------------------------------------------- checkpoint faults


def _full_disk_oserror(obj, f, *a, **k):
    Path(f).write_bytes(b"PK\x03\x04" + b"x" * 5000)  # some bytes made it to the disk ...
    raise OSError(28, "No space left on device")  # ... then it was full


def _full_disk_torch(obj, f, *a, **k):
    Path(f).write_bytes(b"PK\x03\x04" + b"x" * 5000)
    raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 5004 vs 4096; "
                       "PytorchStreamWriter failed writing file data/3: file write failed")


@pytest.mark.parametrize("full_disk", [_full_disk_oserror, _full_disk_torch])
@pytest.mark.usefixtures("one_torch_thread")
def test_a_full_disk_keeps_the_previous_checkpoint(arrays, tmp_path, monkeypatch, full_disk):
    import resnetlab.train.checkpoint as C

    r = tiny_recipe(checkpoint_every=4)
    ckpt = tmp_path / "ck.pt"
    train("resnet8", arrays, r, model_options=TINY, checkpoint=ckpt, stop_after=8, progress=False)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(before) == ["ck.prev.pt", "ck.pt"]
    monkeypatch.setattr(C.torch, "save", full_disk)
    # torch's writer does not say why a write failed; the disk is asked
    monkeypatch.setattr(C.shutil, "disk_usage", lambda p: SimpleNamespace(total=10**9, used=10**9, free=0))
    with pytest.raises(OSError, match=rf"cannot save checkpoint {re.escape(str(ckpt))}: the disk is full .* holding "
                                      rf"{re.escape(str(tmp_path))}\); "
                                      r"the previous checkpoint \(ck.pt and ck.prev.pt\) is kept intact") as err:
        train("resnet8", arrays, r, model_options=TINY, checkpoint=ckpt, stop_after=4, progress=False)
    assert err.value.errno == 28
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # intact, and no temporary file left
    monkeypatch.undo()
    assert load_checkpoint(ckpt)["iteration"] == 8


@pytest.mark.usefixtures("one_torch_thread")
def test_a_checkpoint_of_another_run_is_set_aside(arrays, tmp_path):
    r = tiny_recipe()
    ckpt = tmp_path / "ck.pt"
    train("resnet8", arrays, r, model_options=TINY, seed=1, checkpoint=ckpt, stop_after=8, progress=False,
          identity="run-a")
    fresh = train("resnet8", arrays, r, model_options=TINY, seed=0, progress=False)
    with pytest.warns(RuntimeWarning, match=r"ck.pt is not this run's: it belongs to run 'run-a', not to 'run-b'"):
        res = train("resnet8", arrays, r, model_options=TINY, seed=0, checkpoint=ckpt, progress=False,
                    identity="run-b")
    assert torch.load(tmp_path / "ck.pt.foreign", weights_only=True)["identity"] == "run-a"  # kept, not lost
    assert load_checkpoint(ckpt)["identity"] == "run-b"
    assert res.history.drop(columns="wall_time").equals(fresh.history.drop(columns="wall_time"))  # afresh


@pytest.mark.usefixtures("one_torch_thread")
def test_get_or_train_never_resumes_another_runs_checkpoint(arrays, tmp_path):
    import shutil

    from resnetlab.runs import checkpoint_path

    a = make_config("resnet8", profile="smoke", model_options=TINY, seed=0)
    b = make_config("resnet8", profile="smoke", model_options=TINY, seed=1)
    assert get_or_train(a, runs=tmp_path, dataset=arrays, progress=False, stop_after=8).status == "interrupted"
    planted = checkpoint_path(b, tmp_path)
    planted.parent.mkdir(parents=True)
    shutil.copy(checkpoint_path(a, tmp_path), planted)  # a's checkpoint copied under b
    with pytest.warns(RuntimeWarning, match=rf"belongs to run '{run_id(a)}', not to '{run_id(b)}'"):
        rec = get_or_train(b, runs=tmp_path, dataset=arrays, progress=False, stop_after=8)
    assert rec.summary["iterations"] == 8  # b started afresh: 8 iterations, not a's 8 and 8 more
    assert load_checkpoint(planted)["identity"] == run_id(b)


@pytest.mark.usefixtures("one_torch_thread")
def test_a_checkpoint_of_another_model_is_set_aside(arrays, tmp_path):
    r = tiny_recipe()
    ckpt = tmp_path / "ck.pt"
    train("resnet8", arrays, r, model_options={"widths": (8, 16, 32)}, checkpoint=ckpt, stop_after=8, progress=False)
    with pytest.warns(RuntimeWarning, match=r"ck.pt is not this run's: its weights are of a different model "
                                            r"\(other shapes of .*\); kept as ck.pt.foreign"):
        res = train("resnet8", arrays, r, model_options=TINY, checkpoint=ckpt, progress=False)
    assert res.summary["status"] == "complete" and res.history.iteration.tolist()[0] == 4
    assert (tmp_path / "ck.pt.foreign").exists()
    # a checkpoint of another model name, and one of another recipe, go the same way
    train("resnet8", arrays, r, model_options=TINY, checkpoint=ckpt, stop_after=8, progress=False)
    with pytest.warns(RuntimeWarning, match=r"another recipe \(lr=0.1\)"):
        train("resnet8", arrays, tiny_recipe(lr=0.05), model_options=TINY, checkpoint=ckpt, stop_after=4,
              progress=False)


@pytest.mark.usefixtures("one_torch_thread")
def test_a_version_1_checkpoint_still_resumes(arrays, tmp_path):
    r = tiny_recipe()
    whole = train("resnet8", arrays, r, model_options=TINY, progress=False)
    ckpt = tmp_path / "ck.pt"
    train("resnet8", arrays, r, model_options=TINY, checkpoint=ckpt, stop_after=8, progress=False, identity="x")
    state = torch.load(ckpt, weights_only=True)
    del state["identity"]
    torch.save({**state, "version": 1}, ckpt)  # as written before identities
    rest = train("resnet8", arrays, r, model_options=TINY, checkpoint=ckpt, progress=False, identity="x")
    assert rest.history.drop(columns="wall_time").equals(whole.history.drop(columns="wall_time"))


def test_temporary_checkpoint_files_of_dead_writers_are_removed(arrays, tmp_path):
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    ckpt = tmp_path / "ck.pt"
    stale = tmp_path / f".ck.pt.tmp-{dead.pid}"
    stale.write_bytes(b"half a checkpoint")
    other = tmp_path / f".other.pt.tmp-{dead.pid}"  # not ours: left alone
    other.write_bytes(b"x")
    assert load_checkpoint(ckpt) is None
    assert not stale.exists() and other.exists()
