"""R-Fig. 1: plain-20 vs plain-56 on CIFAR-10, the degradation problem (notebook 02)."""

from __future__ import annotations

import pandas as pd

from .. import plots
from .arms import PLAIN
from .core import Collected, Drawn, Experiment
from .tables import arm_params_m, final_stats, series


ARMS = (PLAIN[20], PLAIN[56])


def draw(c: Collected) -> Drawn:
    arms = ARMS
    fig = plots.fig_degradation(series(c, arms), commands=c.command(),
                                title="Deeper plain nets train worse: plain-20 vs plain-56 on CIFAR-10 (R-Fig. 1)")
    rows = []
    for arm, claim in zip(arms, ("(reference)", "higher training and test error than plain-20")):
        s = final_stats(c.records.get(arm.key, []))
        rows.append({"model": arm.label, "params (M)": arm_params_m(arm), "paper (R-Fig. 1)": claim,
                     "ours training error (%)": s["train_median"], "ours test error (%)": s["median"],
                     "ours test min-max": s["minmax"], "runs": s["runs"], "status": s["status"]})
    return Drawn({"r_fig1_degradation": fig}, {"r_fig1_final_errors": pd.DataFrame(rows)})


EXPERIMENT = Experiment("r-fig1", "R-Fig. 1: plain-20 vs plain-56 on CIFAR-10 (degradation)",
                        "02_degradation_problem.ipynb", ARMS, draw)
