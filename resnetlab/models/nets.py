"""Whole networks: the CIFAR nets (R-Sec. 4.2, IM Sec. 4-5), the ImageNet nets (R-Table 1)
and VGG (Simonyan & Zisserman 2014, Table 1)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint_sequential

from .layouts import PREACTIVATIONS, UnitLayout, unit_layout
from .units import ResidualUnit, init_weights


@dataclass(frozen=True)
class Stage:
    """One row of R-Table 1 / the CIFAR table of R-Sec. 4.2: ``units`` units of
    ``out_channels`` (bottleneck width ``mid_channels``), the first with ``stride``."""

    units: int
    out_channels: int
    stride: int
    mid_channels: int | None = None


def _head_activation(layout: UnitLayout, channels: int) -> nn.Sequential:
    ops: list[nn.Module] = []
    for op in layout.leading:
        ops.append(nn.BatchNorm2d(channels) if op == "bn" else nn.ReLU())
    return nn.Sequential(*ops)


class ResNet(nn.Module):
    """Stem, stages of Residual Units, global average pooling, fully-connected classifier.

    With ``variant="plain"`` the units have no shortcut: the plain nets of R-Sec. 4.
    With a pre-activation layout (IM Sec. 4) the stem has no BN/ReLU, the first unit of
    each stage applies its pre-activation before splitting into the two paths (as the
    authors' code does: fb.resnet.torch ``preresnet.lua`` gives every stage's first unit its
    "both_preact", resnet-1k-layers shares it wherever the width changes), and an
    extra activation follows the last addition ("we adopt an extra activation right after
    its element-wise addition").
    """

    def __init__(
        self,
        stem: nn.Module,
        stem_channels: int,
        stages: list[Stage],
        layout: UnitLayout,
        num_classes: int,
        **unit_options,
    ):
        super().__init__()
        self.layout = layout
        self.stem = stem
        preact = layout.activation in PREACTIVATIONS
        blocks = []
        cin = stem_channels
        for stage in stages:
            units = []
            for i in range(stage.units):
                units.append(
                    ResidualUnit(
                        layout,
                        cin,
                        stage.out_channels,
                        stage.stride if i == 0 else 1,
                        mid_channels=stage.mid_channels,
                        share_preactivation=preact and i == 0,
                        **unit_options,
                    )
                )
                cin = stage.out_channels
            blocks.append(nn.Sequential(*units))
        self.stages = nn.Sequential(*blocks)
        self.final_activation = _head_activation(layout, cin) if preact else nn.Sequential()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        self.checkpoint_segments = 0
        init_weights(self)

    def set_activation_checkpointing(self, segments: int) -> None:
        """Recompute activations in the backward pass instead of storing them, keeping only
        ``segments`` boundaries per stage (0: off). Trades about a third more compute for
        memory, so ResNet-1001/1202 fit a 16 GB GPU at batch 128 (IM Sec. 4). The random
        state is restored for the recomputation; BN running statistics see each batch twice,
        which changes their moving average slightly, not the training itself."""
        if segments < 0:
            raise ValueError("segments must be >= 0")
        self.checkpoint_segments = int(segments)

    @property
    def units(self) -> list[ResidualUnit]:
        """All Residual Units in forward order (for IM Sec. 3 signal-propagation analyses)."""
        return [u for stage in self.stages for u in stage]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        if self.checkpoint_segments and self.training and torch.is_grad_enabled():
            for stage in self.stages:
                x = checkpoint_sequential(stage, min(self.checkpoint_segments, len(stage)), x, use_reentrant=False)
        else:
            x = self.stages(x)
        x = self.final_activation(x)
        return self.fc(torch.flatten(self.pool(x), 1))


def _conv_stem(cin: int, cout: int, kernel: int, stride: int, *, activate: bool, maxpool: bool,
               bn_only: bool = False) -> nn.Sequential:
    """The first convolution; with ``activate`` followed by BN-ReLU; with ``bn_only`` by BN
    alone: in ReLU-only pre-activation (IM Fig. 4(d)) every weight layer keeps its BN and only
    the ReLU moves into the first unit (IM appendix: the activation "right after conv1 and
    before splitting" is what moving the activations of the original net leaves)."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False)]
    if activate or bn_only:
        bn = nn.BatchNorm2d(cout)
        bn.layer_response = kernel == 3
        layers += [bn] if bn_only else [bn, nn.ReLU()]
    if maxpool:
        layers.append(nn.MaxPool2d(3, stride=2, padding=1))
    return nn.Sequential(*layers)


def cifar_units_per_stage(depth: int, block: str) -> int:
    """n of the depth rule: 6n+2 for basic units (R-Sec. 4.2), 9n+2 for bottleneck units
    (IM Sec. 4: ResNet-164 is n=18, ResNet-1001 is n=111), 3n+2 for one-layer units
    (IM Table 3's "1layer skip" ResNet-110: n=36)."""
    per_unit, name = {"basic": (2, "6n+2"), "bottleneck": (3, "9n+2"), "single": (1, "3n+2")}[block]
    n, rest = divmod(depth - 2, 3 * per_unit)
    if rest or n < 1:
        basic_ok = (depth - 2) % 6 == 0 and depth >= 8
        hint = " (it is 6n+2: use block='basic')" if basic_ok else ""
        if not basic_ok and (depth - 2) % 9 == 0 and depth >= 11:
            hint = " (it is 9n+2: use block='bottleneck')"
        raise ValueError(
            f"depth {depth} is not valid for {block} CIFAR nets: the depth must be {name} with n >= 1"
            f"{hint}. Basic nets: 6n+2 (20, 32, 44, 56, 110, 1202); bottleneck nets: 9n+2 (164, 1001); "
            f"one-layer units: 3n+2 (110)."
        )
    return n


def cifar_resnet(
    depth: int,
    *,
    block: str = "basic",
    activation: str = "original",
    variant: str = "original",
    shortcut: str | None = None,
    widths: tuple[int, int, int] = (16, 32, 64),
    num_classes: int = 10,
    shortcut_scale: float = 0.5,
    residual_scale: float = 1.0,
    gate_bias: float = 0.0,
    dropout_p: float = 0.5,
) -> ResNet:
    """The CIFAR nets of R-Sec. 4.2 and IM Sec. 4.

    Basic: a 3x3 conv, then 3 stages of 2n 3x3 layers with ``widths`` filters on
    32/16/8 maps, global average pooling, a ``num_classes``-way FC: 6n+2 weighted layers.
    Shortcut option A (zero padding) by default, as in R-Sec. 4.2.

    Bottleneck (IM): 1x1-3x3-1x1 units whose outputs are 4x ``widths`` (64/128/256),
    9n+2 layers, projection shortcuts where dimensions grow (option B) by default; a unit
    that subsamples does it in its first 1x1, as the authors' code does (resnet-1k-layers,
    resnet-pre-act.lua).

    The final FC layer: PyTorch's default weight init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    which is Torch7's ``nn.Linear`` default that fb.resnet.torch keeps, and a zero bias, as
    fb.resnet.torch sets it (:func:`~resnetlab.models.units.init_weights`).
    """
    n = cifar_units_per_stage(depth, block)
    if shortcut is None:
        shortcut = "A" if block == "basic" else "B"
    layout = unit_layout(block, activation, variant, shortcut_scale=shortcut_scale,
                         residual_scale=residual_scale, dropout_p=dropout_p)
    expansion = 4 if block == "bottleneck" else 1
    stages = [
        Stage(n, w * expansion, 1 if i == 0 else 2, mid_channels=w if block == "bottleneck" else None)
        for i, w in enumerate(widths)
    ]
    stem = _conv_stem(3, widths[0], 3, 1, activate=activation not in PREACTIVATIONS, maxpool=False,
                      bn_only=activation == "relu_only_preact")
    return ResNet(stem, widths[0], stages, layout, num_classes, shortcut_option=shortcut,
                  shortcut_scale=shortcut_scale, residual_scale=residual_scale,
                  gate_bias=gate_bias, dropout_p=dropout_p, stride_in_1x1=block == "bottleneck")


#: R-Table 1: units per stage of the ImageNet nets.
IMAGENET_STAGES: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


def imagenet_resnet(
    depth: int,
    *,
    plain: bool = False,
    shortcut: str | None = None,
    activation: str = "original",
    num_classes: int = 1000,
    small_input: bool = False,
) -> ResNet:
    """The ImageNet nets of R-Table 1 (and their plain counterparts, R-Fig. 3 middle).

    conv1 7x7/2 with 64 filters, 3x3/2 max pool, stages conv2_x..conv5_x of 64..512
    (x4 for bottleneck) filters, average pool, FC. Bottleneck units subsample with their
    first 1x1 conv, as the paper's models do (this is what gives 3.8 GFLOPs for
    ResNet-50). Shortcut option B by default (R-Sec. 4.1 uses B for 50/101/152).

    ``small_input=True`` swaps the stem for a 3x3/1 conv without max pooling, so the net
    keeps useful feature-map sizes on 32x32 CIFAR images.
    """
    if depth not in IMAGENET_STAGES:
        raise ValueError(f"ImageNet nets have depth {', '.join(map(str, IMAGENET_STAGES))} (R-Table 1), got {depth}")
    block, counts = IMAGENET_STAGES[depth]
    if plain and block != "basic":
        raise ValueError("plain ImageNet nets exist for depth 18 and 34 (R-Fig. 4), not for bottleneck depths")
    if shortcut is None:
        shortcut = "B"
    layout = unit_layout(block, activation, "plain" if plain else "original")
    expansion = 1 if block == "basic" else 4
    stages = [
        Stage(c, w * expansion, 1 if i == 0 else 2, mid_channels=w if block == "bottleneck" else None)
        for i, (c, w) in enumerate(zip(counts, (64, 128, 256, 512)))
    ]
    activate = activation not in PREACTIVATIONS
    bn_only = activation == "relu_only_preact"
    stem = (_conv_stem(3, 64, 3, 1, activate=activate, maxpool=False, bn_only=bn_only) if small_input
            else _conv_stem(3, 64, 7, 2, activate=activate, maxpool=True, bn_only=bn_only))
    return ResNet(stem, 64, stages, layout, num_classes, shortcut_option=shortcut, stride_in_1x1=True)


#: Simonyan & Zisserman (2014), Table 1: filters per conv layer, "M" = 2x2 max pool.
VGG_CONFIGS: dict[int, list[int | str]] = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


class VGG(nn.Module):
    """VGG (Simonyan & Zisserman 2014): stacks of 3x3 convs and max pools, three FC layers.

    At 224x224 the classifier is 7*7*512 -> 4096 -> 4096 -> classes, as in the paper.
    ``small_input=True`` (32x32 CIFAR) pools the 1x1 map and uses 512-wide FC layers.
    ``batch_norm=True`` adds BN after each conv, which VGG did not have but which lets
    deep VGGs train from scratch with He initialisation.
    """

    def __init__(self, depth: int, *, num_classes: int = 1000, small_input: bool = False, batch_norm: bool = False):
        super().__init__()
        if depth not in VGG_CONFIGS:
            raise ValueError(f"VGG depth must be one of {', '.join(map(str, VGG_CONFIGS))}, got {depth}")
        layers: list[nn.Module] = []
        cin = 3
        for v in VGG_CONFIGS[depth]:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            layers.append(nn.Conv2d(cin, int(v), 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(int(v)))
            layers.append(nn.ReLU())
            cin = int(v)
        self.features = nn.Sequential(*layers)
        side, hidden = (1, 512) if small_input else (7, 4096)
        self.pool = nn.AdaptiveAvgPool2d(side)
        self.classifier = nn.Sequential(
            nn.Linear(512 * side * side, hidden), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(hidden, num_classes),
        )
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))
