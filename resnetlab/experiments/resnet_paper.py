"""The experiments of the ResNet paper (R-) and the VGG depth argument, trained on CIFAR.

============  ===========================================================================
``r-fig1``    plain-20 vs plain-56: the degradation problem (R-Fig. 1)
``r-fig6``    plain-20..56, ResNet-20..110, ResNet-110 vs 1202 (R-Fig. 6) + R-Table 6
``r-fig7``    std of the 3x3 layers' responses (R-Fig. 7), from r-fig6's trained weights
``r-fig4``    ImageNet-style plain/ResNet-18/34 at CIFAR scale, a stand-in for R-Fig. 4 /
              R-Table 2 (different dataset: compare the ordering, not the values)
``r-table3``  ImageNet-style ResNet-34 with shortcut options A/B/C (+ plain-34) at CIFAR
              scale, a stand-in for R-Table 3
``vgg-depth`` VGG-11/13/16/19 without BN (and with BN for contrast): the depth wall
============  ===========================================================================

Arms that several figures need are the same :class:`Arm` objects, so they give the same
configs and one training serves every figure (r-fig1 and r-fig7 train nothing of their
own). Every number drawn comes from a recorded run; the paper's come from
:mod:`resnetlab.paper`, labelled "paper".
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .. import paper, plots
from ..analysis.results import summarize
from . import Arm, Collected, Drawn, Experiment, register

# ---------------------------------------------------------------------------------- arms

#: Smoke-profile overrides (tests and CI only; smoke runs are never drawn as results).
#: Deep or wide nets: two iterations on tiny batches.
SMOKE_FAST: dict[str, Any] = {"iterations": 2, "eval_every": 2, "checkpoint_every": 2, "milestones": (1, 2),
                              "batch_size": 8, "test_subset": 64}
#: The heaviest nets on a CPU (ResNet-1202, the 64-wide ImageNet-style nets at 32x32, VGG):
#: one iteration on two images, evaluated on eight.
SMOKE_TINY: dict[str, Any] = {"iterations": 1, "eval_every": 1, "checkpoint_every": 1, "milestones": (1,),
                              "batch_size": 2, "test_subset": 8}
#: Shallow CIFAR nets: a few more iterations, so the curves have a shape, still seconds on a CPU.
SMOKE_LIGHT: dict[str, Any] = {"iterations": 6, "eval_every": 2, "checkpoint_every": 2, "milestones": (3, 5),
                               "batch_size": 16, "test_subset": 64}

#: Nets whose weights R-Fig. 7 needs (R-Sec. 4.2: plain-20/56, ResNet-20/56/110).
RESPONSE_NETS: tuple[str, ...] = ("plain20", "plain56", "resnet20", "resnet56", "resnet110")


def _cifar_arm(model: str, label: str) -> Arm:
    smoke = {"resnet110": SMOKE_FAST, "resnet1202": SMOKE_TINY}.get(model, SMOKE_LIGHT)
    # ResNet-110/1202 keep the recipe default warmup="auto": R-Sec. 4.2's 0.01 warm-up
    # until the training error is below 80%.
    return Arm(model, label, model, smoke=smoke, save_weights=model in RESPONSE_NETS)


PLAIN: dict[int, Arm] = {d: _cifar_arm(f"plain{d}", f"plain-{d}") for d in (20, 32, 44, 56)}
RESNET: dict[int, Arm] = {d: _cifar_arm(f"resnet{d}", f"ResNet-{d}") for d in (20, 32, 44, 56, 110, 1202)}

#: ImageNet-style nets with a 3x3/1 stem (``small_input``) trained on CIFAR. R-Sec. 4.1 uses
#: option A for the 18/34-layer ResNets of R-Table 2 / R-Fig. 4.
SMALL = {"small_input": True}
IMAGENET: dict[str, Arm] = {
    "plain18": Arm("imagenet-plain18", "plain-18", "imagenet-plain18", dict(SMALL), smoke=SMOKE_TINY),
    "plain34": Arm("imagenet-plain34", "plain-34", "imagenet-plain34", dict(SMALL), smoke=SMOKE_TINY),
    "resnet18": Arm("imagenet-resnet18-A", "ResNet-18", "imagenet-resnet18", {**SMALL, "shortcut": "A"},
                    smoke=SMOKE_TINY),
    "resnet34A": Arm("imagenet-resnet34-A", "ResNet-34 A", "imagenet-resnet34", {**SMALL, "shortcut": "A"},
                     smoke=SMOKE_TINY),
    "resnet34B": Arm("imagenet-resnet34-B", "ResNet-34 B", "imagenet-resnet34", {**SMALL, "shortcut": "B"},
                     smoke=SMOKE_TINY),
    "resnet34C": Arm("imagenet-resnet34-C", "ResNet-34 C", "imagenet-resnet34", {**SMALL, "shortcut": "C"},
                     smoke=SMOKE_TINY),
}

#: VGG on CIFAR with VGG's own initial learning rate (VGG Sec. 3.1), so a failure is not
#: an artefact of the ResNet recipe's larger rate; BN is the only difference between rows.
VGG_DEPTHS: tuple[int, ...] = (11, 13, 16, 19)
VGG_ARMS: dict[tuple[int, bool], Arm] = {
    (d, bn): Arm(f"vgg{d}{'-bn' if bn else ''}", f"VGG-{d}{' + BN' if bn else ''}", f"vgg{d}",
                 {"small_input": True, "batch_norm": bn}, recipe={"lr": paper.VGG_RECIPE["lr"]}, smoke=SMOKE_TINY)
    for bn in (False, True) for d in VGG_DEPTHS
}

STAND_IN = "ImageNet-style nets (3x3/1 stem) trained on CIFAR-10 as a stand-in for ImageNet"


# ---------------------------------------------------------------------------------- helpers


@lru_cache(maxsize=None)
def _params_m(model: str, options: tuple[tuple[str, Any], ...] = (), num_classes: int = 10) -> float:
    """Parameters (millions) of ``model`` as trained on CIFAR, counted from the module
    (built on the CPU: initialising on the meta device is slower than doing it for real)."""
    from ..counting import count_parameters
    from ..models import build_model

    return count_parameters(build_model(model, **{"num_classes": num_classes, **dict(options)})) / 1e6


def _arm_params_m(arm: Arm) -> float:
    return _params_m(arm.model, tuple(sorted(arm.options.items())), 100 if arm.dataset == "cifar100" else 10)


def _final_stats(records: Sequence[Any]) -> dict[str, Any]:
    """Median and min-max of the final test (and training) errors of an arm's runs, by the one
    rule of :mod:`resnetlab.analysis.results`: a diverged run counts as an infinite error
    (drawn "fail"), never dropped; status says how many diverged."""
    s = summarize(records)
    return {"median": s.median, "minmax": s.span_text if s.runs > 1 else (
                "—" if math.isnan(s.median) else s.median_text()),
            "train_median": s.train_median, "runs": s.runs, "status": s.status_text()}


def _series(collected: Collected, arms: Sequence[Arm]) -> dict[str, list[Any]]:
    return {a.label: collected.records.get(a.key, []) for a in arms}


# ---------------------------------------------------------------------------------- r-fig1


def _draw_fig1(c: Collected) -> Drawn:
    arms = (PLAIN[20], PLAIN[56])
    fig = plots.fig_degradation(_series(c, arms), commands=c.command(),
                                title="Deeper plain nets train worse: plain-20 vs plain-56 on CIFAR-10 (R-Fig. 1)")
    rows = []
    for arm, claim in zip(arms, ("(reference)", "higher training and test error than plain-20")):
        s = _final_stats(c.records.get(arm.key, []))
        rows.append({"model": arm.label, "params (M)": _arm_params_m(arm), "paper (R-Fig. 1)": claim,
                     "ours training error (%)": s["train_median"], "ours test error (%)": s["median"],
                     "ours test min-max": s["minmax"], "runs": s["runs"], "status": s["status"]})
    return Drawn({"r_fig1_degradation": fig}, {"r_fig1_final_errors": pd.DataFrame(rows)})


# ---------------------------------------------------------------------------------- r-fig6


def _draw_fig6(c: Collected) -> Drawn:
    panels = {
        "plain nets": _series(c, [PLAIN[d] for d in (20, 32, 44, 56)]),
        "ResNets": _series(c, [RESNET[d] for d in (20, 32, 44, 56, 110)]),
        "ResNet-110 vs ResNet-1202": _series(c, [RESNET[110], RESNET[1202]]),
    }
    fig = plots.fig_cifar_training(panels, commands=c.command(), title="Training on CIFAR-10 (R-Fig. 6)")
    table = r_table6(c)
    note = (f"paper: R-Table 6; ResNet-110 best of 5 runs (mean±std "
            f"{paper.R_TABLE6_RESNET110_MEAN_STD[0]}±{paper.R_TABLE6_RESNET110_MEAN_STD[1]})")
    table_fig = plots.fig_error_table(table, title="CIFAR-10 test error, paper vs ours (R-Table 6)", note=note,
                                      records=c.all_records or None)
    return Drawn({"r_fig6_cifar_training": fig, "r_table6_cifar_error": table_fig}, {"r_table6_cifar_error": table})


def r_table6(c: Collected) -> pd.DataFrame:
    """R-Table 6 beside ours: one row per net of R-Fig. 6."""
    rows = []
    for arm in [*PLAIN.values(), *RESNET.values()]:
        s = _final_stats(c.records.get(arm.key, []))
        rows.append({"model": arm.label, "params (M)": _arm_params_m(arm),
                     "paper params (M)": paper.CIFAR_PARAMS_M.get(arm.model, math.nan),
                     "paper error (%)": paper.R_TABLE6_ERROR.get(arm.model, math.nan),
                     "ours median (%)": s["median"], "ours min-max": s["minmax"], "runs": s["runs"],
                     "status": s["status"]})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------- r-fig7


def _data_hint(c: Collected) -> Any:
    """Where the test set is: ``collected.data``, else ``$RESNETLAB_DATA`` / ``./data``."""
    return c.data


def _draw_fig7(c: Collected) -> Drawn:
    from ..analysis.responses import record_responses
    from ..data import DatasetNotFoundError

    arms = [PLAIN[20], PLAIN[56], RESNET[20], RESNET[56], RESNET[110]]
    stds: dict[str, np.ndarray] = {}
    problems: list[str] = []
    rows = []
    used = []
    for arm in arms:
        recs = [r for r in c.records.get(arm.key, []) if not r.failed]
        failed = [r for r in c.records.get(arm.key, []) if r.failed]
        per_seed = []
        # only seed 0 keeps its weights (experiments.keeps_weights); a run without them is
        # a problem only when no run of the arm has them
        with_weights = [r for r in recs if r.weights_path is not None] or recs
        for r in with_weights:
            try:
                per_seed.append(np.asarray(record_responses(r, _data_hint(c), device=c.device)["stds"]))
                used.append(r)
            except (FileNotFoundError, DatasetNotFoundError) as exc:
                problems.append(f"{arm.label}: {exc}")
        row = {"model": arm.label, "3x3 layers": math.nan, "mean std": math.nan, "median std": math.nan,
               "max std": math.nan, "runs": len(per_seed)}
        if per_seed:
            values = np.median(np.stack(per_seed), axis=0)  # median over seeds, layer by layer
            stds[arm.label] = values
            row.update({"3x3 layers": len(values), "mean std": float(values.mean()),
                        "median std": float(np.median(values)), "max std": float(values.max())})
        row["status"] = ("complete" if per_seed else
                         "fail" if failed else "not recorded" if not recs else "responses not computed")
        rows.append(row)
    missing = [a.label for a, row in zip(arms, rows) if row["status"] != "complete"]
    title = "Std of layer responses on CIFAR-10 (R-Fig. 7)"
    if missing and stds:
        title += f" — missing: {', '.join(missing)}"
    command = c.command()
    if problems and not stds:
        command = problems[0] + "\n(set RESNETLAB_DATA to the CIFAR folder, or run " + c.command() + ")"
    fig = plots.fig_layer_responses(stds, title=title, command=command, records=used or None)
    if problems:
        for p in problems:
            print(f"r-fig7: {p}")
    return Drawn({"r_fig7_layer_responses": fig}, {"r_fig7_layer_responses": pd.DataFrame(rows)})


# ---------------------------------------------------------------------------------- r-fig4 / r-table3


def _rank_text(deeper: float, shallower: float) -> str:
    if not (np.isfinite(deeper) and np.isfinite(shallower)):
        return "—"
    return "34 better" if deeper < shallower else "34 worse" if deeper > shallower else "equal"


def _draw_fig4(c: Collected) -> Drawn:
    plain = [IMAGENET["plain18"], IMAGENET["plain34"]]
    res = [IMAGENET["resnet18"], IMAGENET["resnet34A"]]
    panels = {"plain-18 / plain-34": _series(c, plain), "ResNet-18 / ResNet-34 (option A)": _series(c, res)}
    fig = plots.fig_cifar_training(panels, commands=c.command(),
                                   title="R-Fig. 4 stand-in: ImageNet-style 18/34-layer nets trained on CIFAR-10")
    rows = []
    for pair in (plain, res):
        stats = [_final_stats(c.records.get(a.key, [])) for a in pair]
        for i, (arm, s) in enumerate(zip(pair, stats)):
            p = paper.R_TABLE2_TOP1.get(arm.model, math.nan)
            rows.append({"model": arm.label, "params (M)": _arm_params_m(arm),
                         "paper ImageNet top-1 (%)": p, "ours CIFAR-10 (%)": s["median"],
                         "ours min-max": s["minmax"],
                         "18→34 paper": "" if i == 0 else _rank_text(
                             p, paper.R_TABLE2_TOP1.get(pair[0].model, math.nan)),
                         "18→34 ours": "" if i == 0 else _rank_text(s["median"], stats[0]["median"]),
                         "runs": s["runs"], "status": s["status"]})
    table = pd.DataFrame(rows)
    note = "paper: ImageNet top-1 (R-Table 2); ours: CIFAR-10. Different datasets: compare the ordering only"
    table_fig = plots.fig_error_table(table, title="R-Table 2 beside a CIFAR-10 stand-in", note=note,
                                      records=c.all_records or None)
    return Drawn({"r_fig4_imagenet_standin": fig, "r_table2_imagenet_standin": table_fig},
                 {"r_table2_imagenet_standin": table})


def _draw_table3(c: Collected) -> Drawn:
    arms = [IMAGENET["plain34"], IMAGENET["resnet34A"], IMAGENET["resnet34B"], IMAGENET["resnet34C"]]
    keys = ["imagenet-plain34", "imagenet-resnet34 (A)", "imagenet-resnet34 (B)", "imagenet-resnet34 (C)"]
    rows = []
    for arm, key in zip(arms, keys):
        s = _final_stats(c.records.get(arm.key, []))
        top1, top5 = paper.R_TABLE3_ERROR.get(key, (math.nan, math.nan))
        rows.append({"model": arm.label, "shortcut": arm.options.get("shortcut", "none"),
                     "params (M)": _arm_params_m(arm), "paper ImageNet top-1 (%)": top1,
                     "paper ImageNet top-5 (%)": top5, "ours CIFAR-10 (%)": s["median"],
                     "ours min-max": s["minmax"], "runs": s["runs"], "status": s["status"]})
    table = pd.DataFrame(rows)
    note = "paper: ImageNet (R-Table 3); ours: CIFAR-10. Different datasets: compare the ordering only"
    fig = plots.fig_error_table(table, title="Shortcut options A/B/C, paper vs a CIFAR-10 stand-in (R-Table 3)",
                                note=note, records=c.all_records or None)
    return Drawn({"r_table3_shortcuts": fig}, {"r_table3_shortcuts": table})


# ---------------------------------------------------------------------------------- vgg-depth


def _fig_error_vs_depth(c: Collected):
    """Final test error against depth, one line for VGG without BN and one with BN; failed
    runs as a red x at the top with "failed", unrecorded depths named in the legend."""
    import matplotlib.pyplot as plt

    plots.set_style()
    fig, ax = plt.subplots(figsize=(10.67, 6.0), layout="constrained")
    fig.get_layout_engine().set(rect=(0, 0.05, 1, 0.95))  # a strip at the bottom for the source note
    ax.set_title("The depth wall: VGG on CIFAR-10, without and with BN", loc="left")
    any_point = False
    top = 100.0
    for j, bn in enumerate((False, True)):
        color = plots.PALETTE[j]
        xs, ys, lo, hi, fails, missing = [], [], [], [], [], []
        for d in VGG_DEPTHS:
            recs = c.records.get(VGG_ARMS[(d, bn)].key, [])
            s = _final_stats(recs)
            errs = [r.final_test_error for r in recs if not r.failed and np.isfinite(r.final_test_error)]
            if errs:
                xs.append(d)
                ys.append(s["median"])
                lo.append(min(errs))
                hi.append(max(errs))
            if any(r.failed for r in recs):
                fails.append(d)
            if not recs:
                missing.append(d)
        label = "VGG + BN" if bn else "VGG (no BN, as in the VGG paper)"
        if missing:
            label += f" — not recorded: {', '.join(map(str, missing))}"
        if xs:
            ax.errorbar(xs, ys, yerr=[np.array(ys) - lo, np.array(hi) - ys], color=color, lw=2.6, marker="o",
                        ms=8, capsize=4, label=label)
            any_point = True
        else:
            ax.plot([], [], color=color, lw=2.6, marker="o", label=label)
        for d in fails:
            ax.plot([d], [top - 3], ls="none", marker="x", ms=14, mew=3.5, color="#c0392b", zorder=5)
            ax.annotate("failed", (d, top - 3), textcoords="offset points", xytext=(0, -20 - 14 * j), ha="center",
                        color=color, fontsize=12, fontweight="bold")
            any_point = True
    if not any_point:
        plots.placeholder(ax, c.command())
    else:
        ax.set_xticks(VGG_DEPTHS, [f"VGG-{d}" for d in VGG_DEPTHS])
        ax.set_xlim(VGG_DEPTHS[0] - 1.5, VGG_DEPTHS[-1] + 1.5)
        ax.set_ylim(0, top)
        ax.set_xlabel("depth (weight layers)")
        ax.set_ylabel("final test error (%)")
        ax.axhline(90, color="0.4", ls=":", lw=1.5)
        ax.text(VGG_DEPTHS[0] - 1.3, 91, "chance (10 classes)", fontsize=11, color="0.4", va="bottom")
        ax.legend(loc="center left", fontsize=11, framealpha=0.92)
    plots.add_source_note(fig, c.all_records,
                          extra=f"lr {paper.VGG_RECIPE['lr']} (VGG Sec. 3.1), otherwise the CIFAR recipe; "
                                f"x = run failed (stuck at chance or diverged)")
    return fig


def _draw_vgg(c: Collected) -> Drawn:
    rows = []
    for (d, bn), arm in VGG_ARMS.items():
        s = _final_stats(c.records.get(arm.key, []))
        rows.append({"model": arm.label, "BN": "yes" if bn else "no",
                     "params (M, CIFAR head)": _arm_params_m(arm),
                     "VGG paper params (M, ImageNet head)": paper.VGG_TABLE2_PARAMS_M.get(arm.model, math.nan),
                     "ours error (%)": s["median"], "ours min-max": s["minmax"], "runs": s["runs"],
                     "status": s["status"]})
    return Drawn({"vgg_depth_wall": _fig_error_vs_depth(c)}, {"vgg_depth_wall": pd.DataFrame(rows)})


# ---------------------------------------------------------------------------------- registry

R_FIG6_ARMS: tuple[Arm, ...] = (*PLAIN.values(), *RESNET.values())

register(Experiment("r-fig1", "R-Fig. 1: plain-20 vs plain-56 on CIFAR-10 (degradation)",
                    "02_degradation_problem.ipynb", (PLAIN[20], PLAIN[56]), _draw_fig1))
register(Experiment("r-fig6", "R-Fig. 6 / R-Table 6: plain nets, ResNets, ResNet-110 vs 1202 on CIFAR-10",
                    "03_residual_learning_cifar.ipynb", R_FIG6_ARMS, _draw_fig6))
register(Experiment("r-fig7", "R-Fig. 7: std of 3x3 layer responses (plain-20/56, ResNet-20/56/110)",
                    "04_layer_responses.ipynb", tuple(a for a in R_FIG6_ARMS if a.model in RESPONSE_NETS),
                    _draw_fig7))
register(Experiment("r-fig4", "R-Fig. 4 / R-Table 2 stand-in: ImageNet-style plain/ResNet-18/34 on CIFAR-10",
                    "05_imagenet_architectures.ipynb",
                    (IMAGENET["plain18"], IMAGENET["plain34"], IMAGENET["resnet18"], IMAGENET["resnet34A"]),
                    _draw_fig4))
register(Experiment("r-table3", "R-Table 3 stand-in: ResNet-34 shortcut options A/B/C (+ plain-34) on CIFAR-10",
                    "05_imagenet_architectures.ipynb",
                    (IMAGENET["plain34"], IMAGENET["resnet34A"], IMAGENET["resnet34B"], IMAGENET["resnet34C"]),
                    _draw_table3))
register(Experiment("vgg-depth", "VGG-11/13/16/19 on CIFAR-10 without and with BN (the depth wall)",
                    "01_going_deeper_vgg.ipynb", tuple(VGG_ARMS.values()), _draw_vgg))
