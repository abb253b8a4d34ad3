"""Duck-typed reading of recorded runs, for the footers and curves of every training figure.

A record is anything with the attributes of ``resnetlab.runs.Record``: ``label``,
``config``, ``summary``, ``failed`` and ``history``. ``plots`` never imports ``runs``: it
is handed records (or test doubles) and reads them through these helpers only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

__all__: list[str] = []  # private helpers of the plots package


def _flatten(records: Any) -> list[Any]:
    """Records from a record, a list of them, or (nested) dicts of lists."""
    if records is None:
        return []
    if isinstance(records, Mapping):
        return [r for v in records.values() for r in _flatten(v)]
    if isinstance(records, (list, tuple, set)) or (
        isinstance(records, Iterable) and not isinstance(records, (str, bytes, pd.DataFrame))
    ):
        return [r for v in records for r in _flatten(v)]
    return [records]


def _summary(record: Any) -> dict[str, Any]:
    return dict(getattr(record, "summary", None) or {})


def _config(record: Any) -> dict[str, Any]:
    return dict(getattr(record, "config", None) or {})


def _status(record: Any) -> str:
    """The summary status ("complete", "failed", "running", "interrupted", ...); "failed" if ``record.failed``."""
    if getattr(record, "failed", False):
        return "failed"
    return str(_summary(record).get("status") or "complete")


def _failure_reason(record: Any, width: int = 38) -> str:
    reason = str(_summary(record).get("failure_reason") or "unknown reason").strip().splitlines()[0]
    return reason if len(reason) <= width else reason[: width - 1] + "…"


def _label(record: Any) -> str:
    label = getattr(record, "label", None)
    if label:
        return str(label)
    return str(_config(record).get("model", "run"))


def _history(record: Any) -> pd.DataFrame:
    h = getattr(record, "history", None)
    if h is None:
        return pd.DataFrame(columns=["iteration"])
    return h if isinstance(h, pd.DataFrame) else pd.DataFrame(h)


def _is_empty(runs_by_name: Mapping[str, Sequence[Any]] | None) -> bool:
    """True when no net of a panel has a single run."""
    return not runs_by_name or all(len(_flatten(v)) == 0 for v in runs_by_name.values())


def _has_repeats(runs_by_name: Any) -> bool:
    """True when some net (of a panel, or of nested panels) has more than one usable run."""
    if isinstance(runs_by_name, Mapping):
        return any(_has_repeats(v) if isinstance(v, Mapping) else
                   sum(_status(r) != "failed" for r in _flatten(v)) > 1 for v in runs_by_name.values())
    return False


def _has_failures(records: Any) -> bool:
    return any(_status(r) == "failed" for r in _flatten(records))
