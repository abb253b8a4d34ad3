"""The final errors of an arm's runs, summarised by one rule for every table of the course.

**One rule for failed runs.** A run that diverged (status "failed": a non-finite loss, or a
training error at chance long after warm-up) counts as an *infinite* test error. It is never
dropped: the median of five runs with one failure is the median of four numbers and one
infinity, as IM reports its medians of 5 runs, and it is "fail" when most runs failed.

**Two meanings of "fail".** IM writes "fail" for a run whose test error is above 20% (IM
Table 1's caption: we report "fail" when the test error is higher than 20%), whether or not it
diverged, while our status "failed" means only that the run diverged. :func:`summarize` reports both,
each named: ``diverged`` runs, and ``above_fail_line`` for completed runs above IM's 20%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

#: IM's line: a run "fails" when its test error is above this (IM Sec. 3, Table 1 caption).
IM_FAIL_LINE = 20.0


def run_error(record: Any) -> float:
    """A run's final test error (%); ``inf`` for a diverged run, ``nan`` if it has none."""
    if record.failed:
        return math.inf
    v = record.final_test_error
    return math.nan if v is None else float(v)


@dataclass(frozen=True)
class ArmResult:
    """The runs of one arm (a curve or table row), by the rules of this module."""

    runs: int
    expected: int
    median: float  # inf when most runs diverged; nan when there are none
    low: float
    high: float
    train_median: float
    diverged: int
    above_fail_line: int  # completed runs above IM's 20% line
    unfinished: int
    reason: str  # the first diverged run's failure reason, "" if none

    def median_text(self, im_rule: bool = False) -> str:
        """"7.61", "fail (diverged: ...)", or with ``im_rule`` "23.40 (fail: >20%)"; "–" if none."""
        if math.isnan(self.median):
            return "–"
        if math.isinf(self.median):
            return f"fail (diverged: {self.reason})" if self.reason else "fail (diverged)"
        text = f"{self.median:.2f}"
        return f"{text} (fail: >{IM_FAIL_LINE:.0f}%)" if im_rule and self.median > IM_FAIL_LINE else text

    @property
    def span_text(self) -> str:
        """"7.20-8.10" over the runs (a diverged run reads "fail"); "–" for fewer than two."""
        if self.runs < 2 or math.isnan(self.low):
            return "–"
        fmt = lambda v: "fail" if math.isinf(v) else f"{v:.2f}"
        return f"{fmt(self.low)}-{fmt(self.high)}"

    def status_text(self, im_rule: bool = False) -> str:
        """What a reader must know besides the numbers: missing, diverged, above the line."""
        if not self.runs:
            return "not recorded"
        parts = []
        if self.diverged:
            parts.append(f"{self.diverged} of {self.runs} diverged")
        if im_rule and self.above_fail_line:
            parts.append(f"{self.above_fail_line} of {self.runs} above IM's {IM_FAIL_LINE:.0f}% line")
        if self.runs < self.expected:
            parts.append(f"{self.runs} of {self.expected} runs recorded")
        if self.unfinished:
            parts.append(f"{self.unfinished} unfinished")
        return "; ".join(parts) or "complete"


def _short(text: str, width: int = 48) -> str:
    text = str(text or "").strip().splitlines()[0] if text else ""
    return text if len(text) <= width else text[: width - 1] + "…"


def summarize(records: Sequence[Any], expected: int = 1) -> ArmResult:
    """The :class:`ArmResult` of an arm's records (see the module docstring)."""
    values = [v for v in (run_error(r) for r in records) if not math.isnan(v)]
    finite = [v for v in values if math.isfinite(v)]
    train = [float(t) for r in records if not r.failed
             for t in [r.summary.get("final_train_error")] if t is not None and math.isfinite(float(t))]
    diverged = [r for r in records if r.failed]
    return ArmResult(
        runs=len(records), expected=expected,
        median=float(np.median(values)) if values else math.nan,
        low=min(values) if values else math.nan, high=max(values) if values else math.nan,
        train_median=float(np.median(train)) if train else math.nan,
        diverged=len(diverged), above_fail_line=sum(v > IM_FAIL_LINE for v in finite),
        unfinished=sum(r.status not in ("complete", "failed") for r in records),
        reason=_short(diverged[0].summary.get("failure_reason")) if diverged else "",
    )


__all__ = ["IM_FAIL_LINE", "ArmResult", "run_error", "summarize"]
