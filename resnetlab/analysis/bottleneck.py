"""R-Fig. 5: a bottleneck block costs about what a basic block costs.

R-Sec. 4.1 ("Deeper Bottleneck Architectures"): "The three layers are 1x1, 3x3, and 1x1
convolutions, where the 1x1 layers are responsible for reducing and then increasing
(restoring) dimensions ... both designs have similar time complexity." We count the two
blocks of R-Fig. 5, built as the real :class:`~resnetlab.models.ResidualUnit` modules the
networks use, with :mod:`resnetlab.counting` (no hand-written formulas).
"""

from __future__ import annotations

import pandas as pd
from torch import nn

from ..counting import count_macs, count_parameters
from ..models import ResidualUnit, unit_layout


def basic_block(width: int = 64) -> ResidualUnit:
    """R-Fig. 5 left: two 3x3 convolutions on a ``width``-d input (identity shortcut)."""
    return ResidualUnit(unit_layout("basic"), width, width, 1)


def bottleneck_block(width: int = 64) -> ResidualUnit:
    """R-Fig. 5 right: 1x1 (4*width -> width), 3x3 (width), 1x1 (width -> 4*width) on a
    4*``width``-d input (identity shortcut)."""
    return ResidualUnit(unit_layout("bottleneck"), 4 * width, 4 * width, 1, mid_channels=width)


def _conv_params(module: nn.Module) -> int:
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Conv2d))


def bottleneck_cost(width: int = 64, size: int = 56) -> pd.DataFrame:
    """Parameters and multiply-adds of the two blocks of R-Fig. 5 on a ``size`` x ``size``
    map (56x56 is conv2_x of the ImageNet nets, R-Table 1).

    Columns: block, input dims, params (all, BN included), conv params, macs.
    """
    rows = []
    for name, block, dims in ((f"basic ({width}-d)", basic_block(width), width),
                              (f"bottleneck ({4 * width}-d)", bottleneck_block(width), 4 * width)):
        rows.append({"block": name, "input dims": dims, "params": count_parameters(block),
                     "conv params": _conv_params(block), "macs": count_macs(block, (dims, size, size))})
    return pd.DataFrame(rows)


__all__ = ["basic_block", "bottleneck_block", "bottleneck_cost"]
