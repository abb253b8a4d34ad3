"""The one slide-friendly style of every figure: theme, sizes, palette, saving, footers,
titles, figure keys and the "not yet recorded" placeholder.

Paper references use the course convention: ``R-`` for He et al. 2015, "Deep Residual
Learning for Image Recognition", and ``IM-`` for He et al. 2016, "Identity Mappings in
Deep Residual Networks".
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .records import _config, _flatten, _label, _status, _summary

__all__ = [
    "FIGSIZE_WIDE", "FIGSIZE_HALF", "FIGSIZE_TALL", "PALETTE", "RUN_COMMAND",
    "set_style", "save_figure", "source_note", "add_source_note", "placeholder",
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

#: Metadata that would make two saves of the same figure differ (a timestamp) or tie the
#: bytes to the installed matplotlib: left out, so re-running writes byte-identical files.
PNG_METADATA: dict[str, Any] = {"Software": None}
PDF_METADATA: dict[str, Any] = {"CreationDate": None}

_FOOTER_SIZE = 10
_FOOTER_STRIP = 0.035


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
    """Write ``<figures_dir>/<name>.png`` (200 dpi) and ``<name>.pdf``; return both paths.

    Deterministic: neither file carries a creation date or the matplotlib version
    (:data:`PNG_METADATA`, :data:`PDF_METADATA`), so saving the same figure again writes
    the same bytes.
    """
    out = Path(figures_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=200, metadata=dict(PNG_METADATA))
    fig.savefig(paths[1], metadata=dict(PDF_METADATA))
    return paths


# --------------------------------------------------------------------------- footers


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _join(values: Iterable[str]) -> str:
    vals = sorted({v for v in values if v})
    return " / ".join(vals)


def _seed_text(recs: list[Any], cfgs: list[dict[str, Any]]) -> str:
    """"1 seed", "5 seeds each" or "1-3 seeds per net"."""
    seeds: dict[str, set[Any]] = {}
    for r, c in zip(recs, cfgs):
        seeds.setdefault(_label(r), set()).add(c.get("seed", id(r)))
    counts = sorted({len(v) for v in seeds.values()})
    if len(counts) == 1:
        return _plural(counts[0], "seed") + (" each" if len(seeds) > 1 and counts[0] > 1 else "")
    return f"{counts[0]}-{counts[-1]} seeds per net"


def _environment_text(sums: list[dict[str, Any]]) -> str:
    """"; torch 2.5.1 on <device> in fp32", or "" when the runs say nothing of it."""
    torch_v = _join(str(s.get("torch_version") or "") for s in sums)
    # records written before the trainer said "1 thread" read "1 threads": the same device
    device = _join(re.sub(r"\b1 threads\b", "1 thread", str(s.get("device") or "")) for s in sums)
    precision = _join(str(s.get("precision") or "") for s in sums)
    if not (torch_v or device):
        return ""
    return "; " + " ".join(p for p in (f"torch {torch_v}" if torch_v else "", f"on {device}" if device else "",
                                       f"in {precision}" if precision else "") if p)


def source_note(records: Any) -> str:
    """Footer text saying what produced the numbers of a figure.

    ``records`` may be a record, a list, or (nested) dicts of lists. Example:
    ``"ours: CIFAR-10 (JPEG copy), quick profile, 1 seed; torch 2.14.1 on CPU (x86_64, 1 thread) in fp32"``:
    the data source, profile, seeds, torch, device with its threads, and precision.
    """
    recs = _flatten(records)
    if not recs:
        return "ours: no runs recorded yet"
    sums = [_summary(r) for r in recs]
    cfgs = [_config(r) for r in recs]
    data = _join(str(s.get("data_source") or c.get("dataset") or "") for s, c in zip(sums, cfgs))
    profiles = _join(str(s.get("profile") or c.get("profile") or "") for s, c in zip(sums, cfgs))
    parts = [p for p in (data, f"{profiles} profile" if profiles else "", _seed_text(recs, cfgs)) if p]
    text = "ours: " + ", ".join(parts) + _environment_text(sums)
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


# --------------------------------------------------------------------------- figure, title, key


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


def _top_key(fig: Figure, handles: Sequence[Any], *, fontsize: float = 12, reserve: float = 0.55,
             handlelength: float | None = 2.6, columnspacing: float | None = 1.6) -> None:
    """A one-line figure legend just below the suptitle; the panels move down to make room.

    ``reserve`` is the height in inches kept free at the top (the key's strip); ``None``
    for ``handlelength``/``columnspacing`` means matplotlib's default.
    """
    height = fig.get_figheight()
    title_h = 0.55 / height  # suptitle strip, figure fraction
    key_h = reserve / height
    fig.legend(handles=list(handles), loc="upper left", bbox_to_anchor=(0.005, 1 - title_h), ncol=len(handles),
               frameon=False, fontsize=fontsize, handlelength=handlelength, columnspacing=columnspacing,
               borderaxespad=0.0)
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
