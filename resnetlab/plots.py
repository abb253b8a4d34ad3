"""One function per figure of the two ResNet papers, in one slide-friendly style.

Paper references use the course convention: ``R-`` for He et al. 2015, "Deep
Residual Learning for Image Recognition", and ``IM-`` for He et al. 2016,
"Identity Mappings in Deep Residual Networks".

Every ``fig_*`` function calls :func:`set_style`, builds and returns a
:class:`matplotlib.figure.Figure`; it neither saves nor shows it (use
:func:`save_figure`). Training figures draw from recorded runs (duck-typed
``resnetlab.runs.Record``: ``label``, ``config``, ``summary``, ``failed``,
``history``) and always carry a footer, :func:`source_note`, saying what
trained the curves. Nothing is ever dropped silently: failed runs are drawn up
to where they stopped and marked, and panels without runs say how to make them.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

__all__ = [
    "FIGSIZE_WIDE", "FIGSIZE_HALF", "FIGSIZE_TALL", "PALETTE", "RUN_COMMAND",
    "set_style", "save_figure", "source_note", "add_source_note", "placeholder", "plot_curves",
    "fig_degradation", "fig_cifar_training", "fig_im_curves", "fig_layer_responses",
    "fig_complexity", "fig_error_table", "fig_signal_propagation", "fig_receptive_field",
    "fig_bottleneck_cost",
]

#: A full 16:9 slide (PowerPoint/Keynote widescreen is 13.33 x 7.5 inches).
FIGSIZE_WIDE: tuple[float, float] = (13.33, 7.5)
#: Half a 16:9 slide (one of two columns).
FIGSIZE_HALF: tuple[float, float] = (6.67, 5.0)
#: A full-width figure with two stacked rows of panels.
FIGSIZE_TALL: tuple[float, float] = (13.33, 8.5)

#: Colour cycle (colour-blind safe); the i-th net of a panel always gets colour i.
PALETTE: list[tuple[float, float, float]] = list(sns.color_palette("colorblind", 10))

#: How to record a missing run (the ``train`` command of :mod:`resnetlab.cli`); ``{what}`` is
#: replaced by each net a panel is waiting for, one command per line. Figures drawn for an
#: experiment should pass its own command (``commands=``), e.g. ``python -m resnetlab reproduce ...``.
RUN_COMMAND: str = "python -m resnetlab train {what}"

_FOOTER_SIZE = 10
_TEST_LW = 2.6
_TRAIN_LW = 1.2
_ITER_UNIT = 1e4


# --------------------------------------------------------------------------- style & saving


def set_style() -> None:
    """A seaborn "whitegrid" theme with fonts readable on a 16:9 slide (used by every figure)."""
    sns.set_theme(style="whitegrid", context="notebook", palette=PALETTE)
    plt.rcParams.update(
        {
            "font.size": 14,
            "axes.titlesize": 16,
            "axes.titleweight": "bold",
            "axes.labelsize": 15,
            "xtick.labelsize": 13,
            "ytick.labelsize": 13,
            "legend.fontsize": 12,
            "legend.title_fontsize": 12,
            "figure.titlesize": 18,
            "figure.titleweight": "bold",
            "axes.edgecolor": "0.3",
            "grid.color": "0.88",
            "lines.solid_capstyle": "round",
            "savefig.bbox": "tight",
            "savefig.pad_inches": 0.15,
            "pdf.fonttype": 42,  # editable text in the PDF
            "ps.fonttype": 42,
        }
    )


def save_figure(fig: Figure, name: str, figures_dir: str | Path = "figures") -> list[Path]:
    """Write ``<figures_dir>/<name>.png`` (200 dpi) and ``<name>.pdf``; return both paths."""
    out = Path(figures_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=200)
    fig.savefig(paths[1])
    return paths


# --------------------------------------------------------------------------- records


def _flatten(records: Any) -> list[Any]:
    """Records from a record, a list of them, or (nested) dicts of lists."""
    if records is None:
        return []
    if isinstance(records, Mapping):
        return [r for v in records.values() for r in _flatten(v)]
    if isinstance(records, (list, tuple, set)) or (
        isinstance(records, Iterable) and not isinstance(records, (str, bytes, pd.DataFrame))
    ):
        return [r for v in records for r in _flatten(v)]
    return [records]


def _summary(record: Any) -> dict[str, Any]:
    return dict(getattr(record, "summary", None) or {})


def _config(record: Any) -> dict[str, Any]:
    return dict(getattr(record, "config", None) or {})


def _status(record: Any) -> str:
    """The summary status ("complete", "failed", "running", "interrupted", ...); "failed" if ``record.failed``."""
    if getattr(record, "failed", False):
        return "failed"
    return str(_summary(record).get("status") or "complete")


def _failure_reason(record: Any, width: int = 38) -> str:
    reason = str(_summary(record).get("failure_reason") or "unknown reason").strip().splitlines()[0]
    return reason if len(reason) <= width else reason[: width - 1] + "…"


def _label(record: Any) -> str:
    label = getattr(record, "label", None)
    if label:
        return str(label)
    return str(_config(record).get("model", "run"))


def _history(record: Any) -> pd.DataFrame:
    h = getattr(record, "history", None)
    if h is None:
        return pd.DataFrame(columns=["iteration"])
    return h if isinstance(h, pd.DataFrame) else pd.DataFrame(h)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _join(values: Iterable[str]) -> str:
    vals = sorted({v for v in values if v})
    return " / ".join(vals)


def source_note(records: Any) -> str:
    """Footer text saying what produced the numbers of a figure.

    ``records`` may be a record, a list, or (nested) dicts of lists. Example:
    ``"ours: CIFAR-10 (JPEG copy), quick profile, 1 seed; torch 2.14.1 on CPU (x86_64, 1 threads) in fp32"``:
    the data source, profile, seeds, torch, device with its threads, and precision.
    """
    recs = _flatten(records)
    if not recs:
        return "ours: no runs recorded yet"
    sums = [_summary(r) for r in recs]
    cfgs = [_config(r) for r in recs]
    data = _join(str(s.get("data_source") or c.get("dataset") or "") for s, c in zip(sums, cfgs))
    profiles = _join(str(s.get("profile") or c.get("profile") or "") for s, c in zip(sums, cfgs))
    seeds: dict[str, set[Any]] = {}
    for r, c in zip(recs, cfgs):
        seeds.setdefault(_label(r), set()).add(c.get("seed", id(r)))
    counts = sorted({len(v) for v in seeds.values()})
    if len(counts) == 1:
        seed_text = _plural(counts[0], "seed") + (" each" if len(seeds) > 1 and counts[0] > 1 else "")
    else:
        seed_text = f"{counts[0]}-{counts[-1]} seeds per net"
    parts = [p for p in (data, f"{profiles} profile" if profiles else "", seed_text) if p]
    text = "ours: " + ", ".join(parts)
    torch_v = _join(str(s.get("torch_version") or "") for s in sums)
    device = _join(str(s.get("device") or "") for s in sums)
    precision = _join(str(s.get("precision") or "") for s in sums)
    if torch_v or device:
        text += "; " + " ".join(p for p in (f"torch {torch_v}" if torch_v else "", f"on {device}" if device else "",
                                            f"in {precision}" if precision else "") if p)
    n_failed = sum(_status(r) == "failed" for r in recs)
    n_running = sum(_status(r) not in ("complete", "failed") for r in recs)
    if n_failed:
        text += f"; {_plural(n_failed, 'run')} failed"
    if n_running:
        text += f"; {_plural(n_running, 'run')} not finished"
    return text


def add_source_note(fig: Figure, records: Any, extra: str | None = None) -> None:
    """Put :func:`source_note` (and ``extra``) in the bottom-left footer of ``fig``."""
    text = source_note(records)
    if extra:
        text += "  |  " + extra
    fig.text(0.01, 0.005, text, ha="left", va="bottom", fontsize=_FOOTER_SIZE, color="0.35",
             gid="source_note")


_FOOTER_STRIP = 0.035


def _figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] = FIGSIZE_WIDE,
            footer: bool = True, **kw: Any) -> tuple[Figure, Any]:
    """A constrained-layout figure; ``footer`` keeps a strip at the bottom free for the source note."""
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, layout="constrained", **kw)
    rect = (0, _FOOTER_STRIP, 1, 1 - _FOOTER_STRIP) if footer else (0, 0, 1, 1)
    fig.get_layout_engine().set(rect=rect, h_pad=0.06, w_pad=0.08)
    fig._resnetlab_footer = footer  # type: ignore[attr-defined]
    return fig, axes


def _suptitle(fig: Figure, title: str) -> None:
    fig.suptitle(title, x=0.01, ha="left")


def _top_key(fig: Figure, handles: Sequence[Any], *, fontsize: float = 12) -> None:
    """A one-line figure legend just below the suptitle; the panels move down to make room."""
    height = fig.get_figheight()
    title_h = 0.55 / height  # suptitle strip, figure fraction
    key_h = 0.55 / height
    fig.legend(handles=list(handles), loc="upper left", bbox_to_anchor=(0.005, 1 - title_h), ncol=len(handles),
               frameon=False, fontsize=fontsize, handlelength=2.6, columnspacing=1.6, borderaxespad=0.0)
    engine = fig.get_layout_engine()
    if engine is not None:
        bottom = _FOOTER_STRIP if getattr(fig, "_resnetlab_footer", False) else 0.0
        engine.set(rect=(0, bottom, 1, 1 - key_h - bottom))


# --------------------------------------------------------------------------- placeholders


def _command_for(names: Sequence[str], commands: Mapping[str, str] | str | None, panel: str | None = None) -> str:
    """The command a placeholder shows: ``commands`` (one string, or looked up by panel or
    net name), else :data:`RUN_COMMAND` filled with the nets the panel waits for."""
    if isinstance(commands, str):
        return commands
    if commands:
        for key in (panel, *names):
            if key is not None and key in commands:
                return commands[key]
    return "\n".join(RUN_COMMAND.format(what=n) for n in (names or ["<model>"]))


def placeholder(ax: Axes, command: str | None = None, *, message: str = "not yet recorded") -> None:
    """Shared empty-panel helper: a centred "not yet recorded — run: <command>" message.

    Every figure calls this for a panel that has nothing to show yet, so a notebook
    runs top to bottom before any training has happened. Long commands are wrapped
    to the panel width.
    """
    fig = ax.figure
    width_in = ax.get_position().width * fig.get_figwidth()
    chars = max(18, int(width_in * 72 / (13 * 0.62)) - 4)
    lines = [w for line in (command or "").splitlines()
             for w in textwrap.wrap(line, chars, break_on_hyphens=False, subsequent_indent="  ")]
    body = message if command is None else f"{message} — run:\n" + "\n".join(lines)
    ax.text(0.5, 0.5, body, transform=ax.transAxes, ha="center", va="center", fontsize=13,
            color="0.3", gid="placeholder", linespacing=1.4,
            bbox=dict(boxstyle="round,pad=0.6", facecolor="0.97", edgecolor="0.7", linestyle="--"))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def _is_empty(runs_by_name: Mapping[str, Sequence[Any]] | None) -> bool:
    return not runs_by_name or all(len(_flatten(v)) == 0 for v in runs_by_name.values())


# --------------------------------------------------------------------------- curves


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
    handles: list[Line2D] = []
    if not recs:
        handles.append(ax.plot([], [], color=color, lw=_TEST_LW, label=f"{base} (not yet recorded)")[0])
        return handles
    train_target = train_ax if train_ax is not None else ax
    ok = [r for r in recs if _status(r) != "failed"]
    failed = [r for r in recs if _status(r) == "failed"]
    unfinished = sorted({_status(r) for r in ok} - {"complete"})  # "running", "interrupted", ...

    if ok:
        hists = [_history(r) for r in ok]
        text = base + (f" (n={len(ok)})" if len(ok) > 1 else "") + "".join(f" ({u})" for u in unfinished)
        labelled = False
        for part, col, target in (("test", test_col, ax), ("train", train_col, train_target)):
            if part not in parts:
                continue
            agg = _aggregate(hists, col)
            if agg is None:
                continue
            style = dict(lw=_TEST_LW, ls="-") if part == "test" else dict(lw=_TRAIN_LW, ls="--")
            line = target.plot(agg["x"], agg["med"], color=color, label=None if labelled else text,
                               gid=f"{part}:{base}", **style)[0]
            if len(ok) > 1:
                target.fill_between(agg["x"], agg["lo"], agg["hi"], color=color, alpha=0.18, lw=0,
                                    gid=f"band:{part}:{base}")
            if not labelled:
                handles.append(line)
                labelled = True
        if not labelled:  # complete but nothing to draw: still list it
            handles.append(ax.plot([], [], color=color, lw=_TEST_LW, label=f"{text} (no data)")[0])

    for r in failed:
        h = _history(r)
        text = _failed_text(base, r)
        last: tuple[Axes, float, float] | None = None
        for part, col, target in (("train", train_col, train_target), ("test", test_col, ax)):
            if part not in parts or col not in h or "iteration" not in h:
                continue
            s = h[["iteration", col]].dropna()
            if s.empty:
                continue
            style = dict(lw=_TEST_LW, ls="-") if part == "test" else dict(lw=_TRAIN_LW, ls="--")
            x = s["iteration"].to_numpy(dtype=float) / _ITER_UNIT
            y = s[col].to_numpy(dtype=float)
            y = np.where(np.isfinite(y), y, np.nan)
            target.plot(x, y, color=color, alpha=0.85, gid=f"failed:{part}:{base}", **style)
            finite = np.flatnonzero(np.isfinite(y))
            if finite.size:
                last = (target, x[finite[-1]], y[finite[-1]])
        if last is not None:
            target, x0, y0 = last
            handles.append(target.plot([x0], [y0], ls="none", marker="x", ms=12, mew=3, color=color,
                                       label=text, gid=f"failed_marker:{base}", zorder=5)[0])
        else:  # failed before logging anything: a legend entry only
            handles.append(ax.plot([], [], ls="none", marker="x", ms=12, mew=3, color=color, label=text,
                                   gid=f"failed_marker:{base}")[0])
    return handles


def _has_repeats(runs_by_name: Any) -> bool:
    if isinstance(runs_by_name, Mapping):
        return any(_has_repeats(v) if isinstance(v, Mapping) else
                   sum(_status(r) != "failed" for r in _flatten(v)) > 1 for v in runs_by_name.values())
    return False


def _has_failures(records: Any) -> bool:
    return any(_status(r) == "failed" for r in _flatten(records))


def _style_key(fig: Figure, *, test: str = "test error", train: str = "training error", test_style: str = "bold",
               repeats: bool = False, failures: bool = False) -> None:
    """Figure-level key above the panels: bold solid = test, thin dashed = training
    (the R-Fig. 1 / R-Fig. 6 caption), plus the band and failure conventions in use."""
    handles: list[Any] = [
        Line2D([], [], color="0.2", lw=_TEST_LW, ls="-", label=f"{test} ({test_style})"),
        Line2D([], [], color="0.2", lw=_TRAIN_LW, ls="--", label=f"{train} (dashed)"),
    ]
    if repeats:
        handles.append(Patch(facecolor="0.2", alpha=0.18, label="median, band = min-max of n runs"))
    if failures:
        handles.append(Line2D([], [], color="0.2", ls="none", marker="x", ms=10, mew=2.5, label="run failed here"))
    _top_key(fig, handles)


def _auto_ylim(ax: Axes, ylim: tuple[float, float] | None, *, skip: float = 0.2, cap: float = 100.0) -> None:
    """Error axes start at 0; unless ``ylim`` is given, the top ignores the first ``skip`` of
    training (where every net is near chance) and failed runs (they may blow up)."""
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
    ax.set_ylim(0, min(cap, max(1.0, top * 1.15)))
    ax.set_xlim(left=0)


def _legend(ax: Axes, **kw: Any) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(loc=kw.pop("loc", "upper right"), framealpha=0.92, fontsize=kw.pop("fontsize", 11), **kw)


def _panel_curves(ax: Axes, runs_by_name: Mapping[str, Sequence[Any]], *, metric: str = "error",
                  parts: Sequence[str] = ("train", "test"), ylim: tuple[float, float] | None = None,
                  hline: float | None = None, hline_label: str | None = None,
                  command: str | None = None, title: str | None = None, ylabel: str | None = None) -> bool:
    """One panel of nets, colour i for the i-th name; a placeholder when it has no runs.
    Returns False if it showed the placeholder."""
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
        _auto_ylim(ax, ylim)
    elif ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel("iter. (1e4)")
    ax.set_ylabel(ylabel or ("error (%)" if metric == "error" else metric))
    _legend(ax)
    return True


# --------------------------------------------------------------------------- training figures


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
    """
    set_style()
    n = max(1, len(panels))
    fig, axes = _figure(1, n, squeeze=False)
    for ax, (panel, runs) in zip(axes[0], panels.items()):
        h = hline.get(panel) if isinstance(hline, Mapping) else hline
        _panel_curves(ax, runs, ylim=ylim, hline=h, hline_label=hline_label,
                      command=_command_for(list(runs or {}), commands, panel), title=panel)
    if not panels:
        placeholder(axes[0][0], _command_for([], commands))
    _suptitle(fig, title)
    _style_key(fig, repeats=_has_repeats(panels), failures=_has_failures(panels))
    add_source_note(fig, panels)
    return fig


def fig_im_curves(
    records_by_name: Mapping[str, Sequence[Any]],
    *,
    title: str,
    commands: Mapping[str, str] | str | None = None,
    ylim: tuple[float, float] | None = None,
    loss_ylim: tuple[float, float] | None = None,
) -> Figure:
    """IM Fig. 1 / Fig. 3 / Fig. 6 style: test error solid (left axis), training loss dashed
    (right axis), one colour per net; repeats as median + min-max band ("median of 5")."""
    set_style()
    fig, ax = _figure(1, 1)
    _suptitle(fig, title)
    if _is_empty(records_by_name):
        placeholder(ax, _command_for(list(records_by_name or {}), commands))
        add_source_note(fig, records_by_name)
        return fig
    ax2 = ax.twinx()
    ax2.grid(False)
    handles: list[Line2D] = []
    for i, (name, recs) in enumerate(records_by_name.items()):
        color = PALETTE[i % len(PALETTE)]
        recs = _flatten(recs)
        handles += plot_curves(ax, recs, metric="error", label=name, color=color, parts=("test",))
        plot_curves(ax, recs, metric="loss", label=name, color=color, parts=("train",), train_ax=ax2)
    _auto_ylim(ax, ylim)
    if loss_ylim is not None:
        ax2.set_ylim(*loss_ylim)
    else:
        ax2.set_ylim(bottom=0)
    ax.set_xlabel("iter. (1e4)")
    ax.set_ylabel("test error (%)  [solid]")
    ax2.set_ylabel("training loss  [dashed]")
    uniq: dict[str, Line2D] = {}
    for hnd in handles:
        uniq.setdefault(hnd.get_label(), hnd)
    ax2.legend(handles=list(uniq.values()), loc="upper right", framealpha=0.92, fontsize=12)
    _style_key(fig, train="training loss", test_style="solid", repeats=_has_repeats(records_by_name),
               failures=_has_failures(records_by_name))
    add_source_note(fig, records_by_name)
    return fig


# --------------------------------------------------------------------------- analysis figures


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
    top.set_xlabel("layer index (original order)")
    bottom.set_xlabel("layer index (sorted by magnitude)")
    ymax = max(top.get_ylim()[1], bottom.get_ylim()[1])
    for ax in (top, bottom):
        ax.set_ylabel("std")
        ax.set_xlim(left=0)
        ax.set_ylim(0, ymax)
    _top_key(fig, top.get_lines(), fontsize=13)
    return fig


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


def fig_complexity(table: pd.DataFrame, *, title: str = "Model complexity: ours vs paper (R-Fig. 3 / R-Table 1)",
                   log: bool | str = "auto") -> Figure:
    """R-Fig. 3 / R-Table 1 complexity: GFLOPs (multiply-adds, left) and parameters (M, right).

    ``table`` columns: ``model, macs_g_ours, macs_g_paper, params_m_ours, params_m_paper``
    (paper columns may be NaN; a ``label`` column, if present, names the bars). Our counts are solid bars, the paper's hatched and
    labelled "paper"; ``log="auto"`` switches to a log axis when values span > 50x.
    """
    set_style()
    fig, (left, right) = _figure(1, 2, footer=False, sharey=True)
    _suptitle(fig, title)
    if table is None or len(table) == 0:
        placeholder(left, None, message="no models counted yet")
        placeholder(right, None, message="no models counted yet")
        return fig
    names = [str(m) for m in table["label" if "label" in table else "model"]]

    def col(name: str) -> np.ndarray:
        if name not in table:
            return np.full(len(table), np.nan)
        return pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=float)

    _paired_bars(left, names, col("macs_g_ours"), col("macs_g_paper"), xlabel="GFLOPs (multiply-adds, 1e9)",
                 color=PALETTE[0], log=log)
    _paired_bars(right, names, col("params_m_ours"), col("params_m_paper"), xlabel="parameters (M)",
                 color=PALETTE[1], log=log)
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
            else:
                if "fail" in " ".join(cells[r - 1]).lower():
                    cell.set_facecolor("#fde2e1")
                else:
                    cell.set_facecolor("#f4f6f7" if r % 2 == 0 else "white")
                if c == 0:
                    cell.get_text().set_ha("left")
                    cell.PAD = 0.03
    if footer:
        text = source_note(records) if records is not None else ""
        if note:
            text = f"{text}  |  {note}" if text else note
        fig.text(0.01, 0.01, text, ha="left", va="bottom", fontsize=_FOOTER_SIZE, color="0.35", gid="source_note")
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


def _human(v: float) -> str:
    """1234567 -> "1.23M"."""
    if not np.isfinite(v):
        return "n/a"
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= div:
            return f"{v / div:.3g}{unit}"
    return f"{v:.3g}"
