"""IM Table 2 and Fig. 4: activation placements on ResNet-110 and -164 (notebook 07)."""

from __future__ import annotations

from .. import paper
from ..models import ACTIVATIONS
from .. import plots
from .arms import act_arm
from .core import Arm, Collected, Drawn, Experiment
from .tables import panel, profile_note, results_table, table_figure


def _arms() -> tuple[Arm, ...]:
    return tuple(act_arm(act, depth) for depth in (110, 164) for act in ACTIVATIONS)


def draw(collected: Collected) -> Drawn:
    cases = {f"{act}-{d}": (f"{ACTIVATIONS[act]}, ResNet-{d}", paper.IM_TABLE2_ERROR[act][f"resnet{d}"])
             for act in ACTIVATIONS for d in (110, 164)}
    table = results_table(collected, cases)
    panels = {f"ResNet-{d}": panel(collected, [f"{a}-{d}" for a in ACTIVATIONS],
                                    {f"{a}-{d}": ACTIVATIONS[a] for a in ACTIVATIONS}) for d in (110, 164)}
    curves = plots.fig_curve_panels({t: p for t, p in panels.items() if p}, train_loss=False, reference="(a) original",
                           title="Activation placements on CIFAR-10: test error (IM Fig. 4, Table 2)",
                           commands=collected.command(), note=profile_note(collected))
    tfig = table_figure(collected, table, "IM Table 2: test error (%) by activation placement (IM Fig. 4)")
    return Drawn(figures={"im_table2_activations_curves": curves, "im_table2_activations": tfig},
                 tables={"im_table2_activations": table})


EXPERIMENT = Experiment("im-table2", "IM Table 2 / Fig. 4: activation placements on ResNet-110 and -164",
                        "07_activation_placement", _arms(), draw)
