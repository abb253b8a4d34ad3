"""What the figures of several experiments share: result tables, notes, panels, curves.

Every "paper beside ours" cell is made by :func:`arm_result` from
:func:`resnetlab.analysis.results.summarize`, one rule for every table: a diverged run
counts as an infinite error and is never dropped.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping, Sequence

import pandas as pd

from .. import paper
from ..analysis.results import summarize
from ..models import display_name
from ..runs import Record
from .core import Arm, Collected


@lru_cache(maxsize=None)
def params_m(model: str, options: tuple[tuple[str, Any], ...] = (), num_classes: int = 10) -> float:
    """Parameters (millions) of ``model`` as trained on CIFAR, counted from the module
    (built on the CPU: initialising on the meta device is slower than doing it for real)."""
    from ..counting import count_parameters
    from ..models import build_model

    return count_parameters(build_model(model, **{"num_classes": num_classes, **dict(options)})) / 1e6


def arm_params_m(arm: Arm) -> float:
    return params_m(arm.model, tuple(sorted(arm.options.items())), 100 if arm.dataset == "cifar100" else 10)


def final_stats(records: Sequence[Any]) -> dict[str, Any]:
    """Median and min-max of the final test (and training) errors of an arm's runs, by the one
    rule of :mod:`resnetlab.analysis.results`: a diverged run counts as an infinite error
    (drawn "fail"), never dropped; status says how many diverged."""
    s = summarize(records)
    return {"median": s.median, "minmax": s.span_text, "train_median": s.train_median, "runs": s.runs,
            "status": s.status_text()}


def series(collected: Collected, arms: Sequence[Arm]) -> dict[str, list[Any]]:
    return {a.label: collected.records.get(a.key, []) for a in arms}


def expected_runs(collected: Collected) -> int:
    return collected.experiment.seeds.get(collected.profile or "paper", 1)


def stand_in_note(arm: Arm, records: Sequence[Record]) -> str:
    models = sorted({r.config.get("model") for r in records if r.config.get("model") != arm.model})
    if not models:
        return ""
    return " [smoke stand-in: " + ", ".join(display_name(m) for m in models) + "]"


def results_row(case: str, paper_error: float | None, records: Sequence[Record], expected: int) -> dict[str, Any]:
    """One "paper beside ours" row, by the one rule of :mod:`resnetlab.analysis.results`: a
    diverged run counts as an infinite error (never dropped), so the median is "fail
    (diverged: reason)" when most runs diverged; a completed median above IM's 20% line is
    marked "(fail: >20%)", as the paper would write it."""
    s = summarize(records, expected)
    return {"case": case, "paper error (%)": "–" if paper_error is None else paper.format_error(paper_error),
            "ours median (%)": s.median_text(im_rule=True), "ours min-max": s.span_text, "runs": s.runs,
            "status": s.status_text(im_rule=True)}


def results_table(collected: Collected, cases: Mapping[str, tuple[str, float | None]]) -> pd.DataFrame:
    """The table of an experiment: one row per arm, in arm order; ``cases[arm.key]`` gives
    the row's case text and the paper's error (``paper.FAIL`` for "fail", ``None`` if the
    paper has none)."""
    rows = []
    expected = expected_runs(collected)
    for arm in collected.experiment.arms:
        case, value = cases.get(arm.key, (arm.label, None))
        recs = collected.records.get(arm.key, [])
        rows.append(results_row(case + stand_in_note(arm, recs), value, recs, expected))
    return pd.DataFrame(rows, columns=["case", "paper error (%)", "ours median (%)", "ours min-max", "runs", "status"])


def profile_note(collected: Collected) -> str:
    if collected.profile == "smoke":
        return "SMOKE PROFILE: a pipeline check on stand-in nets, not a result"
    if collected.profile == "quick":
        return "quick profile: 1/10 of the paper's schedule, 1 seed"
    if collected.profile is None:
        return f"not yet recorded: {collected.command()}"
    return "paper schedule; paper = IM's median of 5 runs"


def table_figure(collected: Collected, table: pd.DataFrame, title: str):
    from .. import plots

    return plots.fig_error_table(table, title=title, note=profile_note(collected), records=collected.records)


def records_of(collected: Collected, key: str) -> list[Record]:
    return list(collected.records.get(key, []))


def arm_of(collected: Collected, key: str) -> Arm:
    return next(a for a in collected.experiment.arms if a.key == key)


def panel(collected: Collected, keys: Sequence[str], names: Mapping[str, str] | None = None) -> dict[str, list[Record]]:
    """Legend name -> records for the arms ``keys`` that this experiment has."""
    have = {a.key for a in collected.experiment.arms}
    return {(names or {}).get(k, arm_of(collected, k).label): records_of(collected, k) for k in keys if k in have}


__all__ = ["arm_params_m", "expected_runs", "final_stats", "panel", "params_m", "profile_note", "records_of",
           "results_row", "results_table", "series", "stand_in_note", "table_figure"]
