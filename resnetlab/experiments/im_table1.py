"""IM Table 1 and Fig. 3: shortcut variants (IM Fig. 2) on ResNet-110 (notebook 06)."""

from __future__ import annotations

from typing import Any

from .. import paper
from .. import plots
from .arms import im_arm
from .core import Arm, Collected, Drawn, Experiment
from .tables import panel, profile_note, results_table, table_figure


T1 = paper.IM_TABLE1_ERROR
#: key -> (label, options of resnet110, paper row of IM Table 1)
TABLE1_CASES: dict[str, tuple[str, dict[str, Any], tuple[str, str]]] = {
    "original": ("original (identity shortcut)", {}, ("original", "")),
    "plain": ("constant scaling: shortcut 0, F 1 (plain net)", {}, ("constant_scaling", "shortcut 0, F 1")),
    "scale_0.5": ("constant scaling: shortcut 0.5, F 1", {"variant": "constant_scaling", "shortcut_scale": 0.5},
                  ("constant_scaling", "shortcut 0.5, F 1")),
    "scale_0.5_0.5": ("constant scaling: shortcut 0.5, F 0.5 (frozen gating)",
                      {"variant": "constant_scaling", "shortcut_scale": 0.5, "residual_scale": 0.5},
                      ("constant_scaling", "shortcut 0.5, F 0.5")),
    "exclusive_gating_0": ("exclusive gating, b_g = 0", {"variant": "exclusive_gating", "gate_bias": 0},
                           ("exclusive_gating", "b_g 0 to -5")),
    "exclusive_gating_-6": ("exclusive gating, b_g = -6", {"variant": "exclusive_gating", "gate_bias": -6},
                            ("exclusive_gating", "b_g -6")),
    "exclusive_gating_-7": ("exclusive gating, b_g = -7", {"variant": "exclusive_gating", "gate_bias": -7},
                            ("exclusive_gating", "b_g -7")),
    "shortcut_only_gating_0": ("shortcut-only gating, b_g = 0", {"variant": "shortcut_only_gating", "gate_bias": 0},
                               ("shortcut_only_gating", "b_g 0")),
    "shortcut_only_gating_-6": ("shortcut-only gating, b_g = -6",
                                {"variant": "shortcut_only_gating", "gate_bias": -6},
                                ("shortcut_only_gating", "b_g -6")),
    "conv_shortcut": ("1x1 conv shortcut", {"variant": "conv_shortcut"}, ("conv_shortcut", "")),
    "dropout_shortcut": ("dropout shortcut, p = 0.5", {"variant": "dropout_shortcut", "dropout_p": 0.5},
                         ("dropout_shortcut", "p 0.5")),
}
#: IM Fig. 3-style panels: one per IM Fig. 2 variant, each against the original.
TABLE1_PANELS: dict[str, tuple[str, ...]] = {
    "(b) constant scaling": ("original", "plain", "scale_0.5", "scale_0.5_0.5"),
    "(c) exclusive gating": ("original", "exclusive_gating_0", "exclusive_gating_-6", "exclusive_gating_-7"),
    "(d) shortcut-only gating": ("original", "shortcut_only_gating_0", "shortcut_only_gating_-6"),
    "(e) 1x1 conv shortcut": ("original", "conv_shortcut"),
    "(f) dropout shortcut": ("original", "dropout_shortcut"),
}
_T1_LEGEND = {"original": "original", "plain": "shortcut 0 (plain)", "scale_0.5": "shortcut 0.5, F 1",
              "scale_0.5_0.5": "shortcut 0.5, F 0.5", "exclusive_gating_0": "b_g = 0",
              "exclusive_gating_-6": "b_g = -6", "exclusive_gating_-7": "b_g = -7",
              "shortcut_only_gating_0": "b_g = 0", "shortcut_only_gating_-6": "b_g = -6",
              "conv_shortcut": "1x1 conv", "dropout_shortcut": "dropout 0.5"}


def _arms() -> tuple[Arm, ...]:
    return tuple(im_arm(key, label, 110, plain=key == "plain", **opts)
                 for key, (label, opts, _) in TABLE1_CASES.items())


def draw(collected: Collected) -> Drawn:
    cases = {k: (label, T1[row]) for k, (label, _, row) in TABLE1_CASES.items()}
    table = results_table(collected, cases)
    panels = {title: panel(collected, keys, _T1_LEGEND) for title, keys in TABLE1_PANELS.items()}
    panels = {t: p for t, p in panels.items() if p}
    curves = plots.fig_curve_panels(panels, title="ResNet-110 on CIFAR-10: shortcut variants (IM Fig. 3, Table 1)",
                           commands=collected.command(), note=profile_note(collected), reference="original")
    tfig = table_figure(collected, table, "IM Table 1: ResNet-110 on CIFAR-10, test error (%) by shortcut type")
    return Drawn(figures={"im_fig3_shortcuts": curves, "im_table1_shortcuts": tfig},
                 tables={"im_table1_shortcuts": table})


EXPERIMENT = Experiment("im-table1", "IM Table 1 / Fig. 3: shortcut variants on ResNet-110", "06_identity_shortcuts",
                        _arms(), draw)
