"""Training-curve figures: R-Fig. 1, R-Fig. 6 and the IM curve panels (IM Fig. 1/3/4/6).

Every function calls :func:`~resnetlab.plots.style.set_style`, builds and returns a
:class:`matplotlib.figure.Figure` drawn from recorded runs (duck-typed
``resnetlab.runs.Record``); it neither saves nor shows it. Each carries the
:func:`~resnetlab.plots.style.source_note` footer, and a panel without runs says how to
make them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from .curves import _auto_ylim, _panel_curves, _style_key, plot_curves
from .records import _flatten, _has_failures, _has_repeats, _is_empty
from .style import (FIGSIZE_TALL, FIGSIZE_WIDE, PALETTE, _command_for, _figure, _suptitle, add_source_note,
                    placeholder, set_style)

__all__ = ["CurveLook", "PANELS_LOOK", "SINGLE_LOOK", "fig_degradation", "fig_cifar_training",
           "fig_curve_panels", "fig_im_curves"]

#: The grey of the reference net (the original ResNet) in IM curve panels.
REFERENCE_COLOR = "0.45"
#: R-Fig. 6: the error axis fits every curve after this fraction of training (the first
#: few evaluations, near chance, may be cut).
CIFAR_SKIP = 0.05


def fig_degradation(
    records_by_name: Mapping[str, Sequence[Any]],
    *,
    title: str = "Deeper plain nets train worse (R-Fig. 1)",
    commands: Mapping[str, str] | str | None = None,
    ylim: tuple[float, float] | None = None,
) -> Figure:
    """R-Fig. 1: training error (left) and test error (right) of plain-20 vs plain-56 on CIFAR-10.

    ``records_by_name`` maps a legend name (e.g. "plain-20") to its runs (repeats are
    drawn as median + min-max band). Without runs both panels show the placeholder.
    """
    set_style()
    fig, axes = _figure(1, 2)
    command = _command_for(list(records_by_name or {}), commands)
    for ax, part, word in zip(axes, ("train", "test"), ("training error (%)", "test error (%)")):
        _panel_curves(ax, records_by_name, parts=(part,), ylim=ylim, command=command, ylabel=word,
                      title=word.replace(" (%)", ""))
    if not _is_empty(records_by_name) and ylim is None:
        top = max(ax.get_ylim()[1] for ax in axes)
        for ax in axes:
            ax.set_ylim(0, top)
    _suptitle(fig, title)
    if _has_repeats(records_by_name) or _has_failures(records_by_name):
        _style_key(fig, repeats=_has_repeats(records_by_name), failures=_has_failures(records_by_name))
    add_source_note(fig, records_by_name)
    return fig


def fig_cifar_training(
    panels: Mapping[str, Mapping[str, Sequence[Any]]],
    *,
    title: str = "Training on CIFAR-10 (R-Fig. 6)",
    hline: float | Mapping[str, float] | None = None,
    hline_label: str | None = None,
    commands: Mapping[str, str] | str | None = None,
    ylim: tuple[float, float] | None = None,
) -> Figure:
    """R-Fig. 6: one panel per family (plain nets / ResNets / ResNet-110 vs 1202).

    Dashed lines are training error, bold lines test error, one colour per depth;
    ``hline`` adds a dotted horizontal reference (one value for every panel, or one
    per panel name). A panel without runs shows "not yet recorded — run: <command>".
    Each panel's legend sits under it, out of the curves; unless ``ylim`` is given, the
    error axis fits every curve after the first :data:`CIFAR_SKIP` of training.
    """
    set_style()
    n = max(1, len(panels))
    fig, axes = _figure(1, n, squeeze=False)
    width = 0.92 * fig.get_figwidth() / n
    for ax, (panel, runs) in zip(axes[0], panels.items()):
        h = hline.get(panel) if isinstance(hline, Mapping) else hline
        _panel_curves(ax, runs, ylim=ylim, hline=h, hline_label=hline_label,
                      command=_command_for(list(runs or {}), commands, panel), title=panel,
                      skip=CIFAR_SKIP, legend_width=width)
    if not panels:
        placeholder(axes[0][0], _command_for([], commands))
    _suptitle(fig, title)
    _style_key(fig, repeats=_has_repeats(panels), failures=_has_failures(panels))
    add_source_note(fig, panels)
    return fig


# --------------------------------------------------------------------------- IM curve panels


@dataclass(frozen=True)
class CurveLook:
    """How :func:`fig_curve_panels` lays out and labels its panels (not what it draws).

    Two presets reproduce the two IM curve figures of the course exactly:
    :data:`PANELS_LOOK` (the multi-panel IM Fig. 3/4/6 figures) and :data:`SINGLE_LOOK`
    (the one-panel IM Fig. 1 figure of :func:`fig_im_curves`).
    """

    panel_title_size: float | None = 14  #: None: panel names are not drawn
    legend_size: float = 10
    merge_legend: bool = False  #: one legend entry per distinct label
    x_bins: int | None = 5  #: at most this many x intervals (MaxNLocator); None: matplotlib's default
    headroom: float = 1.2  #: error axis top = headroom x the highest late test error
    test_key: str = "solid, left axis"  #: key text: "test error (<test_key>)"
    train_key: str = "dashed, right axis"  #: key text: "training loss (<train_key>)"
    conventions_key: bool = False  #: add the band / "run failed here" entries to the key
    key_reserve: float = 1.05  #: inches kept free at the top for the title and the key
    key_handlelength: float | None = None
    key_columnspacing: float | None = None
    pads: tuple[float, float] = (0.08, 0.12)  #: constrained-layout (h_pad, w_pad)
    key_when_empty: bool = True  #: draw the key when no panel has runs


#: IM Fig. 3/4/6 panels (``experiments.im_table1``, ``im_table2``, ``im_fig6``).
PANELS_LOOK = CurveLook()
#: IM Fig. 1: one wide panel, the R-figures' key with its band/failure entries.
SINGLE_LOOK = CurveLook(panel_title_size=None, legend_size=12, merge_legend=True, x_bins=None, headroom=1.15,
                        test_key="solid", train_key="dashed", conventions_key=True, key_reserve=0.55,
                        key_handlelength=2.6, key_columnspacing=1.6, pads=(0.06, 0.08), key_when_empty=False)


def _curve_panel(ax: Axes, runs: Mapping[str, Sequence[Any]], *, train_loss: bool, reference: str | None,
                 ylim: tuple[float, float] | None, loss_ylim: tuple[float, float] | None, look: CurveLook) -> None:
    """One IM panel: test error solid on ``ax``, training loss dashed on a twin axis."""
    ax2 = ax.twinx() if train_loss else None
    if ax2 is not None:
        ax2.grid(False)
    handles: list[Line2D] = []
    k = 0
    for name, recs in runs.items():
        recs = _flatten(recs)
        if name == reference:
            color: Any = REFERENCE_COLOR
        else:
            color = PALETTE[k % len(PALETTE)]
            k += 1
        handles += plot_curves(ax, recs, metric="error", label=name, color=color, parts=("test",))
        if ax2 is not None and recs:
            plot_curves(ax, recs, metric="loss", label=name, color=color, parts=("train",), train_ax=ax2)
    _auto_ylim(ax, ylim, headroom=look.headroom)
    if look.x_bins is not None:
        ax.xaxis.set_major_locator(MaxNLocator(look.x_bins))
    ax.set_xlabel("iter. (1e4)")
    ax.set_ylabel("test error (%)  [solid]")
    if ax2 is not None:
        if loss_ylim is not None:
            ax2.set_ylim(*loss_ylim)
        else:
            ax2.set_ylim(bottom=0)
        ax2.set_ylabel("training loss  [dashed]")
    if look.merge_legend:
        first: dict[str, Line2D] = {}
        for h in handles:
            first.setdefault(h.get_label(), h)
        handles = list(first.values())
    (ax2 or ax).legend(handles=handles, loc="upper right", fontsize=look.legend_size, framealpha=0.92)


def fig_curve_panels(
    panels: Mapping[str, Mapping[str, Sequence[Any]]],
    *,
    title: str,
    commands: Mapping[str, str] | str | None = None,
    note: str | None = None,
    train_loss: bool = True,
    ncols: int | None = None,
    reference: str | None = None,
    ylim: tuple[float, float] | None = None,
    loss_ylim: tuple[float, float] | None = None,
    look: CurveLook = PANELS_LOOK,
) -> Figure:
    """IM Fig. 1/3/4/6: panels of named nets, test error solid (left axis) and, with
    ``train_loss``, training loss dashed (right axis), one colour per net.

    ``panels`` maps a panel title to {legend name: runs}. Repeats are drawn as the median
    with a min-max band (IM reports the median of 5 runs); failed runs are drawn up to
    where they stopped. ``reference`` names a net drawn in grey in every panel it appears
    in (the original ResNet). The error axis runs from 0 to ``look.headroom`` times the
    highest test error after the first fifth of training, unless ``ylim`` is given;
    ``loss_ylim`` fixes the loss axis. An empty panel shows "not yet recorded — run:"
    with ``commands`` (one string, or looked up by panel or net name). ``note`` is added
    to the source footer. ``ncols`` defaults to up to 3 panels per row.
    """
    set_style()
    n = max(1, len(panels))
    ncols = ncols or min(n, 3)
    nrows = math.ceil(n / ncols)
    fig, axes = _figure(nrows, ncols, figsize=FIGSIZE_WIDE if nrows == 1 else FIGSIZE_TALL, squeeze=False)
    fig.get_layout_engine().set(h_pad=look.pads[0], w_pad=look.pads[1])
    _suptitle(fig, title)
    flat = [ax for row in axes for ax in row]
    for ax in flat[len(panels):]:
        ax.set_visible(False)
    for ax, (panel, runs) in zip(flat, panels.items()):
        if look.panel_title_size is not None:
            ax.set_title(panel, fontsize=look.panel_title_size)
        if _is_empty(runs):
            placeholder(ax, _command_for(list(runs or {}), commands, panel))
            continue
        _curve_panel(ax, runs, train_loss=train_loss, reference=reference, ylim=ylim, loss_ylim=loss_ylim,
                     look=look)
    if look.key_when_empty or not all(_is_empty(r) for r in panels.values()):
        extra = dict(repeats=_has_repeats(panels), failures=_has_failures(panels)) if look.conventions_key else {}
        _style_key(fig, test_style=look.test_key, train="training loss" if train_loss else None,
                   train_style=look.train_key, reserve=look.key_reserve, handlelength=look.key_handlelength,
                   columnspacing=look.key_columnspacing, **extra)
    add_source_note(fig, panels, extra=note)
    return fig


def fig_im_curves(
    records_by_name: Mapping[str, Sequence[Any]],
    *,
    title: str,
    commands: Mapping[str, str] | str | None = None,
    ylim: tuple[float, float] | None = None,
    loss_ylim: tuple[float, float] | None = None,
) -> Figure:
    """IM Fig. 1 style, one panel: test error solid (left axis), training loss dashed
    (right axis), one colour per net; repeats as median + min-max band ("median of 5").
    The one-panel case of :func:`fig_curve_panels` with :data:`SINGLE_LOOK`."""
    return fig_curve_panels({"": records_by_name or {}}, title=title, commands=commands, ylim=ylim,
                            loss_ylim=loss_ylim, look=SINGLE_LOOK)
