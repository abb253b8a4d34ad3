"""The VGG argument for small filters (Simonyan & Zisserman 2014, Sec. 2.3), which the
ResNet designs inherit (R-Sec. 3.3: "the convolutional layers mostly have 3x3 filters"):

* a stack of n 3x3 convolutions (stride 1) sees an n(3-1)+1 wide window, so three of them
  see 7x7, like one 7x7 layer (:func:`theoretical_rf`);
* but they are not equivalent: measured by gradients, the stack looks mostly at the centre
  of its window (:func:`gradient_map`), and it has three non-linearities instead of one;
* and it is cheaper: 3 x (3^2 C^2) = 27 C^2 weights against 49 C^2
  (:func:`stack_cost`, counted from real ``nn.Conv2d`` modules).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..counting import count_macs, count_parameters


def theoretical_rf(n_layers: int, kernel: int = 3, stride: int = 1) -> int:
    """Receptive field (pixels per side) of ``n_layers`` stacked ``kernel`` x ``kernel``
    convolutions, every one with ``stride``: 1 + sum_i (k - 1) * stride^(i-1), which is
    n(k-1)+1 for stride 1 (three 3x3 layers: 7; one 7x7 layer: 7)."""
    if n_layers < 1 or kernel < 1 or stride < 1:
        raise ValueError("n_layers, kernel and stride must be positive")
    return 1 + sum((kernel - 1) * stride**i for i in range(n_layers))


def conv_stack(n_layers: int, kernel: int, channels: int, *, relu: bool = True) -> nn.Sequential:
    """``n_layers`` ``kernel`` x ``kernel`` convolutions, ``channels`` in and out, stride 1,
    "same" padding, no biases, ReLU between consecutive layers (not after the last)."""
    layers: list[nn.Module] = []
    for i in range(n_layers):
        if i and relu:
            layers.append(nn.ReLU())
        layers.append(nn.Conv2d(channels, channels, kernel, padding=kernel // 2, bias=False))
    return nn.Sequential(*layers)


#: The two designs compared: name -> (layers, kernel).
DESIGNS: dict[str, tuple[int, int]] = {"three 3x3 convs (ReLU between)": (3, 3), "one 7x7 conv": (1, 7)}


def gradient_map(n_layers: int, kernel: int, *, channels: int = 8, size: int = 15, inits: int = 16,
                 seed: int = 0) -> np.ndarray:
    """|d output centre / d input|, summed over input channels and averaged over ``inits``
    random initialisations (He init) and random inputs: a ``size`` x ``size`` map whose
    non-zero support is the receptive field and whose shape is the "effective" one.

    Computed in float64, so pixels outside the receptive field are exactly 0.
    """
    if size % 2 == 0:
        raise ValueError("size must be odd so the output has a centre pixel")
    total = np.zeros((size, size))
    c = size // 2
    g = torch.Generator().manual_seed(seed)
    for _ in range(inits):
        net = conv_stack(n_layers, kernel, channels).double()
        for m in net:
            if isinstance(m, nn.Conv2d):
                std = (2.0 / (kernel * kernel * channels)) ** 0.5  # He init, as R-Sec. 3.4
                with torch.no_grad():
                    m.weight.copy_(torch.randn(m.weight.shape, generator=g, dtype=torch.float64) * std)
        x = torch.randn(1, channels, size, size, generator=g, dtype=torch.float64, requires_grad=True)
        net(x)[0, :, c, c].sum().backward()
        total += x.grad.abs().sum(1)[0].numpy()
    return total / inits


def support(grad: np.ndarray) -> tuple[int, int]:
    """Height and width of the bounding box of the non-zero entries of ``grad``."""
    rows, cols = np.nonzero(np.asarray(grad))
    if rows.size == 0:
        return (0, 0)
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def centre_fraction(grad: np.ndarray, width: int = 3) -> float:
    """Share of the total |gradient| that falls in the central ``width`` x ``width`` pixels."""
    g = np.abs(np.asarray(grad, dtype=float))
    c, h = g.shape[0] // 2, width // 2
    return float(g[c - h:c + h + 1, c - h:c + h + 1].sum() / g.sum())


def gradient_maps(**kwargs) -> dict[str, np.ndarray]:
    """:func:`gradient_map` of each of :data:`DESIGNS` (the heatmaps of the receptive-field figure)."""
    return {name: gradient_map(n, k, **kwargs) for name, (n, k) in DESIGNS.items()}


def theoretical_rfs() -> dict[str, int]:
    return {name: theoretical_rf(n, k) for name, (n, k) in DESIGNS.items()}


def stack_cost(channels: int = 64, size: int = 56) -> pd.DataFrame:
    """Weights and multiply-adds of each design with ``channels`` in and out, counted from
    the real modules (:mod:`resnetlab.counting`) on a ``size`` x ``size`` map.

    Columns: design, layers, receptive field, ReLUs (one per conv in VGG), params, params / C^2, MACs, MACs per
    output pixel / C^2. Three 3x3 layers: 27 C^2; one 7x7 layer: 49 C^2 (VGG Sec. 2.3).
    """
    rows = []
    for name, (n, k) in DESIGNS.items():
        net = conv_stack(n, k, channels)
        params = count_parameters(net)
        macs = count_macs(net, (channels, size, size))
        rows.append({
            "design": name, "layers": n, "receptive field": f"{theoretical_rf(n, k)}x{theoretical_rf(n, k)}",
            "ReLUs (one per conv, as in VGG)": n, "params": params,
            "params / C^2": params / channels**2, "MACs": macs,
            "MACs per pixel / C^2": macs / (size * size * channels**2),
        })
    return pd.DataFrame(rows)


__all__ = ["DESIGNS", "theoretical_rf", "conv_stack", "gradient_map", "gradient_maps", "support", "centre_fraction",
           "theoretical_rfs", "stack_cost"]
