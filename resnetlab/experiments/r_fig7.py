"""R-Fig. 7: standard deviation of the 3x3 layers' responses, from the weights of r-fig6's runs (notebook 04)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .. import plots
from .arms import PLAIN, RESNET
from .core import Collected, Drawn, Experiment


ARMS = (PLAIN[20], PLAIN[56], RESNET[20], RESNET[56], RESNET[110])


def _data_hint(c: Collected) -> Any:
    """Where the test set is: ``collected.data``, else ``$RESNETLAB_DATA`` / ``./data``."""
    return c.data


def draw(c: Collected) -> Drawn:
    from ..analysis.responses import record_responses
    from ..runs import DatasetNotFoundError

    arms = list(ARMS)
    stds: dict[str, np.ndarray] = {}
    problems: list[str] = []
    rows = []
    used = []
    for arm in arms:
        recs = [r for r in c.records.get(arm.key, []) if not r.failed]
        failed = [r for r in c.records.get(arm.key, []) if r.failed]
        per_seed = []
        # only seed 0 keeps its weights (experiments.keeps_weights); a run without them is
        # a problem only when no run of the arm has them
        with_weights = [r for r in recs if r.weights_path is not None] or recs
        for r in with_weights:
            try:
                per_seed.append(np.asarray(record_responses(r, _data_hint(c), device=c.device)["stds"]))
                used.append(r)
            except (FileNotFoundError, DatasetNotFoundError) as exc:
                problems.append(f"{arm.label}: {exc}")
        row = {"model": arm.label, "3x3 layers": math.nan, "mean std": math.nan, "median std": math.nan,
               "max std": math.nan, "runs": len(per_seed)}
        if per_seed:
            values = np.median(np.stack(per_seed), axis=0)  # median over seeds, layer by layer
            stds[arm.label] = values
            row.update({"3x3 layers": len(values), "mean std": float(values.mean()),
                        "median std": float(np.median(values)), "max std": float(values.max())})
        row["status"] = ("complete" if per_seed else
                         "fail" if failed else "not recorded" if not recs else "responses not computed")
        rows.append(row)
    missing = [a.label for a, row in zip(arms, rows) if row["status"] != "complete"]
    title = "Std of layer responses on CIFAR-10 (R-Fig. 7)"
    if missing and stds:
        title += f" — missing: {', '.join(missing)}"
    command = c.command()
    if problems and not stds:
        command = problems[0] + "\n(set RESNETLAB_DATA to the CIFAR folder, or run " + c.command() + ")"
    fig = plots.fig_layer_responses(stds, title=title, command=command, records=used or None)
    if problems:
        for p in problems:
            print(f"r-fig7: {p}")
    return Drawn({"r_fig7_layer_responses": fig}, {"r_fig7_layer_responses": pd.DataFrame(rows)})


EXPERIMENT = Experiment("r-fig7", "R-Fig. 7: std of 3x3 layer responses (plain-20/56, ResNet-20/56/110)",
                        "04_layer_responses.ipynb", ARMS, draw)
