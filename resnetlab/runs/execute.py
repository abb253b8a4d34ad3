"""Train a config unless it is recorded: the one way a run is made (:func:`get_or_train`)."""

from __future__ import annotations

import os
import pickle
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..train import Recipe, TrainResult, half_state_dict, train
from .config import describe, run_id
from .records import Record, RecordError, _write_json, load_record, resolve_runs_dir, save_record

CHECKPOINTS_ENV = "RESNETLAB_CHECKPOINTS"


def checkpoint_path(config: dict[str, Any], runs: str | Path | None = None,
                    checkpoints: str | os.PathLike | None = None) -> Path:
    """Where the resumable checkpoint of ``config``'s run lives: ``<checkpoints>/<id>/last.pt``
    with ``checkpoints`` (or ``$RESNETLAB_CHECKPOINTS``), else ``<runs>/<id>/checkpoints/last.pt``.
    Point it outside the work tree to keep long runs resumable across checkouts."""
    chosen = checkpoints if checkpoints not in (None, "") else os.environ.get(CHECKPOINTS_ENV) or None
    rid = run_id(config)
    if chosen is not None:
        return Path(chosen).expanduser() / rid / "last.pt"
    return resolve_runs_dir(runs) / rid / "checkpoints" / "last.pt"


def checkpoint_iteration(ckpt: Path) -> int:
    """The iterations a run's checkpoint has done (0 without a readable one)."""
    if not ckpt.exists():
        return 0
    try:
        import torch

        return int(torch.load(ckpt, map_location="cpu", weights_only=True).get("iteration", 0))
    except (OSError, RuntimeError, EOFError, ValueError, AttributeError, pickle.UnpicklingError):  # unreadable: none
        return 0


def get_or_train(config: dict[str, Any], *, runs: str | Path | None = None, data: str | Path | None = None,
                 dataset: Any = None, device: str | None = None, save_weights: bool = False,
                 progress: bool = True, stop_after: int | None = None,
                 checkpoints: str | os.PathLike | None = None) -> Record:
    """The record of ``config``: read it if it exists, else train (resuming from a checkpoint
    if one exists, see :func:`checkpoint_path`) and record it. ``dataset`` may be a loaded
    :class:`~resnetlab.data.CifarArrays`; otherwise it is loaded from ``data`` (see
    :func:`resnetlab.data.load_cifar`). The data must be of the config's ``source``: a run
    recorded as trained on the official CIFAR never comes from the JPEG copy, nor vice versa.

    Returns the record; for a run stopped by ``stop_after`` the record is not written and
    the returned Record's status is "interrupted" (its path holds only the checkpoint).
    """
    from ..data import load_cifar

    root = resolve_runs_dir(runs)
    path = root / run_id(config)
    try:
        return load_record(path)
    except RecordError:
        pass
    arrays = dataset if dataset is not None else load_cifar(config["dataset"], data, progress=progress)
    check_source(config, arrays, path)
    recipe = config_recipe(config)
    path.mkdir(parents=True, exist_ok=True)
    _write_json(path / "config.json", config)
    ckpt = checkpoint_path(config, root, checkpoints)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    result = train(config["model"], arrays, recipe, model_options=config.get("model_options"), seed=config["seed"],
                   device=device, checkpoint=ckpt, progress=progress,
                   description=f"{describe(config)} s{config['seed']}", stop_after=stop_after, identity=path.name)
    return finish_run(path, config, result, started, save_weights, ckpt)


def config_recipe(config: dict[str, Any]) -> Recipe:
    """The :class:`~resnetlab.train.Recipe` a config's run trains with."""
    return Recipe.from_dict({**config["recipe"], "milestones": tuple(config["recipe"]["milestones"])})


def check_source(config: dict[str, Any], arrays: Any, path: Path) -> None:
    """Refuse data of another kind of copy than the config's ``source``."""
    want = config.get("source", "torchvision")
    if arrays.kind != want:
        raise ValueError(f"run {path.name} is to be trained on {config['dataset']} from a {want!r} copy, but the "
                         f"data found is {arrays.source} ({arrays.kind!r}); point --data at a {want} copy, or ask "
                         f"for source={arrays.kind!r}")


def finish_run(path: Path, config: dict[str, Any], result: TrainResult, started: str, save_weights: bool,
               ckpt: Path) -> Record:
    """Record a finished run (its checkpoint is then removed); an interrupted one is returned
    unrecorded, as a Record with status "interrupted", its checkpoint kept."""
    summary = {**result.summary, "run_id": path.name, "profile": config["profile"], "started": started,
               "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if summary["status"] == "interrupted":
        return Record(path, config, summary, result.history)
    weights = half_state_dict(result.model) if save_weights else None
    record = save_record(path, config, result.history, summary, weights)
    for f in ckpt.parent.glob("*"):
        f.unlink()
    if ckpt.parent.exists():
        ckpt.parent.rmdir()
    return record
