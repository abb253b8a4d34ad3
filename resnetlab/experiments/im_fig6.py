"""IM Fig. 6: BN after addition (ResNet-110) and pre-activation (ResNet-164) against the original (notebook 07)."""

from __future__ import annotations

from .. import plots
from .arms import act_arm
from .core import Arm, Collected, Drawn, Experiment
from .tables import panel, profile_note


FIG6_PANELS = {
    "ResNet-110: BN after addition vs original": ("original-110", "bn_after_addition-110"),
    "ResNet-164: pre-activation vs original": ("original-164", "full_preact-164"),
}


def _arms() -> tuple[Arm, ...]:
    return (act_arm("original", 110), act_arm("bn_after_addition", 110),
            act_arm("original", 164), act_arm("full_preact", 164))


def draw(collected: Collected) -> Drawn:
    panels = {t: panel(collected, keys) for t, keys in FIG6_PANELS.items()}
    fig = plots.fig_curve_panels({t: p for t, p in panels.items() if p}, ncols=2,
                        title="Asymmetric after-addition activation on CIFAR-10 (IM Fig. 6)",
                        commands=collected.command(), note=profile_note(collected))
    return Drawn(figures={"im_fig6_after_addition": fig})


EXPERIMENT = Experiment("im-fig6", "IM Fig. 6: BN after addition (110) and pre-activation (164) vs original",
                        "07_activation_placement", _arms(), draw)
