"""The one registry: experiment name -> :class:`~resnetlab.experiments.core.Experiment`.

Listed explicitly, in the order of the course, as torchvision lists its models: nothing
registers itself by being imported.
"""

from __future__ import annotations

from . import (im_fig1, im_fig6, im_propagation, im_table1, im_table2, im_table3, r_fig1, r_fig4, r_fig6,
               r_fig6_right, r_fig7, r_table3, static, vgg_depth)
from .core import Experiment

EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (
    static.RECEPTIVE_FIELD,  # 01
    vgg_depth.EXPERIMENT,  # 01
    r_fig1.EXPERIMENT,  # 02
    static.RESIDUAL_UNIT,  # 03
    r_fig6.EXPERIMENT,  # 03
    r_fig7.EXPERIMENT,  # 04
    static.COMPLEXITY,  # 05
    static.ARCHITECTURES,  # 05
    static.BOTTLENECK,  # 05
    r_fig4.EXPERIMENT,  # 05
    r_table3.EXPERIMENT,  # 05
    static.SHORTCUT_VARIANTS,  # 06
    im_table1.EXPERIMENT,  # 06
    static.ACTIVATION_VARIANTS,  # 07
    static.PREACT_REARRANGEMENT,  # 07
    im_table2.EXPERIMENT,  # 07
    im_fig6.EXPERIMENT,  # 07
    im_fig1.EXPERIMENT,  # 08
    im_table3.EXPERIMENT,  # 08
    r_fig6_right.EXPERIMENT,  # 08
    im_propagation.EXPERIMENT,  # 09
    static.LAMBDA_SWEEP,  # 09
)}


def get_experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; valid choices: {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def list_experiments() -> dict[str, Experiment]:
    return dict(EXPERIMENTS)


__all__ = ["EXPERIMENTS", "get_experiment", "list_experiments"]
