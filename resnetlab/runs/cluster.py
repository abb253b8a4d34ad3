"""Many runs on many GPUs: packs of runs as submitit jobs, on a SLURM cluster or a workstation.

A *pack* is what one GPU trains: some configs, one after another (or ``jobs`` at a time with
:func:`~.parallel.train_many`). :func:`submit` packs the runs not recorded yet for submitit:
``"slurm"`` (a job array, ``gpus_per_job`` packs per job, one task per GPU), ``"local"`` (a job
per visible GPU, ``CUDA_VISIBLE_DEVICES`` per pack), ``"debug"`` (in this process, for tests).
Packs write records into the runs folder (shared on a cluster): submitting again trains only
what is missing; a run that raises is logged and its pack goes on. A job preempted or near its
time limit gets SIGUSR2: submitit calls :meth:`PackJob.checkpoint` and requeues the pack, which
resumes its run in progress from the last periodic checkpoint (``recipe.checkpoint_every``).

``logs`` (``$RESNETLAB_LOGS``, else ``logs/`` beside the runs folder): ``<job id>/`` (submitit's
pickles, stdout/stderr), ``packs/<pack>.json`` (what was submitted), ``packs/<pack>.state.json``
(what the pack did: attempts, host, pid, each run's outcome).
"""

from __future__ import annotations

import math
import os
import secrets
import shutil
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .config import run_id
from .fusion import MAX_MEMBERS, fusion_groups
from .packs import Pack, PackJob, _now, read_json, train_pack
from .records import _write_json, resolve_runs_dir

ENGINES = ("inline", "local", "slurm")
LOGS_ENV = "RESNETLAB_LOGS"
INSTALL = "pip install 'resnetlab[cluster]'"
RUNS_PER_GPU = 4  # runs per pack on SLURM unless runs_per_gpu says otherwise
DEFAULT_TIME = "4:00:00"  # a SLURM job's time limit unless time says otherwise; a requeue resumes the rest
MAX_TIMEOUTS = 100  # requeues after a time-out before a pack gives up (preemptions do not count)


class SubmititMissing(ImportError, ValueError):
    """``--engine local|slurm`` without submitit."""


def require_submitit(engine: str) -> Any:
    try:
        import submitit
    except ImportError:
        raise SubmititMissing(f"--engine {engine} needs submitit, which is not installed: {INSTALL}") from None
    return submitit


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` names them."""
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    listed = [g.strip() for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()]
    return listed[:n] if listed else [str(i) for i in range(n)]


def slurm_minutes(text: str | int) -> int:
    """A time limit in SLURM's formats ("90", "30:00", "4:00:00", "1-12", "2-00:00:00") in minutes."""
    days, dash, rest = str(text).strip().rpartition("-")
    try:
        parts = [int(p) for p in rest.split(":")]
        h, m, s = (parts + [0, 0])[:3] if dash else {1: (0, parts[0], 0), 2: (0, *parts), 3: parts}[len(parts)]
        minutes = (int(days) if dash else 0) * 1440 + h * 60 + m + math.ceil(s / 60)
        if len(parts) > 3 or min(parts) < 0 or minutes < 1:
            raise ValueError
    except (ValueError, KeyError):
        raise ValueError(f"--time {text!r}: give minutes, HH:MM:SS or D-HH:MM:SS (SLURM's formats)") from None
    return minutes


def resolve_logs_dir(logs: str | os.PathLike | None, runs: str | os.PathLike | None = None) -> Path:
    """``logs``, else ``$RESNETLAB_LOGS``, else ``logs/`` beside the runs folder (absolute)."""
    chosen = logs if logs not in (None, "") else os.environ.get(LOGS_ENV) or None
    path = Path(chosen).expanduser() if chosen else resolve_runs_dir(runs).expanduser().absolute().parent / "logs"
    return path.absolute()


@dataclass
class Submission:
    """What :func:`submit` did: the packs and their submitit jobs; once waited for (local),
    each pack's final state in ``reports``."""

    engine: str
    logs: Path
    runs: Path
    packs: list[Pack] = field(default_factory=list)
    jobs: list[Any] = field(default_factory=list)
    skipped: int = 0  # runs already recorded: nothing submitted for them
    running: int = 0  # runs left to the jobs that are training them (set by the caller)
    reports: list[dict[str, Any]] = field(default_factory=list)
    crashed: list[tuple[str, str]] = field(default_factory=list)  # (job id, why) of jobs that died

    @property
    def errors(self) -> list[tuple[str, str]]:
        """(run id, error) of the runs that raised."""
        return [(rid, o.get("error", "")) for r in self.reports for rid, o in r.get("runs", {}).items()
                if o.get("outcome") == "error"]

    def summary(self) -> str:
        if not self.packs:
            return f"nothing to submit: {self.skipped} run(s) recorded in {self.runs}, {self.running} still running"
        ids = ", ".join(sorted({str(j.job_id).split("_")[0] for j in self.jobs}))
        return (f"{self.engine}: {sum(len(p.configs) for p in self.packs)} run(s) in {len(self.packs)} pack(s), "
                f"job(s) {ids}; {self.skipped} already recorded, {self.running} still running; logs in {self.logs}")


def make_packs(todo: Sequence[tuple[dict[str, Any], bool]], *, size: int | None = None, count: int | None = None,
               label: str = "resnetlab", together: int = 1, **common: Any) -> list[Pack]:
    """Packs of ``size`` consecutive runs, or ``count`` packs with the runs dealt in turn. With
    ``together`` > 1, runs that can train fused (:func:`~.fusion.fusion_groups`, up to
    ``together`` of them) stay in one pack: they are dealt, and packs are cut, a group at a time."""
    todo = list(todo)
    units = [[todo[i] for i in g] for g in fusion_groups([c for c, _ in todo], together)] if together > 1 \
        else [[t] for t in todo]
    if size:
        groups: list[list[tuple[dict[str, Any], bool]]] = [[]]
        for unit in units:
            if groups[-1] and len(groups[-1]) + len(unit) > max(size, len(unit)):
                groups.append([])
            groups[-1].extend(unit)
    else:
        dealt = [units[i::count or 1] for i in range(min(count or 1, len(units)))]
        groups = [[t for unit in d for t in unit] for d in dealt]
    tag = f"{label}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    return [Pack(f"{tag}-p{i:03d}", [c for c, _ in g], [w for _, w in g], **common) for i, g in enumerate(groups)]


def submit(configs: Sequence[dict[str, Any]], weights: Sequence[bool] | None = None, *, engine: str = "local",
           runs: str | Path | None = None, data: str | Path | None = None, checkpoints: str | Path | None = None,
           device: str | None = None, jobs: int = 1, logs: str | Path | None = None, runs_per_gpu: int | None = None,
           gpus_per_job: int = 1, partition: str | None = None, account: str | None = None, time: str | None = None,
           slurm_options: dict[str, Any] | None = None, label: str = "resnetlab", wait: bool | None = None,
           slots: int | None = None, threads: int | None = None, stop_after: int | None = None,
           progress: bool = True, fuse: str | bool = "auto", max_fused: int = MAX_MEMBERS) -> Submission:
    """Submit the runs of ``configs`` not recorded yet as packs (see the module docstring).
    ``fuse``/``max_fused``: runs that can train fused stay in one pack, which fuses them when
    its node's device makes it pay (:func:`~.fusion.fusion_wanted`, evaluated there).
    ``wait`` (default: yes, except on SLURM): block until every job has ended. ``slots``: packs
    of the local engine (default: one per visible GPU, one on a CPU)."""
    if engine not in ("local", "slurm", "debug"):
        raise ValueError(f"unknown engine {engine!r}; valid choices: {', '.join(ENGINES)}")
    submitit = require_submitit(engine)
    if engine == "slurm" and not shutil.which("sbatch"):
        raise ValueError("--engine slurm needs SLURM's sbatch, which is not on PATH: submit from a login node")
    if min(jobs, gpus_per_job, runs_per_gpu or 1, slots or 1) < 1:
        raise ValueError("--jobs, --gpus-per-job and --runs-per-gpu must be at least 1")
    minutes = slurm_minutes(time or DEFAULT_TIME)
    root = resolve_runs_dir(runs).expanduser().absolute()
    logs_dir = resolve_logs_dir(logs, root)
    todo, seen = [], set()
    for config, keep in zip(configs, [False] * len(configs) if weights is None else weights):
        if run_id(config) not in seen and not (root / run_id(config) / "summary.json").exists():
            todo.append((config, keep))
        seen.add(run_id(config))
    sub = Submission(engine, logs_dir, root, skipped=len(seen) - len(todo))
    if not todo:
        return sub
    from ..data import load_cifar, resolve_data_root

    data_root = str(resolve_data_root(data).expanduser().absolute())
    for name in sorted({c["dataset"] for c, _ in todo}):  # found (and decoded into its cache) once, before any job
        load_cifar(name, data_root, progress=progress)
    together = 1 if fuse in ("off", False) else max_fused
    common = dict(runs=str(root), logs=str(logs_dir), data=data_root, device=device, jobs=jobs, stop_after=stop_after,
                  fuse=fuse if isinstance(fuse, str) else ("on" if fuse else "off"), max_fused=max_fused,
                  checkpoints=None if checkpoints is None else str(Path(checkpoints).expanduser().absolute()))
    (logs_dir / "packs").mkdir(parents=True, exist_ok=True)
    if engine == "slurm":
        sub.packs = make_packs(todo, size=runs_per_gpu or RUNS_PER_GPU, label=label, threads=threads,
                               together=together, **common)
        groups = [sub.packs[i:i + gpus_per_job] for i in range(0, len(sub.packs), gpus_per_job)]
        ex = submitit.SlurmExecutor(folder=logs_dir / "%j", max_num_timeout=MAX_TIMEOUTS)
        ex.update_parameters(**_slurm_parameters(ex, label, minutes, gpus_per_job, jobs, partition, account,
                                                 slurm_options))
        sub.jobs = ex.submit_array([PackJob(g) for g in groups])
        tasks = [(job, i, p) for job, g in zip(sub.jobs, groups) for i, p in enumerate(g)]
    else:
        gpus = visible_gpus()
        n = slots or max(1, len(gpus))
        share = threads or max(1, (os.cpu_count() or 1) // min(n, len(todo)))
        sub.packs = make_packs(todo, count=n, label=label, threads=share, together=together, **common)
        ex = submitit.DebugExecutor(logs_dir / "%j") if engine == "debug" else submitit.LocalExecutor(logs_dir / "%j")
        for i, pack in enumerate(sub.packs):
            if engine == "local":  # the shell line wins over the CUDA_VISIBLE_DEVICES submitit sets
                ex.update_parameters(timeout_min=minutes if time else 60 * 24 * 365, gpus_per_node=0,
                                     setup=[f"export CUDA_VISIBLE_DEVICES={gpus[i] if i < len(gpus) else ''}"])
            sub.jobs.append(ex.submit(PackJob([pack])))
        tasks = [(job, 0, p) for job, p in zip(sub.jobs, sub.packs)]
    for job, task, pack in tasks:
        _write_manifest(sub, ex, job, task, pack)
    if progress:
        print(sub.summary(), file=sys.stderr, flush=True)
    if wait if wait is not None else engine != "slurm":
        _wait(sub)
    return sub


def _slurm_parameters(ex: Any, label: str, minutes: int, gpus: int, jobs: int, partition: str | None,
                      account: str | None, extra: dict[str, Any] | None) -> dict[str, Any]:
    """submitit's SlurmExecutor parameters; ``extra`` (``--slurm-option``) may add or override
    any: a parameter submitit knows by its name, ``setup`` lines, else a raw ``#SBATCH`` flag."""
    params: dict[str, Any] = dict(job_name=label, time=minutes, nodes=1, gpus_per_node=gpus, ntasks_per_node=gpus,
                                  cpus_per_task=jobs + 1, partition=partition, account=account,
                                  additional_parameters={})
    for key, value in (extra or {}).items():
        k = key.replace("-", "_")
        if k == "setup":
            params.setdefault("setup", []).append(str(value))
        else:
            (params if k in ex._valid_parameters() else params["additional_parameters"])[k] = value
    return {k: v for k, v in params.items() if v is not None}


def _write_manifest(sub: Submission, ex: Any, job: Any, task: int, pack: Pack) -> None:
    from submitit.core.utils import JobPaths

    paths = JobPaths(ex.folder, str(job.job_id), task)
    _write_json(Path(pack.logs) / "packs" / f"{pack.name}.json", {
        "name": pack.name, "engine": sub.engine, "job_id": str(job.job_id), "task": task,
        "runs": [run_id(c) for c in pack.configs], "host": socket.gethostname(),
        "pid": int(job.job_id) if sub.engine == "local" else None, "stdout": str(paths.stdout),
        "stderr": str(paths.stderr), "submitted": _now()})


def _wait(sub: Submission) -> None:
    try:
        for job in sub.jobs:
            try:
                job.result()
            except Exception as exc:  # noqa: BLE001 - a job that died (killed, out of memory): say so, go on
                sub.crashed.append((str(job.job_id), (str(exc).strip().splitlines() or [repr(exc)])[-1]))
    except KeyboardInterrupt:
        for job in sub.jobs:
            job.cancel(check=False)
        raise
    sub.reports = [read_json(pack.state_file) for pack in sub.packs]


__all__ = ["DEFAULT_TIME", "ENGINES", "INSTALL", "LOGS_ENV", "Pack", "PackJob", "RUNS_PER_GPU", "Submission",
           "SubmititMissing", "make_packs", "read_json", "require_submitit", "resolve_logs_dir", "slurm_minutes",
           "submit", "train_pack", "visible_gpus"]
