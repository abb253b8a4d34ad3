"""Tables and "ours vs paper" bars drawn for a slide: the results tables of both papers
(R-Tables 2-6, IM Tables 1-3) and the complexity bars of R-Fig. 3 / R-Table 1."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .style import (_FOOTER_SIZE, FIGSIZE_WIDE, PALETTE, _figure, _suptitle, _top_key, placeholder, set_style,
                    source_note)

__all__ = ["fig_complexity", "fig_error_table"]


def _fmt_num(v: float) -> str:
    if not np.isfinite(v):
        return "n/a"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def _paired_bars(ax: Axes, names: list[str], ours: np.ndarray, paper: np.ndarray, *, xlabel: str,
                 color: Any, log: bool | str = "auto") -> None:
    """Horizontal bars per name: ours (solid) above the paper's (hatched, labelled "paper")."""
    y = np.arange(len(names))
    h = 0.38
    finite = np.concatenate([ours[np.isfinite(ours)], paper[np.isfinite(paper)]])
    pos = finite[finite > 0]
    use_log = (log is True) or (log == "auto" and pos.size > 0 and pos.max() / pos.min() > 50)
    if use_log:
        ax.set_xscale("log")
    left = float(pos.min()) / 3 if use_log and pos.size else 0.0
    has_ours = np.isfinite(ours)
    has_paper = np.isfinite(paper)
    ax.barh(y[has_ours] - h / 2, ours[has_ours] - left, left=left, height=h, color=color, gid="bars:ours")
    ax.barh(y[has_paper] + h / 2, paper[has_paper] - left, left=left, height=h, facecolor="white",
            edgecolor=color, hatch="//", lw=1.2, gid="bars:paper")
    for yy, v, ok in zip(y - h / 2, ours, has_ours):
        ax.text(v if ok else left, yy, " " + (_fmt_num(v) if ok else "ours: n/a"), va="center", ha="left",
                fontsize=11)
    for yy, v, ok in zip(y + h / 2, paper, has_paper):
        ax.text(v if ok else left, yy, " " + (f"paper {_fmt_num(v)}" if ok else "paper: n/a"), va="center",
                ha="left", fontsize=11, color="0.3", style="italic")
    ax.set_yticks(y, names)
    ax.set_xlabel(xlabel + (" (log scale)" if use_log else ""))
    hi = float(pos.max()) if pos.size else 1.0
    ax.set_xlim(left if use_log else 0, hi * (6.0 if use_log else 1.3))
    ax.grid(axis="y", visible=False)


def _numeric(table: pd.DataFrame, name: str) -> np.ndarray:
    """Column ``name`` as floats (NaN where missing or not a number)."""
    if name not in table:
        return np.full(len(table), np.nan)
    return pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=float)


def fig_complexity(table: pd.DataFrame, *, title: str = "Model complexity: ours vs paper (R-Fig. 3 / R-Table 1)",
                   log: bool | str = "auto") -> Figure:
    """R-Fig. 3 / R-Table 1 complexity: GFLOPs (multiply-adds, left) and parameters (M, right).

    ``table`` columns: ``model, macs_g_ours, macs_g_paper, params_m_ours, params_m_paper``
    (paper columns may be NaN; a ``label`` column, if present, names the bars). Our counts are
    solid bars, the paper's hatched and labelled "paper"; ``log="auto"`` switches to a log axis
    when values span > 50x.
    """
    set_style()
    fig, (left, right) = _figure(1, 2, footer=False, sharey=True)
    _suptitle(fig, title)
    if table is None or len(table) == 0:
        placeholder(left, None, message="no models counted yet")
        placeholder(right, None, message="no models counted yet")
        return fig
    names = [str(m) for m in table["label" if "label" in table else "model"]]
    _paired_bars(left, names, _numeric(table, "macs_g_ours"), _numeric(table, "macs_g_paper"),
                 xlabel="GFLOPs (multiply-adds, 1e9)", color=PALETTE[0], log=log)
    _paired_bars(right, names, _numeric(table, "params_m_ours"), _numeric(table, "params_m_paper"),
                 xlabel="parameters (M)", color=PALETTE[1], log=log)
    left.invert_yaxis()  # first row on top (the y axis is shared: invert once)
    left.set_title("multiply-adds")
    right.set_title("parameters")
    handles = [Patch(facecolor="0.45", label="ours (counted from the model)"),
               Patch(facecolor="white", edgecolor="0.3", hatch="//", label="paper")]
    _top_key(fig, handles)
    return fig


def _cell_text(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, (float, np.floating)):
        if np.isposinf(v):
            return "fail"  # a diverged run's error (resnetlab.analysis.results)
        return "—" if not np.isfinite(v) else f"{v:.2f}"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return str(v)


def _draw_table(ax: Axes, df: pd.DataFrame) -> None:
    """``df`` as a slide table: a dark header, zebra rows, rows with "fail" tinted red."""
    cells = [[_cell_text(v) for v in row] for row in df.itertuples(index=False)]
    col_labels = [str(c) for c in df.columns]
    widths = np.array([max(len(col_labels[j]), *(len(r[j]) for r in cells)) for j in range(len(col_labels))],
                      dtype=float)
    widths = np.maximum(widths, 6) / np.maximum(widths, 6).sum()
    table = ax.table(cellText=cells, colLabels=col_labels, colWidths=list(widths), cellLoc="center",
                     bbox=[0, 0, 1, 1])
    table.auto_set_font_size(False)
    table.set_fontsize(13)
    for (r, c), cell in table.get_celld().items():
        cell.set_edgecolor("0.8")
        if r == 0:
            cell.set_facecolor("#34495e")
            cell.get_text().set_color("white")
            cell.get_text().set_fontweight("bold")
            continue
        if "fail" in " ".join(cells[r - 1]).lower():
            cell.set_facecolor("#fde2e1")
        else:
            cell.set_facecolor("#f4f6f7" if r % 2 == 0 else "white")
        if c == 0:
            cell.get_text().set_ha("left")
            cell.PAD = 0.03


def fig_error_table(df: pd.DataFrame, *, title: str, note: str | None = None, records: Any = None) -> Figure:
    """A "paper vs ours" results table (R-Tables 4-6, IM Tables 1-3) drawn for a slide.

    Floats get two decimals, NaN a dash, strings ("fail", "running", ...) are shown as
    they are; rows containing "fail" are tinted red. ``records`` (optional) adds the
    :func:`source_note` footer, ``note`` extra footer text.
    """
    set_style()
    n_rows = 0 if df is None else len(df)
    height = min(FIGSIZE_WIDE[1], max(2.6, 1.4 + 0.5 * (n_rows + 1)))
    footer = records is not None or bool(note)
    fig, ax = _figure(1, 1, figsize=(FIGSIZE_WIDE[0], height), footer=False)
    if footer:
        fig.get_layout_engine().set(rect=(0, 0.35 / height, 1, 1 - 0.35 / height))
    ax.axis("off")
    ax.set_title(title, loc="left")
    if df is None or n_rows == 0:
        placeholder(ax, None, message="no results yet")
    else:
        _draw_table(ax, df)
    if footer:
        text = source_note(records) if records is not None else ""
        if note:
            text = f"{text}  |  {note}" if text else note
        fig.text(0.01, 0.01, text, ha="left", va="bottom", fontsize=_FOOTER_SIZE, color="0.35", gid="source_note")
    return fig
