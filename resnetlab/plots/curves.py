"""Training curves on one axes, in the convention of R-Fig. 1 / R-Fig. 6 and IM Fig. 1/3/6.

Test curves bold solid, training curves thin dashed, x in iterations (units of 1e4,
"iter. (1e4)"), errors in percent. Repeats of one net are drawn as the median with a
shaded min-max band (IM reports the median of 5 runs); a failed run is never dropped:
it is drawn up to where it stopped and ends in an "x". Figure-level functions live in
:mod:`resnetlab.plots.training`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import offset_copy

from .records import _failure_reason, _flatten, _history, _is_empty, _label, _status
from .style import PALETTE, _top_key, placeholder

__all__ = ["plot_curves"]

_TEST_LW = 2.6
_TRAIN_LW = 1.2
_ITER_UNIT = 1e4


def _aggregate(histories: list[pd.DataFrame], column: str) -> pd.DataFrame | None:
    """Median and min/max of ``column`` across repeats, per iteration (columns x, med, lo, hi)."""
    series = []
    for h in histories:
        if column not in h or "iteration" not in h:
            continue
        s = h[["iteration", column]].dropna()
        if s.empty:
            continue
        series.append(s.groupby("iteration")[column].mean())
    if not series:
        return None
    table = pd.concat(series, axis=1)
    common = table.dropna()
    if len(common) >= 2 or len(table) < 2:
        table = common if len(common) else table
    table = table.sort_index()
    vals = table.to_numpy(dtype=float)
    return pd.DataFrame(
        {"x": table.index.to_numpy(dtype=float) / _ITER_UNIT, "med": np.nanmedian(vals, axis=1),
         "lo": np.nanmin(vals, axis=1), "hi": np.nanmax(vals, axis=1)}
    )


def _columns(metric: str) -> tuple[str, str]:
    if metric not in ("error", "loss"):
        raise ValueError(f"metric must be 'error' or 'loss', not {metric!r}")
    return f"train_{metric}", f"test_{metric}"


def _failed_text(base: str, record: Any) -> str:
    reason = _failure_reason(record, width=60)
    return "\n".join(textwrap.wrap(f"{base} (failed: {reason})", 36, subsequent_indent="   "))


def _line_style(part: str) -> dict[str, Any]:
    return dict(lw=_TEST_LW, ls="-") if part == "test" else dict(lw=_TRAIN_LW, ls="--")


def _plot_repeats(targets: Sequence[tuple[str, str, Axes]], ok: list[Any], *, ax: Axes, base: str,
                  color: Any) -> list[Line2D]:
    """The finished (or running) runs of one net: median line, min-max band when repeated."""
    unfinished = sorted({_status(r) for r in ok} - {"complete"})  # "running", "interrupted", ...
    hists = [_history(r) for r in ok]
    text = base + (f" (n={len(ok)})" if len(ok) > 1 else "") + "".join(f" ({u})" for u in unfinished)
    handles: list[Line2D] = []
    for part, col, target in targets:
        agg = _aggregate(hists, col)
        if agg is None:
            continue
        line = target.plot(agg["x"], agg["med"], color=color, label=None if handles else text,
                           gid=f"{part}:{base}", **_line_style(part))[0]
        if len(ok) > 1:
            target.fill_between(agg["x"], agg["lo"], agg["hi"], color=color, alpha=0.18, lw=0,
                                gid=f"band:{part}:{base}")
        if not handles:
            handles.append(line)
    if not handles:  # complete but nothing to draw: still list it
        handles.append(ax.plot([], [], color=color, lw=_TEST_LW, label=f"{text} (no data)")[0])
    return handles


def _plot_failed(targets: Sequence[tuple[str, str, Axes]], record: Any, *, ax: Axes, base: str,
                 color: Any) -> Line2D:
    """A failed run drawn up to where it stopped, ending in an "x" that carries its legend entry."""
    h = _history(record)
    text = _failed_text(base, record)
    last: tuple[Axes, float, float] | None = None
    for part, col, target in targets:
        if col not in h or "iteration" not in h:
            continue
        s = h[["iteration", col]].dropna()
        if s.empty:
            continue
        x = s["iteration"].to_numpy(dtype=float) / _ITER_UNIT
        y = s[col].to_numpy(dtype=float)
        y = np.where(np.isfinite(y), y, np.nan)
        target.plot(x, y, color=color, alpha=0.85, gid=f"failed:{part}:{base}", **_line_style(part))
        finite = np.flatnonzero(np.isfinite(y))
        if finite.size:
            last = (target, x[finite[-1]], y[finite[-1]])
    if last is None:  # failed before logging anything: a legend entry only
        return ax.plot([], [], ls="none", marker="x", ms=12, mew=3, color=color, label=text,
                       gid=f"failed_marker:{base}")[0]
    target, x0, y0 = last
    return target.plot([x0], [y0], ls="none", marker="x", ms=12, mew=3, color=color, label=text,
                       gid=f"failed_marker:{base}", zorder=5)[0]


def plot_curves(
    ax: Axes,
    records: Sequence[Any],
    *,
    metric: str = "error",
    label: str | None = None,
    color: Any = None,
    parts: Sequence[str] = ("train", "test"),
    train_ax: Axes | None = None,
) -> list[Line2D]:
    """Draw one net's curves in the R-Fig. 1 / R-Fig. 6 convention.

    Test ``metric`` bold solid, training ``metric`` thin dashed, x in iterations
    (units of 1e4, "iter. (1e4)"), errors in percent. Several ``records`` of the same
    net are repeats: the median curve with a shaded min-max band (IM reports the
    median of 5 runs), labelled "name (n=5)". A failed run is never dropped: it is
    drawn up to where it stopped, ends in an "x", and its legend entry reads
    "name (failed: reason)". An empty ``records`` adds "name (not yet recorded)" to
    the legend.

    ``parts`` picks "train" and/or "test"; ``train_ax`` draws the training curve on
    another axes (the IM twin-axis style). Returns the artists that carry legend labels.
    """
    recs = _flatten(records)
    train_col, test_col = _columns(metric)
    color = color if color is not None else PALETTE[0]
    base = label or (_label(recs[0]) if recs else "run")
    if not recs:
        return [ax.plot([], [], color=color, lw=_TEST_LW, label=f"{base} (not yet recorded)")[0]]
    train_target = train_ax if train_ax is not None else ax
    order = (("test", test_col, ax), ("train", train_col, train_target))
    ok = [r for r in recs if _status(r) != "failed"]
    handles: list[Line2D] = []
    if ok:
        handles += _plot_repeats([t for t in order if t[0] in parts], ok, ax=ax, base=base, color=color)
    failed_order = [t for t in order[::-1] if t[0] in parts]  # training first: the "x" ends the test curve
    handles += [_plot_failed(failed_order, r, ax=ax, base=base, color=color) for r in recs if _status(r) == "failed"]
    return handles


# --------------------------------------------------------------------------- axes helpers


def _style_key(fig: Figure, *, test: str = "test error", train: str | None = "training error",
               test_style: str = "bold", train_style: str = "dashed", repeats: bool = False, failures: bool = False,
               **key: Any) -> None:
    """Figure-level key above the panels: bold solid = test, thin dashed = training
    (the R-Fig. 1 / R-Fig. 6 caption), plus the band and failure conventions in use.
    ``train=None`` leaves the training entry out; ``key`` goes to :func:`_top_key`."""
    handles: list[Any] = [Line2D([], [], color="0.2", lw=_TEST_LW, ls="-", label=f"{test} ({test_style})")]
    if train is not None:
        handles.append(Line2D([], [], color="0.2", lw=_TRAIN_LW, ls="--", label=f"{train} ({train_style})"))
    if repeats:
        handles.append(Patch(facecolor="0.2", alpha=0.18, label="median, band = min-max of n runs"))
    if failures:
        handles.append(Line2D([], [], color="0.2", ls="none", marker="x", ms=10, mew=2.5, label="run failed here"))
    _top_key(fig, handles, **key)


def _auto_ylim(ax: Axes, ylim: tuple[float, float] | None, *, skip: float = 0.2, cap: float = 100.0,
               headroom: float = 1.15) -> None:
    """Error axes start at 0; unless ``ylim`` is given, the top is ``headroom`` times the
    highest error after the first ``skip`` of training (where every net is near chance),
    ignoring failed runs (they may blow up) and reference lines."""
    if ylim is not None:
        ax.set_ylim(*ylim)
        return
    pairs = []
    for line in ax.get_lines():
        gid = line.get_gid() or ""
        if gid.startswith(("failed", "hline")):
            continue
        x = np.asarray(line.get_xdata(), dtype=float)
        y = np.asarray(line.get_ydata(), dtype=float)
        if x.size and np.isfinite(x).any():
            pairs.append((x, y))
    if not pairs:
        return
    xmax = max(float(np.nanmax(x)) for x, _ in pairs)
    keep = [y[(x >= skip * xmax) & np.isfinite(y)] for x, y in pairs]
    keep = [k for k in keep if k.size]
    if not keep:
        return
    top = float(max(k.max() for k in keep))
    ax.set_ylim(0, min(cap, max(1.0, top * headroom)))
    ax.set_xlim(left=0)


def _legend(ax: Axes, **kw: Any) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(loc=kw.pop("loc", "upper right"), framealpha=0.92, fontsize=kw.pop("fontsize", 11), **kw)


def _legend_below(ax: Axes, *, width_in: float, fontsize: float = 11, gap_pt: float = 46) -> None:
    """The panel's legend under its x label, out of the data: as many columns as fit in
    ``width_in`` inches (the panel's width), constrained layout shrinks the panel to make room."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    widest = max(max(len(line) for line in lab.split("\n")) for lab in labels)
    entry_pt = widest * 0.6 * fontsize + 4.5 * fontsize  # text + handle + spacing, estimated
    ncol = int(max(1, min(len(labels), (width_in * 72) // entry_pt)))
    anchor = offset_copy(ax.transAxes, fig=ax.figure, y=-gap_pt, units="points")
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), bbox_transform=anchor, ncol=ncol,
              fontsize=fontsize, frameon=False, columnspacing=1.2, handlelength=2.2, borderaxespad=0.0)


def _panel_curves(ax: Axes, runs_by_name: Mapping[str, Sequence[Any]], *, metric: str = "error",
                  parts: Sequence[str] = ("train", "test"), ylim: tuple[float, float] | None = None,
                  hline: float | None = None, hline_label: str | None = None,
                  command: str | None = None, title: str | None = None, ylabel: str | None = None,
                  skip: float = 0.2, legend_width: float | None = None) -> bool:
    """One panel of nets, colour i for the i-th name; a placeholder when it has no runs.
    ``skip``: the automatic error axis fits every curve after this fraction of training
    (:func:`_auto_ylim`); ``legend_width`` (inches): the legend goes under the panel, out of
    the data, instead of its upper right corner. Returns False if it showed the placeholder."""
    if title:
        ax.set_title(title)
    if _is_empty(runs_by_name):
        placeholder(ax, command)
        return False
    for i, (name, recs) in enumerate(runs_by_name.items()):
        plot_curves(ax, list(_flatten(recs)), metric=metric, label=name, color=PALETTE[i % len(PALETTE)],
                    parts=parts)
    if hline is not None:
        ax.axhline(hline, color="0.35", ls=":", lw=1.8, label=hline_label, zorder=1, gid="hline")
    if metric == "error":
        _auto_ylim(ax, ylim, skip=skip)
    elif ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel("iter. (1e4)")
    ax.set_ylabel(ylabel or ("error (%)" if metric == "error" else metric))
    if legend_width is None:
        _legend(ax)
    else:
        _legend_below(ax, width_in=legend_width)
    return True
