"""Which runs train fused, and training a group of them (:func:`get_or_train_group`).

Runs fuse (:mod:`resnetlab.train.fused_loop`) when they share everything but their seed and
initial values: the same model and options (IM Table 1's gating arms differ only in the
initial gate bias b_g, ``gate_bias``), dataset, data source, profile and recipe
(:func:`fusion_key`). Each member is recorded exactly as its lone run would be: same config,
id and files; its summary adds ``"fused": K``.

Whether to fuse (``fuse``): "on", "off", or "auto", which fuses on CUDA only. On a GPU a
small CIFAR net at batch 128 is bound by kernel launches, which fusion shares; on a CPU the
arithmetic is the limit: on one thread of the 2-core development CPU, 3 runs fused trained
0.87-0.89x (ResNet-20) and 1.05x (ResNet-56) as fast as the same 3 runs one after another
(``bench --fused 3``, benchmarks/RESULTS.md), so there fusion buys nothing.
"""

from __future__ import annotations

import json
import os
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import torch

from ..models.fused import FusionError
from ..train.fused_loop import Member, ResumeMismatch, train_fused
from .config import describe, run_id
from .execute import check_source, checkpoint_iteration, checkpoint_path, config_recipe, finish_run, get_or_train
from .records import Record, RecordError, _write_json, load_record, resolve_runs_dir

FUSE_CHOICES = ("auto", "on", "off")
#: model options that only set initial values: runs that differ in them still fuse
INITIAL_OPTIONS = ("gate_bias",)
#: the most runs fused into one net by default (memory grows with K; a GPU's gain levels off)
MAX_MEMBERS = 8


def fusion_wanted(fuse: str | bool, device: str | None) -> bool:
    """Whether to fuse under policy ``fuse`` ("auto": on CUDA only; see the module docstring)."""
    if isinstance(fuse, bool):
        return fuse
    if fuse not in FUSE_CHOICES:
        raise ValueError(f"unknown fuse policy {fuse!r}; valid choices: {', '.join(FUSE_CHOICES)}")
    if fuse != "auto":
        return fuse == "on"
    if device is not None:
        return str(device).startswith("cuda")
    import torch

    return torch.cuda.is_available()


def fusion_key(config: dict[str, Any]) -> str:
    """Configs with equal keys can train as one fused net."""
    options = {k: v for k, v in config.get("model_options", {}).items() if k not in INITIAL_OPTIONS}
    return json.dumps([config["model"], options, config["dataset"], config.get("source"), config["profile"],
                       config["recipe"]], sort_keys=True, default=list)


def fusion_groups(configs: Sequence[dict[str, Any]], max_members: int = MAX_MEMBERS) -> list[list[int]]:
    """The indices of ``configs`` in groups that fuse, in the order the configs come (first
    appearance of each group), each at most ``max_members`` long; a run given twice trains once."""
    if max_members < 1:
        raise ValueError(f"max_members must be >= 1, got {max_members}")
    groups: dict[str, list[list[int]]] = {}
    seen: set[str] = set()
    order: list[list[int]] = []
    for i, config in enumerate(configs):
        rid = run_id(config)
        if rid in seen:
            continue
        seen.add(rid)
        chunks = groups.setdefault(fusion_key(config), [])
        if not chunks or len(chunks[-1]) >= max_members:
            chunks.append([])
            order.append(chunks[-1])
        chunks[-1].append(i)
    return order


def _by_resume_point(todo: list[int], configs: Sequence[dict[str, Any]], root: Path,
                     checkpoints: str | os.PathLike | None) -> list[list[int]]:
    """``todo`` split by the iteration each run resumes from: only runs at one point fuse."""
    at: dict[int, list[int]] = {}
    for i in todo:
        at.setdefault(checkpoint_iteration(checkpoint_path(configs[i], root, checkpoints)), []).append(i)
    return list(at.values())


def get_or_train_group(configs: Sequence[dict[str, Any]], *, runs: str | Path | None = None,
                       data: str | Path | None = None, dataset: Any = None, device: str | None = None,
                       save_weights: bool | Sequence[bool] = False, progress: bool = True,
                       stop_after: int | None = None, checkpoints: str | os.PathLike | None = None) -> list[Record]:
    """The records of ``configs`` (one :func:`fusion_key`): read those recorded, train the
    others as one fused net (:func:`get_or_train` for each, if only one is left, or if they
    cannot fuse), in order. Like :func:`get_or_train` it resumes from checkpoints (runs at
    different iterations fuse in separate groups) and returns "interrupted" placeholders
    for runs stopped by ``stop_after``."""
    from ..data import load_cifar

    configs = list(configs)
    weights = [save_weights] * len(configs) if isinstance(save_weights, bool) else list(save_weights)
    if len({fusion_key(c) for c in configs}) > 1:
        raise ValueError("get_or_train_group: these configs differ in more than seed and initial values")
    root = resolve_runs_dir(runs)
    records: dict[int, Record] = {}
    todo = []
    for i, config in enumerate(configs):
        try:
            records[i] = load_record(root / run_id(config))
        except RecordError:
            todo.append(i)
    arrays = dataset
    if todo and arrays is None:
        arrays = load_cifar(configs[todo[0]]["dataset"], data, progress=progress)
    lone = dict(runs=runs, data=data, dataset=arrays, device=device, progress=progress, stop_after=stop_after,
                checkpoints=checkpoints)
    for group in _by_resume_point(todo, configs, root, checkpoints):
        if len(group) > 1:
            try:
                records.update(_train_fused(group, configs, weights, root, arrays, device, progress, stop_after,
                                            checkpoints))
                continue
            except (FusionError, ResumeMismatch) as exc:
                warnings.warn(f"training {len(group)} runs separately: {exc}", RuntimeWarning, stacklevel=2)
            except torch.OutOfMemoryError as exc:  # K nets at once do not fit: alone, each resumes its checkpoint
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                warnings.warn(f"{len(group)} runs fused do not fit in memory ({str(exc).splitlines()[0]}); training "
                              f"them separately (lower --max-fused to fuse fewer)", RuntimeWarning, stacklevel=2)
        for i in group:
            if i not in records:
                records[i] = get_or_train(configs[i], save_weights=weights[i], **lone)
    return [records[i] for i in range(len(configs))]


def _train_fused(group: list[int], configs: list[dict[str, Any]], weights: list[bool], root: Path, arrays: Any,
                 device: str | None, progress: bool, stop_after: int | None,
                 checkpoints: str | os.PathLike | None) -> dict[int, Record]:
    paths = [root / run_id(configs[i]) for i in group]
    ckpts = [checkpoint_path(configs[i], root, checkpoints) for i in group]
    for i, path in zip(group, paths):
        check_source(configs[i], arrays, path)
    lead = configs[group[0]]
    members = [Member(seed=configs[i]["seed"], model_options=configs[i].get("model_options"), checkpoint=ckpt,
                      identity=path.name) for i, path, ckpt in zip(group, paths, ckpts)]
    for i, path in zip(group, paths):
        path.mkdir(parents=True, exist_ok=True)
        _write_json(path / "config.json", configs[i])
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    seeds = ",".join(str(configs[i]["seed"]) for i in group)
    results = train_fused(lead["model"], arrays, config_recipe(lead), members, device=device, progress=progress,
                          description=f"{describe(lead)} s{seeds} (fused)", stop_after=stop_after)
    return {i: finish_run(path, configs[i], result, started, weights[i], ckpt)
            for i, path, ckpt, result in zip(group, paths, ckpts, results)}


__all__ = ["FUSE_CHOICES", "INITIAL_OPTIONS", "MAX_MEMBERS", "fusion_groups", "fusion_key", "fusion_wanted",
           "get_or_train_group"]
