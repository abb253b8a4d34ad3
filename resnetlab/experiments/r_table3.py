"""R-Table 3 at CIFAR scale: ResNet-34 with shortcut options A/B/C, and plain-34 (notebook 05)."""

from __future__ import annotations

import math

import pandas as pd

from .. import paper, plots
from .arms import IMAGENET
from .core import Collected, Drawn, Experiment
from .tables import arm_params_m, final_stats


ARMS = (IMAGENET["plain34"], IMAGENET["resnet34A"], IMAGENET["resnet34B"], IMAGENET["resnet34C"])


def draw(c: Collected) -> Drawn:
    arms = list(ARMS)
    keys = ["imagenet-plain34", "imagenet-resnet34 (A)", "imagenet-resnet34 (B)", "imagenet-resnet34 (C)"]
    rows = []
    for arm, key in zip(arms, keys):
        s = final_stats(c.records.get(arm.key, []))
        top1, top5 = paper.R_TABLE3_ERROR.get(key, (math.nan, math.nan))
        rows.append({"model": arm.label, "shortcut": arm.options.get("shortcut", "none"),
                     "params (M)": arm_params_m(arm), "paper ImageNet top-1 (%)": top1,
                     "paper ImageNet top-5 (%)": top5, "ours CIFAR-10 (%)": s["median"],
                     "ours min-max": s["minmax"], "runs": s["runs"], "status": s["status"]})
    table = pd.DataFrame(rows)
    note = "paper: ImageNet (R-Table 3); ours: CIFAR-10. Different datasets: compare the ordering only"
    fig = plots.fig_error_table(table, title="Shortcut options A/B/C, paper vs a CIFAR-10 stand-in (R-Table 3)",
                                note=note, records=c.all_records or None)
    return Drawn({"r_table3_shortcuts": fig}, {"r_table3_shortcuts": table})


EXPERIMENT = Experiment("r-table3", "R-Table 3 stand-in: ResNet-34 shortcut options A/B/C (+ plain-34) on CIFAR-10",
                        "05_imagenet_architectures.ipynb", ARMS, draw)
