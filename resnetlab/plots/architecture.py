"""Whole-net and multi-unit diagrams, drawn from the models: R-Fig. 3's three architecture
columns (VGG-19, 34-layer plain, 34-layer residual) and IM Fig. 5, the rearrangement of
the original Residual Unit into a pre-activation one.

Nothing here is a hard-coded list of boxes. The columns walk the modules that
:func:`resnetlab.models.build_model` builds (on the ``meta`` device, so no weights are
allocated); IM Fig. 5 chains the :func:`resnetlab.models.unit_layout` layouts that build
the units. References: ``R-`` = He et al. 2015, "Deep Residual Learning for Image
Recognition"; ``IM-`` = He et al. 2016, "Identity Mappings in Deep Residual Networks".

Each layer box of the columns carries a ``gid`` ``"layer:<model>:<index>:<kind>"`` (kind:
``conv``, ``fc``, ``pool`` or ``input``) and each shortcut arc ``"arc:<first>-<last>:<style>"``
(style ``identity`` or ``increase``); each op box of IM Fig. 5 a text gid
``"op:unit<k>.<path>:<index>:<op>"`` as in :mod:`resnetlab.plots.diagrams`.
"""

from __future__ import annotations

import functools
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Patch, Rectangle
from matplotlib.path import Path
from torch import nn

from ..models import build_model, display_name, parse_model_name, unit_layout
from .diagrams import (_ADD_R, _BOX_H, _LINE, _STEP, OP_COLORS, UnitLayoutLike, _align, _arrow, _box,
                       _draw_addition, _draw_residual)
from .style import FIGSIZE_TALL, FIGSIZE_WIDE, set_style

__all__ = ["ColumnLayer", "ShortcutArc", "ARCHITECTURE_COLUMNS", "layer_column", "fig_architecture_columns",
           "PREACT_STEPS", "fig_preact_rearrangement"]

#: R-Fig. 3's columns, left to right.
ARCHITECTURE_COLUMNS: tuple[str, ...] = ("vgg19", "imagenet-plain34", "imagenet-resnet34")

_KIND_COLORS = {"conv": OP_COLORS["weight"], "fc": "#c6dbef", "pool": "#e5e5e5", "input": "#ffffff"}


@dataclass(frozen=True)
class ColumnLayer:
    """One box of a column: ``kind`` ("input", "conv", "pool", "fc"), its text ("3x3 conv,
    128, /2") and the side of the feature map it outputs (224-pixel input)."""

    kind: str
    text: str
    size: int

    @property
    def weighted(self) -> bool:
        """A layer with weights (conv or fc): what the papers count in "34-layer"."""
        return self.kind in ("conv", "fc")


@dataclass(frozen=True)
class ShortcutArc:
    """A unit's shortcut, from the layer before its first conv to its last conv (indices into
    the column); ``increase``: dimensions grow there (dotted in R-Fig. 3)."""

    first: int
    last: int
    increase: bool


def _out(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


def _conv(m: nn.Conv2d, size: int) -> ColumnLayer:
    k, s, p = m.kernel_size[0], m.stride[0], m.padding[0]
    return ColumnLayer("conv", f"{k}x{k} conv, {m.out_channels}" + (f", /{s}" if s > 1 else ""), _out(size, k, s, p))


def _walk(modules, layers: list[ColumnLayer], size: int) -> int:
    """Append the conv / pool / fc layers of ``modules`` (in order) to ``layers``; return the map side."""
    for m in modules:
        if isinstance(m, nn.Conv2d):
            layers.append(_conv(m, size))
        elif isinstance(m, nn.MaxPool2d):
            k, s, p = (int(v if isinstance(v, int) else v[0]) for v in (m.kernel_size, m.stride, m.padding))
            layers.append(ColumnLayer("pool", f"pool, /{s}", _out(size, k, s, p)))
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            out = m.output_size if isinstance(m.output_size, int) else m.output_size[0]
            if out != size:  # VGG's 7x7 pool of a 7x7 map changes nothing
                layers.append(ColumnLayer("pool", "avg pool", int(out)))
        elif isinstance(m, nn.Linear):
            layers.append(ColumnLayer("fc", f"fc {m.out_features}", 1))
        else:
            continue
        size = layers[-1].size
    return size


@functools.lru_cache(maxsize=None)
def layer_column(name: str, input_size: int = 224) -> tuple[tuple[ColumnLayer, ...], tuple[ShortcutArc, ...]]:
    """The boxes and shortcut arcs of one R-Fig. 3 column, read off ``build_model(name)``:
    the stem, every unit's residual-branch convolutions (a shortcut's 1x1 projection is
    not a layer of the column, as in the paper), the pools and the fc layers."""
    with torch.device("meta"):
        net = build_model(name)
    layers = [ColumnLayer("input", "image", input_size)]
    arcs: list[ShortcutArc] = []
    if hasattr(net, "units"):  # ResNet / plain net
        size = _walk(net.stem.modules(), layers, input_size)
        for unit in net.units:
            convs = [m for m in unit.residual.modules() if isinstance(m, nn.Conv2d)]
            first = len(layers)
            size = _walk(convs, layers, size)
            if unit.shortcut is not None:
                grows = convs[0].stride[0] > 1 or convs[0].in_channels != convs[-1].out_channels
                arcs.append(ShortcutArc(first - 1, len(layers) - 1, grows))
        _walk([net.pool, net.fc], layers, size)
    else:  # VGG
        size = _walk(net.features.modules(), layers, input_size)
        _walk([net.pool, *net.classifier.modules()], layers, size)
    return tuple(layers), tuple(arcs)


def _column_title(name: str) -> str:
    """"VGG-19", "34-layer plain", "34-layer residual" (R-Fig. 3's column names)."""
    family, depth = parse_model_name(name)
    if family.startswith("imagenet-"):
        return f"{depth}-layer {'plain' if family.endswith('plain') else 'residual'}"
    return display_name(name)


def _rows(columns: Sequence[Sequence[ColumnLayer]]) -> list[list[int]]:
    """A row per box, aligned across columns by output size (R-Fig. 3's "output size" bands)."""
    sizes = sorted({la.size for col in columns for la in col}, reverse=True)
    start, acc = {}, 0
    for s in sizes:
        start[s] = acc
        acc += max(sum(la.size == s for la in col) for col in columns)
    rows = []
    for col in columns:
        seen: dict[int, int] = {}
        col_rows = []
        for la in col:
            col_rows.append(start[la.size] + seen.get(la.size, 0))
            seen[la.size] = seen.get(la.size, 0) + 1
        rows.append(col_rows)
    return rows


def fig_architecture_columns(models: Sequence[str] = ARCHITECTURE_COLUMNS, *, fontsize: float = 8.5,
                             title: str = "VGG-19, a 34-layer plain net and a 34-layer residual net (R-Fig. 3)"
                             ) -> Figure:
    """R-Fig. 3: one column of layer boxes per net, top to bottom, rows aligned by the
    size of the feature map they output. Residual nets get their shortcuts as arcs on the
    right of the column: solid for identity shortcuts, dotted where the dimensions
    increase (option A zero-padding or B projection). Built from the models, see
    :func:`layer_column`."""
    set_style()
    cols = [layer_column(m) for m in models]
    rows = _rows([c[0] for c in cols])
    n_rows = 1 + max(max(r) for r in rows)
    fig, ax = plt.subplots(figsize=FIGSIZE_TALL, layout="constrained")
    gap, width = 4.2, 2.7
    for c, (name, (layers, arcs), col_rows) in enumerate(zip(models, cols, rows)):
        x = c * gap
        n_weighted = sum(la.weighted for la in layers)
        ax.text(x, 1.1, f"{_column_title(name)}\n({n_weighted} weighted layers)", ha="center", va="bottom",
                fontsize=fontsize + 4, fontweight="bold", gid=f"column:{name}")
        for i, (la, r) in enumerate(zip(layers, col_rows)):
            ax.add_patch(FancyBboxPatch((x - width / 2, -r - 0.36), width, 0.72, facecolor=_KIND_COLORS[la.kind],
                                        boxstyle="round,pad=0,rounding_size=0.12", edgecolor=_LINE, lw=0.9,
                                        zorder=3, gid=f"layer:{name}:{i}:{la.kind}"))
            ax.text(x, -r, la.text, ha="center", va="center", fontsize=fontsize, zorder=4)
            if i:
                ax.plot([x, x], [-col_rows[i - 1] - 0.36, -r + 0.36], color=_LINE, lw=0.9, zorder=2)
        for a in arcs:  # from the gap above the unit's first conv to the gap below its last
            x0 = x + width / 2 - 0.2
            y0, y1 = -col_rows[a.first] - 0.5, -col_rows[a.last] - 0.5
            path = Path([(x0, y0), (x0 + 1.1, (y0 + y1) / 2), (x0, y1)], [Path.MOVETO, Path.CURVE3, Path.CURVE3])
            ax.add_patch(FancyArrowPatch(path=path, arrowstyle="-|>", mutation_scale=8, color=_LINE, lw=1.1,
                                         ls=(0, (1.2, 1.2)) if a.increase else "-", zorder=5,
                                         gid=f"arc:{a.first}-{a.last}:{'increase' if a.increase else 'identity'}"))
    bands = sorted({(r, la.size) for (layers, _), col_rows in zip(cols, rows) for la, r in zip(layers, col_rows)})
    first_row: dict[int, int] = {}
    for r, s in bands:
        first_row.setdefault(s, r)
    for s, r in first_row.items():
        ax.text(-width / 2 - 0.25, -r, f"output\nsize: {s}", ha="right", va="top" if r else "center",
                fontsize=fontsize, color="0.35", style="italic", gid=f"size:{s}")
        if r:
            ax.axhline(-r + 0.5, color="0.85", lw=0.8, zorder=1)
    ax.set_xlim(-width / 2 - 1.6, (len(models) - 1) * gap + width / 2 + 1.0)
    ax.set_ylim(-n_rows + 0.3, 3.0)
    ax.axis("off")
    fig.suptitle(title, x=0.01, ha="left")
    key = [Patch(facecolor=_KIND_COLORS[k], edgecolor=_LINE, label=t)
           for k, t in (("conv", "conv"), ("pool", "pooling"), ("fc", "fully connected"))]
    key += [Line2D([], [], color=_LINE, lw=1.1, label="identity shortcut"),
            Line2D([], [], color=_LINE, lw=1.1, ls=(0, (1.2, 1.2)), label="shortcut where dimensions increase")]
    fig.legend(handles=key, loc="outside lower center", ncol=len(key), frameon=False, fontsize=11)
    return fig


# --------------------------------------------------------------------------- IM Fig. 5


@dataclass(frozen=True)
class _Chained:
    """A unit layout as drawn in a chain (duck-types :class:`UnitLayoutLike`)."""

    residual: tuple[str, ...]
    shortcut: tuple[str, ...] | None
    after: tuple[str, ...]
    name: str


def _moved_activation() -> _Chained:
    """IM Sec. 4.1: the after-addition activation f of the original unit moved onto the
    residual branch of the next unit only (f-hat), the shortcut left untouched."""
    orig = unit_layout("basic", "original", "original")
    return _Chained(tuple(orig.after) + tuple(orig.residual), orig.shortcut, (), "asymmetric")


#: IM Fig. 5's panels: (title, step); a step is an IM Fig. 4 activation or "asymmetric" (f moved, IM Sec. 4.1).
PREACT_STEPS: tuple[tuple[str, str], ...] = (
    ("(a) original unit: ReLU f after the addition", "original"),
    ("(b) asymmetric: f moved onto the next unit's branch only (f\u0302)", "asymmetric"),
    ("(c) the same net, regrouped: ReLU-only pre-activation units", "relu_only_preact"),
    ("(d) BN moved too: full pre-activation (adopted)", "full_preact"),
)


def _step_layout(step: str) -> UnitLayoutLike:
    return _moved_activation() if step == "asymmetric" else unit_layout("basic", step, "original")


def _relabel(ax: Axes, n_texts: int, n_patches: int, unit: int) -> None:
    for artist in [*ax.texts[n_texts:], *ax.patches[n_patches:]]:
        gid = artist.get_gid() or ""
        for head in ("op:", "box:"):
            if gid.startswith(head):
                artist.set_gid(f"{head}unit{unit}.{gid[len(head):]}")
        if gid in ("add", "shortcut"):
            artist.set_gid(f"{gid}:unit{unit}")


def _chain(ax: Axes, layout: UnitLayoutLike, units: int, fontsize: float) -> list[dict[str, float]]:
    """``units`` copies of ``layout`` one after the other; returns each unit's box rows."""
    y, start = 0.0, (0.0, 0.0)
    ax.text(0, 0.12, "$x_l$", ha="center", va="bottom", fontsize=fontsize + 3, gid="input")
    spans = []
    for u in range(units):
        n_t, n_p = len(ax.texts), len(ax.patches)
        split_y = y - 0.45
        ax.plot([0, 0], [start[1], split_y], color=_LINE, lw=1.4, zorder=2)
        ax.add_patch(Circle((0, split_y), 0.055, color=_LINE, zorder=3))
        first_y = split_y - _STEP * 0.9
        y, start = _draw_residual(ax, tuple(layout.residual), split_y, (0.0, split_y), fontsize, None)
        add_y = _draw_addition(ax, tuple(layout.shortcut or ()), split_y, y, start, fontsize)
        y, start = add_y, (0.0, add_y - _ADD_R)
        for k, op in enumerate(layout.after):
            cy = y - _STEP * (0.9 if k == 0 else 1.0)
            _arrow(ax, start, (0, cy + _BOX_H / 2))
            _box(ax, 0, cy, 2.0, op, f"after:{k}", fontsize)
            y, start = cy, (0.0, cy - _BOX_H / 2)
        spans.append({"first": first_y, "add": add_y, "end": y})
        _relabel(ax, n_t, n_p, u)
    end_y = y - _STEP * 0.75
    _arrow(ax, start, (0, end_y))
    ax.text(0, end_y - 0.08, f"$x_{{l+{units}}}$", ha="center", va="top", fontsize=fontsize + 3, gid="output")
    ax._resnetlab_ylims = (end_y - 0.6, 0.75)  # type: ignore[attr-defined]
    return spans


def _group(ax: Axes, top: float, bottom: float, label: str, fontsize: float = 11) -> None:
    """A dashed red box around one Residual Unit, named on its left."""
    ax.add_patch(Rectangle((-1.25, bottom), 3.6, top - bottom, fill=False, ec="#c0392b", lw=1.4, ls="--",
                           zorder=1, gid=f"unit_group:{label}"))
    ax.text(-1.33, (top + bottom) / 2, label, ha="right", va="center", rotation=90, fontsize=fontsize,
            color="#c0392b", gid="unit_label")


def _unit_name(u: int) -> str:
    return "unit $l$" if u == 0 else f"unit $l{{+}}{u}$"


def _draw_step(ax: Axes, step: str, title: str, units: int, fontsize: float) -> None:
    layout = _step_layout(step)
    spans = _chain(ax, layout, units, fontsize)
    half = _BOX_H / 2 + 0.12
    if step == "asymmetric":  # the original grouping: a unit ends with f-hat, the first op of the next branch
        for u in range(units):
            for t in ax.texts:
                if t.get_gid() == f"op:unit{u}.residual:0:relu":
                    t.set_text("ReLU (f\u0302)")
            for p in ax.patches:
                if p.get_gid() == f"box:unit{u}.residual:0":
                    p.set_edgecolor("#c0392b")
                    p.set_linewidth(2.6)
        for u in range(units - 1):
            _group(ax, spans[u]["first"] - _STEP + half, spans[u + 1]["first"] - half, _unit_name(u))
    else:
        for u, s in enumerate(spans):
            _group(ax, s["first"] + half, s["end"] - (_BOX_H / 2 + 0.12 if s["end"] != s["add"] else _ADD_R + 0.1),
                   _unit_name(u))
    ax.set_xlim(-1.75, 2.75)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title("\n".join(textwrap.wrap(title, 24)), fontsize=fontsize + 2)


def fig_preact_rearrangement(*, units: int = 2, fontsize: float = 10.0,
                             title: str = "An asymmetric after-addition activation is a pre-activation unit "
                                          "(IM Fig. 5)") -> Figure:
    """IM Fig. 5 / Sec. 4.1: ``units`` Residual Units in a row, four ways. (a) the original
    unit, ReLU f after the addition; (b) f moved onto the residual branch of the next unit
    only (f-hat, outlined red), so the shortcuts carry the sums untouched; (c) the same net
    grouped differently: ReLU-only pre-activation units (IM Fig. 4(d)); (d) BN moved before
    the weights too, the full pre-activation unit IM adopts (IM Fig. 4(e)). Dashed red boxes
    mark one unit. Every panel chains the layouts of :func:`resnetlab.models.unit_layout`."""
    set_style()
    fig, axes = plt.subplots(1, len(PREACT_STEPS), figsize=FIGSIZE_WIDE, layout="constrained")
    for ax, (step_title, step) in zip(axes, PREACT_STEPS):
        _draw_step(ax, step, step_title, units, fontsize)
    _align(axes)
    fig.suptitle(title, x=0.01, ha="left")
    handles = [Patch(facecolor=OP_COLORS[k], edgecolor=_LINE, label=t) for k, t in
               (("weight", "weight (conv)"), ("bn", "BN"), ("relu", "ReLU"))]
    handles += [Patch(facecolor="none", edgecolor="#c0392b", ls="--", label="one Residual Unit"),
                Patch(facecolor=OP_COLORS["relu"], edgecolor="#c0392b", lw=2.6, label="f\u0302: the moved activation")]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False, fontsize=12)
    return fig
