"""The resumable checkpoint: one dict, written and read by the same keys.

As in nanoGPT's ``train.py``, the checkpoint is a plain dict of state dicts and numbers that
loads with ``torch.load(weights_only=True)``. Its keys are :data:`CHECKPOINT_KEYS`, listed
once: :func:`save_checkpoint` refuses a dict with other keys, and :func:`load_checkpoint`
sets aside a file without them. :mod:`.loop` builds the dict and reads it back.
"""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_VERSION = 1
#: Every key of a checkpoint, and only these.
CHECKPOINT_KEYS: tuple[str, ...] = (
    # what the run is
    "version", "model_name", "recipe",
    # the trainer: weights, optimizer (momentum buffers), loss scaler, random state, CPU threads
    "model", "optimizer", "scaler", "rng", "threads",
    # the loop: steps done, the warm-up's state (``warming_up`` is ``warmup_end is None``,
    # kept so that version 1 stays one format), the history so far
    "iteration", "warming_up", "warmup_end", "warmup_ended_by", "warmup_recent", "history", "wall_time",
)
#: What ``torch.load`` raises on an unreadable, truncated or foreign file (and ``ValueError``
#: for a readable file that is not a checkpoint of this version).
UNREADABLE = (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, KeyError, OSError)


def _key_problem(state: dict[str, Any]) -> str | None:
    missing = [k for k in CHECKPOINT_KEYS if k not in state]
    extra = sorted(set(state) - set(CHECKPOINT_KEYS))
    if not missing and not extra:
        return None
    return "; ".join(part for part in (missing and f"missing {', '.join(missing)}",
                                       extra and f"unexpected {', '.join(extra)}") if part)


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(obj, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _prev(path: Path) -> Path:
    return path.with_name(path.stem + ".prev" + path.suffix)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` (exactly :data:`CHECKPOINT_KEYS`) atomically, keeping the previous
    checkpoint as a fallback."""
    problem = _key_problem(state)
    if problem:
        raise ValueError(f"a checkpoint has the keys CHECKPOINT_KEYS: {problem}")
    if path.exists():
        os.replace(path, _prev(path))
    _atomic_save(state, path)


def _read(candidate: Path) -> dict[str, Any]:
    state = torch.load(candidate, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise ValueError("not a resnetlab checkpoint of this version")
    problem = _key_problem(state)
    if problem:
        raise ValueError(f"not a resnetlab checkpoint of this version ({problem})")
    return state


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The newest readable checkpoint at ``path`` (or its ``.prev``); ``None`` if there is none.

    A corrupt file is renamed ``*.corrupt`` (kept, never silently reused) with a warning.
    """
    for candidate in (path, _prev(path)):
        if not candidate.exists():
            continue
        try:
            return _read(candidate)
        except UNREADABLE as exc:
            bad = candidate.with_name(candidate.name + ".corrupt")
            os.replace(candidate, bad)
            warnings.warn(f"checkpoint {candidate} is unusable ({type(exc).__name__}: {exc}); "
                          f"kept as {bad.name}, trying an older one or starting afresh", RuntimeWarning, stacklevel=2)
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
