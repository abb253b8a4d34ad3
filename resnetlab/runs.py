"""Recorded runs: every training run, saved so a figure can be redrawn without retraining.

A run is identified by its full config (model and options, dataset, recipe, seed), which
gives a stable id. Its record is a folder ``<runs>/<id>/`` holding

* ``config.json``: the config;
* ``history.csv``: iteration, epoch, lr, training loss/error, test loss/error, wall time;
* ``summary.json``: final errors, status ("complete" or "failed"), device, torch version,
  wall time, images/s, data source; written last, so a killed run never leaves a record
  that looks complete;
* optionally ``weights.pt``: the final weights in half precision, loadable with
  ``torch.load(..., weights_only=True)``.

Unfinished runs keep ``checkpoints/`` in the same folder (git-ignored) and resume from it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
import torch

from .models import build_model, canonical_name, display_name
from .train import PROFILES, Recipe, get_recipe, half_state_dict, train

RUNS_ENV = "RESNETLAB_RUNS"
CHECKPOINTS_ENV = "RESNETLAB_CHECKPOINTS"
FINISHED = ("complete", "failed")


def resolve_runs_dir(runs: str | os.PathLike | None = None) -> Path:
    """``runs`` if given, else ``$RESNETLAB_RUNS``, else ``data/runs``."""
    return Path(runs if runs is not None else os.environ.get(RUNS_ENV, "data/runs"))


#: The version of the config layout. 2 added the data source and the recipe's weight-decay
#: policy, running-error warm-up with a cap and divergence patience; ``resnetlab.migrate``
#: brings older records up to it.
CONFIG_SCHEMA = 2
#: How the data source shows in a run id (the official data adds nothing).
SOURCE_TAGS = {"torchvision": "", "jpeg-copy": "-jpeg", "image-folder": "-folder"}


def make_config(model: str, *, profile: str = "quick", seed: int = 0, dataset: str = "cifar10",
                source: str = "torchvision", model_options: dict[str, Any] | None = None,
                **recipe_overrides: Any) -> dict[str, Any]:
    """The config of one run: model (in its canonical spelling), options, dataset and the kind
    of copy it is read from (``source``, a key of :data:`resnetlab.data.SOURCES`), the
    profile's recipe (with ``recipe_overrides``), seed. Raises ``ValueError`` for an unknown
    model/option/profile/source."""
    from .data import SOURCES

    model = canonical_name(model)
    options = dict(model_options or {})
    _validate_model(model, json.dumps(options, sort_keys=True, default=list))
    if dataset not in ("cifar10", "cifar100"):
        raise ValueError(f"unknown dataset {dataset!r}; valid choices: cifar10, cifar100")
    if source not in SOURCES:
        raise ValueError(f"unknown data source {source!r}; valid choices: {', '.join(SOURCES)}")
    recipe = get_recipe(profile, **recipe_overrides)
    return {"schema": CONFIG_SCHEMA, "model": model, "model_options": options, "dataset": dataset,
            "source": source, "profile": profile, "seed": int(seed), "recipe": recipe.to_dict()}


@functools.lru_cache(maxsize=512)
def _validate_model(model: str, options_json: str) -> None:
    """Build once on the meta device (no weights allocated) so a bad name or option fails
    before any training; cached, since experiments ask for the same nets again and again."""
    options = json.loads(options_json)
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    with torch.device("meta"):
        build_model(model, **options)


def _canonical(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True, separators=(",", ":"), default=list)


def run_id(config: dict[str, Any]) -> str:
    """A stable id: readable prefix plus a hash of the whole config.

    >>> run_id(make_config("resnet20", profile="smoke"))  # doctest: +ELLIPSIS
    'cifar10-resnet20-smoke-s0-...'
    """
    digest = hashlib.sha256(_canonical(config).encode()).hexdigest()[:10]
    tag = SOURCE_TAGS.get(config.get("source", "torchvision"), "-" + str(config.get("source")))
    return f"{config['dataset']}{tag}-{config['model']}-{config['profile']}-s{config['seed']}-{digest}"


def describe(config: dict[str, Any]) -> str:
    """A label for legends: the paper's name plus the options that differ from the default."""
    label = display_name(config["model"])
    opts = ", ".join(f"{k}={v}" for k, v in sorted(config.get("model_options", {}).items()) if k != "num_classes")
    return f"{label} ({opts})" if opts else label


@dataclass
class Record:
    """One recorded run (see the module docstring)."""

    path: Path
    config: dict[str, Any]
    summary: dict[str, Any]
    _history: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def history(self) -> pd.DataFrame:
        if self._history is None:
            self._history = pd.read_csv(self.path / "history.csv")
        return self._history

    @property
    def label(self) -> str:
        return describe(self.config)

    @property
    def status(self) -> str:
        return self.summary.get("status", "unknown")

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def final_test_error(self) -> float:
        v = self.summary.get("final_test_error")
        return math.nan if v is None else float(v)

    @property
    def weights_path(self) -> Path | None:
        p = self.path / "weights.pt"
        return p if p.exists() else None

    def load_model(self, device: str | torch.device = "cpu") -> torch.nn.Module:
        """The trained network (needs ``weights.pt``)."""
        if self.weights_path is None:
            raise FileNotFoundError(f"run {self.id} was recorded without weights; re-run with save_weights=True")
        options = dict(self.config.get("model_options", {}))
        options.setdefault("num_classes", 100 if self.config.get("dataset") == "cifar100" else 10)
        model = build_model(self.config["model"], **options)
        state = torch.load(self.weights_path, map_location="cpu", weights_only=True)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
        return model.to(device).eval()


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")
    os.replace(tmp, path)


def _json_default(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (tuple, set)):
        return list(v)
    if isinstance(v, Path):
        return str(v)
    return str(v)


def _clean(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def save_record(path: Path, config: dict[str, Any], history: pd.DataFrame, summary: dict[str, Any],
                weights: dict[str, torch.Tensor] | None = None) -> Record:
    """Write a record; ``summary.json`` goes last and marks it finished."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "summary.json").unlink(missing_ok=True)
    _write_json(path / "config.json", config)
    tmp = path / f".history.csv.tmp-{os.getpid()}"
    history.to_csv(tmp, index=False, float_format="%.6g")
    os.replace(tmp, path / "history.csv")
    if weights is not None:
        tmp = path / f".weights.pt.tmp-{os.getpid()}"
        torch.save(weights, tmp)
        os.replace(tmp, path / "weights.pt")
    _write_json(path / "summary.json", _clean(summary))
    return Record(path, config, _clean(summary), history)


class RecordError(ValueError):
    """A folder under the runs directory that is not a readable record."""


def load_record(path: str | Path) -> Record:
    """Read a finished record; raises :class:`RecordError` if it is unfinished or unreadable."""
    path = Path(path)
    summary_file = path / "summary.json"
    if not summary_file.exists():
        raise RecordError(f"{path} is not a finished run (no summary.json): it was interrupted or is still running")
    try:
        config = json.loads((path / "config.json").read_text())
        summary = json.loads(summary_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RecordError(f"{path} is not a readable record: {exc}") from exc
    if summary.get("status") not in FINISHED:
        raise RecordError(f"{path} has status {summary.get('status')!r}")
    return Record(path, config, summary)


def find_records(runs: str | Path | None = None, *, configs: Iterable[dict[str, Any]] | None = None,
                 **match: Any) -> list[Record]:
    """Finished records under ``runs``. With ``configs``: the records of exactly those
    configs (missing ones skipped). With ``match``: records whose config has those values
    (e.g. ``model="resnet20", profile="quick"``)."""
    root = resolve_runs_dir(runs)
    if configs is not None:
        out = []
        for c in configs:
            try:
                out.append(load_record(root / run_id(c)))
            except RecordError:
                pass
        return out
    records = []
    if root.exists():
        for d in sorted(root.iterdir()):
            if d.is_dir() and (d / "summary.json").exists():
                try:
                    rec = load_record(d)
                except RecordError:
                    continue
                if all(rec.config.get(k) == v for k, v in match.items()):
                    records.append(rec)
    return records


def is_recorded(config: dict[str, Any], runs: str | Path | None = None) -> bool:
    try:
        load_record(resolve_runs_dir(runs) / run_id(config))
        return True
    except RecordError:
        return False


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
    from .data import load_cifar

    root = resolve_runs_dir(runs)
    path = root / run_id(config)
    try:
        return load_record(path)
    except RecordError:
        pass
    arrays = dataset if dataset is not None else load_cifar(config["dataset"], data, progress=progress)
    want = config.get("source", "torchvision")
    if arrays.kind != want:
        raise ValueError(f"run {path.name} is to be trained on {config['dataset']} from a {want!r} copy, but the "
                         f"data found is {arrays.source} ({arrays.kind!r}); point --data at a {want} copy, or ask "
                         f"for source={arrays.kind!r}")
    recipe = Recipe.from_dict({**config["recipe"], "milestones": tuple(config["recipe"]["milestones"])})
    path.mkdir(parents=True, exist_ok=True)
    _write_json(path / "config.json", config)
    ckpt = checkpoint_path(config, root, checkpoints)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    result = train(config["model"], arrays, recipe, model_options=config.get("model_options"), seed=config["seed"],
                   device=device, checkpoint=ckpt, progress=progress,
                   description=f"{describe(config)} s{config['seed']}", stop_after=stop_after)
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


def recorded_table(runs: str | Path | None = None) -> pd.DataFrame:
    """One row per finished record: id, model, options, profile, seed, status, final errors."""
    rows = []
    for r in find_records(runs):
        rows.append({"run_id": r.id, "model": r.config["model"], "label": r.label, "profile": r.config["profile"],
                     "seed": r.config["seed"], "dataset": r.config["dataset"], "status": r.status,
                     "final_test_error": r.final_test_error, "data_source": r.summary.get("data_source"),
                     "device": r.summary.get("device")})
    return pd.DataFrame(rows)


__all__ = ["Record", "RecordError", "make_config", "run_id", "describe", "get_or_train", "find_records",
           "load_record", "save_record", "is_recorded", "recorded_table", "resolve_runs_dir", "PROFILES",
           "checkpoint_path", "CONFIG_SCHEMA"]
