"""Every network of the two ResNet papers, from a short name plus options.

>>> from resnetlab.models import build_model
>>> net = build_model("resnet56")                          # R-Sec. 4.2, option A
>>> net = build_model("resnet110", variant="exclusive_gating", gate_bias=-6)   # IM Table 1
>>> net = build_model("preresnet164")                      # IM Table 2 (e), bottleneck
>>> net = build_model("imagenet-resnet34", shortcut="C")   # R-Table 3
>>> net = build_model("vgg19")                             # R-Fig. 3 left

Names (case, "-" and "_" do not matter, so "ResNet-56" works too):

========================  ==================================================================
``plain{d}``              CIFAR plain net, d = 6n+2 (R-Sec. 4.2)
``resnet{d}``             CIFAR ResNet; basic units for 6n+2, bottleneck for 9n+2; 164 and
                          1001 are the bottleneck nets of IM (pass ``block=`` to override)
``preresnet{d}``          ``resnet{d}`` with full pre-activation units (IM Fig. 4(e))
``imagenet-resnet{d}``    d in 18, 34, 50, 101, 152 (R-Table 1)
``imagenet-plain{d}``     d in 18, 34 (R-Fig. 3 middle, R-Fig. 4 left)
``vgg{d}``                d in 11, 13, 16, 19 (Simonyan & Zisserman, Table 1)
========================  ==================================================================
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from torch import nn

from .layouts import ACTIVATIONS, BLOCKS, PREACTIVATIONS, VARIANTS, UnitLayout, unit_layout
from .nets import IMAGENET_STAGES, VGG, VGG_CONFIGS, ResNet, Stage, cifar_resnet, cifar_units_per_stage, imagenet_resnet
from .units import SHORTCUT_OPTIONS, DropoutShortcut, Gate, PadShortcut, ProjectionShortcut, ResidualUnit, init_weights

__all__ = [
    "ACTIVATIONS", "BLOCKS", "PREACTIVATIONS", "VARIANTS", "SHORTCUT_OPTIONS", "NAMED_MODELS",
    "UnitLayout", "unit_layout", "build_model", "parse_model_name", "canonical_name", "display_name", "list_models",
    "ResNet", "Stage", "VGG", "ResidualUnit", "PadShortcut", "ProjectionShortcut", "Gate",
    "DropoutShortcut", "init_weights", "cifar_resnet", "imagenet_resnet",
]

#: The nets the papers name, with where they appear.
NAMED_MODELS: dict[str, str] = {
    **{f"plain{d}": "R-Fig. 6 left" for d in (20, 32, 44, 56)},
    **{f"resnet{d}": "R-Table 6" for d in (20, 32, 44, 56, 110, 1202)},
    "resnet164": "IM Table 2/3 (bottleneck)",
    "resnet1001": "IM Table 3 (bottleneck)",
    "preresnet110": "IM Table 2 (e)",
    "preresnet164": "IM Table 2/3 (e)",
    "preresnet1001": "IM Fig. 1, Table 3",
    "imagenet-plain18": "R-Table 2", "imagenet-plain34": "R-Table 2/3",
    **{f"imagenet-resnet{d}": "R-Table 1/3" for d in IMAGENET_STAGES},
    "vgg16": "R-Table 3", "vgg19": "R-Fig. 3",
}

#: CIFAR depths that the papers build from bottleneck units even though they are also 6n+2.
_BOTTLENECK_BY_NAME = (164, 1001)

_NAME = re.compile(r"^(imagenet)?(plain|resnet|preresnet)(\d+)$|^(vgg)(\d+)$")


def parse_model_name(name: str) -> tuple[str, int]:
    """Split a model name into (family, depth); family is one of ``cifar-plain``,
    ``cifar-resnet``, ``cifar-preresnet``, ``imagenet-plain``, ``imagenet-resnet``,
    ``imagenet-preresnet``, ``vgg``."""
    key = re.sub(r"[\s_\-]", "", str(name).lower())
    m = _NAME.match(key)
    if not m:
        raise ValueError(
            f"unknown model {name!r}. Valid names: plain{{6n+2}}, resnet{{6n+2 or 9n+2}}, preresnet{{d}}, "
            f"imagenet-resnet{{18,34,50,101,152}}, imagenet-plain{{18,34}}, vgg{{11,13,16,19}}; "
            f"the papers' nets are: {', '.join(NAMED_MODELS)}"
        )
    if m.group(4):
        return "vgg", int(m.group(5))
    return f"{'imagenet' if m.group(1) else 'cifar'}-{m.group(2)}", int(m.group(3))


def canonical_name(name: str) -> str:
    """The one spelling a run's config records: "ResNet-56", "resnet_56" -> "resnet56";
    "ImageNet-ResNet34" -> "imagenet-resnet34". Raises ``ValueError`` for an unknown name."""
    family, depth = parse_model_name(name)
    if family == "vgg":
        return f"vgg{depth}"
    where, kind = family.split("-")
    return f"{kind}{depth}" if where == "cifar" else f"imagenet-{kind}{depth}"


def display_name(name: str, **options: Any) -> str:
    """A label as the papers write it: "ResNet-56", "plain-20", "ResNet-164 (pre-act)"."""
    family, depth = parse_model_name(name)
    kind = family.split("-")[-1]
    label = {"plain": f"plain-{depth}", "resnet": f"ResNet-{depth}", "preresnet": f"ResNet-{depth} (pre-act)",
             "vgg": f"VGG-{depth}"}[kind]
    return label


def _cifar_block(depth: int, block: str | None) -> str:
    if block is not None:
        if block not in BLOCKS:
            raise ValueError(f"unknown block {block!r}; valid choices: {', '.join(BLOCKS)}")
        return block
    if depth in _BOTTLENECK_BY_NAME:
        return "bottleneck"
    if (depth - 2) % 6 == 0 and depth >= 8:
        return "basic"
    if (depth - 2) % 9 == 0 and depth >= 11:
        return "bottleneck"
    cifar_units_per_stage(depth, "basic")  # raises the explanatory error
    raise AssertionError  # pragma: no cover


def _check_options(builder, options: dict[str, Any], fixed: tuple[str, ...] = ()) -> None:
    valid = [p for p in inspect.signature(builder).parameters if p not in ("depth", *fixed)]
    unknown = [k for k in options if k not in valid]
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for this model; valid options: {', '.join(valid)}")


def build_model(name: str, **options: Any) -> nn.Module:
    """Build a network by name (see the module docstring) with He initialisation.

    CIFAR options: ``block``, ``activation`` (IM Fig. 4), ``variant`` (IM Fig. 2),
    ``shortcut`` ("A"/"B"/"C", R-Sec. 3.3), ``widths``, ``num_classes``,
    ``shortcut_scale``, ``residual_scale``, ``gate_bias`` (b_g), ``dropout_p``.
    ImageNet options: ``shortcut``, ``activation``, ``num_classes``, ``small_input``.
    VGG options: ``num_classes``, ``small_input``, ``batch_norm``.
    Invalid names and options raise ``ValueError`` naming the valid choices.
    """
    family, depth = parse_model_name(name)
    if "activation" in options and options["activation"] not in ACTIVATIONS:
        raise ValueError(f"unknown activation {options['activation']!r}; valid choices: {', '.join(ACTIVATIONS)}")
    if "variant" in options and options["variant"] not in VARIANTS:
        raise ValueError(f"unknown variant {options['variant']!r}; valid choices: {', '.join(VARIANTS)}")
    if options.get("shortcut") is not None:
        from .units import check_shortcut_option

        options["shortcut"] = check_shortcut_option(options["shortcut"])
    if family == "vgg":
        _check_options(VGG.__init__, options, ("self",))
        return VGG(depth, **options)
    kind = family.split("-")[1]
    if kind == "preresnet":
        if options.get("activation", "full_preact") != "full_preact":
            raise ValueError("preresnet{d} is full pre-activation; use resnet{d} with activation=... for other placements")
        options["activation"] = "full_preact"
    if kind == "plain":
        if options.get("variant", "plain") != "plain":
            raise ValueError("plain nets have no shortcut; use resnet{d} with variant=... for shortcut variants")
    if family.startswith("imagenet"):
        _check_options(imagenet_resnet, options, ("plain",))
        return imagenet_resnet(depth, plain=kind == "plain", **options)
    if kind == "plain":
        options["variant"] = "plain"
    _check_options(cifar_resnet, options)
    options["block"] = _cifar_block(depth, options.get("block"))
    return cifar_resnet(depth, **options)


def list_models() -> dict[str, str]:
    """The papers' named nets and where they appear (other depths build too)."""
    return dict(NAMED_MODELS)
