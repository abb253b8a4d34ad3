"""A *pack*: the runs one GPU trains, and :func:`train_pack`, the body of its submitit job
(:mod:`.cluster` submits packs). Runs go one after another, runs that differ only in seed
as one fused net (:mod:`.fusion`), or ``jobs`` at a time through :func:`~.parallel.train_many`.
A run that raises is logged and the pack goes on; each run's outcome goes to the pack's
state file as it happens."""

from __future__ import annotations

import json
import os
import socket
import sys
import traceback
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from .config import describe, run_id
from .execute import checkpoint_iteration, checkpoint_path, get_or_train
from .fusion import MAX_MEMBERS, fusion_groups, fusion_wanted, get_or_train_group
from .records import _write_json

try:  # optional: without submitit a pack still trains when called
    from submitit.helpers import Checkpointable as _Checkpointable
except ImportError:  # pragma: no cover - depends on the environment
    _Checkpointable = object  # type: ignore[assignment,misc]

def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_json(file: Path) -> dict[str, Any]:
    """A manifest or state file; ``{}`` if it is missing or unreadable."""
    try:
        return dict(json.loads(file.read_text()))
    except (OSError, ValueError, TypeError):
        return {}


@dataclass
class Pack:
    """The runs one GPU trains (paths absolute: the pack runs on another machine)."""

    name: str
    configs: list[dict[str, Any]]
    weights: list[bool]
    runs: str
    logs: str
    data: str | None = None
    checkpoints: str | None = None
    device: str | None = None
    jobs: int = 1
    threads: int | None = None
    stop_after: int | None = None  # stop each run after this many iterations (tests)
    fuse: str = "auto"  # fused training of runs that differ only in seed (:mod:`.fusion`), decided on the node
    max_fused: int = MAX_MEMBERS

    @property
    def state_file(self) -> Path:  # what the pack did, written as it goes
        return Path(self.logs) / "packs" / f"{self.name}.state.json"


class PackJob(_Checkpointable):
    """What one submitit job runs: ``packs[i]`` in its task of local rank ``i`` (one per GPU)."""

    def __init__(self, packs: Sequence[Pack]) -> None:
        self.packs = list(packs)

    def __call__(self) -> dict[str, Any]:
        rank = _job_env("local_rank", 0)
        return train_pack(self.packs[rank], rank) if rank < len(self.packs) else {}

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Preempted or out of time: requeue this pack, which resumes from what is on disk."""
        import multiprocessing as mp

        from submitit.helpers import DelayedSubmission

        for p in mp.active_children():  # train_many's runs: each keeps its last periodic checkpoint
            p.terminate()
        return DelayedSubmission(self, *args, **kwargs)


def _job_env(attr: str, default: Any) -> Any:
    try:
        import submitit

        return getattr(submitit.JobEnvironment(), attr)
    except Exception:  # noqa: BLE001 - not inside a submitit job
        return default


def _task_device(device: str | None, rank: int) -> str | None:
    """The GPU of the task of local rank ``rank``, where the job's tasks share its GPUs."""
    import torch

    n = torch.cuda.device_count() if device in (None, "cuda") and torch.cuda.is_available() else 0
    return f"cuda:{rank % n}" if n > 1 else device


def _log(pack: Pack, text: str) -> None:
    print(f"[{pack.name}] {text}", file=sys.stderr, flush=True)


def _error(pack: Pack, exc: Exception, what: str) -> str:
    """A run's crash, logged; submitit's "stop now" (timed out too often) is re-raised."""
    if type(exc).__name__ == "UncompletedJobError":
        raise exc
    _log(pack, f"{what} RAISED; the pack goes on with its other runs\n{traceback.format_exc()}")
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:500]


def train_pack(pack: Pack, rank: int = 0) -> dict[str, Any]:
    """Train the runs of ``pack`` not recorded yet. A run that raises is logged and the others
    go on; each run's outcome goes to ``pack.state_file``, which is also returned."""
    import torch

    state = read_json(pack.state_file)
    state.update(name=pack.name, attempt=state.get("attempt", 0) + 1, host=socket.gethostname(), pid=os.getpid(),
                 job=_job_env("job_id", None), gpus=os.environ.get("CUDA_VISIBLE_DEVICES"), started=_now(),
                 finished=None)
    outcomes, device = state.setdefault("runs", {}), _task_device(pack.device, rank)
    if pack.threads:
        torch.set_num_threads(pack.threads)
    _log(pack, f"attempt {state['attempt']} on {state['host']} (pid {os.getpid()}, device {device or 'default'}): "
               f"{len(pack.configs)} run(s)")
    todo = []
    for config, keep in zip(pack.configs, pack.weights):
        rid = run_id(config)
        if not (Path(pack.runs) / rid / "summary.json").exists():
            todo.append((config, keep))
        elif outcomes.get(rid, {}).get("outcome") not in ("complete", "failed"):
            outcomes[rid] = {"outcome": "recorded", "at": _now()}
    _write_json(pack.state_file, state)
    if pack.jobs > 1 and todo:
        _train_together(pack, todo, device, state)
    arrays: dict[str, Any] = {}
    fused = fusion_wanted(pack.fuse, device)
    units = fusion_groups([c for c, _ in todo], pack.max_fused) if fused else [[i] for i in range(len(todo))]
    for unit in units if pack.jobs == 1 else ():
        if len(unit) == 1:
            _train_one(pack, *todo[unit[0]], device, state, arrays)
        else:
            _train_fused(pack, [todo[i] for i in unit], device, state, arrays)
    state["finished"] = _now()
    _write_json(pack.state_file, state)
    counts = Counter(o.get("outcome") for o in outcomes.values())
    _log(pack, "done: " + ", ".join(f"{n} {what}" for what, n in sorted(counts.items())))
    return state


def _train_one(pack: Pack, config: dict[str, Any], keep: bool, device: str | None, state: dict[str, Any],
               arrays: dict[str, Any]) -> None:
    from ..data import load_cifar

    rid = run_id(config)
    start = checkpoint_iteration(checkpoint_path(config, pack.runs, pack.checkpoints))
    outcome = state["runs"][rid] = {"outcome": "running", "resumed_from": start, "at": _now()}
    _write_json(pack.state_file, state)
    _log(pack, f"start {describe(config)} seed {config['seed']} ({rid})" + (f" at iteration {start}" if start else ""))
    try:
        if config["dataset"] not in arrays:
            arrays[config["dataset"]] = load_cifar(config["dataset"], pack.data, progress=False)
        rec = get_or_train(config, runs=pack.runs, dataset=arrays[config["dataset"]], device=device,
                           save_weights=keep, progress=False, stop_after=pack.stop_after, checkpoints=pack.checkpoints)
        err = rec.summary.get("final_test_error")
        outcome.update(outcome=rec.status, iterations=rec.summary.get("iterations"))
        _log(pack, f"{rid}: {rec.status}" + ("" if err is None else f", test error {err:.2f}%"))
    except Exception as exc:  # noqa: BLE001 - one run's crash is reported; the pack goes on
        outcome.update(outcome="error", error=_error(pack, exc, rid))
    outcome["at"] = _now()
    _write_json(pack.state_file, state)


def _train_fused(pack: Pack, todo: list[tuple[dict[str, Any], bool]], device: str | None, state: dict[str, Any],
                 arrays: dict[str, Any]) -> None:
    """Train runs that differ only in seed as one fused net (:func:`~.fusion.get_or_train_group`)."""
    from ..data import load_cifar

    rids = [run_id(c) for c, _ in todo]
    for rid in rids:
        state["runs"][rid] = {"outcome": "running", "fused": len(todo), "at": _now()}
    _write_json(pack.state_file, state)
    _log(pack, f"start {describe(todo[0][0])} seeds {','.join(str(c['seed']) for c, _ in todo)} fused")
    try:
        key = todo[0][0]["dataset"]
        if key not in arrays:
            arrays[key] = load_cifar(key, pack.data, progress=False)
        recs = get_or_train_group([c for c, _ in todo], runs=pack.runs, dataset=arrays[key], device=device,
                                  save_weights=[w for _, w in todo], progress=False, stop_after=pack.stop_after,
                                  checkpoints=pack.checkpoints)
        for rid, rec in zip(rids, recs):
            state["runs"][rid].update(outcome=rec.status, iterations=rec.summary.get("iterations"), at=_now())
            _log(pack, f"{rid}: {rec.status}")
    except Exception as exc:  # noqa: BLE001 - the group's crash is reported; the pack goes on
        error = _error(pack, exc, rids[0])
        for rid in rids:
            state["runs"][rid].update(outcome="error", error=error, at=_now())
    _write_json(pack.state_file, state)


def _train_together(pack: Pack, todo: list[tuple[dict[str, Any], bool]], device: str | None,
                    state: dict[str, Any]) -> None:
    from .parallel import train_many

    state["runs"].update({run_id(c): {"outcome": "running", "at": _now()} for c, _ in todo})
    _write_json(pack.state_file, state)
    try:
        result = train_many([c for c, _ in todo], jobs=pack.jobs, runs=pack.runs, data=pack.data, device=device,
                            save_weights=[w for _, w in todo], progress=True, checkpoints=pack.checkpoints,
                            fuse=pack.fuse, max_fused=pack.max_fused)
        errors = {e.run_id: (e.message.strip().splitlines() or ["raised"])[0][:500] for e in result.errors}
        state["runs"].update({r.id: {"outcome": "error", "error": errors[r.id]} if r.id in errors else
                              {"outcome": r.status, "iterations": r.summary.get("iterations")} for r in result})
    except Exception as exc:  # noqa: BLE001 - e.g. the data is not on this node: every run reports it
        error = _error(pack, exc, "train_many")
        state["runs"].update({run_id(c): {"outcome": "error", "error": error} for c, _ in todo})


