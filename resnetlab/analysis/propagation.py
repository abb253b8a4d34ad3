"""How signals travel through a stack of Residual Units: the argument of IM Sec. 2-3.

With identity shortcuts and an identity after-addition map, any deeper unit's input is
the shallower one's plus a sum of residuals (IM Eq. 4),

    x_L = x_l + sum_{i=l}^{L-1} F(x_i, W_i),

so the gradient reaching a shallow unit always contains the deep unit's gradient
unchanged (IM Eq. 5),

    dE/dx_l = dE/dx_L * (1 + d/dx_l sum_{i=l}^{L-1} F(x_i, W_i)).

Scale every shortcut by a constant lambda instead (IM Eq. 6-8) and the direct term becomes
``prod lambda_i = lambda^(L-l)``: it vanishes for lambda < 1 and explodes for lambda > 1,
leaving only the weight-layer path. A plain net has no direct term at all.

:func:`measure` makes this visible on a real network: it runs one batch forward and
backward and records, for every unit l, the norm of the unit's output x_l (forward) and
of the loss gradient dE/dx_l (backward), read with tensor hooks. :func:`signal_propagation`
does it for several nets and normalises the curves so they can share one log axis:
forward norms relative to x_0 (the input of the first unit) and backward norms relative
to dE/dx_L (the output of the last unit), where every net starts at 1.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

COLUMNS = ["net", "state", "unit", "forward_norm", "backward_norm"]

#: Standard deviation of CIFAR images after per-pixel-mean subtraction (x/255 - mean), about
#: 0.25: the noise inputs of :func:`noise_batch` use this scale so a trained net sees inputs
#: of the size it was trained on.
DATA_SCALE = 0.25


def noise_batch(batch_size: int = 16, *, num_classes: int = 10, seed: int = 0,
                scale: float = DATA_SCALE) -> tuple[torch.Tensor, torch.Tensor]:
    """A reproducible batch of Gaussian-noise "images" [B,3,32,32] and random labels."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(batch_size, 3, 32, 32, generator=g) * scale
    labels = torch.randint(0, num_classes, (batch_size,), generator=g)
    return images, labels


def _units(model: nn.Module) -> list[nn.Module]:
    units = getattr(model, "units", None)
    if units is None:
        raise TypeError("measure() needs a ResNet-like model with a .units list of Residual Units")
    return list(units)


def _per_sample_norm(t: torch.Tensor) -> float:
    """Mean over the batch of each sample's L2 norm (the ||x_l|| of IM Eq. 4-5)."""
    return float(t.detach().float().flatten(1).norm(dim=1).mean())


def _patch_detached(module: nn.Module) -> None:
    """Make ``module`` return its output detached: same values, no gradient through it."""
    forward = module.forward
    module.forward = lambda *a, **k: forward(*a, **k).detach()  # type: ignore[method-assign]


def _pass(net: nn.Module, units: list[nn.Module], images: torch.Tensor,
          labels: torch.Tensor) -> tuple[list[float], list[float]]:
    """One forward/backward; per-sample norms of x_l and dE/dx_l at every unit boundary.
    A gradient that never reaches x_l (no path to it) is recorded as 0."""
    n = len(units)
    forward = [math.nan] * (n + 1)
    backward = [0.0] * (n + 1)
    handles = []

    def keep(index: int, t: torch.Tensor) -> None:
        forward[index] = _per_sample_norm(t)
        if t.requires_grad:
            t.register_hook(lambda g, i=index: backward.__setitem__(i, _per_sample_norm(g)))

    handles.append(units[0].register_forward_pre_hook(lambda m, inp: keep(0, inp[0])))
    for i, unit in enumerate(units, 1):
        handles.append(unit.register_forward_hook(lambda m, inp, out, i=i: keep(i, out)))
    try:
        with torch.enable_grad():
            net.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(images).float(), labels)
            loss.backward()
    finally:
        for h in handles:
            h.remove()
    return forward, backward


def measure(model: nn.Module, images: torch.Tensor | None = None, labels: torch.Tensor | None = None, *,
            batch_size: int = 16, seed: int = 0, train_mode: bool = True, direct: bool = True,
            device: str | torch.device | None = None) -> pd.DataFrame:
    """Forward and backward norms at every unit of ``model`` for one batch.

    Returns a DataFrame with columns ``unit`` (0 = input of the first unit, l = output of
    unit l), ``forward_norm`` (mean per-sample ||x_l||), ``backward_norm`` (mean per-sample
    ||dE/dx_l||, E the mean cross-entropy of the batch) and, with ``direct=True``,
    ``direct_norm``: the norm of the part of dE/dx_l that travels along the shortcuts only
    (the first term of IM Eq. 8, ``dE/dx_L`` times the product of the shortcut factors; Eq. 5 is its lambda = 1 case),
    measured by a second pass in which every residual branch (and gate) is detached. It is
    0 for a plain net, which has no such path. Values are raw, not normalised. Without
    ``images``, uses :func:`noise_batch`.

    ``train_mode=True`` (default) uses BN's batch statistics, as during SGD. The model is
    copied first, so its weights, mode and BN running statistics are left untouched.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    if images is None:
        num_classes = getattr(getattr(model, "fc", None), "out_features", 10)
        images, labels = noise_batch(batch_size, num_classes=num_classes, seed=seed)
    elif labels is None:
        raise ValueError("pass labels with images")
    images, labels = images.to(device), labels.to(device)

    def fresh() -> tuple[nn.Module, list[nn.Module]]:
        net = copy.deepcopy(model).to(device)
        net.train(train_mode)
        if getattr(net, "checkpoint_segments", 0):
            net.checkpoint_segments = 0  # hooks need the real forward tensors
        return net, _units(net)

    net, units = fresh()
    forward, backward = _pass(net, units, images, labels)
    out = pd.DataFrame({"unit": np.arange(len(units) + 1), "forward_norm": forward, "backward_norm": backward})
    if direct:
        net, units = fresh()
        for unit in units:
            for name in ("residual", "gate"):
                branch = getattr(unit, name, None)
                if branch is not None:
                    _patch_detached(branch)
        _, shortcut_only = _pass(net, units, images, labels)
        out["direct_norm"] = shortcut_only
    return out


def normalise(raw: pd.DataFrame) -> pd.DataFrame:
    """Forward norms relative to x_0, backward norms relative to dE/dx_L (the last unit),
    so every net's forward curve starts at 1 and every backward curve ends at 1. The direct
    (shortcut-only) term is also taken relative to dE/dx_L."""
    out = raw.copy()
    f0 = float(raw["forward_norm"].iloc[0])
    bL = float(raw["backward_norm"].iloc[-1])
    out["forward_norm"] = raw["forward_norm"] / f0 if f0 > 0 and math.isfinite(f0) else math.nan
    out["backward_norm"] = raw["backward_norm"] / bL if bL > 0 and math.isfinite(bL) else math.nan
    if "direct_norm" in raw:
        out["direct_norm"] = raw["direct_norm"] / bL if bL > 0 and math.isfinite(bL) else math.nan
    return out


def signal_propagation(nets: Mapping[str, nn.Module], state: str = "init", *, images: torch.Tensor | None = None,
                       labels: torch.Tensor | None = None, batch_size: int = 16, seed: int = 0,
                       device: str | torch.device | None = None, relative: bool = True) -> pd.DataFrame:
    """:func:`measure` for each named net, stacked into the long DataFrame that the IM
    Sec. 2-3 signal-propagation figure draws: columns ``net, state, unit,
    forward_norm, backward_norm`` (normalised with :func:`normalise` unless
    ``relative=False``), plus ``direct_norm`` (the shortcut-only term, see :func:`measure`)
    and the raw norms as ``forward_raw``, ``backward_raw``, ``direct_raw``."""
    if state not in ("init", "trained"):
        raise ValueError(f"state must be 'init' or 'trained', not {state!r}")
    frames = []
    for name, model in nets.items():
        raw = measure(model, images, labels, batch_size=batch_size, seed=seed, device=device)
        rel = normalise(raw) if relative else raw.copy()
        rel["forward_raw"] = raw["forward_norm"]
        rel["backward_raw"] = raw["backward_norm"]
        if "direct_norm" in raw:
            rel["direct_raw"] = raw["direct_norm"]
        rel.insert(0, "state", state)
        rel.insert(0, "net", name)
        frames.append(rel)
    if not frames:
        return pd.DataFrame(columns=COLUMNS + ["direct_norm", "forward_raw", "backward_raw", "direct_raw"])
    return pd.concat(frames, ignore_index=True)


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (net, state): how much the gradient changes from the last unit back to
    the first (``dE/dx_0 / dE/dx_L``) and per unit (geometric mean), the same for the
    shortcut-only term of IM Eq. 8 (about lambda per unit with constant scaling, 0 for a
    plain net), and how much the forward signal grows (``x_L / x_0``)."""
    rows = []
    for (net, state), g in df.groupby(["net", "state"], sort=False):
        g = g.sort_values("unit")
        b = g["backward_raw"] if "backward_raw" in g else g["backward_norm"]
        f = g["forward_raw"] if "forward_raw" in g else g["forward_norm"]
        b0, bL, f0, fL = (float(b.iloc[0]), float(b.iloc[-1]), float(f.iloc[0]), float(f.iloc[-1]))
        units = int(g["unit"].iloc[-1] - g["unit"].iloc[0])
        ratio = b0 / bL if bL > 0 else math.nan
        per_unit = ratio ** (1 / units) if units and ratio > 0 and math.isfinite(ratio) else math.nan
        row = {"net": net, "state": state, "units": units, "gradient dE/dx_0 / dE/dx_L": ratio,
               "per unit (geometric mean)": per_unit}
        if "direct_raw" in g or "direct_norm" in g:
            d = g["direct_raw"] if "direct_raw" in g else g["direct_norm"]
            d_ratio = float(d.iloc[0]) / bL if bL > 0 else math.nan
            row["shortcut term at x_0 / dE/dx_L"] = d_ratio
            row["shortcut term per unit"] = (d_ratio ** (1 / units) if units and d_ratio > 0 and math.isfinite(d_ratio)
                                             else 0.0 if d_ratio == 0 else math.nan)
        row["forward x_L / x_0"] = fL / f0 if f0 > 0 else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def lambda_sweep(depth: int = 56, lambdas: tuple[float, ...] = (0.5, 0.9, 1.0, 1.1, 1.5), *,
                 batch_size: int = 16, seed: int = 0, device: str | torch.device | None = None) -> pd.DataFrame:
    """IM Eq. 6-8 at initialisation: ResNet-``depth`` with every shortcut scaled by lambda
    (``variant="constant_scaling"``; lambda = 1 is the identity). Returns
    :func:`signal_propagation`'s DataFrame, one net per lambda."""
    from ..models import build_model

    nets: dict[str, Any] = {}
    for lam in lambdas:
        torch.manual_seed(seed)
        options = {} if lam == 1.0 else {"variant": "constant_scaling", "shortcut_scale": lam}
        nets[f"lambda = {lam:g}" + (" (identity)" if lam == 1.0 else "")] = build_model(f"resnet{depth}", **options)
    return signal_propagation(nets, "init", batch_size=batch_size, seed=seed, device=device)


__all__ = ["COLUMNS", "DATA_SCALE", "noise_batch", "measure", "normalise", "signal_propagation", "summarise",
           "lambda_sweep"]

