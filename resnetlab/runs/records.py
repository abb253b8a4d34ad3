"""Recorded runs, on disk: every training run, saved so a figure can be redrawn without retraining.

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

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..models import build_model
from .config import describe, run_id

RUNS_ENV = "RESNETLAB_RUNS"
FINISHED = ("complete", "failed")


def resolve_runs_dir(runs: str | os.PathLike | None = None) -> Path:
    """``runs`` if given, else ``$RESNETLAB_RUNS``, else ``data/runs``; ``NotADirectoryError``
    if that is a file."""
    path = Path(runs if runs is not None else os.environ.get(RUNS_ENV, "data/runs")).expanduser()
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"the runs folder {path} is a file; point --runs (or ${RUNS_ENV}) at a folder")
    return path


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
    """A folder under the runs directory that is not a readable, finished record."""


class DamagedRecord(RecordError):
    """A record whose files disagree with one another (or with their folder): it is
    reported with its path and never drawn."""


#: columns every history.csv has (resnetlab.train writes them)
HISTORY_COLUMNS = ("iteration", "test_error")


def _read_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise DamagedRecord(f"{file} is not UTF-8 text ({exc.reason}): the record is damaged") from exc
    except json.JSONDecodeError as exc:
        raise DamagedRecord(f"{file} is not valid JSON (line {exc.lineno}): the record is damaged") from exc


def _number(summary: dict[str, Any], key: str, where: Path) -> float | None:
    v = summary.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise DamagedRecord(f"{where}: {key} is {v!r}, not a number: the record is damaged")
    return float(v)


def check_record(path: Path, config: Any, summary: Any, history: pd.DataFrame) -> None:
    """Raise :class:`DamagedRecord` unless the record's files agree: the config's hash is the
    folder's id, the status is known, the numbers are numbers, and the history ends where the
    summary says the run ended, with the summary's final test error."""
    from .config import CONFIG_SCHEMA

    if not isinstance(config, dict) or not isinstance(summary, dict):
        raise DamagedRecord(f"{path}: config.json and summary.json must hold JSON objects")
    if int(config.get("schema", 1)) != CONFIG_SCHEMA:
        raise DamagedRecord(f"{path} has a config of schema {config.get('schema', 1)}; bring it up to date with "
                            f"`python -m resnetlab migrate --runs {path.parent}`")
    try:
        want = run_id(config)
    except (KeyError, TypeError) as exc:
        raise DamagedRecord(f"{path}: config.json lacks {exc}: the record is damaged") from exc
    if want != path.name:
        raise DamagedRecord(f"{path}: its config belongs to run {want}, not to this folder (moved, copied or edited)")
    if summary.get("status") not in FINISHED:
        raise DamagedRecord(f"{path}: unknown status {summary.get('status')!r}")
    final, its = _number(summary, "final_test_error", path), _number(summary, "iterations", path)
    missing = [c for c in HISTORY_COLUMNS if c not in history.columns]
    if missing:
        raise DamagedRecord(f"{path}: history.csv lacks the column(s) {', '.join(missing)}")
    if summary["status"] != "complete":
        return
    total = config.get("recipe", {}).get("iterations")
    last = history.iloc[-1] if len(history) else None
    if last is None or its != total or float(last["iteration"]) != its:
        raise DamagedRecord(f"{path}: a complete run of {total} iterations, but the summary says {its} and "
                            f"history.csv ends at {None if last is None else int(last['iteration'])} (truncated?)")
    if final is None or not math.isclose(float(last["test_error"]), final, abs_tol=0.005):
        raise DamagedRecord(f"{path}: summary.json gives final test error {final}, history.csv ends at "
                            f"{float(last['test_error']):.2f} (edited?)")


def load_record(path: str | Path) -> Record:
    """Read a finished record and check it (:func:`check_record`). Raises
    :class:`RecordError` if it is unfinished, :class:`DamagedRecord` if its files are
    unreadable or disagree."""
    path = Path(path)
    summary_file = path / "summary.json"
    if not summary_file.exists():
        raise RecordError(f"{path} is not a finished run (no summary.json): it was interrupted or is still running")
    if not (path / "config.json").is_file():
        raise DamagedRecord(f"{path} has a summary.json but no config.json: the record is damaged")
    config, summary = _read_json(path / "config.json"), _read_json(summary_file)
    try:
        history = pd.read_csv(path / "history.csv")
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DamagedRecord(f"{path}: history.csv is missing or unreadable ({exc})") from exc
    check_record(path, config, summary, history)
    return Record(path, config, summary, history)


@dataclass
class Scan:
    """Every folder of a runs directory, sorted into what it holds."""

    records: list[Record]
    damaged: list[tuple[Path, str]]  # (folder, what is wrong)
    unfinished: list[Path]  # no summary.json yet: interrupted or still running


def scan_records(runs: str | Path | None = None) -> Scan:
    """Read every folder under ``runs``: the good records, the damaged ones (with the reason)
    and the unfinished ones. Raises ``NotADirectoryError`` if ``runs`` is a file."""
    root = resolve_runs_dir(runs)
    scan = Scan([], [], [])
    if not root.exists():
        return scan
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            scan.records.append(load_record(d))
        except DamagedRecord as exc:
            scan.damaged.append((d, str(exc)))
        except RecordError:
            scan.unfinished.append(d)
    return scan


def find_records(runs: str | Path | None = None, **match: Any) -> list[Record]:
    """The good records under ``runs`` whose config has the values ``match`` (e.g.
    ``model="resnet20", profile="quick"``); damaged ones are left out (see :func:`scan_records`)."""
    return [r for r in scan_records(runs).records if all(r.config.get(k) == v for k, v in match.items())]


def recorded_table(runs: str | Path | None = None, scan: Scan | None = None) -> pd.DataFrame:
    """One row per good record: id, model, options, profile, seed, status, final errors."""
    rows = []
    for r in (scan or scan_records(runs)).records:
        rows.append({"run_id": r.id, "model": r.config["model"], "label": r.label, "profile": r.config["profile"],
                     "seed": r.config["seed"], "dataset": r.config["dataset"], "status": r.status,
                     "final_test_error": r.final_test_error, "data_source": r.summary.get("data_source"),
                     "device": r.summary.get("device")})
    return pd.DataFrame(rows)
