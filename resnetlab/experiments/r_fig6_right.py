"""R-Fig. 6 right alone: ResNet-110 vs ResNet-1202 (notebook 08), the runs of ``r-fig6``."""

from __future__ import annotations

from .. import plots
from .arms import RESNET
from .core import Collected, Drawn, Experiment


ARMS = (RESNET[110], RESNET[1202])


def draw(c: Collected) -> Drawn:
    panel = {a.label: c.of(a.key) for a in ARMS}
    fig = plots.fig_cifar_training({"ResNet-110 vs ResNet-1202": panel},
                                   title="ResNet-110 vs ResNet-1202 on CIFAR-10 (R-Fig. 6 right)",
                                   commands=c.command(), hline=None)
    return Drawn({"r_fig6_right_110_vs_1202": fig})


EXPERIMENT = Experiment("r-fig6-right", "R-Fig. 6 right: ResNet-110 vs ResNet-1202 (the runs of r-fig6)",
                        "08_past_1000_layers.ipynb", ARMS, draw)
