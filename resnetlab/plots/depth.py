"""Final test error against depth: the VGG depth wall (notebook 01), handed numbers only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .style import PALETTE, add_source_note, placeholder, set_style


@dataclass
class DepthLine:
    """One line of the figure: at each recorded depth the median and min-max of the final
    test errors of its completed runs; depths where a run failed; depths not recorded."""

    depths: list[int] = field(default_factory=list)
    medians: list[float] = field(default_factory=list)
    lows: list[float] = field(default_factory=list)
    highs: list[float] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)


def fig_error_vs_depth(lines: Mapping[str, DepthLine], depths: Sequence[int], *, title: str, command: str,
                       records: Any = None, note: str | None = None, chance: float = 90.0) -> Figure:
    """One line per ``lines`` entry (e.g. VGG without and with BN); failed runs as a red x
    near the top labelled "failed"; unrecorded depths named in the legend; a placeholder
    with ``command`` when nothing is recorded."""
    set_style()
    fig, ax = plt.subplots(figsize=(10.67, 6.0), layout="constrained")
    fig.get_layout_engine().set(rect=(0, 0.05, 1, 0.95))  # a strip at the bottom for the source note
    ax.set_title(title, loc="left")
    any_point, top = False, 100.0
    for j, (label, line) in enumerate(lines.items()):
        color = PALETTE[j]
        if line.missing:
            label += f" — not recorded: {', '.join(map(str, line.missing))}"
        if line.depths:
            ys = np.array(line.medians)
            ax.errorbar(line.depths, ys, yerr=[ys - line.lows, np.array(line.highs) - ys], color=color, lw=2.6,
                        marker="o", ms=8, capsize=4, label=label)
            any_point = True
        else:
            ax.plot([], [], color=color, lw=2.6, marker="o", label=label)
        for d in line.failed:
            ax.plot([d], [top - 3], ls="none", marker="x", ms=14, mew=3.5, color="#c0392b", zorder=5)
            ax.annotate("failed", (d, top - 3), textcoords="offset points", xytext=(0, -20 - 14 * j), ha="center",
                        color=color, fontsize=12, fontweight="bold")
            any_point = True
    if not any_point:
        placeholder(ax, command)
    else:
        ax.set_xticks(list(depths), [f"VGG-{d}" for d in depths])
        ax.set_xlim(depths[0] - 1.5, depths[-1] + 1.5)
        ax.set_ylim(0, top)
        ax.set_xlabel("depth (weight layers)")
        ax.set_ylabel("final test error (%)")
        ax.axhline(chance, color="0.4", ls=":", lw=1.5)
        ax.text(depths[0] - 1.3, chance + 1, "chance (10 classes)", fontsize=11, color="0.4", va="bottom")
        ax.legend(loc="center left", fontsize=11, framealpha=0.92)
    add_source_note(fig, records, extra=note)
    return fig


__all__ = ["DepthLine", "fig_error_vs_depth"]
