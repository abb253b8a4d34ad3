"""Residual Units and their shortcuts, one class per idea.

* :class:`PadShortcut`: option A of R-Sec. 3.3, identity with zero-padded channels.
* :class:`ProjectionShortcut`: options B/C of R-Sec. 3.3 (R-Eq. 2, ``W_s x``), also the
  1x1 conv shortcut of IM Fig. 2(e).
* :class:`Gate`: g(x) = sigmoid(W_g x + b_g) of IM Sec. 3.1 (exclusive / shortcut-only gating).
* :class:`DropoutShortcut`: IM Fig. 2(f).
* :class:`ResidualUnit`: x_{l+1} = f(lambda h(x_l) + F(x_l)) (IM-Eq. 1-2 and 6), built from a
  :class:`~resnetlab.models.layouts.UnitLayout`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layouts import PREACTIVATIONS, UnitLayout

SHORTCUT_OPTIONS: dict[str, str] = {
    "A": "zero-padding shortcuts for increasing dimensions, all shortcuts parameter-free",
    "B": "projection shortcuts for increasing dimensions, other shortcuts identity",
    "C": "all shortcuts are projections",
}


def check_shortcut_option(option: str) -> str:
    opt = str(option).upper()
    if opt not in SHORTCUT_OPTIONS:
        valid = "; ".join(f"{k}: {v}" for k, v in SHORTCUT_OPTIONS.items())
        raise ValueError(f"unknown shortcut option {option!r}; valid choices (R-Sec. 3.3) are {valid}")
    return opt


class PadShortcut(nn.Module):
    """Option A (R-Sec. 3.3): identity on a subsampled input, extra channels zero.

    Spatial subsampling takes every ``stride``-th pixel; the new channels are zero, so
    the shortcut has no parameters (R-Sec. 4.2: "all shortcuts are identity").
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.pad = out_channels - in_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.pad:
            x = F.pad(x, (0, 0, 0, 0, 0, self.pad))
        return x


class ProjectionShortcut(nn.Sequential):
    """Options B/C (R-Sec. 3.3): h(x) = W_s x (R-Eq. 2), a 1x1 convolution with ``stride``,
    followed by BN in the original (post-activation) nets.

    ``bn=False`` for pre-activation nets: there the shortcut's input is already
    batch-normalised (the unit's shared BN-ReLU), and the authors' code for IM
    (KaimingHe/resnet-1k-layers, resnet-pre-act.lua; fb.resnet.torch preresnet.lua) uses a
    bare 1x1 convolution. That gives pre-act ResNet-164 1,703,258 parameters, the official
    net's count (IM Table 4: 1.7M).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, bn: bool = True):
        layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)]
        if bn:
            layers.append(nn.BatchNorm2d(out_channels))
        super().__init__(*layers)


class Gate(nn.Module):
    """g(x) = sigmoid(W_g x + b_g), W_g a 1x1 convolution (IM Sec. 3.1, "Exclusive gating").

    ``bias`` is b_g; the paper sweeps it (0 to -7) because it sets how open the
    shortcut starts: 1 - g(x) is near 1 for very negative b_g.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, bias: float):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=True)
        self.initial_bias = float(bias)
        self.reset_bias()

    def reset_bias(self) -> None:
        nn.init.constant_(self.conv.bias, self.initial_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(x))


class DropoutShortcut(nn.Module):
    """Dropout on the shortcut (IM Fig. 2(f)).

    The paper reads it as imposing "a scale of lambda with an expectation of 0.5 on the
    shortcut" (IM Sec. 3.1), so kept values are *not* rescaled by 1/(1-p) while training
    (inverted dropout would make the expectation 1), and the shortcut is multiplied by its
    expectation (1-p) in evaluation, as the original dropout of IM's reference [11] does.
    The paper does not say this in so many words and there is no official code for this
    variant: it is our reading, the one consistent with the expectation of 0.5.
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x * (1.0 - self.p)
        # drawn in the logical order of x, whatever its memory layout (``rand_like`` follows the
        # layout): a run's masks are then the same in NCHW and channels_last, alone or fused
        keep = torch.rand(x.shape, dtype=x.dtype, device=x.device) >= self.p
        return x * keep.to(x.dtype)


def _residual_branch(ops: tuple[str, ...], channels: list[tuple[int, int, int]]) -> nn.Sequential:
    """Build the ops of F in order; ``channels`` gives (in, out, stride) per weight layer.

    BN layers that directly follow a 3x3 convolution are tagged ``layer_response`` (the
    "responses" of R-Sec. 4.2 / R-Fig. 7: "outputs of each 3x3 layer, after BN and
    before other nonlinearity").
    """
    layers: list[nn.Module] = []
    weights = iter(channels)
    width = channels[0][0]
    prev = ""
    for op in ops:
        if op in ("conv3x3", "conv1x1"):
            cin, cout, stride = next(weights)
            k = 3 if op == "conv3x3" else 1
            layers.append(nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False))
            width = cout
        elif op == "bn":
            bn = nn.BatchNorm2d(width)
            bn.layer_response = prev == "conv3x3"
            layers.append(bn)
        elif op == "relu":
            layers.append(nn.ReLU(inplace=False))
        elif op.startswith(("scale(", "gate(")):
            pass  # applied in ResidualUnit.forward
        else:  # pragma: no cover - layouts only produce the ops above
            raise ValueError(f"unknown op {op!r}")
        prev = op
    return nn.Sequential(*layers)


class ResidualUnit(nn.Module):
    """One Residual Unit: x_{l+1} = f(s * h(x_l) + r * F(x_l, W_l)) (R-Eq. 1-2, IM-Eq. 1-2 and 6).

    Parameters
    ----------
    layout:
        what the unit is made of (:func:`~resnetlab.models.layouts.unit_layout`).
    in_channels, out_channels, stride:
        the unit's input/output widths and spatial stride.
    mid_channels:
        bottleneck width (R-Fig. 5 right, the "64" of 256-64-64-256); ignored for basic.
    shortcut_option:
        "A", "B" or "C" (R-Sec. 3.3): how h(x) matches dimensions.
    stride_in_1x1:
        bottleneck only: put the stride on the first 1x1 rather than on the 3x3. The
        ResNet paper's ImageNet models and the authors' CIFAR bottleneck nets of IM
        (resnet-1k-layers, resnet-pre-act.lua) both subsample in the first 1x1, and so do
        ours; fb.resnet.torch moves it to the 3x3 in its ImageNet nets.
    share_preactivation:
        pre-activation units only: apply the leading activation before the split into
        the two paths (IM Sec. 4, first unit of each stage).
    """

    def __init__(
        self,
        layout: UnitLayout,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        mid_channels: int | None = None,
        shortcut_option: str = "A",
        stride_in_1x1: bool = False,
        share_preactivation: bool = False,
        shortcut_scale: float = 0.5,
        residual_scale: float = 1.0,
        gate_bias: float = 0.0,
        dropout_p: float = 0.5,
    ):
        super().__init__()
        self.layout = layout
        if layout.block == "basic":
            plan = [(in_channels, out_channels, stride), (out_channels, out_channels, 1)]
        elif layout.block == "single":
            plan = [(in_channels, out_channels, stride)]
        else:
            mid = mid_channels or out_channels // 4
            s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
            plan = [(in_channels, mid, s1), (mid, mid, s3), (mid, out_channels, 1)]

        self.share_preactivation = share_preactivation and layout.activation in PREACTIVATIONS
        ops = layout.residual
        if self.share_preactivation:
            self.preact = _residual_branch(layout.leading, [(in_channels, in_channels, 1)])
            ops = ops[len(layout.leading):]
        else:
            self.preact = None
        self.residual = _residual_branch(ops, plan)

        option = check_shortcut_option(shortcut_option)
        changes = stride != 1 or in_channels != out_channels
        self.shortcut: nn.Module | None
        self.has_shortcut = layout.shortcut is not None
        if layout.shortcut is None:
            self.shortcut = None
        elif layout.variant == "conv_shortcut" or option == "C" or (changes and option == "B"):
            self.shortcut = ProjectionShortcut(in_channels, out_channels, stride,
                                               bn=layout.activation not in PREACTIVATIONS)
        elif changes:
            self.shortcut = PadShortcut(in_channels, out_channels, stride)
        else:
            self.shortcut = nn.Identity()

        self.gate = Gate(in_channels, out_channels, stride, gate_bias) if layout.variant.endswith("gating") else None
        self.dropout = DropoutShortcut(dropout_p) if layout.variant == "dropout_shortcut" else None
        self.shortcut_scale = shortcut_scale if layout.variant == "constant_scaling" else 1.0
        self.residual_scale = residual_scale if layout.variant == "constant_scaling" else 1.0
        self.after = _residual_branch(layout.after, [(out_channels, out_channels, 1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preact is not None:
            x = self.preact(x)
        out = self.residual(x)
        if self.residual_scale != 1.0:
            out = out * self.residual_scale
        if self.shortcut is not None:
            h = self.shortcut(x)
            if self.gate is not None:
                g = self.gate(x)
                h = h * (1.0 - g)
                if self.layout.variant == "exclusive_gating":
                    out = out * g
            if self.dropout is not None:
                h = self.dropout(h)
            if self.shortcut_scale != 1.0:
                h = h * self.shortcut_scale
            out = out + h
        return self.after(out)


def init_weights(model: nn.Module) -> None:
    """He initialisation (He et al. 2015, "Delving Deep into Rectifiers", Eq. 14 backward
    case, std = sqrt(2 / (k^2 * out_channels))), as R-Sec. 3.4 uses; BN gamma 1, beta 0.

    Linear layers keep PyTorch's default weight init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)):
    the same as Torch7's ``nn.Linear`` default, which the official code (fb.resnet.torch
    ``models/resnet.lua``, resnet-1k-layers) keeps; their bias is zeroed, as there.
    Gate biases keep their requested b_g (IM Table 1 sweeps it).
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)
    for m in model.modules():
        if isinstance(m, Gate):
            m.reset_bias()
