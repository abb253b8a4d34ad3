"""Fault injection: a run SIGKILLed at random points of its checkpoint writes, many times over,
resumes to the very end the uninterrupted run reaches (bit-identical on CPU), and leaves no
temporary file behind; a cache write killed half-way costs nothing either.

Each "process" is a fork of the test process that SIGKILLs itself at a chosen point: a real
kill (no cleanup, no ``finally``), but without the seconds a fresh interpreter takes to
import torch.
"""

from __future__ import annotations

import io
import os
import random
import signal
import sys
from pathlib import Path

import pytest
import torch

from resnetlab.data import CACHE_DIR, load_cifar
from resnetlab.testing import fabricate_cifar
from resnetlab.train import Recipe, train

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.skipif(sys.platform != "linux", reason="forks a torch process, which only Linux does safely"),
]

TINY = {"widths": (4, 8, 16)}
#: a checkpoint at every other iteration: 11 checkpoint writes per run
RECIPE = Recipe(iterations=24, batch_size=16, milestones=(12, 18), eval_every=2, checkpoint_every=2, warmup="none")
IDENTITY = "cifar10-resnet8-faults-s0"


@pytest.fixture(scope="module")
def arrays(tmp_path_factory):
    root = fabricate_cifar(tmp_path_factory.mktemp("data"), "cifar10", "pickle", n_train=128, n_test=32)
    return load_cifar("cifar10", root, progress=False)


def _train(arrays, ckpt: Path | None, **kw):
    return train("resnet8", arrays, RECIPE, model_options=TINY, seed=0, checkpoint=ckpt, progress=False,
                 identity=IDENTITY, **kw)


def _in_a_process_killed(fn, plan: dict | None = None) -> bool:
    """Run ``fn`` in a forked child that SIGKILLs itself as ``plan`` (or ``fn``) says; whether it
    was killed (it may also finish before the planned point)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            if plan is not None:
                _arm(plan)
            fn()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return True
    assert os.WEXITSTATUS(status) == 0, "the child failed (not killed)"
    return False


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _arm(plan: dict) -> None:
    """In the child: make the ``plan["save"]``-th checkpoint write die at ``plan["point"]``."""
    real_save, real_replace = torch.save, os.replace
    calls = {"save": 0}

    def save(obj, f, *args, **kwargs):
        calls["save"] += 1
        if calls["save"] != plan["save"]:
            return real_save(obj, f, *args, **kwargs)
        buf = io.BytesIO()
        real_save(obj, buf, *args, **kwargs)
        data = buf.getvalue()
        n = len(data) if plan["point"] == "written" else int(plan["fraction"] * len(data))
        with open(f, "wb") as fh:  # what the disk holds when the kill comes
            fh.write(data[:n])
        if plan["point"] in ("writing", "written"):
            _die()
        plan["rotating"] = True

    def replace(src, dst):
        real_replace(src, dst)
        if plan.get("rotating") and str(dst).endswith(".prev.pt"):
            _die()  # between the two renames: last.prev.pt and the temporary file, no last.pt

    torch.save, os.replace = save, replace
    if plan["point"] == "rotating":  # the write completes, the rotation is killed
        plan["fraction"] = 1.0


def _history(result):
    return result.history.drop(columns="wall_time")


def test_random_kills_during_checkpoint_writes_resume_bit_identically(arrays, tmp_path):
    whole = _train(arrays, None)
    want_weights, want_history = whole.model.state_dict(), _history(whole)
    rng = random.Random(18)
    kills = 0
    for trial in range(4):
        ckpt = tmp_path / f"trial{trial}" / "last.pt"
        for _ in range(30):  # incarnations of the run, each killed somewhere in a checkpoint write
            plan = {"save": rng.randint(1, 4), "point": rng.choice(["writing", "writing", "written", "rotating"]),
                    "fraction": rng.random()}
            if not _in_a_process_killed(lambda: _train(arrays, ckpt), plan):
                break
            kills += 1
        # the last incarnation: resume and run to the end, here
        rest = _train(arrays, ckpt)
        assert rest.summary["status"] == "complete"
        for k, v in want_weights.items():
            assert torch.equal(v, rest.model.state_dict()[k]), (trial, k)
        assert _history(rest).equals(want_history), trial
        left = sorted(p.name for p in ckpt.parent.iterdir())
        assert not [n for n in left if ".tmp-" in n], left  # no temporary file of a killed write survives
        assert not [n for n in left if n.endswith((".corrupt", ".foreign"))], left  # nothing was ever damaged
    assert kills >= 12  # many kills, not a lucky few


def test_a_killed_cache_write_leaves_no_temporary_file(tmp_path):
    root = fabricate_cifar(tmp_path, "cifar10", "pickle", n_train=60, n_test=20)
    cache = root / CACHE_DIR

    def killed_while_caching():
        real = torch.save

        def save(obj, f, *a, **k):
            buf = io.BytesIO()
            real(obj, buf, *a, **k)
            with open(f, "wb") as fh:
                fh.write(buf.getvalue()[: len(buf.getvalue()) // 2])
            _die()

        torch.save = save
        load_cifar("cifar10", root, progress=False)

    assert _in_a_process_killed(killed_while_caching)
    (tmp,) = cache.iterdir()  # the half-written cache of the dead process
    assert ".tmp-" in tmp.name
    data = load_cifar("cifar10", root, progress=False)  # the next load removes it, and caches afresh
    assert len(data.train_labels) == 60
    assert [p.suffix for p in cache.iterdir()] == [".pt"] and not tmp.exists()
