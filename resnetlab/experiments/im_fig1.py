"""IM Fig. 1: ResNet-1001 on CIFAR-10, original vs pre-activation (notebook 08), and the measured memory it needs."""

from __future__ import annotations

import re
from pathlib import Path

from .. import plots
from ..paths import project_root
from .arms import deep_arm
from .core import Collected, Drawn, Experiment
from .tables import profile_note, records_of


ARMS = (deep_arm("original", 1001, "cifar10"), deep_arm("full_preact", 1001, "cifar10"))


def draw(collected: Collected) -> Drawn:
    runs = {"ResNet-1001, original": records_of(collected, "cifar10-original-1001"),
            "ResNet-1001, pre-activation": records_of(collected, "cifar10-full_preact-1001")}
    fig = plots.fig_im_curves(runs, title="ResNet-1001 on CIFAR-10: original vs pre-activation (IM Fig. 1)",
                              commands=collected.command())
    if collected.profile == "smoke":
        fig.text(0.99, 0.005, profile_note(collected), ha="right", va="bottom", fontsize=10, color="#c0392b")
    return Drawn(figures={"im_fig1_resnet1001": fig})


def memory_results(root: str | Path | None = None) -> str:
    """The measured peak-memory figures from ``benchmarks/RESULTS.md`` (where the output of
    ``python -m resnetlab bench --memory`` is recorded): the sections whose heading mentions memory, or
    a line saying they are not measured yet. Never a number that was not measured."""
    path = Path(root or project_root()) / "benchmarks" / "RESULTS.md"
    missing = ("Peak memory not yet measured in this checkout: run `python -m resnetlab bench --memory` on a GPU "
               "and record its figures in benchmarks/RESULTS.md.")
    if not path.exists():
        return missing
    lines = path.read_text().splitlines()
    out, keep, level = [], False, 0
    for line in lines:
        m = re.match(r"^(#+)\s+(.*)", line)
        if m:
            if keep and len(m.group(1)) <= level:
                keep = False
            if not keep and "memory" in m.group(2).lower():
                keep, level = True, len(m.group(1))
        if keep:
            out.append(line)
    if not out:
        out = [ln for ln in lines if "memory" in ln.lower() or "GiB" in ln or "GB" in ln]
    return "\n".join(out).strip() or missing


EXPERIMENT = Experiment("im-fig1", "IM Fig. 1: ResNet-1001, original vs pre-activation", "08_past_1000_layers",
                        ARMS, draw)
