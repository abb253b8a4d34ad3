"""The VGG depth wall: VGG-11/13/16/19 on CIFAR-10 without and with BN (notebook 01)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import paper, plots
from .arms import VGG_ARMS, VGG_DEPTHS
from .core import Collected, Drawn, Experiment
from .tables import arm_params_m, final_stats


def _lines(c: Collected) -> dict[str, plots.DepthLine]:
    """The numbers of the two lines, VGG without and with BN (a failed run is marked, never dropped)."""
    lines = {}
    for bn in (False, True):
        line = plots.DepthLine()
        for d in VGG_DEPTHS:
            recs = c.of(VGG_ARMS[(d, bn)].key)
            errs = [r.final_test_error for r in recs if not r.failed and np.isfinite(r.final_test_error)]
            if errs:
                line.depths.append(d)
                line.medians.append(float(np.median(errs)))
                line.lows.append(min(errs))
                line.highs.append(max(errs))
            if any(r.failed for r in recs):
                line.failed.append(d)
            if not recs:
                line.missing.append(d)
        lines["VGG + BN" if bn else "VGG (no BN, as in the VGG paper)"] = line
    return lines


def draw(c: Collected) -> Drawn:
    rows = []
    for (d, bn), arm in VGG_ARMS.items():
        s = final_stats(c.records.get(arm.key, []))
        rows.append({"model": arm.label, "BN": "yes" if bn else "no",
                     "params (M, CIFAR head)": arm_params_m(arm),
                     "VGG paper params (M, ImageNet head)": paper.VGG_TABLE2_PARAMS_M.get(arm.model, math.nan),
                     "ours error (%)": s["median"], "ours min-max": s["minmax"], "runs": s["runs"],
                     "status": s["status"]})
    fig = plots.fig_error_vs_depth(_lines(c), VGG_DEPTHS, title="The depth wall: VGG on CIFAR-10, without and with BN",
                                   command=c.command(), records=c.all_records,
                                   note=f"lr {paper.VGG_RECIPE['lr']} (VGG Sec. 3.1), otherwise the CIFAR recipe; "
                                        f"x = run failed (stuck at chance or diverged)")
    return Drawn({"vgg_depth_wall": fig}, {"vgg_depth_wall": pd.DataFrame(rows)})


EXPERIMENT = Experiment("vgg-depth", "VGG-11/13/16/19 on CIFAR-10 without and with BN (the depth wall)",
                        "01_going_deeper_vgg.ipynb", tuple(VGG_ARMS.values()), draw)
