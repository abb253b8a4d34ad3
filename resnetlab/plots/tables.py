"""Tables and "ours vs paper" bars drawn for a slide: the results tables of both papers
(R-Tables 2-6, IM Tables 1-3) and the complexity bars of R-Fig. 3 / R-Table 1."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.text import Text

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


_TABLE_FONT = 13.0  #: the table's font size when everything fits
_MIN_TABLE_FONT = 9.0  #: the smallest size tried before giving up on fitting the columns
_HEADER_LINESPACING = 1.15


def _renderer(fig: Figure) -> Any:
    get = getattr(fig.canvas, "get_renderer", None)
    return get() if get is not None else fig._get_renderer()  # type: ignore[attr-defined]


def _text_size(fig: Figure, renderer: Any, text: str, size: float, bold: bool = False) -> tuple[float, float]:
    """(width, height) in points of ``text`` drawn at ``size`` (multi-line texts included)."""
    if not text.strip():
        return 0.0, 0.0
    t = Text(0, 0, text, fontsize=size, fontweight="bold" if bold else "normal",
             linespacing=_HEADER_LINESPACING if bold else None)
    t.set_figure(fig)
    bb = t.get_window_extent(renderer)
    return bb.width * 72 / fig.dpi, bb.height * 72 / fig.dpi


def _two_lines(label: str, width: Callable[[str], float]) -> str | None:
    """``label`` split at the space that makes its wider line narrowest (None: no space to split at)."""
    words = label.split(" ")
    if "\n" in label or len(words) < 2:
        return None
    splits = [" ".join(words[:i]) + "\n" + " ".join(words[i:]) for i in range(1, len(words))]
    return min(splits, key=lambda s: max(width(line) for line in s.split("\n")))


def _fit_columns(fig: Figure, renderer: Any, labels: list[str], cells: list[list[str]], size: float,
                 avail: float) -> tuple[list[str], np.ndarray, float]:
    """Headers (long ones wrapped onto two lines while the columns do not fit ``avail`` points)
    and each column's needed width in points at font ``size``; also the cell padding."""
    pad = 0.5 * size
    body = [max([_text_size(fig, renderer, r[j], size)[0] for r in cells] or [0.0]) for j in range(len(labels))]
    head_w = lambda s: _text_size(fig, renderer, s, size, bold=True)[0]  # noqa: E731
    heads = list(labels)
    need = np.array([max(b, head_w(h)) + 2 * pad for b, h in zip(body, heads)])
    tried: set[int] = set()
    while need.sum() > avail:
        best: tuple[float, int, str] | None = None
        for j, h in enumerate(heads):
            wrapped = None if j in tried else _two_lines(h, head_w)
            if wrapped is None:
                continue
            gain = need[j] - (max(body[j], head_w(wrapped)) + 2 * pad)
            if gain > 0 and (best is None or gain > best[0]):
                best = (gain, j, wrapped)
        if best is None:
            break
        _, j, heads[j] = best
        need[j] -= best[0]
        tried.add(j)
    return heads, need, pad


def _draw_table(ax: Axes, df: pd.DataFrame) -> None:
    """``df`` as a slide table: a dark header, zebra rows, rows with "fail" tinted red.

    Columns are sized to their text at the saved size: long headers are wrapped onto two
    lines (at the space that balances them best) and, only if that is not enough, the
    font shrinks, so that no header or cell is clipped."""
    fig = ax.figure
    cells = [[_cell_text(v) for v in row] for row in df.itertuples(index=False)]
    col_labels = [str(c) for c in df.columns]
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.execute(fig)  # the axes' final size, to measure the columns against
    pos = ax.get_position()
    avail_w = pos.width * fig.get_figwidth() * 72
    avail_h = pos.height * fig.get_figheight() * 72
    renderer = _renderer(fig)
    size = _TABLE_FONT
    while True:
        heads, need, pad = _fit_columns(fig, renderer, col_labels, cells, size, 0.98 * avail_w)
        if need.sum() <= 0.98 * avail_w or size <= _MIN_TABLE_FONT:
            break
        size -= 1.0
    widths = need / need.sum()
    n_rows = len(cells)
    head_h = max(_text_size(fig, renderer, h, size, bold=True)[1] for h in heads) + pad
    row_h = avail_h / (n_rows + 1)
    head_frac = max(row_h, head_h) / avail_h
    body_frac = (1 - head_frac) / max(n_rows, 1)
    table = ax.table(cellText=cells, colLabels=heads, colWidths=list(widths), cellLoc="center",
                     bbox=[0, 0, 1, 1])
    table.auto_set_font_size(False)
    table.set_fontsize(size)
    for (r, c), cell in table.get_celld().items():
        cell.set_edgecolor("0.8")
        cell.set_height(head_frac if r == 0 else body_frac)
        if r == 0:
            cell.set_facecolor("#34495e")
            cell.get_text().set_color("white")
            cell.get_text().set_fontweight("bold")
            cell.get_text().set_linespacing(_HEADER_LINESPACING)
            continue
        if "fail" in " ".join(cells[r - 1]).lower():
            cell.set_facecolor("#fde2e1")
        else:
            cell.set_facecolor("#f4f6f7" if r % 2 == 0 else "white")
        if c == 0:
            cell.get_text().set_ha("left")
            cell.PAD = pad / (widths[0] * avail_w)


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
