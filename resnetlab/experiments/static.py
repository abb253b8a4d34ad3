"""The figures drawn from code alone, no training: experiments with no arms.

Diagrams (R-Fig. 2 and 5, IM Fig. 2 and 4) are drawn from the layouts that build the models;
counts (R-Fig. 3 / R-Table 1, R-Fig. 5's cost) are counted from the modules; the receptive
field (VGG Sec. 2.3) and the lambda sweep (IM Eq. 6-8) are measured on untrained nets.
"""

from __future__ import annotations

from .. import plots
from ..analysis import receptive_field as rf
from ..analysis.bottleneck import bottleneck_cost
from ..analysis.complexity import complexity_table
from ..analysis.propagation import lambda_sweep, summarise
from .core import Collected, Drawn, Experiment


def draw_complexity(c: Collected) -> Drawn:
    table = complexity_table()
    return Drawn({"r_fig3_complexity": plots.fig_complexity(table)}, {"r_table1_complexity": table.round(4)})


def draw_residual_unit(c: Collected) -> Drawn:
    return Drawn({"r_fig2_residual_unit": plots.fig_residual_unit()})


def draw_bottleneck(c: Collected) -> Drawn:
    table = bottleneck_cost()
    return Drawn({"r_fig5_basic_vs_bottleneck": plots.fig_basic_vs_bottleneck(),
                  "r_fig5_bottleneck_cost": plots.fig_bottleneck_cost(table)}, {"r_fig5_bottleneck_cost": table})


def draw_architecture_columns(c: Collected) -> Drawn:
    return Drawn({"r_fig3_architectures": plots.fig_architecture_columns()})


def draw_preact_rearrangement(c: Collected) -> Drawn:
    return Drawn({"im_fig5_preact_rearrangement": plots.fig_preact_rearrangement()})


def draw_shortcut_variants(c: Collected) -> Drawn:
    return Drawn({"im_fig2_shortcut_variants": plots.fig_shortcut_variants()})


def draw_activation_variants(c: Collected) -> Drawn:
    return Drawn({"im_fig4_activation_variants": plots.fig_activation_variants()})


def draw_receptive_field(c: Collected) -> Drawn:
    fig = plots.fig_receptive_field(rf.gradient_maps(), rf.theoretical_rfs(),
                                    title="Receptive field: three stacked 3x3 convs vs one 7x7 (VGG Sec. 2.3)")
    return Drawn({"vgg_receptive_field": fig}, {"vgg_stack_cost": rf.stack_cost()})


def draw_lambda_sweep(c: Collected) -> Drawn:
    """IM Eq. 6-8 at initialisation: every shortcut scaled by lambda (ResNet-56; a ResNet-20
    with 4 images in the smoke profile)."""
    smoke = c.profile == "smoke"
    depth = 20 if smoke else 56
    sweep = lambda_sweep(depth, lambdas=LAMBDAS, batch_size=4 if smoke else 16)
    lams = {net: float(net.split("=")[1].split()[0]) for net in sweep["net"].unique() if "identity" not in net}
    fig = plots.fig_shortcut_term(sweep[sweep["state"] == "init"], lambdas=lams,
                                  title=f"Shortcut term for shortcuts scaled by lambda, ResNet-{depth} at initialisation")
    return Drawn({"im_propagation_lambda_sweep": fig}, {"im_propagation_lambda_sweep": summarise(sweep)})


#: the shortcut scales of the sweep (IM Sec. 3.1 discusses lambda > 1 and lambda < 1)
LAMBDAS = (0.5, 0.9, 1.0, 1.1, 1.5)

RECEPTIVE_FIELD = Experiment("vgg-receptive-field", "VGG Sec. 2.3: receptive field and cost of 3x3 stacks vs 7x7",
                             "01_going_deeper_vgg", (), draw_receptive_field)
RESIDUAL_UNIT = Experiment("r-fig2", "R-Fig. 2: the residual unit, drawn from the layout that builds it",
                           "03_residual_learning_cifar", (), draw_residual_unit)
COMPLEXITY = Experiment("r-fig3", "R-Fig. 3 / R-Table 1: FLOPs and parameters, ours vs the paper",
                        "05_imagenet_architectures", (), draw_complexity)
ARCHITECTURES = Experiment("r-fig3-columns", "R-Fig. 3: VGG-19, plain-34 and ResNet-34, layer by layer from the models",
                           "05_imagenet_architectures", (), draw_architecture_columns)
PREACT_REARRANGEMENT = Experiment("im-fig5", "IM Fig. 5: moving the after-addition activation makes pre-activation",
                                  "07_activation_placement", (), draw_preact_rearrangement)
BOTTLENECK = Experiment("r-fig5", "R-Fig. 5: basic vs bottleneck unit, drawn and costed",
                        "05_imagenet_architectures", (), draw_bottleneck)
SHORTCUT_VARIANTS = Experiment("im-fig2", "IM Fig. 2: the shortcut variants, drawn from their layouts",
                               "06_identity_shortcuts", (), draw_shortcut_variants)
ACTIVATION_VARIANTS = Experiment("im-fig4", "IM Fig. 4: the activation placements, drawn from their layouts",
                                 "07_activation_placement", (), draw_activation_variants)
LAMBDA_SWEEP = Experiment("im-lambda-sweep", "IM Eq. 6-8: shortcuts scaled by lambda, at initialisation",
                          "09_signal_propagation", (), draw_lambda_sweep)

__all__ = ["ARCHITECTURES", "PREACT_REARRANGEMENT", "ACTIVATION_VARIANTS", "BOTTLENECK", "COMPLEXITY", "LAMBDA_SWEEP", "RECEPTIVE_FIELD", "RESIDUAL_UNIT",
           "SHORTCUT_VARIANTS"]
