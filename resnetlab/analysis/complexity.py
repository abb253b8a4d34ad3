"""R-Fig. 3 / R-Table 1: what the ImageNet nets cost, counted by us beside the paper."""

from __future__ import annotations

import pandas as pd
import torch

from ..counting import count_macs, count_parameters
from ..models import build_model, display_name
from ..paper import complexity_table as paper_complexity

#: The nets of R-Fig. 3 and R-Table 1, in the order the figure shows them.
COMPLEXITY_MODELS: tuple[str, ...] = (
    "vgg19", "imagenet-plain34", "imagenet-resnet18", "imagenet-resnet34",
    "imagenet-resnet50", "imagenet-resnet101", "imagenet-resnet152",
)


def complexity_table(models: tuple[str, ...] = COMPLEXITY_MODELS, input_size: tuple[int, int, int] = (3, 224, 224)) -> pd.DataFrame:
    """Count multiply-adds (GFLOPs in the papers' sense) and parameters of each model
    at ``input_size``, joined with the paper's values from :mod:`resnetlab.paper`.

    Columns: model, label, macs_g_ours, params_m_ours, macs_g_paper, params_m_paper,
    macs_rel_diff (ours / paper - 1).
    """
    rows = []
    for name in models:
        with torch.device("meta"):  # shapes only: counting needs no real weights or arithmetic
            net = build_model(name)
        rows.append({
            "model": name,
            "label": display_name(name),
            "macs_g_ours": count_macs(net, input_size) / 1e9,
            "params_m_ours": count_parameters(net) / 1e6,
        })
    ours = pd.DataFrame(rows)
    table = ours.merge(paper_complexity(), on="model", how="left")
    table["macs_rel_diff"] = table["macs_g_ours"] / table["macs_g_paper"] - 1.0
    return table
