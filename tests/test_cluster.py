"""resnetlab.runs.cluster (issue 16): packs of runs as submitit jobs.

On the CPU, with submitit's LocalExecutor (real job processes, a real SIGUSR2 and requeue) and
DebugExecutor (the pack runs in this process). SLURM itself is faked by ``sbatch``, ``srun`` and
``squeue`` scripts on PATH that only write and print: what is checked is the job array that
would be submitted.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

submitit = pytest.importorskip("submitit")

import resnetlab.experiments.engine as engine_module  # noqa: E402
from resnetlab.cli import main  # noqa: E402
from resnetlab.experiments import reproduce, status  # noqa: E402
from resnetlab.experiments.status import run_states  # noqa: E402
from resnetlab.runs import FINISHED, checkpoint_path, get_or_train, load_record, make_config, run_id  # noqa: E402
from resnetlab.runs import cluster  # noqa: E402
from resnetlab.testing import fabricate_cifar  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"widths": (4, 8, 16)}
SHORT = dict(iterations=8, milestones=(4, 6), eval_every=2, checkpoint_every=2, batch_size=8, test_subset=32)
#: long enough that a signal sent after its first checkpoint lands before its end
LONG = {**SHORT, "iterations": 40, "milestones": (20, 30)}
#: a hang guard while waiting for a job process, not a timed assertion
PATIENCE_S = 300


def tiny(seed: int = 0, **recipe) -> dict:
    return make_config("resnet8", profile="smoke", seed=seed, model_options=TINY, **{**SHORT, **recipe})


def comparable(history):
    return history.drop(columns=["wall_time"])


def wait_for(what, condition):
    deadline = time.monotonic() + PATIENCE_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return fabricate_cifar(tmp_path_factory.mktemp("data"), "cifar10", "pickle", n_train=256, n_test=64)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data):
    """The LONG run trained straight through, in this process, with one thread as the packs."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:  # read back: history.csv holds 6 significant digits, as the packs' records do
        return load_record(get_or_train(tiny(5, **LONG), runs=tmp_path_factory.mktemp("reference"), data=data,
                                        device="cpu", progress=False).path)
    finally:
        torch.set_num_threads(n)


@pytest.fixture(scope="module")
def fig1(tmp_path_factory, data):
    """r-fig1 in its smoke profile through the local engine, on a "workstation" of two GPUs
    (two packs, one per GPU; the runs themselves train on the CPU)."""
    runs, logs = tmp_path_factory.mktemp("runs"), tmp_path_factory.mktemp("logs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cluster, "visible_gpus", lambda: ["0", "1"])
        collected = reproduce("r-fig1", "smoke", runs=runs, data=data, device="cpu", engine="local", logs=logs,
                              progress=False)
    return runs, logs, collected


def test_local_packs_train_one_per_gpu_and_are_recorded(fig1, data):
    runs, logs, collected = fig1
    sub = collected.submission
    assert collected.complete and len(collected.all_records) == 2
    assert all(r.status in FINISHED for r in collected.all_records)
    assert sub.engine == "local" and [len(p.configs) for p in sub.packs] == [1, 1]
    assert sorted(r["gpus"] for r in sub.reports) == ["0", "1"]  # CUDA_VISIBLE_DEVICES per pack
    assert all(r["attempt"] == 1 and r["finished"] for r in sub.reports)
    assert not sub.errors and not sub.crashed
    for pack in sub.packs:
        assert (logs / "packs" / f"{pack.name}.json").exists()
    rows = status("r-fig1", "smoke", runs=runs, logs=logs, data=data)
    assert [r.state for r in rows] == ["recorded", "recorded"]
    assert all(r.log and Path(r.log).exists() for r in rows)  # the job's stdout


def test_a_second_submission_trains_nothing(fig1, data):
    runs, logs, first = fig1
    stamps = {r.id: (r.path / "summary.json").stat().st_mtime_ns for r in first.all_records}
    again = reproduce("r-fig1", "smoke", runs=runs, data=data, device="cpu", engine="local", logs=logs,
                      progress=False)
    assert again.submission.packs == [] and again.submission.jobs == [] and again.submission.skipped == 2
    assert "nothing to submit" in again.submission.summary()
    assert {r.id: (r.path / "summary.json").stat().st_mtime_ns for r in again.all_records} == stamps


def test_the_default_engine_is_local_only_with_several_gpus(fig1, data, monkeypatch):
    runs, logs, _ = fig1
    monkeypatch.setattr(engine_module, "visible_gpus", lambda: ["0", "1"])
    several = reproduce("r-fig1", "smoke", runs=runs, data=data, logs=logs, progress=False)
    assert several.submission.engine == "local" and several.submission.packs == []
    monkeypatch.setattr(engine_module, "visible_gpus", lambda: ["0"])
    one = reproduce("r-fig1", "smoke", runs=runs, data=data, logs=logs, progress=False)
    assert not hasattr(one, "submission") and one.complete  # inline, as before: nothing left to train


def test_status_command(fig1, data, capsys):
    runs, logs, _ = fig1
    assert main(["status", "r-fig1", "--profile", "smoke", "--runs", str(runs), "--logs", str(logs),
                 "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "r-fig1 (smoke): 2 recorded, 0 running, 0 failed, 0 missing" in out
    assert out.count("log: ") == 2


def test_a_preempted_local_pack_is_requeued_and_resumes_identically(tmp_path, data, reference):
    """SIGUSR2 is what SLURM sends a job it preempts or that nears its time limit: submitit
    calls PackJob.checkpoint, the job is requeued, and the pack resumes from its checkpoint."""
    config = tiny(5, **LONG)
    runs, logs = tmp_path / "runs", tmp_path / "logs"
    sub = cluster.submit([config], engine="local", runs=runs, data=data, logs=logs, device="cpu", threads=1,
                         wait=False, progress=False)
    pack = sub.packs[0]
    wait_for("the first checkpoint", lambda: checkpoint_path(config, runs).exists())
    pid = cluster.read_json(pack.state_file)["pid"]
    assert [r.state for r in run_states([config], runs=runs, logs=logs)] == ["running"]
    os.kill(pid, signal.SIGUSR2)  # the job's own process, started by this test
    sub.jobs[0].result()
    state = cluster.read_json(pack.state_file)
    outcome = state["runs"][run_id(config)]
    assert state["attempt"] == 2 and state["pid"] != pid
    assert outcome["outcome"] == "complete" and 0 < outcome["resumed_from"] < LONG["iterations"]
    assert "Requeued" in sub.jobs[0].stdout()
    resumed = load_record(runs / run_id(config))
    assert resumed.summary["final_test_error"] == reference.summary["final_test_error"]
    assert comparable(resumed.history).equals(comparable(reference.history))


def test_a_stopped_pack_resumes_from_its_checkpoint(tmp_path, data, reference):
    config = tiny(5, **LONG)
    runs, logs = tmp_path / "runs", tmp_path / "logs"
    first = cluster.submit([config], engine="debug", runs=runs, data=data, logs=logs, device="cpu", threads=1,
                           stop_after=10, progress=False)
    assert first.reports[0]["runs"][run_id(config)]["outcome"] == "interrupted"
    (row,) = run_states([config], runs=runs, logs=logs)
    assert row.state == "missing" and "checkpoint at iteration 10/40" in row.detail
    second = cluster.submit([config], engine="debug", runs=runs, data=data, logs=logs, device="cpu", threads=1,
                            progress=False)
    outcome = second.reports[0]["runs"][run_id(config)]
    assert outcome["outcome"] == "complete" and outcome["resumed_from"] == 10
    resumed = load_record(runs / run_id(config))
    assert comparable(resumed.history).equals(comparable(reference.history))


@pytest.mark.parametrize("jobs", [1, pytest.param(2, marks=pytest.mark.slow)], ids=["in-turn", "train_many"])
def test_a_run_that_raises_leaves_the_others_of_its_pack_recorded(tmp_path, data, jobs):
    good = [tiny(0), tiny(1)]
    crashes = {**tiny(7), "model": "resnet21"}  # build_model raises inside the pack
    runs, logs = tmp_path / "runs", tmp_path / "logs"
    sub = cluster.submit([good[0], crashes, good[1]], engine="debug", runs=runs, data=data, logs=logs, device="cpu",
                         jobs=jobs, progress=False)
    assert len(sub.packs) == 1
    assert [load_record(runs / run_id(c)).status for c in good] == ["complete", "complete"]
    assert not (runs / run_id(crashes) / "summary.json").exists()
    assert [rid for rid, _ in sub.errors] == [run_id(crashes)] and "6n+2" in sub.errors[0][1]
    rows = run_states([good[0], crashes, good[1]], runs=runs, logs=logs)
    assert [r.state for r in rows] == ["recorded", "failed", "recorded"]
    assert "6n+2" in rows[1].detail


FAKE_SBATCH = """#!/bin/sh
cp "$1" "{logs}/sbatch-$(date +%s%N).sh"
echo "Submitted batch job 4242"
"""


def test_slurm_submits_a_job_array_of_packs(tmp_path, data, monkeypatch, capsys):
    bin_dir, runs, logs = tmp_path / "bin", tmp_path / "runs", tmp_path / "logs"
    bin_dir.mkdir()
    logs.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH.format(logs=logs)), ("srun", "#!/bin/sh\n"),
                       ("squeue", "#!/bin/sh\necho '4242_0 RUNNING'\necho '4242_1 PENDING'\n")):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    command = ["reproduce", "r-fig1", "--profile", "smoke", "--engine", "slurm", "--partition", "gpu", "--account",
               "lab42", "--time", "2:00:00", "--runs-per-gpu", "1", "--runs", str(runs), "--data", str(data),
               "--logs", str(logs), "--slurm-option", "qos=normal", "--slurm-option", "setup=module load cuda"]
    rc = main([*command, "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "2 run(s) in 2 pack(s), job(s) 4242" in out and "python -m resnetlab status r-fig1" in out
    (script,) = [p.read_text() for p in logs.glob("sbatch-*.sh")]
    for line in ("--array=0-1%2", "--partition=gpu", "--account=lab42", "--time=120", "--gpus-per-node=1",
                 "--ntasks-per-node=1", "--qos=normal", "--signal=USR2@90", "module load cuda",
                 "submitit.core._submit"):
        assert line in script, line
    assert not any(runs.glob("*/summary.json"))  # nothing trained here
    rows = status("r-fig1", "smoke", runs=runs, logs=logs, data=data)
    assert [r.state for r in rows] == ["running", "running"]
    assert "job 4242_0 running" in rows[0].detail and "job 4242_1 pending" in rows[1].detail
    assert rows[0].log.endswith("4242_0/4242_0_0_log.err")
    again = main([*command, "--no-progress"])
    out = capsys.readouterr().out
    assert again == 0 and "nothing to submit" in out  # both runs are alive in their jobs: not submitted twice
    assert len(list(logs.glob("sbatch-*.sh"))) == 1


def test_without_submitit_the_slurm_engine_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit now raises ImportError
    rc = main(["reproduce", "r-fig1", "--profile", "smoke", "--engine", "slurm", "--runs", str(tmp_path / "runs"),
               "--data", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert "pip install 'resnetlab[cluster]'" in err and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("text, minutes", [("90", 90), ("30:00", 30), ("4:00:00", 240), ("1-12", 2160),
                                           ("2-00:00:00", 2880), ("0:00:30", 1)])
def test_slurm_time_formats(text, minutes):
    assert cluster.slurm_minutes(text) == minutes


@pytest.mark.parametrize("text", ["soon", "1:2:3:4", "0", "-5:00"])
def test_a_bad_time_limit_is_refused(text):
    with pytest.raises(ValueError, match="--time"):
        cluster.slurm_minutes(text)
