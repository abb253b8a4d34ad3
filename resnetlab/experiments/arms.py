"""The arms of every experiment, as data, and the two functions that make them.

The same network with the same recipe is the same run, whichever figure asks for it: R
arms come from :func:`cifar_arm` (and the literals below), IM arms from :func:`im_arm`, so
``r-fig1``, ``r-fig6`` and ``r-fig7`` share their runs, ``im-fig6`` reuses ``im-table2``'s,
``im-fig1`` and ``im-table3`` share their ResNet-1001 runs, and ``im-table3``'s CIFAR-10
ResNet-110/164 rows are ``im-table2``'s.

Smoke profile: a pipeline check, never a result. Each arm trains a few iterations on tiny
batches; the deep IM nets train a shallow stand-in of the same family and options
(ResNet-110 -> 20, ResNet-164 -> 11, ResNet-1001 -> 29, :data:`SMOKE_STAND_IN`).
"""

from __future__ import annotations

from typing import Any, Mapping

from .. import paper
from .core import Arm

# ---------------------------------------------------------------------------------- R paper

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


def cifar_arm(model: str, label: str) -> Arm:
    smoke = {"resnet110": SMOKE_FAST, "resnet1202": SMOKE_TINY}.get(model, SMOKE_LIGHT)
    # ResNet-110/1202 keep the recipe default warmup="auto": R-Sec. 4.2's 0.01 warm-up
    # until the training error is below 80%.
    return Arm(model, label, model, smoke=smoke, save_weights=model in RESPONSE_NETS)


PLAIN: dict[int, Arm] = {d: cifar_arm(f"plain{d}", f"plain-{d}") for d in (20, 32, 44, 56)}
RESNET: dict[int, Arm] = {d: cifar_arm(f"resnet{d}", f"ResNet-{d}") for d in (20, 32, 44, 56, 110, 1202)}

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


# ---------------------------------------------------------------------------------- IM paper

#: IM appendix: every CIFAR run warms up at lr 0.01 for 400 iterations, then 0.1.
IM_RECIPE: dict[str, Any] = {"warmup": "fixed"}
#: Smoke overrides for every IM arm (two iterations, tiny batches and test set).
SMOKE_RECIPE: dict[str, Any] = {"iterations": 2, "eval_every": 1, "checkpoint_every": 2, "milestones": (1, 2),
                                "batch_size": 8, "test_subset": 64}
#: Depth of the shallow net each deep net is replaced by in the smoke profile (same block
#: type: 20 is basic 6n+2 like 110; 11 and 29 are bottleneck 9n+2 like 164 and 1001).
SMOKE_STAND_IN: dict[int, int] = {110: 20, 164: 11, 1001: 29}


def im_arm(key: str, label: str, depth: int, *, activation: str = "original", dataset: str = "cifar10",
           plain: bool = False, **options: Any) -> Arm:
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
    return Arm(key=key, label=label, model=f"{family}{depth}", options=opts, recipe=recipe,
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


_ACT_SHORT = {"original": "original", "bn_after_addition": "BN after addition",
              "relu_before_addition": "ReLU before addition", "relu_only_preact": "ReLU-only pre-activation",
              "full_preact": "full pre-activation"}
DATASET_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}


def act_arm(activation: str, depth: int, dataset: str = "cifar10", key: str | None = None) -> Arm:
    """An IM Fig. 4 activation placement on ResNet-``depth`` (IM Table 2, Fig. 6)."""
    label = f"ResNet-{depth}, {_ACT_SHORT[activation]}"
    return im_arm(key or f"{activation}-{depth}", label, depth, activation=activation, dataset=dataset)


def table3_net(name: str) -> tuple[int, dict[str, Any], str]:
    """Depth, model options and row text of an IM Table 3 net name ("resnet110-single")."""
    depth, _, block = name.removeprefix("resnet").partition("-")
    if block:
        return int(depth), {"block": block}, f"ResNet-{depth} (1-layer units)"
    return int(depth), {}, f"ResNet-{depth}"


def deep_arm(activation: str, depth: int, dataset: str, name: str | None = None) -> Arm:
    """An original or pre-activation net of IM Table 3 / Fig. 1."""
    short = "pre-activation" if activation == "full_preact" else "original"
    _, options, text = table3_net(name or f"resnet{depth}")
    key = f"{dataset}-{activation}-{(name or str(depth)).removeprefix('resnet')}"
    return im_arm(key, f"{DATASET_NAMES[dataset]}, {text}, {short}", depth, activation=activation, dataset=dataset,
                  **options)


__all__ = ["DATASET_NAMES", "IMAGENET", "act_arm", "deep_arm", "table3_net", "IM_RECIPE", "PLAIN", "RESNET", "RESPONSE_NETS", "SMALL", "SMOKE_FAST", "SMOKE_LIGHT",
           "SMOKE_RECIPE", "SMOKE_STAND_IN", "SMOKE_TINY", "STAND_IN", "VGG_ARMS", "VGG_DEPTHS", "cifar_arm", "im_arm"]
