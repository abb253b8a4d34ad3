"""IM Sec. 2-3 (Eq. 4-8): forward and backward signals through depth, at init and trained (notebook 09)."""

from __future__ import annotations

import pandas as pd

from .. import plots
from ..analysis.propagation import signal_propagation, summarise
from .arms import im_arm
from .core import Arm, Collected, Drawn, Experiment
from .tables import profile_note


PROPAGATION_NAMES = {"plain": "plain-110", "original": "ResNet-110, original",
                     "scale_0.5": "ResNet-110, shortcut x0.5", "full_preact": "ResNet-110, pre-activation"}


def _arms() -> tuple[Arm, ...]:
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


def draw(collected: Collected) -> Drawn:
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
        text = profile_note(collected) + " | " + text
    h = fig.get_figheight()
    fig.get_layout_engine().set(rect=(0, 0, 1, 1 - 0.45 / h))  # a line under the title for the note
    fig.text(0.01, 1 - 0.5 / h, text, ha="left", va="top", fontsize=9.5, color="0.35", gid="source_note")
    lambdas = {arm.label: 0.5 for arm in collected.experiment.arms if arm.key == "scale_0.5"}
    lambdas.update({f"{k} (failed run)": v for k, v in lambdas.items()})
    term = plots.fig_shortcut_term(df, command=command, lambdas=lambdas,
                             title=f"The shortcut term of IM Eq. 5/8 through {where}")
    summary = summarise(df)
    return Drawn(figures={"im_propagation": fig, "im_propagation_shortcut_term": term},
                 tables={"im_propagation": summary})


EXPERIMENT = Experiment("im-propagation", "IM Sec. 2-3: forward/backward signal through depth", "09_signal_propagation",
                        _arms(), draw, seeds={"paper": 1, "quick": 1, "smoke": 1})
