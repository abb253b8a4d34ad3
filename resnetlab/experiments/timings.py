"""How long a notebook takes, per profile, measured (never guessed): :func:`notebook_timings`.

* ``recorded`` and ``smoke``: the notebook executed top to bottom by
  ``benchmarks/notebook_times.py``, which writes :data:`MEASURED` (seconds per notebook and
  profile, the machine, torch, the date);
* ``quick`` and ``paper``: the wall time of every run the notebook's figures need, read from
  the runs' own records (``summary.json``: wall time, device and threads), summed; a run not
  recorded yet has no time, and the table says how many are missing.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from ..paths import project_root
from .engine import collect

#: the measurement ``benchmarks/notebook_times.py`` writes, relative to the course root
MEASURED = Path("benchmarks") / "notebook-times.json"
_FIGURE_CALL = re.compile(r"""ctx\.figure\(\s*["']([\w-]+)["']""")


def notebook_experiments(notebook: str | Path) -> list[str]:
    """The experiments a notebook draws (its ``ctx.figure("...")`` calls), in order;
    ``notebook`` is a path or the stem of one of the course's notebooks."""
    path = Path(notebook)
    if path.suffix != ".ipynb":
        path = project_root() / "notebooks" / f"{notebook}.ipynb"
    try:
        cells = json.loads(path.read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return []
    names: list[str] = []
    for cell in cells:
        if cell.get("cell_type") == "code":
            source = "".join(cell.get("source", []))
            names += [n for n in _FIGURE_CALL.findall(source) if n not in names]
    return names


def duration(seconds: float) -> str:
    """A wall time for people: "45 s", "12 min", "2 h 49 min"."""
    if not math.isfinite(seconds):
        return "n/a"
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def read_measured(path: str | Path | None = None) -> dict[str, Any]:
    """The notebook execution times (``{}`` if they were never measured here)."""
    file = Path(path) if path else project_root() / MEASURED
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError):
        return {}


def _runs_of(experiments: Sequence[str], profile: str, runs: Sequence[str | Path]) -> tuple[list[Any], int]:
    """The records the experiments need in ``profile`` (each run once) and how many are missing."""
    found: dict[str, Any] = {}
    missing: set[str] = set()
    for name in experiments:
        for root in runs:
            c = collect(name, profile, root)
            for rec in c.all_records:
                found.setdefault(rec.id, rec)
            missing |= {json.dumps([m["model"], m.get("model_options"), m["seed"], m["recipe"]], sort_keys=True,
                                   default=list) for m in c.missing}
    have = {json.dumps([r.config["model"], r.config.get("model_options"), r.config["seed"], r.config["recipe"]],
                       sort_keys=True, default=list) for r in found.values()}
    return list(found.values()), len(missing - have)


def notebook_timings(notebook: str, *, runs: Sequence[str | Path] = (), measured: str | Path | None = None,
                     experiments: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per profile: how long ``notebook`` (its file stem) takes, on what, measured how
    (see the module docstring). ``experiments``: its figures (default: its ``ctx.figure`` calls)."""
    blob = read_measured(measured)
    entry = blob.get("notebooks", {}).get(notebook, {})
    names = list(experiments if experiments is not None else notebook_experiments(notebook))
    machine, when = blob.get("machine", "not measured"), blob.get("date", "")
    rows = []
    for profile in ("recorded", "smoke"):
        seconds = entry.get(f"{profile}_s")
        rows.append({"profile": profile, "runs": "-",
                     "time": duration(seconds) if seconds is not None else "not measured yet",
                     "measured on": machine if seconds is not None else "-",
                     "how": f"the notebook executed top to bottom on {entry.get(f'{profile}_data', 'data/')} "
                            f"({(entry.get(f'{profile}_date') or when)[:10]}, benchmarks/notebook_times.py)"
                            if seconds is not None else "run benchmarks/notebook_times.py"})
    roots = list(runs) or [project_root() / "data" / "runs"]
    for profile in ("quick", "paper"):
        records, missing = _runs_of(names, profile, roots)
        needed = len(records) + missing
        if not needed:
            rows.append({"profile": profile, "runs": "0", "time": "no training", "measured on": "-",
                         "how": "nothing to train"})
            continue
        if missing:
            rows.append({"profile": profile, "runs": f"{missing} of {needed} not recorded yet",
                         "time": "not measured yet", "measured on": "-", "how": "-"})
        by_device: dict[str, list[Any]] = {}
        for rec in records:
            by_device.setdefault(str(rec.summary.get("device", "unknown device")), []).append(rec)
        for device, recs in sorted(by_device.items()):
            total = sum(float(r.summary.get("wall_time_s") or 0.0) for r in recs)
            rows.append({"profile": profile, "runs": f"{len(recs)} of {needed} recorded", "time": duration(total),
                         "measured on": device,
                         "how": "the recorded runs' own wall time (summary.json), summed"})
    return pd.DataFrame(rows)


__all__ = ["MEASURED", "duration", "notebook_experiments", "notebook_timings", "read_measured"]
