"""The resumable checkpoint: one dict, written and read by the same keys.

As in nanoGPT's ``train.py``, the checkpoint is a plain dict of state dicts and numbers that
loads with ``torch.load(weights_only=True)``. Its keys are :data:`CHECKPOINT_KEYS`, listed
once: :func:`save_checkpoint` refuses a dict with other keys, and :func:`load_checkpoint`
sets aside a file without them. :mod:`.loop` builds the dict and reads it back.

A write never endangers the checkpoint before it: the new one goes to a temporary file
(``.<name>.tmp-<pid>``), is synced, and only then do the files rotate (``last.pt`` becomes
``last.prev.pt``, the temporary file ``last.pt``). A failed write (a full disk) removes its
temporary file and raises one ``OSError`` that says so; temporary files of writers that were
killed are removed at the next load or save. A checkpoint is tied to its run by
``identity`` (the run id, for :func:`~resnetlab.runs.get_or_train`): one written by another
run, or for another model, is set aside as ``*.foreign``, never resumed as this run.
"""

from __future__ import annotations

import errno
import os
import pickle
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..data.cache import remove_stale_temps

#: 2: ``identity`` added. Version 1 files (no identity) are still read, as of identity ``None``.
CHECKPOINT_VERSION = 2
READABLE_VERSIONS = (1, 2)
#: Every key of a checkpoint, and only these.
CHECKPOINT_KEYS: tuple[str, ...] = (
    # what the run is: ``identity`` is the run's id (``None`` for a bare :func:`~.loop.train`)
    "version", "identity", "model_name", "recipe",
    # the trainer: weights, optimizer (momentum buffers), loss scaler, random state, CPU threads
    "model", "optimizer", "scaler", "rng", "threads",
    # the loop: steps done, the warm-up's state (``warming_up`` is ``warmup_end is None``,
    # kept so that version 1 stays one format), the history so far
    "iteration", "warming_up", "warmup_end", "warmup_ended_by", "warmup_recent", "history", "wall_time",
)
#: What ``torch.load`` raises on an unreadable, truncated or foreign file (and ``ValueError``
#: for a readable file that is not a checkpoint of this version).
UNREADABLE = (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, KeyError, OSError)


def _key_problem(state: dict[str, Any], keys: tuple[str, ...] = CHECKPOINT_KEYS) -> str | None:
    missing = [k for k in keys if k not in state]
    extra = sorted(set(state) - set(keys))
    if not missing and not extra:
        return None
    return "; ".join(part for part in (missing and f"missing {', '.join(missing)}",
                                       extra and f"unexpected {', '.join(extra)}") if part)


def _temp(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _prev(path: Path) -> Path:
    return path.with_name(path.stem + ".prev" + path.suffix)


def _disk_full(exc: BaseException, path: Path) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    # torch.save's zip writer reports a failed write as a RuntimeError ("file write failed"),
    # without the errno: ask the disk
    if not isinstance(exc, RuntimeError) or "write failed" not in str(exc):
        return False
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return False
    need = max((p.stat().st_size for p in (path, _prev(path)) if p.exists()), default=0)
    return free < max(2 * need, 64 << 20)


def _write_error(path: Path, exc: BaseException) -> OSError:
    kept = [p.name for p in (path, _prev(path)) if p.exists()]
    keeps = (f"the previous checkpoint ({' and '.join(kept)}) is kept intact, and a rerun resumes from it"
             if kept else "there was no previous checkpoint; a rerun starts afresh")
    if _disk_full(exc, path):
        return OSError(errno.ENOSPC, f"cannot save checkpoint {path}: the disk is full (no space left on the device "
                                     f"holding {path.parent}); {keeps}. Free some space there, then rerun")
    code = exc.errno if isinstance(exc, OSError) and exc.errno else errno.EIO
    return OSError(code, f"cannot save checkpoint {path} ({type(exc).__name__}: {exc}); {keeps}")


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` (exactly :data:`CHECKPOINT_KEYS`) atomically, keeping the previous
    checkpoint as a fallback (``*.prev.pt``). A failed write leaves the checkpoints as they
    were, no temporary file, and raises an ``OSError`` that says what happened and what is kept."""
    problem = _key_problem(state)
    if problem:
        raise ValueError(f"a checkpoint has the keys CHECKPOINT_KEYS: {problem}")
    path = Path(path)
    tmp = _temp(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path.parent, prefix=f".{path.name}.tmp-")
        torch.save(state, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
    except BaseException as exc:  # Ctrl-C too: no temporary file outlives a failed write
        tmp.unlink(missing_ok=True)
        if isinstance(exc, (OSError, RuntimeError)):
            raise _write_error(path, exc) from exc
        raise
    # the new checkpoint is complete on disk: only now rotate (a crash in between leaves
    # ``.prev``, which :func:`load_checkpoint` falls back to)
    if path.exists():
        os.replace(path, _prev(path))
    os.replace(tmp, path)
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read(candidate: Path) -> dict[str, Any]:
    state = torch.load(candidate, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("version") not in READABLE_VERSIONS:
        raise ValueError("not a resnetlab checkpoint of this version")
    if state["version"] == 1:  # before identities: the same keys but ``identity``
        problem = _key_problem(state, tuple(k for k in CHECKPOINT_KEYS if k != "identity"))
        state = {**state, "identity": None}
    else:
        problem = _key_problem(state)
    if problem:
        raise ValueError(f"not a resnetlab checkpoint of this version ({problem})")
    return state


def set_aside(candidate: Path, suffix: str, why: str, hint: str = "") -> Path:
    """Rename ``candidate`` to ``<name>.<suffix>`` (kept for inspection, never reused), warning why."""
    bad = candidate.with_name(f"{candidate.name}.{suffix}")
    os.replace(candidate, bad)
    warnings.warn(f"checkpoint {candidate} {why}; kept as {bad.name}, trying an older one or starting afresh{hint}",
                  RuntimeWarning, stacklevel=3)
    return bad


def load_checkpoint(path: Path, check: Callable[[dict[str, Any]], str | None] | None = None) -> dict[str, Any] | None:
    """The newest readable checkpoint at ``path`` (or its ``.prev``); ``None`` if there is none.

    A corrupt file is renamed ``*.corrupt`` (kept, never silently reused) with a warning.
    ``check(state)`` says why a readable checkpoint is not this run's (another run's, another
    model's) or ``None``; such a file is renamed ``*.foreign``, with a warning.
    """
    path = Path(path)
    remove_stale_temps(path.parent, prefix=f".{path.name}.tmp-")
    for candidate in (path, _prev(path)):
        if not candidate.exists():
            continue
        try:
            state = _read(candidate)
        except UNREADABLE as exc:
            set_aside(candidate, "corrupt", f"is unusable ({type(exc).__name__}: {exc})")
            continue
        problem = check(state) if check is not None else None
        if problem is None:
            return state
        set_aside(candidate, "foreign", f"is not this run's: {problem}",
                  " (to resume the run it belongs to, move it back to that run's checkpoint folder; else delete it)")
    return None


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """The global random state a resumed run needs (CPU, and the CUDA device's)."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
