"""The experiments of He et al. 2016, "Identity Mappings in Deep Residual Networks" (IM).

=================  ================================================================  ========
experiment         what                                                              notebook
=================  ================================================================  ========
``im-table1``      ResNet-110 shortcut variants (IM Fig. 2/3, Table 1)               06
``im-table2``      activation placements, ResNet-110 and -164 (IM Fig. 4, Table 2)    07
``im-fig6``        BN after addition (110) and pre-activation (164) curves (Fig. 6)  07
``im-fig1``        ResNet-1001, original vs pre-activation (IM Fig. 1)               08
``im-table3``      110/164/1001 original vs pre-act, CIFAR-10 and -100 (Table 3)    08
``im-propagation`` forward/backward signals through depth (IM Sec. 2-3, Eq. 4-8)       09
=================  ================================================================  ========

Every arm trains with IM's recipe: the ResNet paper's schedule with a warm-up at lr 0.01
for the first 400 iterations of every run (IM appendix), i.e. recipe ``warmup="fixed"``.
IM reports the median of 5 runs, which is what the paper profile trains.

The same network with the same recipe is the same run, whichever experiment asks for it:
all arms are made by one function, :func:`im_arm`, so ``im-fig6`` reuses ``im-table2``'s
runs, ``im-fig1`` and ``im-table3`` share their ResNet-1001 runs, and ``im-table3``'s
CIFAR-10 ResNet-110/164 rows are ``im-table2``'s. The four ResNet-110s that
``im-propagation`` analyses (plain, original, constant scaling 0.5, pre-activation) record
their weights wherever they are trained, so the analysis never needs a second run.

Smoke profile: a pipeline check, never a result. The deep nets are far too slow on a CPU
(one ResNet-1001 step takes most of a minute there), so in the smoke profile each arm trains
a shallow stand-in of the same family and options (ResNet-110 -> 20, ResNet-164 -> 11,
ResNet-1001 -> 29, see :data:`SMOKE_STAND_IN`) for two iterations; tables name the
stand-in next to the case.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .. import paper
from ..analysis.results import summarize
from ..models import ACTIVATIONS, display_name
from ..runs import Record
from ..train import get_recipe
from . import Arm, Collected, Drawn, Experiment, register

#: IM appendix: every CIFAR run warms up at lr 0.01 for 400 iterations, then 0.1.
IM_RECIPE: dict[str, Any] = {"warmup": "fixed"}
#: Smoke overrides for every IM arm (two iterations, tiny batches and test set).
SMOKE_RECIPE: dict[str, Any] = {"iterations": 2, "eval_every": 1, "checkpoint_every": 2, "milestones": (1, 2),
                                "batch_size": 8, "test_subset": 64}
#: Depth of the shallow net each deep net is replaced by in the smoke profile (same block
#: type: 20 is basic 6n+2 like 110; 11 and 29 are bottleneck 9n+2 like 164 and 1001).
SMOKE_STAND_IN: dict[int, int] = {110: 20, 164: 11, 1001: 29}
#: The ResNet-110 configurations whose weights are recorded (for ``im-propagation``).
PROPAGATION_CASES = ("plain", "original", "scale_0.5", "full_preact")

_CONFIG_CACHE: dict[str, dict[str, Any]] = {}


@dataclass(frozen=True)
class IMArm(Arm):
    """An :class:`~resnetlab.experiments.Arm` that trains ``smoke_model`` (a shallow stand-in)
    instead of ``model`` in the smoke profile; every other profile trains ``model``."""

    smoke_model: str | None = None

    def config(self, profile: str, seed: int, source: str = "torchvision") -> dict[str, Any]:
        if profile == "smoke" and self.smoke_model:
            return replace(self, model=self.smoke_model, smoke_model=None).config(profile, seed, source)
        # make_config validates the model by building it on the meta device, which takes seconds
        # for ResNet-1001; validate each network once and derive the other profiles and seeds
        # exactly as make_config does (tests/test_experiments_im.py checks they are equal).
        key = json.dumps([self.model, self.options, self.dataset], sort_keys=True, default=list)
        if key not in _CONFIG_CACHE:
            _CONFIG_CACHE[key] = super().config(profile, seed, source)
        config = json.loads(json.dumps(_CONFIG_CACHE[key]))
        overrides = {**self.recipe, **(self.smoke if profile == "smoke" else {})}
        config.update(profile=profile, seed=int(seed), source=source, recipe=get_recipe(profile, **overrides).to_dict())
        return config


def im_arm(key: str, label: str, depth: int, *, activation: str = "original", dataset: str = "cifar10",
           plain: bool = False, **options: Any) -> IMArm:
    """The one way IM arms are made, so equal networks give equal configs (and runs).

    Full pre-activation nets are ``preresnet{depth}``, plain nets ``plain{depth}``, all
    others ``resnet{depth}`` with ``activation``/``variant`` options as given.
    """
    family = "plain" if plain else "preresnet" if activation == "full_preact" else "resnet"
    opts = dict(options)
    if activation not in ("original", "full_preact"):
        opts["activation"] = activation
    save = dataset == "cifar10" and depth == 110 and _propagation_case(family, opts) is not None
    stand_in = SMOKE_STAND_IN.get(depth)
    recipe = dict(IM_RECIPE)
    if str(opts.get("variant", "")).endswith("gating"):
        # b_g = -6 makes g about 0.0025: in bf16 (steps of 1/128 near 1) 1 - g rounds to 1 and
        # the residual branch g*F vanishes. Gating arms train in fp32 (TF32 convolutions on GPU).
        recipe["precision"] = "fp32"
    return IMArm(key=key, label=label, model=f"{family}{depth}", options=opts, recipe=recipe,
                 smoke=dict(SMOKE_RECIPE), dataset=dataset, save_weights=save,
                 smoke_model=f"{family}{stand_in}" if stand_in else None)


def _propagation_case(family: str, options: Mapping[str, Any]) -> str | None:
    if family == "plain" and not options:
        return "plain"
    if family == "preresnet" and not options:
        return "full_preact"
    if family == "resnet" and not options:
        return "original"
    if family == "resnet" and dict(options) == {"variant": "constant_scaling", "shortcut_scale": 0.5}:
        return "scale_0.5"
    return None


# --------------------------------------------------------------------------- tables


def _expected_runs(collected: Collected) -> int:
    return collected.experiment.seeds.get(collected.profile or "paper", 1)


def _stand_in_note(arm: Arm, records: Sequence[Record]) -> str:
    models = sorted({r.config.get("model") for r in records if r.config.get("model") != arm.model})
    if not models:
        return ""
    return " [smoke stand-in: " + ", ".join(display_name(m) for m in models) + "]"


def results_row(case: str, paper_error: float | None, records: Sequence[Record], expected: int) -> dict[str, Any]:
    """One "paper beside ours" row, by the one rule of :mod:`resnetlab.analysis.results`: a
    diverged run counts as an infinite error (never dropped), so the median is "fail
    (diverged: reason)" when most runs diverged; a completed median above IM's 20% line is
    marked "(fail: >20%)", as the paper would write it."""
    s = summarize(records, expected)
    return {"case": case, "paper error (%)": "–" if paper_error is None else paper.format_error(paper_error),
            "ours median (%)": s.median_text(im_rule=True), "ours min-max": s.span_text, "runs": s.runs,
            "status": s.status_text(im_rule=True)}


def results_table(collected: Collected, cases: Mapping[str, tuple[str, float | None]]) -> pd.DataFrame:
    """The table of an experiment: one row per arm, in arm order; ``cases[arm.key]`` gives
    the row's case text and the paper's error (``paper.FAIL`` for "fail", ``None`` if the
    paper has none)."""
    rows = []
    expected = _expected_runs(collected)
    for arm in collected.experiment.arms:
        case, value = cases.get(arm.key, (arm.label, None))
        recs = collected.records.get(arm.key, [])
        rows.append(results_row(case + _stand_in_note(arm, recs), value, recs, expected))
    return pd.DataFrame(rows, columns=["case", "paper error (%)", "ours median (%)", "ours min-max", "runs", "status"])


def _profile_note(collected: Collected) -> str:
    if collected.profile == "smoke":
        return "SMOKE PROFILE: a pipeline check on stand-in nets, not a result"
    if collected.profile == "quick":
        return "quick profile: 1/10 of the paper's schedule, 1 seed"
    if collected.profile is None:
        return f"not yet recorded: {collected.command()}"
    return "paper schedule; paper = IM's median of 5 runs"


def _table_figure(collected: Collected, table: pd.DataFrame, title: str):
    from .. import plots

    return plots.fig_error_table(table, title=title, note=_profile_note(collected), records=collected.records)


# --------------------------------------------------------------------------- curves


def _set_error_ylim(ax, skip: float = 0.2) -> None:
    """Error axis from 0 to a little above the highest test error after the first ``skip``
    of training (every net is near chance at the start)."""
    tops, xmax = [], 0.0
    lines = [ln for ln in ax.get_lines() if not str(ln.get_gid() or "").startswith("failed")]
    for ln in lines:
        x = np.asarray(ln.get_xdata(), dtype=float)
        if x.size:
            xmax = max(xmax, float(np.nanmax(x)))
    for ln in lines:
        x = np.asarray(ln.get_xdata(), dtype=float)
        y = np.asarray(ln.get_ydata(), dtype=float)
        keep = y[(x >= skip * xmax) & np.isfinite(y)] if x.size else y[:0]
        if keep.size:
            tops.append(float(keep.max()))
    if tops:
        ax.set_ylim(0, min(100.0, max(1.0, max(tops) * 1.2)))
        ax.set_xlim(left=0)


def curves_figure(panels: Mapping[str, Mapping[str, Sequence[Record]]], *, title: str, command: str,
                  note: str | None = None, train_loss: bool = True, ncols: int | None = None,
                  reference: str | None = None):
    """IM Fig. 1/3/6 style panels: test error solid (left axis) and, with ``train_loss``,
    training loss dashed (right axis), one colour per net, repeats as median + min-max band,
    failed runs drawn up to where they stopped. ``reference`` names a net drawn in grey in
    every panel it appears in (the original ResNet). Empty panels say how to record them."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    from .. import plots

    plots.set_style()
    n = max(1, len(panels))
    ncols = ncols or min(n, 3)
    nrows = math.ceil(n / ncols)
    size = plots.FIGSIZE_WIDE if nrows == 1 else plots.FIGSIZE_TALL
    fig, axes = plt.subplots(nrows, ncols, figsize=size, layout="constrained", squeeze=False)
    top = 1 - 1.05 / size[1]  # room for the title and the line/axis key under it
    fig.get_layout_engine().set(rect=(0, 0.035, 1, top - 0.035), h_pad=0.08, w_pad=0.12)
    fig.suptitle(title, x=0.01, ha="left")
    flat = [ax for row in axes for ax in row]
    for ax in flat[len(panels):]:
        ax.set_visible(False)
    for ax, (panel, runs) in zip(flat, panels.items()):
        ax.set_title(panel, fontsize=14)
        if all(len(r) == 0 for r in runs.values()):
            plots.placeholder(ax, command)
            continue
        ax2 = ax.twinx() if train_loss else None
        if ax2 is not None:
            ax2.grid(False)
        handles = []
        k = 0
        for name, recs in runs.items():
            if name == reference:
                color = "0.45"
            else:
                color = plots.PALETTE[k % len(plots.PALETTE)]
                k += 1
            handles += plots.plot_curves(ax, list(recs), metric="error", label=name, color=color, parts=("test",))
            if ax2 is not None and recs:
                plots.plot_curves(ax, list(recs), metric="loss", label=name, color=color, parts=("train",),
                                  train_ax=ax2)
        _set_error_ylim(ax)
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.set_xlabel("iter. (1e4)")
        ax.set_ylabel("test error (%)  [solid]")
        if ax2 is not None:
            ax2.set_ylim(bottom=0)
            ax2.set_ylabel("training loss  [dashed]")
        (ax2 or ax).legend(handles=handles, loc="upper right", fontsize=10, framealpha=0.92)
    key = [Line2D([], [], color="0.2", lw=2.6, label="test error (solid, left axis)")]
    if train_loss:
        key.append(Line2D([], [], color="0.2", lw=1.2, ls="--", label="training loss (dashed, right axis)"))
    fig.legend(handles=key, loc="upper left", bbox_to_anchor=(0.005, 1 - 0.55 / size[1]), ncol=len(key),
               frameon=False, fontsize=12, borderaxespad=0.0)
    plots.add_source_note(fig, {p: dict(r) for p, r in panels.items()}, extra=note)
    return fig


def _records(collected: Collected, key: str) -> list[Record]:
    return list(collected.records.get(key, []))


def _arm(collected: Collected, key: str) -> Arm:
    return next(a for a in collected.experiment.arms if a.key == key)


def _panel(collected: Collected, keys: Sequence[str], names: Mapping[str, str] | None = None) -> dict[str, list[Record]]:
    """Legend name -> records for the arms ``keys`` that this experiment has."""
    have = {a.key for a in collected.experiment.arms}
    return {(names or {}).get(k, _arm(collected, k).label): _records(collected, k) for k in keys if k in have}


# --------------------------------------------------------------------------- im-table1: shortcuts

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


def _table1_arms() -> tuple[IMArm, ...]:
    return tuple(im_arm(key, label, 110, plain=key == "plain", **opts)
                 for key, (label, opts, _) in TABLE1_CASES.items())


def draw_table1(collected: Collected) -> Drawn:
    cases = {k: (label, T1[row]) for k, (label, _, row) in TABLE1_CASES.items()}
    table = results_table(collected, cases)
    panels = {title: _panel(collected, keys, _T1_LEGEND) for title, keys in TABLE1_PANELS.items()}
    panels = {t: p for t, p in panels.items() if p}
    curves = curves_figure(panels, title="ResNet-110 on CIFAR-10: shortcut variants (IM Fig. 3, Table 1)",
                           command=collected.command(), note=_profile_note(collected), reference="original")
    tfig = _table_figure(collected, table, "IM Table 1: ResNet-110 on CIFAR-10, test error (%) by shortcut type")
    return Drawn(figures={"im_fig3_shortcuts": curves, "im_table1_shortcuts": tfig},
                 tables={"im_table1_shortcuts": table})


# --------------------------------------------------------------------------- im-table2 and im-fig6: activations

_ACT_SHORT = {"original": "original", "bn_after_addition": "BN after addition",
              "relu_before_addition": "ReLU before addition", "relu_only_preact": "ReLU-only pre-activation",
              "full_preact": "full pre-activation"}


def _act_arm(activation: str, depth: int, dataset: str = "cifar10", key: str | None = None) -> IMArm:
    label = f"ResNet-{depth}, {_ACT_SHORT[activation]}"
    return im_arm(key or f"{activation}-{depth}", label, depth, activation=activation, dataset=dataset)


def _table2_arms() -> tuple[IMArm, ...]:
    return tuple(_act_arm(act, depth) for depth in (110, 164) for act in ACTIVATIONS)


def draw_table2(collected: Collected) -> Drawn:
    cases = {f"{act}-{d}": (f"{ACTIVATIONS[act]}, ResNet-{d}", paper.IM_TABLE2_ERROR[act][f"resnet{d}"])
             for act in ACTIVATIONS for d in (110, 164)}
    table = results_table(collected, cases)
    panels = {f"ResNet-{d}": _panel(collected, [f"{a}-{d}" for a in ACTIVATIONS],
                                    {f"{a}-{d}": ACTIVATIONS[a] for a in ACTIVATIONS}) for d in (110, 164)}
    curves = curves_figure({t: p for t, p in panels.items() if p}, train_loss=False, reference="(a) original",
                           title="Activation placements on CIFAR-10: test error (IM Fig. 4, Table 2)",
                           command=collected.command(), note=_profile_note(collected))
    tfig = _table_figure(collected, table, "IM Table 2: test error (%) by activation placement (IM Fig. 4)")
    return Drawn(figures={"im_table2_activations_curves": curves, "im_table2_activations": tfig},
                 tables={"im_table2_activations": table})


FIG6_PANELS = {
    "ResNet-110: BN after addition vs original": ("original-110", "bn_after_addition-110"),
    "ResNet-164: pre-activation vs original": ("original-164", "full_preact-164"),
}


def _fig6_arms() -> tuple[IMArm, ...]:
    return (_act_arm("original", 110), _act_arm("bn_after_addition", 110),
            _act_arm("original", 164), _act_arm("full_preact", 164))


def draw_fig6(collected: Collected) -> Drawn:
    panels = {t: _panel(collected, keys) for t, keys in FIG6_PANELS.items()}
    fig = curves_figure({t: p for t, p in panels.items() if p}, ncols=2,
                        title="Asymmetric after-addition activation on CIFAR-10 (IM Fig. 6)",
                        command=collected.command(), note=_profile_note(collected))
    return Drawn(figures={"im_fig6_after_addition": fig})


# --------------------------------------------------------------------------- im-fig1 and im-table3: 1000 layers

_DATASET_NAME = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}


def _table3_net(name: str) -> tuple[int, dict[str, Any], str]:
    """Depth, model options and row text of an IM Table 3 net name ("resnet110-single")."""
    depth, _, block = name.removeprefix("resnet").partition("-")
    if block:
        return int(depth), {"block": block}, f"ResNet-{depth} (1-layer units)"
    return int(depth), {}, f"ResNet-{depth}"


def _deep_arm(activation: str, depth: int, dataset: str, name: str | None = None) -> IMArm:
    short = "pre-activation" if activation == "full_preact" else "original"
    _, options, text = _table3_net(name or f"resnet{depth}")
    key = f"{dataset}-{activation}-{(name or str(depth)).removeprefix('resnet')}"
    return im_arm(key, f"{_DATASET_NAME[dataset]}, {text}, {short}", depth, activation=activation, dataset=dataset,
                  **options)


def _table3_arms() -> tuple[IMArm, ...]:
    return tuple(_deep_arm(act, _table3_net(name)[0], ds, name)
                 for (ds, name) in paper.IM_TABLE3_ERROR for act in ("original", "full_preact"))


def _fig1_arms() -> tuple[IMArm, ...]:
    return (_deep_arm("original", 1001, "cifar10"), _deep_arm("full_preact", 1001, "cifar10"))


def draw_fig1(collected: Collected) -> Drawn:
    from .. import plots

    runs = {"ResNet-1001, original": _records(collected, "cifar10-original-1001"),
            "ResNet-1001, pre-activation": _records(collected, "cifar10-full_preact-1001")}
    fig = plots.fig_im_curves(runs, title="ResNet-1001 on CIFAR-10: original vs pre-activation (IM Fig. 1)",
                              commands=collected.command())
    if collected.profile == "smoke":
        fig.text(0.99, 0.005, _profile_note(collected), ha="right", va="bottom", fontsize=10, color="#c0392b")
    return Drawn(figures={"im_fig1_resnet1001": fig})


def draw_table3(collected: Collected) -> Drawn:
    cases = {}
    for (ds, name), values in paper.IM_TABLE3_ERROR.items():
        _, _, text = _table3_net(name)
        for act, short in (("original", "original"), ("full_preact", "pre-activation")):
            cases[f"{ds}-{act}-{name.removeprefix('resnet')}"] = (f"{_DATASET_NAME[ds]}, {text}, {short}", values[act])
    table = results_table(collected, cases)
    tfig = _table_figure(collected, table, "IM Table 3: original vs pre-activation units, test error (%)")
    return Drawn(figures={"im_table3_preact": tfig}, tables={"im_table3_preact": table})


# --------------------------------------------------------------------------- im-propagation

PROPAGATION_NAMES = {"plain": "plain-110", "original": "ResNet-110, original",
                     "scale_0.5": "ResNet-110, shortcut x0.5", "full_preact": "ResNet-110, pre-activation"}


def _propagation_arms() -> tuple[IMArm, ...]:
    return (im_arm("plain", PROPAGATION_NAMES["plain"], 110, plain=True),
            im_arm("original", PROPAGATION_NAMES["original"], 110),
            im_arm("scale_0.5", PROPAGATION_NAMES["scale_0.5"], 110, variant="constant_scaling", shortcut_scale=0.5),
            im_arm("full_preact", PROPAGATION_NAMES["full_preact"], 110, activation="full_preact"))


def propagation_data(collected: Collected, *, batch_size: int | None = None, seed: int = 0,
                     device: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The signal-propagation measurements of ``im-propagation``: each arm's net at
    initialisation (always; the smoke profile measures its stand-in) and, where a recorded
    run has weights, after training. Returns the DataFrame and notes on what is missing.
    ``batch_size``: 16 noise images (4 in the smoke profile)."""
    import torch

    from ..analysis.propagation import signal_propagation
    from ..models import build_model

    batch_size = batch_size or (4 if collected.profile == "smoke" else 16)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    profile = "smoke" if collected.profile == "smoke" else "paper"
    init_nets, trained_nets, notes = {}, {}, []
    for arm in collected.experiment.arms:
        config = arm.config(profile, seed)
        torch.manual_seed(seed)
        init_nets[arm.label] = build_model(config["model"], **config["model_options"])
        with_weights = [r for r in collected.records.get(arm.key, []) if r.weights_path is not None]
        if with_weights:
            rec = with_weights[0]
            trained_nets[arm.label + (" (failed run)" if rec.failed else "")] = rec.load_model("cpu")
        elif collected.records.get(arm.key):
            notes.append(f"{arm.label}: recorded without weights")
        else:
            notes.append(f"{arm.label}: not trained yet")
    frames = [signal_propagation(init_nets, "init", batch_size=batch_size, seed=seed, device=device)]
    if trained_nets:
        frames.append(signal_propagation(trained_nets, "trained", batch_size=batch_size, seed=seed, device=device))
    return pd.concat(frames, ignore_index=True), notes


def draw_propagation(collected: Collected) -> Drawn:
    from .. import plots
    from ..analysis.propagation import fig_shortcut_term, summarise

    df, notes = propagation_data(collected)
    command = collected.command()
    where = ("smoke stand-ins (ResNet-20 family)" if collected.profile == "smoke" else "ResNet-110")
    inputs = (f"{4 if collected.profile == 'smoke' else 16} Gaussian-noise images at the data's scale, "
              "random labels, BN in training mode")
    fig = plots.fig_signal_propagation(df, command=command, title=f"Signal propagation through {where} (IM Sec. 2-3)")
    text = f"forward norms relative to x_0, gradient norms relative to dE/dx_L; inputs: {inputs}"
    if notes:
        text += "\nafter training: " + "; ".join(notes)
    if collected.profile == "smoke":
        text = _profile_note(collected) + " | " + text
    h = fig.get_figheight()
    fig.get_layout_engine().set(rect=(0, 0, 1, 1 - 0.45 / h))  # a line under the title for the note
    fig.text(0.01, 1 - 0.5 / h, text, ha="left", va="top", fontsize=9.5, color="0.35", gid="source_note")
    lambdas = {arm.label: 0.5 for arm in collected.experiment.arms if arm.key == "scale_0.5"}
    lambdas.update({f"{k} (failed run)": v for k, v in lambdas.items()})
    term = fig_shortcut_term(df, command=command, lambdas=lambdas,
                             title=f"The shortcut term of IM Eq. 5/8 through {where}")
    summary = summarise(df)
    return Drawn(figures={"im_propagation": fig, "im_propagation_shortcut_term": term},
                 tables={"im_propagation": summary})


# --------------------------------------------------------------------------- registry

register(Experiment("im-table1", "IM Table 1 / Fig. 3: shortcut variants on ResNet-110", "06_identity_shortcuts",
                    _table1_arms(), draw_table1))
register(Experiment("im-table2", "IM Table 2 / Fig. 4: activation placements on ResNet-110 and -164",
                    "07_activation_placement", _table2_arms(), draw_table2))
register(Experiment("im-fig6", "IM Fig. 6: BN after addition (110) and pre-activation (164) vs original",
                    "07_activation_placement", _fig6_arms(), draw_fig6))
register(Experiment("im-fig1", "IM Fig. 1: ResNet-1001, original vs pre-activation", "08_past_1000_layers",
                    _fig1_arms(), draw_fig1))
register(Experiment("im-table3", "IM Table 3: original vs pre-activation, 110/164/1001, CIFAR-10/100",
                    "08_past_1000_layers", _table3_arms(), draw_table3))
register(Experiment("im-propagation", "IM Sec. 2-3: forward/backward signal through depth", "09_signal_propagation",
                    _propagation_arms(), draw_propagation, seeds={"paper": 1, "quick": 1, "smoke": 1}))


# --------------------------------------------------------------------------- notebook 08 helpers


def r_fig6_right(profile: str = "recorded", runs: str | Path | None = None):
    """R-Fig. 6 right (ResNet-110 vs ResNet-1202), drawn from the R experiment ``r-fig6``'s
    *recorded* runs only (it never trains: that experiment belongs to notebook 05). A
    placeholder if ``r-fig6`` is not registered or has no such runs."""
    from .. import plots
    from . import collect, list_experiments

    title = "ResNet-110 vs ResNet-1202 on CIFAR-10 (R-Fig. 6 right)"
    if "r-fig6" not in list_experiments():
        return plots.fig_cifar_training({"ResNet-110 vs 1202": {}}, title=title,
                                        commands="the R experiment 'r-fig6' is not available in this checkout")
    collected = collect("r-fig6", profile, runs)
    arms = [a for a in collected.experiment.arms if re.fullmatch(r"resnet(110|1202)", a.model.replace("-", ""))]
    panel = {a.label: collected.records.get(a.key, []) for a in arms}
    return plots.fig_cifar_training({"ResNet-110 vs ResNet-1202": panel}, title=title, commands=collected.command(),
                                    hline=None)


def memory_results(root: str | Path | None = None) -> str:
    """The measured peak-memory figures from ``benchmarks/RESULTS.md`` (where the output of
    ``python -m resnetlab bench --memory`` is recorded): the sections whose heading mentions memory, or
    a line saying they are not measured yet. Never a number that was not measured."""
    from ..notebook import project_root

    path = Path(root or project_root()) / "benchmarks" / "RESULTS.md"
    missing = ("Peak memory not yet measured in this checkout: run `python -m resnetlab bench --memory` on a GPU "
               "and record its figures in benchmarks/RESULTS.md.")
    if not path.exists():
        return missing
    lines = path.read_text().splitlines()
    out, keep, level = [], False, 0
    for line in lines:
        m = re.match(r"^(#+)\s+(.*)", line)
        if m:
            if keep and len(m.group(1)) <= level:
                keep = False
            if not keep and "memory" in m.group(2).lower():
                keep, level = True, len(m.group(1))
        if keep:
            out.append(line)
    if not out:
        out = [ln for ln in lines if "memory" in ln.lower() or "GiB" in ln or "GB" in ln]
    return "\n".join(out).strip() or missing


__all__ = ["IMArm", "im_arm", "IM_RECIPE", "SMOKE_RECIPE", "SMOKE_STAND_IN", "TABLE1_CASES", "results_row",
           "results_table", "curves_figure", "propagation_data", "r_fig6_right", "memory_results"]
