"""What the command line needs besides figures: one model's runs, the record list, migration.

The command line and the notebooks call :mod:`resnetlab.experiments` only; these are the
few operations they need that belong to no figure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..models import list_models
from ..runs import Record, detect_source, get_or_train, make_config, recorded_table, resolve_runs_dir, scan_records
from ..runs.migrate import MigrationError, Moved, migrate_runs
from ..runs.tensorboard import export_tensorboard


def check_device(device: str | None) -> None:
    """Raise ``ValueError`` for a device name torch does not know, or for a GPU this machine
    does not have, before anything is loaded or trained."""
    import torch

    if device is None:
        return
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {device!r}: use cpu, cuda, cuda:N or mps") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}, but torch {torch.__version__} sees no CUDA GPU here; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"--device {device}, but there are only {torch.cuda.device_count()} GPU(s)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {device}, but MPS is not available here; use --device cpu")


def train_model(model: str, *, profile: str = "quick", seed: int = 0, seeds: int = 1, dataset: str = "cifar10",
                options: dict[str, Any] | None = None, overrides: dict[str, Any] | None = None,
                data: str | Path | None = None, runs: str | Path | None = None, device: str | None = None,
                save_weights: bool = False, progress: bool = True,
                checkpoints: str | Path | None = None) -> list[Record]:
    """Train (or read, if recorded) ``model`` for ``seeds`` seeds from ``seed`` on, on the
    kind of copy of ``dataset`` that ``data`` holds (the official one if none yet)."""
    source = detect_source(dataset, data) or "torchvision"
    configs = [make_config(model, profile=profile, seed=s, dataset=dataset, source=source,
                           model_options=options or {}, **(overrides or {})) for s in range(seed, seed + seeds)]
    return [get_or_train(c, runs=runs, data=data, device=device, save_weights=save_weights, progress=progress,
                         checkpoints=checkpoints) for c in configs]


__all__ = ["check_device", "export_tensorboard", "MigrationError", "Moved", "list_models", "migrate_runs", "recorded_table", "resolve_runs_dir",
           "scan_records", "train_model"]
