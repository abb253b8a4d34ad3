"""R-Fig. 4 / R-Table 2 at CIFAR scale: ImageNet-style plain/ResNet-18/34 (notebook 05)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import paper, plots
from .arms import IMAGENET
from .core import Collected, Drawn, Experiment
from .tables import arm_params_m, final_stats, series


ARMS = (IMAGENET["plain18"], IMAGENET["plain34"], IMAGENET["resnet18"], IMAGENET["resnet34A"])


def _rank_text(deeper: float, shallower: float) -> str:
    if not (np.isfinite(deeper) and np.isfinite(shallower)):
        return "—"
    return "34 better" if deeper < shallower else "34 worse" if deeper > shallower else "equal"


def draw(c: Collected) -> Drawn:
    plain = [IMAGENET["plain18"], IMAGENET["plain34"]]
    res = [IMAGENET["resnet18"], IMAGENET["resnet34A"]]
    panels = {"plain-18 / plain-34": series(c, plain), "ResNet-18 / ResNet-34 (option A)": series(c, res)}
    fig = plots.fig_cifar_training(panels, commands=c.command(),
                                   title="R-Fig. 4 stand-in: ImageNet-style 18/34-layer nets trained on CIFAR-10")
    rows = []
    for pair in (plain, res):
        stats = [final_stats(c.records.get(a.key, [])) for a in pair]
        for i, (arm, s) in enumerate(zip(pair, stats)):
            p = paper.R_TABLE2_TOP1.get(arm.model, math.nan)
            rows.append({"model": arm.label, "params (M)": arm_params_m(arm),
                         "paper ImageNet top-1 (%)": p, "ours CIFAR-10 (%)": s["median"],
                         "ours min-max": s["minmax"],
                         "18→34 paper": "" if i == 0 else _rank_text(
                             p, paper.R_TABLE2_TOP1.get(pair[0].model, math.nan)),
                         "18→34 ours": "" if i == 0 else _rank_text(s["median"], stats[0]["median"]),
                         "runs": s["runs"], "status": s["status"]})
    table = pd.DataFrame(rows)
    note = "paper: ImageNet top-1 (R-Table 2); ours: CIFAR-10. Different datasets: compare the ordering only"
    table_fig = plots.fig_error_table(table, title="R-Table 2 beside a CIFAR-10 stand-in", note=note,
                                      records=c.all_records or None)
    return Drawn({"r_fig4_imagenet_standin": fig, "r_table2_imagenet_standin": table_fig},
                 {"r_table2_imagenet_standin": table})


EXPERIMENT = Experiment("r-fig4", "R-Fig. 4 / R-Table 2 stand-in: ImageNet-style plain/ResNet-18/34 on CIFAR-10",
                        "05_imagenet_architectures.ipynb", ARMS, draw)
