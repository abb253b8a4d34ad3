"""R-Fig. 6 and R-Table 6: plain nets and ResNets of 20-110 layers, ResNet-110 vs 1202 (notebook 03)."""

from __future__ import annotations

import math

import pandas as pd

from .. import paper, plots
from .arms import PLAIN, RESNET
from .core import Arm, Collected, Drawn, Experiment
from .tables import arm_params_m, final_stats, series


ARMS: tuple[Arm, ...] = (*PLAIN.values(), *RESNET.values())


def draw(c: Collected) -> Drawn:
    panels = {
        "plain nets": series(c, [PLAIN[d] for d in (20, 32, 44, 56)]),
        "ResNets": series(c, [RESNET[d] for d in (20, 32, 44, 56, 110)]),
        "ResNet-110 vs ResNet-1202": series(c, [RESNET[110], RESNET[1202]]),
    }
    fig = plots.fig_cifar_training(panels, commands=c.command(), title="Training on CIFAR-10 (R-Fig. 6)")
    table = r_table6(c)
    note = (f"paper: R-Table 6; ResNet-110 best of 5 runs (mean±std "
            f"{paper.R_TABLE6_RESNET110_MEAN_STD[0]}±{paper.R_TABLE6_RESNET110_MEAN_STD[1]})")
    table_fig = plots.fig_error_table(table, title="CIFAR-10 test error, paper vs ours (R-Table 6)", note=note,
                                      records=c.all_records or None)
    return Drawn({"r_fig6_cifar_training": fig, "r_table6_cifar_error": table_fig}, {"r_table6_cifar_error": table})


def r_table6(c: Collected) -> pd.DataFrame:
    """R-Table 6 beside ours: one row per net of R-Fig. 6."""
    rows = []
    for arm in [*PLAIN.values(), *RESNET.values()]:
        s = final_stats(c.records.get(arm.key, []))
        rows.append({"model": arm.label, "params (M)": arm_params_m(arm),
                     "paper params (M)": paper.CIFAR_PARAMS_M.get(arm.model, math.nan),
                     "paper error (%)": paper.R_TABLE6_ERROR.get(arm.model, math.nan),
                     "ours median (%)": s["median"], "ours min-max": s["minmax"], "runs": s["runs"],
                     "status": s["status"]})
    return pd.DataFrame(rows)


EXPERIMENT = Experiment("r-fig6", "R-Fig. 6 / R-Table 6: plain nets, ResNets, ResNet-110 vs 1202 on CIFAR-10",
                        "03_residual_learning_cifar.ipynb", ARMS, draw)
