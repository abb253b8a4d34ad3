"""Parameters and multiply-accumulates of a model: the papers' "FLOPs".

R-Sec. 3.3 counts "FLOPs (multiply-adds)": ResNet-34 has 3.6 billion, VGG-19 19.6
billion. We count multiply-accumulates of convolutions and fully-connected layers with
PyTorch's own ``torch.utils.flop_counter.FlopCounterMode`` (which reports 2 FLOPs per
multiply-add), so there are no hand-written per-layer formulas to get wrong; BN, ReLU,
pooling and additions are not counted, as in the paper.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (weights and biases; BN's affine parameters included)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def count_macs(model: nn.Module, input_size: tuple[int, int, int] = (3, 224, 224)) -> int:
    """Multiply-accumulates of one forward pass of a single ``input_size`` image."""
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, *input_size, device=device))
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2
