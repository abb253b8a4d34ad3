"""Where each run of an experiment stands: ``python -m resnetlab status EXPERIMENT``.

A run is *recorded* (its record is there), *running* (the job of its pack is alive, or, where
this machine cannot tell, its checkpoint was written in the last ``recent_s`` seconds),
*failed* (it raised, its job ended before it did, or its record is damaged) or *missing*.
This reads the records, the resumable checkpoints and what :mod:`resnetlab.runs.cluster`
writes under the logs folder (``packs/<pack>.json`` at submission, ``packs/<pack>.state.json``
as the pack trains), and asks SLURM (``squeue``) or this machine (the job's pid) whether a
pack's job is alive.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..runs import SOURCES, DamagedRecord, RecordError, checkpoint_path, describe, load_record, resolve_runs_dir, run_id
from ..runs.cluster import read_json, resolve_logs_dir
from .core import TRAIN_PROFILES
from .engine import training_source
from .registry import get_experiment

#: a checkpoint younger than this counts as a run in progress where no job can tell
RECENT_S = 20 * 60
STATES = ("recorded", "running", "failed", "missing")


@dataclass
class RunState:
    """One line of ``status``: the run, its state, what is known of it, its job's log (stderr:
    the pack's lines, tracebacks; submitit's own lines go to the ``.out`` beside it)."""

    run_id: str
    label: str
    seed: int
    state: str  # one of STATES
    detail: str = ""
    log: str | None = None


def _squeue(job_ids: set[str]) -> dict[str, str] | None:
    """SLURM's state of each listed job still queued or running; ``None`` without ``squeue``."""
    if not job_ids or shutil.which("squeue") is None:
        return None
    try:
        out = subprocess.run(["squeue", "-h", "-r", "-j", ",".join(sorted({j.split("_")[0] for j in job_ids})),
                              "-o", "%i %T"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return dict(line.split()[:2] for line in out.splitlines() if len(line.split()) >= 2)


def _alive(manifest: dict[str, Any], state: dict[str, Any], queue: dict[str, str] | None) -> str | bool | None:
    """Whether a pack's job is alive: how, if so; False if not; None if this machine cannot tell."""
    if state.get("finished"):
        return False
    if manifest.get("engine") == "slurm":
        found = None if queue is None else queue.get(manifest["job_id"])
        return f"job {manifest['job_id']} {found.lower()}" if found else (None if queue is None else False)
    here = socket.gethostname()
    for pid, host in ((state.get("pid"), state.get("host")), (manifest.get("pid"), manifest.get("host"))):
        try:
            if pid and host == here and os.kill(int(pid), 0) is None:
                return f"job {manifest['job_id']} alive (pid {pid})"
        except (OSError, ValueError):
            pass
    return False if manifest.get("host") == here else None


def latest_packs(logs: str | Path | None = None, runs: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """For each run id ever submitted, its latest pack's manifest (``name``, ``job_id``,
    ``stdout``, ...) with ``outcome`` (what the pack's state says of the run) and ``alive``."""
    folder = resolve_logs_dir(logs, runs) / "packs"
    manifests = sorted((m for f in folder.glob("*.json") if not f.name.endswith(".state.json")
                        if (m := read_json(f)).get("name")), key=lambda m: m.get("submitted", ""))
    latest = {rid: m for m in manifests for rid in m.get("runs", [])}
    packs = {m["name"]: m for m in latest.values()}
    states = {name: read_json(folder / f"{name}.state.json") for name in packs}
    queue = _squeue({m["job_id"] for m in packs.values() if m.get("engine") == "slurm"})
    alive = {name: _alive(m, states[name], queue) for name, m in packs.items()}
    return {rid: {**m, "outcome": states[m["name"]].get("runs", {}).get(rid, {}), "alive": alive[m["name"]]}
            for rid, m in latest.items()}


def _checkpoint(config: dict[str, Any], root: Path, checkpoints: Any) -> tuple[float | None, str]:
    """(age in seconds, "checkpoint at iteration i/n") of the run's checkpoint, (None, "") if none."""
    import torch

    ckpt = checkpoint_path(config, root, checkpoints)
    try:
        age = time.time() - ckpt.stat().st_mtime
    except OSError:
        return None, ""
    try:
        it = int(torch.load(ckpt, map_location="cpu", weights_only=True).get("iteration", 0))
    except Exception:  # noqa: BLE001 - unreadable: the run would start afresh
        return age, "an unreadable checkpoint"
    return age, f"checkpoint at iteration {it}/{config['recipe']['iterations']}"


def run_states(configs: Sequence[dict[str, Any]], *, runs: str | Path | None = None,
               packs: dict[str, dict[str, Any]] | None = None, logs: str | Path | None = None,
               checkpoints: str | Path | None = None, recent_s: float = RECENT_S) -> list[RunState]:
    """The :class:`RunState` of each config (see the module docstring)."""
    root = resolve_runs_dir(runs)
    packs = latest_packs(logs, root) if packs is None else packs
    out = []
    for config in configs:
        rid = run_id(config)
        m = packs.get(rid, {})
        row = RunState(rid, describe(config), int(config["seed"]), "missing", log=m.get("stderr") or m.get("stdout"))
        out.append(row)
        try:
            rec = load_record(root / rid)
            err = rec.summary.get("final_test_error")
            row.state, row.detail = "recorded", rec.status + ("" if err is None else f", test error {err:.2f}%")
            continue
        except DamagedRecord as exc:
            row.state, row.detail = "failed", f"damaged record: {exc}"
            continue
        except RecordError:
            pass
        age, at = _checkpoint(config, root, checkpoints)
        outcome, live = m.get("outcome", {}), m.get("alive")
        if live:
            doing = "training" if outcome.get("outcome") == "running" else "waiting its turn"
            row.state, row.detail = "running", f"{doing} in pack {m['name']}, {live}" + (f"; {at}" if at else "")
        elif outcome.get("outcome") == "error":
            row.state, row.detail = "failed", outcome.get("error") or "raised"
        elif live is None and age is not None and age < recent_s:
            row.state, row.detail = "running", f"{at}, written {age / 60:.0f} min ago"
        elif live is False and outcome.get("outcome") in (None, "running"):
            row.state = "failed"
            row.detail = (f"job {m['job_id']} ended before this run did (killed, out of time or memory?); "
                          f"submit again to resume" + (f" from its {at}" if at else ""))
        elif at:
            row.detail = f"interrupted, {at}: submitting again resumes it"
    return out


def status(name: str, profile: str = "quick", *, runs: str | Path | None = None, logs: str | Path | None = None,
           checkpoints: str | Path | None = None, data: str | Path | None = None,
           recent_s: float = RECENT_S) -> list[RunState]:
    """The :class:`RunState` of every run ``name`` needs in ``profile``: of the data source that
    ``data`` holds, unless the runs of another source are further along."""
    exp = get_experiment(name)
    if profile not in TRAIN_PROFILES:
        raise ValueError(f"status needs a training profile; valid choices: {', '.join(TRAIN_PROFILES)}")
    if exp.static:
        return []
    try:
        first = training_source(exp, data)
    except ValueError:
        first = "torchvision"
    packs = latest_packs(logs, runs)
    known = lambda rows: sum(r.state != "missing" or bool(r.detail) for r in rows)  # noqa: E731
    best: list[RunState] = []
    for source in dict.fromkeys((first, *SOURCES)):
        rows = run_states([c for _, c in exp.configs(profile, source)], runs=runs, packs=packs,
                          checkpoints=checkpoints, recent_s=recent_s)
        if not best or known(rows) > known(best):
            best = rows
    return best


__all__ = ["RECENT_S", "STATES", "RunState", "latest_packs", "run_states", "status"]
