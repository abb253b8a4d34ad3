"""Block diagrams of Residual Units, drawn with matplotlib boxes and arrows.

Every diagram is generated from a :class:`resnetlab.models.UnitLayout` (the same
data that builds the PyTorch modules), so a drawing cannot disagree with the
network it shows. References: ``R-`` = He et al. 2015, "Deep Residual Learning
for Image Recognition"; ``IM-`` = He et al. 2016, "Identity Mappings in Deep
Residual Networks".

Each box's text artist carries a ``gid`` of the form ``"op:<path>:<index>:<op>"``
(path is ``residual``, ``shortcut`` or ``after``) so tests and notebooks can read
the drawn operations back.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Patch
from matplotlib.path import Path

from ..models import unit_layout
from .style import FIGSIZE_WIDE, set_style

__all__ = [
    "UnitLayoutLike", "OP_COLORS", "op_kind", "op_label", "draw_unit", "fig_residual_unit",
    "fig_basic_vs_bottleneck", "fig_shortcut_variants", "fig_activation_variants",
]


class UnitLayoutLike(Protocol):
    """What the drawing needs from :class:`resnetlab.models.UnitLayout`."""

    residual: tuple[str, ...]
    shortcut: tuple[str, ...] | None
    after: tuple[str, ...]

    @property
    def name(self) -> str:
        """The layout's title (the IM figure panel it is)."""
        ...


#: Fill colour per kind of op; "weight" is any convolution.
OP_COLORS: dict[str, str] = {
    "weight": "#9ecae1",
    "bn": "#fdd49e",
    "relu": "#a1d99b",
    "scale": "#d4b9da",
    "gate": "#d4b9da",
    "dropout": "#d9d9d9",
    "other": "#ffffff",
}
_KIND_NAMES: dict[str, str] = {
    "weight": "weight (conv)", "bn": "BN", "relu": "ReLU", "scale": "scaling",
    "gate": "gating", "dropout": "dropout", "other": "other",
}

#: The IM Fig. 2 panels in the paper's order.
SHORTCUT_VARIANTS: tuple[str, ...] = (
    "original", "constant_scaling", "exclusive_gating", "shortcut_only_gating", "conv_shortcut", "dropout_shortcut",
)
#: The IM Fig. 4 panels in the paper's order.
ACTIVATION_VARIANTS: tuple[str, ...] = (
    "original", "bn_after_addition", "relu_before_addition", "relu_only_preact", "full_preact",
)

# geometry in data units (axes use an equal aspect)
_BOX_W = 2.0
_BOX_H = 0.56
_STEP = 0.95
_SIDE_X = 2.0
_SIDE_W = 1.6
_ADD_R = 0.24
_CORNER = 0.3
_LINE = "0.25"


def op_kind(op: str) -> str:
    """Kind of an op name: "weight", "bn", "relu", "scale", "gate", "dropout" or "other"."""
    if op.startswith("conv"):
        return "weight"
    for kind in ("bn", "relu", "scale", "gate", "dropout"):
        if op == kind or op.startswith(kind + "("):
            return kind
    return "other"


def op_label(op: str, channels: int | None = None) -> str:
    """Text drawn in an op's box: "conv3x3" -> "3x3 conv" (or "3x3, 64" with ``channels``,
    as in R-Fig. 5), "bn" -> "BN", "scale(0.5)" -> "x 0.5", "gate(1-g)" -> "x (1-g)"."""
    m = re.fullmatch(r"conv(\d+)x(\d+)", op)
    if m:
        k = f"{m.group(1)}x{m.group(2)}"
        return f"{k}, {channels}" if channels is not None else f"{k} conv"
    if op == "bn":
        return "BN"
    if op == "relu":
        return "ReLU"
    m = re.fullmatch(r"(scale|gate|dropout)\((.*)\)", op)
    if m:
        kind, arg = m.groups()
        arg = arg.replace("-", "\u2212")
        if kind == "scale":
            return f"\u00d7 {arg}"
        if kind == "gate":
            return f"\u00d7 ({arg})" if len(arg) > 1 else f"\u00d7 {arg}"
        return f"dropout {arg}"
    return op


def _box(ax: Axes, x: float, y: float, w: float, op: str, gid: str, fontsize: float,
         text: str | None = None) -> None:
    kind = op_kind(op)
    ax.add_patch(FancyBboxPatch((x - w / 2, y - _BOX_H / 2), w, _BOX_H, boxstyle="round,pad=0,rounding_size=0.1",
                                facecolor=OP_COLORS[kind], edgecolor=_LINE, lw=1.3, zorder=3, gid=f"box:{gid}"))
    ax.text(x, y, text if text is not None else op_label(op), ha="center", va="center", fontsize=fontsize,
            zorder=4, gid=f"op:{gid}:{op}")


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color=_LINE, lw=1.4,
                                 shrinkA=0, shrinkB=0, zorder=2))


def _draw_residual(ax: Axes, residual: Sequence[str], y: float, start: tuple[float, float], fontsize: float,
                   channels: Sequence[int | None] | None) -> tuple[float, tuple[float, float]]:
    """The residual branch F as boxes below ``y``; returns the last box's centre and bottom."""
    conv_i = 0
    for i, op in enumerate(residual):
        cy = y - _STEP * (0.9 if i == 0 else 1.0)
        _arrow(ax, start, (0, cy + _BOX_H / 2))
        ch = None
        if channels is not None and op_kind(op) == "weight":
            ch = channels[conv_i] if conv_i < len(channels) else None
            conv_i += 1
        _box(ax, 0, cy, _BOX_W, op, f"residual:{i}", fontsize, op_label(op, ch))
        start = (0.0, cy - _BOX_H / 2)
        y = cy
    return y, start


def _draw_addition(ax: Axes, shortcut: Sequence[str], split_y: float, y: float, start: tuple[float, float],
                   fontsize: float) -> float:
    """The circled "+" below ``y`` and the shortcut path from ``split_y`` around to it (its
    ops as boxes on the right); returns the height of the addition."""
    add_y = y - _STEP * 0.85
    _arrow(ax, start, (0, add_y + _ADD_R))
    ax.add_patch(Circle((0, add_y), _ADD_R, facecolor="white", edgecolor=_LINE, lw=1.4, zorder=3))
    ax.text(0, add_y, "+", ha="center", va="center", fontsize=fontsize + 5, zorder=4, gid="add")
    c = _CORNER
    verts = [(0, split_y), (_SIDE_X - c, split_y), (_SIDE_X, split_y), (_SIDE_X, split_y - c),
             (_SIDE_X, add_y + c), (_SIDE_X, add_y), (_SIDE_X - c, add_y), (_ADD_R, add_y)]
    codes = [Path.MOVETO, Path.LINETO, Path.CURVE3, Path.CURVE3, Path.LINETO, Path.CURVE3, Path.CURVE3,
             Path.LINETO]
    ax.add_patch(FancyArrowPatch(path=Path(verts, codes), arrowstyle="-|>", mutation_scale=12, color=_LINE,
                                 lw=1.4, zorder=2, gid="shortcut"))
    if shortcut:
        mid = (split_y + add_y) / 2
        n = len(shortcut)
        step = min(_STEP, (split_y - add_y - 2 * c) / max(n, 1))
        for j, op in enumerate(shortcut):
            cy = mid + step * ((n - 1) / 2 - j)
            _box(ax, _SIDE_X, cy, _SIDE_W, op, f"shortcut:{j}", fontsize - 1)
    return add_y


def _annotate(ax: Axes, annotate: Mapping[str, str], *, res_top: float, res_bottom: float, split_y: float,
              add_y: float, fontsize: float) -> None:
    """R-Fig. 2's labels: a bracket with "F(x)" by the branch, "x" by the shortcut, "F(x) + x" by the sum."""
    mid_res = (res_top + res_bottom) / 2
    if "residual" in annotate:
        bx = -_BOX_W / 2 - 0.15
        ax.plot([bx + 0.1, bx, bx, bx + 0.1], [res_top, res_top, res_bottom, res_bottom], color=_LINE, lw=1.2)
        ax.text(bx - 0.12, mid_res, annotate["residual"], ha="right", va="center", fontsize=fontsize + 2,
                gid="annotation:residual")
    if "shortcut" in annotate:
        ax.text(_SIDE_X + 0.15, (split_y + add_y) / 2, annotate["shortcut"], ha="left", va="center",
                fontsize=fontsize + 2, gid="annotation:shortcut")
    if "add" in annotate:
        ax.text(-_ADD_R - 0.15, add_y, annotate["add"], ha="right", va="center", fontsize=fontsize + 2,
                gid="annotation:add")


def _draw(layout: UnitLayoutLike, ax: Axes, *, fontsize: float = 11.0, input_label: str | None = "$x_l$",
          output_label: str | None = "$x_{l+1}$", channels: Sequence[int | None] | None = None,
          annotate: Mapping[str, str] | None = None) -> tuple[float, float]:
    """Draw ``layout`` on ``ax`` (top to bottom) and return its vertical extent (ymin, ymax)."""
    shortcut = layout.shortcut
    if input_label:
        ax.text(0, 0.12, input_label, ha="center", va="bottom", fontsize=fontsize + 3, gid="input")
    split_y = -0.45
    start = (0.0, 0.0)
    if shortcut is not None:
        ax.plot([0, 0], [0.0, split_y], color=_LINE, lw=1.4, zorder=2)
        ax.add_patch(Circle((0, split_y), 0.055, color=_LINE, zorder=3))
        start = (0.0, split_y)
    y, start = _draw_residual(ax, tuple(layout.residual), split_y, start, fontsize, channels)
    if shortcut is not None:
        res_bottom = y - _BOX_H / 2
        y = _draw_addition(ax, shortcut, split_y, y, start, fontsize)
        start = (0.0, y - _ADD_R)
        if annotate:
            _annotate(ax, annotate, res_top=split_y - _STEP * 0.9 + _BOX_H / 2, res_bottom=res_bottom,
                      split_y=split_y, add_y=y, fontsize=fontsize)
    for k, op in enumerate(tuple(layout.after)):  # after the addition
        cy = y - _STEP * (0.9 if shortcut is not None and k == 0 else 1.0)
        _arrow(ax, start, (0, cy + _BOX_H / 2))
        _box(ax, 0, cy, _BOX_W, op, f"after:{k}", fontsize)
        start = (0.0, cy - _BOX_H / 2)
        y = cy
    end_y = y - _STEP * 0.75
    _arrow(ax, start, (0, end_y))
    ymin = end_y - 0.1
    if output_label:
        ax.text(0, end_y - 0.08, output_label, ha="center", va="top", fontsize=fontsize + 3, gid="output")
        ymin = end_y - 0.6
    return ymin, (0.75 if input_label else 0.45)


def _frame(ax: Axes, ylims: tuple[float, float], *, left: float = -1.25, right: float = 2.95) -> None:
    ax.set_xlim(left, right)
    ax.set_ylim(*ylims)
    ax.set_aspect("equal")
    ax.axis("off")


def draw_unit(layout: UnitLayoutLike, ax: Axes | None = None, *, title: str | None = None, fontsize: float = 11.0,
              input_label: str | None = "$x_l$", output_label: str | None = "$x_{l+1}$",
              channels: Sequence[int | None] | None = None, annotate: Mapping[str, str] | None = None) -> Figure:
    """Draw one Residual Unit (IM Fig. 2 / Fig. 4 style) top to bottom.

    ``x_l`` at the top, the residual branch as boxes (weight/conv, BN, ReLU,
    scaling/gating, dropout in distinct colours), the shortcut on the right (its ops
    as boxes, a plain line for the identity, nothing for a plain net), a circled "+"
    for the addition, the ``after`` ops and ``x_{l+1}`` at the bottom.
    ``channels`` labels the convolutions in order (R-Fig. 5 "1x1, 64");
    ``annotate`` may hold texts for "residual", "shortcut" and "add" (R-Fig. 2).
    Returns the figure the unit was drawn on.
    """
    if ax is None:
        set_style()
        fig, ax = plt.subplots(figsize=(5.0, 7.5), layout="constrained")
    ylims = _draw(layout, ax, fontsize=fontsize, input_label=input_label, output_label=output_label,
                  channels=channels, annotate=annotate)
    left = -3.0 if annotate and ("residual" in annotate or "add" in annotate) else -1.25
    right = 4.1 if annotate and "shortcut" in annotate else 2.95
    _frame(ax, ylims, left=left, right=right)
    ax.set_title(title if title is not None else layout.name, fontsize=fontsize + 3)
    ax._resnetlab_ylims = ylims  # type: ignore[attr-defined]
    return ax.figure


def _align(axes: Sequence[Axes]) -> None:
    """Same vertical extent on every panel, so boxes have the same size across panels."""
    lims = [getattr(ax, "_resnetlab_ylims", ax.get_ylim()) for ax in axes]
    lo = min(a for a, _ in lims)
    hi = max(b for _, b in lims)
    for ax in axes:
        ax.set_ylim(lo, hi)


def _op_key(fig: Figure, layouts: Sequence[UnitLayoutLike]) -> None:
    kinds: list[str] = []
    for lay in layouts:
        for op in (*lay.residual, *(lay.shortcut or ()), *lay.after):
            k = op_kind(op)
            k = "scale" if k == "gate" else k
            if k not in kinds:
                kinds.append(k)
    order = [k for k in OP_COLORS if k in kinds]
    handles = [Patch(facecolor=OP_COLORS[k], edgecolor=_LINE,
                     label="scaling / gating" if k == "scale" else _KIND_NAMES[k]) for k in order]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False, fontsize=12)


def _panels(layouts: Sequence[UnitLayoutLike], titles: Sequence[str], suptitle: str, fontsize: float,
            **kw: Any) -> Figure:
    set_style()
    fig, axes = plt.subplots(1, len(layouts), figsize=FIGSIZE_WIDE, layout="constrained")
    width = 14 if len(layouts) > 5 else 17
    for ax, lay, t in zip(axes, layouts, titles):
        draw_unit(lay, ax, title="\n".join(textwrap.wrap(t, width, break_on_hyphens=False)), fontsize=fontsize, **kw)
    _align(axes)
    fig.suptitle(suptitle, x=0.01, ha="left")
    _op_key(fig, layouts)
    return fig


def _panel_title(name: str, letter: str) -> str:
    return name if name.lstrip().startswith("(") else f"({letter}) {name}"


def fig_residual_unit(*, layout_fn: Callable[..., UnitLayoutLike] | None = None) -> Figure:
    """R-Fig. 2: the basic building block, F(x) on the branch, x on the identity
    shortcut, F(x) + x at the addition, then ReLU."""
    layout = (layout_fn or unit_layout)("basic", "original", "original")
    set_style()
    fig, ax = plt.subplots(figsize=(6.67, 7.5), layout="constrained")
    draw_unit(layout, ax, title="Residual learning: a building block (R-Fig. 2)", fontsize=13,
              input_label="$x$", output_label=None,
              annotate={"residual": "$\\mathcal{F}(x)$", "shortcut": "$x$\nidentity", "add": "$\\mathcal{F}(x) + x$"})
    _op_key(fig, [layout])
    return fig


def _conv_channels(layout: UnitLayoutLike, width: int, block: str) -> list[int]:
    convs = [op for op in layout.residual if op_kind(op) == "weight"]
    if block == "bottleneck":
        return [width] * (len(convs) - 1) + [4 * width]
    return [width] * len(convs)


def fig_basic_vs_bottleneck(width: int = 64, *, layout_fn: Callable[..., UnitLayoutLike] | None = None) -> Figure:
    """R-Fig. 5: a basic block on a ``width``-d input (two 3x3) beside a bottleneck
    block on a 4x``width``-d input (1x1 reduce, 3x3, 1x1 restore), with the paper's
    channel annotations ("3x3, 64", "1x1, 256")."""
    fn = layout_fn or unit_layout
    basic = fn("basic", "original", "original")
    bottle = fn("bottleneck", "original", "original")
    set_style()
    fig, axes = plt.subplots(1, 2, figsize=(10.0, 7.5), layout="constrained")
    for ax, lay, block, d in ((axes[0], basic, "basic", width), (axes[1], bottle, "bottleneck", 4 * width)):
        draw_unit(lay, ax, title=f"{block} ({d}-d in)", fontsize=12, input_label=f"{d}-d",
                  output_label=f"{d}-d", channels=_conv_channels(lay, width, block))
    _align(axes)
    fig.suptitle("Basic block vs bottleneck block (R-Fig. 5)", x=0.01, ha="left")
    _op_key(fig, [basic, bottle])
    return fig


def fig_shortcut_variants(*, layout_fn: Callable[..., UnitLayoutLike] | None = None,
                          variant_options: Mapping[str, Mapping[str, Any]] | None = None) -> Figure:
    """IM Fig. 2: the six shortcut variants (a) original, (b) constant scaling, (c) exclusive
    gating, (d) shortcut-only gating, (e) 1x1 conv shortcut, (f) dropout shortcut.
    ``variant_options`` passes per-variant options to ``unit_layout``."""
    fn = layout_fn or unit_layout
    opts = variant_options or {}
    layouts = [fn("basic", "original", v, **dict(opts.get(v, {}))) for v in SHORTCUT_VARIANTS]
    titles = [_panel_title("(a) original" if v == "original" else lay.name, "abcdef"[i])
              for i, (v, lay) in enumerate(zip(SHORTCUT_VARIANTS, layouts))]
    return _panels(layouts, titles, "Shortcut variants (IM Fig. 2)", fontsize=10)


def fig_activation_variants(*, layout_fn: Callable[..., UnitLayoutLike] | None = None) -> Figure:
    """IM Fig. 4: activation placements (a) original, (b) BN after addition, (c) ReLU
    before addition, (d) ReLU-only pre-activation, (e) full pre-activation."""
    fn = layout_fn or unit_layout
    layouts = [fn("basic", a, "original") for a in ACTIVATION_VARIANTS]
    titles = [_panel_title(lay.name, "abcde"[i]) for i, lay in enumerate(layouts)]
    return _panels(layouts, titles, "Where to put BN and ReLU (IM Fig. 4)", fontsize=11)
