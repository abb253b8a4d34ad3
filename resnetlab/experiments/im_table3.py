"""IM Table 3: original vs pre-activation units, ResNet-110/164/1001 on CIFAR-10/100 (notebook 08)."""

from __future__ import annotations

from .. import paper
from .arms import DATASET_NAMES, deep_arm, table3_net
from .core import Arm, Collected, Drawn, Experiment
from .tables import results_table, table_figure


def _arms() -> tuple[Arm, ...]:
    return tuple(deep_arm(act, table3_net(name)[0], ds, name)
                 for (ds, name) in paper.IM_TABLE3_ERROR for act in ("original", "full_preact"))


def draw(collected: Collected) -> Drawn:
    cases = {}
    for (ds, name), values in paper.IM_TABLE3_ERROR.items():
        _, _, text = table3_net(name)
        for act, short in (("original", "original"), ("full_preact", "pre-activation")):
            cases[f"{ds}-{act}-{name.removeprefix('resnet')}"] = (f"{DATASET_NAMES[ds]}, {text}, {short}", values[act])
    table = results_table(collected, cases)
    tfig = table_figure(collected, table, "IM Table 3: original vs pre-activation units, test error (%)")
    return Drawn(figures={"im_table3_preact": tfig}, tables={"im_table3_preact": table})


EXPERIMENT = Experiment("im-table3", "IM Table 3: original vs pre-activation, 110/164/1001, CIFAR-10/100",
                        "08_past_1000_layers", _arms(), draw)
