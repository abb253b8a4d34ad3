"""Figures of the analyses (numbers from :mod:`resnetlab.analysis`, drawn here): layer
responses (R-Fig. 7), signal propagation and the shortcut term (IM Sec. 2-3, Eq. 4-8),
the receptive field behind the 3x3 designs (R-Sec. 3.3) and the bottleneck's cost (R-Fig. 5).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from .style import (FIGSIZE_TALL, FIGSIZE_WIDE, PALETTE, _command_for, _figure, _suptitle, _top_key,
                    add_source_note, placeholder, set_style)

__all__ = ["fig_layer_responses", "fig_signal_propagation", "fig_shortcut_term", "fig_receptive_field",
           "fig_bottleneck_cost"]


def fig_layer_responses(stds: Mapping[str, Any], *, title: str = "Std of layer responses on CIFAR-10 (R-Fig. 7)",
                        command: str | None = None, records: Any = None) -> Figure:
    """R-Fig. 7: std of each 3x3 layer's response (after BN, before ReLU), one line per net
    (plain-20, plain-56, ResNet-20/56/110). Top: layers in their original order;
    bottom: ranked in descending order. ``records`` (optional) adds the source footer."""
    set_style()
    fig, (top, bottom) = _figure(2, 1, footer=records is not None)
    _suptitle(fig, title)
    if records is not None:
        add_source_note(fig, records)
    if not stds:
        placeholder(top, command or _command_for(["plain20", "plain56", "resnet20", "resnet56", "resnet110"], None))
        placeholder(bottom, None, message="(sorted view appears once the nets are trained)")
        return fig
    for i, (name, values) in enumerate(stds.items()):
        v = np.asarray(values, dtype=float).ravel()
        idx = np.arange(1, v.size + 1)
        kw = dict(color=PALETTE[i % len(PALETTE)], lw=2, marker="o", ms=3.5, label=name)
        top.plot(idx, v, **kw)
        bottom.plot(idx, np.sort(v)[::-1], **kw)
    for ax in (top, bottom):
        ax.xaxis.set_major_locator(mticker.MaxNLocator(integer=True))
    top.set_xlabel("layer index (original order)")
    bottom.set_xlabel("layer index (sorted by magnitude)")
    ymax = max(top.get_ylim()[1], bottom.get_ylim()[1])
    for ax in (top, bottom):
        ax.set_ylabel("std")
        ax.set_xlim(left=0)
        ax.set_ylim(0, ymax)
    _top_key(fig, top.get_lines(), fontsize=13)
    return fig


def fig_signal_propagation(df: pd.DataFrame, *, title: str = "Signal propagation through residual units (IM Sec. 2-3)",
                           command: str | None = None) -> Figure:
    """IM Sec. 2-3 (Eq. 4-8): forward activation norm (top row) and backward gradient norm
    (bottom row) per unit, at initialisation (left) and after training (right).

    ``df`` columns: ``net, state ("init"|"trained"), unit, forward_norm, backward_norm``.
    The y axes are logarithmic so that multiplicative vanishing/exploding (plain,
    constant scaling 0.5) stands out against the flat identity-shortcut nets
    (original, pre-activation).
    """
    set_style()
    fig, axes = _figure(2, 2, figsize=FIGSIZE_TALL, footer=False, sharex=True)
    _suptitle(fig, title)
    nets: list[str] = list(dict.fromkeys(df["net"])) if df is not None and len(df) else []
    rows = (("forward_norm", r"forward: $\Vert x_l \Vert$"),
            ("backward_norm", r"backward: $\Vert \partial E / \partial x_l \Vert$"))
    for j, state in enumerate(("init", "trained")):
        sub = df[df["state"] == state] if nets else pd.DataFrame()
        for i, (col, word) in enumerate(rows):
            ax = axes[i][j]
            ax.set_title(f"{word}, {'at initialisation' if state == 'init' else 'after training'}", fontsize=15)
            if sub.empty:
                placeholder(ax, command, message=f"no '{state}' measurements yet")
                continue
            for k, net in enumerate(nets):
                s = sub[sub["net"] == net].sort_values("unit")
                if s.empty:
                    continue
                y = s[col].to_numpy(dtype=float)
                y = np.where(y > 0, y, np.nan)
                ax.plot(s["unit"], y, color=PALETTE[k % len(PALETTE)], lw=2.4, marker="o", ms=3, label=net)
            ax.set_yscale("log")
            ax.set_ylabel("norm (log scale)")
            if i == 1:
                ax.set_xlabel("unit l (0 = input of the first unit)")
                ax.xaxis.set_tick_params(labelbottom=True)
    if nets:
        handles = [Line2D([], [], color=PALETTE[k % len(PALETTE)], lw=2.4, label=n) for k, n in enumerate(nets)]
        fig.legend(handles=handles, loc="outside lower center", ncol=len(nets), frameon=False, fontsize=13)
    return fig


def _shortcut_term_panel(ax: Axes, sub: pd.DataFrame, nets: list[str], lambdas: Mapping[str, float] | None) -> None:
    """One state of :func:`fig_shortcut_term`: each net's term, and lambda^(L-l) where known."""
    for k, net in enumerate(nets):
        s = sub[sub["net"] == net].sort_values("unit")
        if s.empty:
            continue
        y = s["direct_norm"].to_numpy(dtype=float)
        color = PALETTE[k % len(PALETTE)]
        if not np.any(y > 0):
            ax.plot([], [], color=color, lw=2.4, label=f"{net}: 0 (no shortcut path)")
            continue
        ax.plot(s["unit"], np.where(y > 0, y, np.nan), color=color, lw=2.4, marker="o", ms=3, label=net)
        lam = (lambdas or {}).get(net)
        if lam is not None and lam > 0:
            units = s["unit"].to_numpy(dtype=float)
            ax.plot(units, lam ** (units.max() - units), color="0.45", ls=":", lw=2,
                    label=f"$\\lambda^{{L-l}}$, $\\lambda$ = {lam:g}")
    ax.set_yscale("log")
    ax.set_xlabel("unit l (0 = input of the first unit)")
    ax.legend(loc="lower right", fontsize=11, framealpha=0.92)


def _decade_ticks(ax: Axes) -> None:
    """Labelled decade ticks (10^-k) on a log y axis (shared axes included: a placeholder panel
    clears the shared ticks). When the curves span less than two decades, the axis is widened
    to the decades around them, so that at least two ticks carry a label."""
    ys = [np.asarray(ln.get_ydata(), dtype=float) for a in ax.get_shared_y_axes().get_siblings(ax)
          for ln in a.get_lines()]
    ys = [y[np.isfinite(y) & (y > 0)] for y in ys]
    ys = [y for y in ys if y.size]
    if ys:
        lo = float(min(y.min() for y in ys))
        hi = float(max(y.max() for y in ys))
        if np.floor(np.log10(hi)) - np.ceil(np.log10(lo)) < 1:
            e_lo, e_hi = np.floor(np.log10(lo) + 1e-9), np.ceil(np.log10(hi) - 1e-9)
            ax.set_ylim(10 ** min(e_lo, e_hi - 1) / 1.25, 10 ** e_hi * 1.25)
    ax.yaxis.set_major_locator(mticker.LogLocator(base=10, numticks=8))
    ax.yaxis.set_major_formatter(mticker.LogFormatterMathtext(base=10))
    ax.yaxis.set_minor_locator(mticker.LogLocator(base=10, subs=np.arange(2, 10), numticks=12))
    ax.yaxis.set_minor_formatter(mticker.NullFormatter())


def fig_shortcut_term(df: pd.DataFrame, *, title: str = "The shortcut term of IM Eq. 5/8 through depth",
                      command: str | None = None, lambdas: Mapping[str, float] | None = None) -> Figure:
    """IM Eq. 5/8: the first term of IM Eq. 8 (Eq. 5 for lambda = 1) per unit (``direct_norm``
    of :func:`resnetlab.analysis.propagation.signal_propagation`, relative to dE/dx_L), at
    initialisation (left) and after training (right), log scale. ``lambdas`` maps a net name
    to its shortcut scale: a dotted grey line shows lambda^(L-l) for it (IM Eq. 6-8). Nets
    without a shortcut path (plain) have no curve (the term is exactly 0) and say so in the legend."""
    set_style()
    fig, axes = plt.subplots(1, 2, figsize=FIGSIZE_WIDE, layout="constrained", sharey=True)
    fig.get_layout_engine().set(rect=(0, 0.06, 1, 0.94))
    fig.suptitle(title, x=0.01, ha="left")
    has = df is not None and len(df) > 0 and "direct_norm" in df
    nets: list[str] = list(dict.fromkeys(df["net"])) if has else []
    drawn_any = False
    for ax, state in zip(axes, ("init", "trained")):
        ax.set_title("at initialisation" if state == "init" else "after training", fontsize=15)
        sub = df[df["state"] == state] if has else pd.DataFrame()
        if sub.empty:
            placeholder(ax, command, message=f"no '{state}' measurements yet")
            continue
        _shortcut_term_panel(ax, sub, nets, lambdas)
        drawn_any = True
    if drawn_any:
        axes[0].set_ylabel("shortcut term / $\\Vert \\partial E / \\partial x_L \\Vert$ (log)")
        _decade_ticks(axes[0])
    fig.text(0.01, 0.01, "shortcut term: the part of dE/dx_l that reaches x_l along the shortcuts only "
             "(residual branches detached in the backward pass)", fontsize=10, color="0.35", ha="left",
             va="bottom", gid="source_note")
    return fig


def fig_receptive_field(grad_maps: Mapping[str, Any], theoretical: Mapping[str, int], *,
                        title: str = "Receptive field: three stacked 3x3 convs vs one 7x7") -> Figure:
    """The VGG argument behind the 3x3 designs of R-Sec. 3.3 (Simonyan & Zisserman Sec. 2.3):
    heatmaps of |d output centre / d input| for three stacked 3x3 convs and for one 7x7
    conv, each normalised to its maximum, with the theoretical ``theoretical[name]``-wide
    square receptive field outlined around the centre."""
    set_style()
    n = max(1, len(grad_maps))
    fig, axes = _figure(1, n, footer=False, squeeze=False)
    _suptitle(fig, title)
    if not grad_maps:
        placeholder(axes[0][0], None, message="no gradient maps yet")
        return fig
    im = None
    for ax, (name, grad) in zip(axes[0], grad_maps.items()):
        g = np.abs(np.asarray(grad, dtype=float))
        g = g / g.max() if g.max() > 0 else g
        im = ax.imshow(g, cmap="magma", vmin=0, vmax=1, interpolation="nearest")
        ax.grid(False)
        ax.set_title(name)
        h, w = g.shape
        k = theoretical.get(name)
        if k:
            cy, cx = h // 2, w // 2
            ax.add_patch(Rectangle((cx - k // 2 - 0.5, cy - k // 2 - 0.5), k, k, fill=False, ec="#00e5ff",
                                   lw=2.5, ls="--", gid=f"rf:{name}"))
            ax.text(cx, cy - k // 2 - 0.9, f"theoretical {k}x{k}", color="#00e5ff", fontsize=13,
                    ha="center", va="bottom", fontweight="bold")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"input pixels ({h}x{w})")
    fig.colorbar(im, ax=list(axes[0]), shrink=0.8, label="|∂ output centre / ∂ input|, normalised")
    return fig


def _human(v: float) -> str:
    """1234567 -> "1.23M"."""
    if not np.isfinite(v):
        return "n/a"
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= div:
            return f"{v / div:.3g}{unit}"
    return f"{v:.3g}"


def fig_bottleneck_cost(df: pd.DataFrame, *, title: str = "Basic vs bottleneck block: similar cost (R-Fig. 5)"
                        ) -> Figure:
    """R-Fig. 5: parameters and multiply-adds of a basic block (64-d, two 3x3) vs a
    bottleneck block (256-d, 1x1-3x3-1x1). ``df`` columns: ``block, params, macs``."""
    set_style()
    fig, axes = _figure(1, 2, footer=False)
    _suptitle(fig, title)
    if df is None or len(df) == 0:
        for ax in axes:
            placeholder(ax, None, message="no blocks counted yet")
        return fig
    names = [str(b) for b in df["block"]]
    for ax, col, word in zip(axes, ("params", "macs"), ("parameters", "multiply-adds")):
        vals = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
        colors = [PALETTE[i % len(PALETTE)] for i in range(len(names))]
        bars = ax.bar(names, np.nan_to_num(vals), color=colors, width=0.6, gid=f"bars:{col}")
        for b, v in zip(bars, vals):
            ax.text(b.get_x() + b.get_width() / 2, 0 if not np.isfinite(v) else v, _human(v), ha="center",
                    va="bottom", fontsize=14, fontweight="bold")
        ax.set_title(word)
        ax.set_ylabel(word)
        ax.set_ylim(0, np.nanmax(vals) * 1.15 if np.isfinite(vals).any() else 1)
        ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: _human(v)))
        ax.grid(axis="x", visible=False)
    return fig
