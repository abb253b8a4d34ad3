"""K nets of one architecture as one net: horizontal fusion (HFTA: Wang et al., "Horizontally
Fused Training Array", MLSys 2021).

A small CIFAR ResNet at batch 128 leaves a big GPU idle between hundreds of tiny kernels.
Fusing K runs that share an architecture makes every kernel K times larger and pays one
launch for all K, while each member computes exactly what it computes alone:

* a convolution becomes one grouped convolution (``groups`` times K): member k owns the
  k-th block of input and output channels, so no member ever sees another's;
* batch norm runs over K x C channels: each member keeps its own per-channel statistics;
* the classifier is one batched matrix product, a weight ``[K, classes, features]``;
* option-A padding (:class:`~.units.PadShortcut`) pads each member's own channels;
* dropout draws each member's masks from that member's own random stream
  (:class:`MemberRNG`), the stream it would have drawn from alone.

Activations are ``[B, K*C, H, W]`` with member k in channels ``k*C .. (k+1)*C``; the logits
are ``[B, K, classes]``. Every fused tensor is member-major: ``fused.reshape(K, *shape)[k]``
is member k's (:func:`member_state_dict`). Members may differ in their weights only (their
seed and initial values such as IM's gate bias b_g); anything else that differs is an error.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .units import DropoutShortcut, PadShortcut

#: attributes members may differ in: initial values only, which live on in the weights
INITIAL_VALUES = ("initial_bias",)
#: modules that hold no state and act on each channel (or each member's slice) alone
_PASS_THROUGH = (nn.ReLU, nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.Identity)
_CONTAINER_STATE = ("_parameters", "_buffers", "_modules", "training")


class FusionError(ValueError):
    """These nets cannot be fused; the message says where they differ or what does not fuse."""


class MemberRNG:
    """Each member's own random state, as the global generator would hold it in a lone run
    (``{"cpu": ..., "cuda": ...}`` as :func:`resnetlab.train.checkpoint.rng_state` gives it).

    :meth:`draw` runs a random op for member k with the device's default generator set to
    member k's state, then keeps the advanced state and puts the global state back: the op
    draws exactly what it would have drawn in member k's lone run."""

    def __init__(self, states: list[dict[str, torch.Tensor]]) -> None:
        self.states = [dict(s) for s in states]

    def draw(self, k: int, device: torch.device, fn: Callable[[], torch.Tensor]) -> torch.Tensor:
        key = "cuda" if device.type == "cuda" else "cpu"
        get = (lambda: torch.cuda.get_rng_state(device)) if key == "cuda" else torch.get_rng_state
        put = (lambda s: torch.cuda.set_rng_state(s, device)) if key == "cuda" else torch.set_rng_state
        saved = get()
        put(self.states[k][key])
        try:
            out = fn()
            self.states[k][key] = get()
        finally:
            put(saved)
        return out


class FusedLinear(nn.Module):
    """K linear layers as one batched product: ``[B, K*in]`` or ``[B, K, in]`` to ``[B, K, out]``."""

    def __init__(self, members: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.members, self.in_features, self.out_features = members, in_features, out_features
        self.weight = nn.Parameter(torch.empty(members, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(members, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], self.members, self.in_features).transpose(0, 1)  # [K, B, in]
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2)).transpose(0, 1)


class FusedPadShortcut(PadShortcut):
    """Option A (R-Sec. 3.3) for each member: subsample, then zero-pad each member's channels."""

    def __init__(self, members: int, template: PadShortcut) -> None:
        nn.Module.__init__(self)
        self.members, self.pad, self.stride = members, template.pad, template.stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.pad:
            b, _, h, w = x.shape
            x = F.pad(x.reshape(b, self.members, -1, h, w), (0, 0, 0, 0, 0, self.pad)).reshape(b, -1, h, w)
        return x


class MemberwiseRandom(nn.Module):
    """A random module (dropout) applied to each member's slice with that member's random
    stream (:class:`MemberRNG`); in evaluation, where it is deterministic and acts per element,
    applied to the whole fused tensor at once."""

    def __init__(self, members: int, template: nn.Module, rng: MemberRNG) -> None:
        super().__init__()
        self.members, self.inner = members, copy.deepcopy(template)
        self._rng = rng  # shared by the net's random modules; not a submodule, not state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self.inner(x)
        parts = x.unflatten(1, (self.members, -1)) if x.dim() == 4 else x
        outs = [self._rng.draw(k, x.device, lambda k=k: self.inner(parts[:, k].contiguous()))
                for k in range(self.members)]
        return torch.stack(outs, 1).flatten(1, 2) if x.dim() == 4 else torch.stack(outs, 1)


def _settings(module: nn.Module) -> dict[str, Any]:
    """What a module is besides its tensors and children (widths, strides, scales, layouts)."""
    return {k: v for k, v in vars(module).items()
            if k not in _CONTAINER_STATE and not k.startswith("_") and k not in INITIAL_VALUES}


def _short(value: Any, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_fusable(nets: list[nn.Module]) -> None:
    """Raise :class:`FusionError` unless the nets are one architecture: the same modules, of
    the same settings and tensor shapes (they may differ in weights and initial values)."""
    if len(nets) < 1:
        raise FusionError("nothing to fuse: no nets given")
    ref = dict(nets[0].named_modules())
    ref_shapes = {k: v.shape for k, v in nets[0].state_dict().items()}
    for k, net in enumerate(nets[1:], start=1):
        mods = dict(net.named_modules())
        if list(mods) != list(ref):
            raise FusionError(f"net {k} has other modules than net 0: fusion needs one architecture")
        for name, m in mods.items():
            where = f"module {name!r}" if name else "the net itself"
            if type(m) is not type(ref[name]):
                raise FusionError(f"net {k} differs from net 0 at {where}: {type(m).__name__} vs "
                                  f"{type(ref[name]).__name__}")
            mine, theirs = _settings(m), _settings(ref[name])
            for key in sorted(set(mine) | set(theirs)):
                if mine.get(key) != theirs.get(key):
                    raise FusionError(f"net {k} differs from net 0 in {key!r} of {where} ({_short(mine.get(key))} "
                                      f"vs {_short(theirs.get(key))}); fusion trains runs of one architecture that "
                                      f"differ only in their seed and initial values")
        shapes = {name: v.shape for name, v in net.state_dict().items()}
        if shapes != ref_shapes:
            raise FusionError(f"net {k} has tensors of other shapes than net 0")


def _fused_module(m: nn.Module, k: int, rng: MemberRNG) -> nn.Module:
    """The fused counterpart of leaf ``m`` for ``k`` members (its tensors are filled later)."""
    if isinstance(m, nn.Conv2d):
        return nn.Conv2d(k * m.in_channels, k * m.out_channels, m.kernel_size, stride=m.stride, padding=m.padding,
                         dilation=m.dilation, groups=k * m.groups, bias=m.bias is not None, padding_mode=m.padding_mode)
    if isinstance(m, nn.BatchNorm2d):
        bn = nn.BatchNorm2d(k * m.num_features, eps=m.eps, momentum=m.momentum, affine=m.affine,
                            track_running_stats=m.track_running_stats)
        if hasattr(m, "layer_response"):
            bn.layer_response = m.layer_response  # R-Fig. 7's tag
        return bn
    if isinstance(m, nn.Linear):
        return FusedLinear(k, m.in_features, m.out_features)
    if isinstance(m, PadShortcut):
        return FusedPadShortcut(k, m)
    if isinstance(m, (DropoutShortcut, nn.Dropout)):
        return MemberwiseRandom(k, m, rng)
    if isinstance(m, _PASS_THROUGH):
        return copy.deepcopy(m)
    raise FusionError(f"{type(m).__name__} cannot be fused (fusion knows convolutions, batch norm, linear layers, "
                      f"option-A padding, dropout and stateless activations and pools); train these runs separately")


def _fuse_tree(template: nn.Module, k: int, rng: MemberRNG) -> nn.Module:
    """A copy of ``template`` with each leaf replaced by its fused counterpart."""
    if not list(template.children()):
        if type(template) is nn.Sequential:  # an empty stage of ops (no activation after the addition)
            return nn.Sequential()
        return _fused_module(template, k, rng)
    out = copy.copy(template)
    out._modules = {name: (None if child is None else _fuse_tree(child, k, rng))
                    for name, child in template._modules.items()}
    out._parameters, out._buffers = {}, {}
    if template._parameters or template._buffers:
        raise FusionError(f"{type(template).__name__} holds tensors of its own and cannot be fused")
    return out


class FusedNet(nn.Module):
    """K nets of one architecture as one net (see the module docstring): ``forward`` takes
    ``[B, K*3, H, W]`` (member k's images in channels ``3k .. 3k+2``) and returns ``[B, K, classes]``."""

    def __init__(self, nets: list[nn.Module], rng_states: list[dict[str, torch.Tensor]] | None = None) -> None:
        super().__init__()
        check_fusable(nets)
        self.members = len(nets)
        self.rng = MemberRNG(rng_states or [{"cpu": torch.get_rng_state()} for _ in nets])
        self.net = _fuse_tree(nets[0], self.members, self.rng)
        like = next(nets[0].parameters(), None)
        if like is not None:  # the members' device and dtype, before their tensors are copied in
            self.net.to(device=like.device, dtype=like.dtype)
        self.member_shapes = {name: tuple(v.shape) for name, v in nets[0].state_dict().items()}
        self.load_members([n.state_dict() for n in nets])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def load_members(self, states: list[dict[str, torch.Tensor]]) -> None:
        """Set every member's tensors from its lone state dict."""
        fused = {}
        for name, tensor in self.net.state_dict().items():
            parts = [s[name] for s in states]
            if tensor.dim() == 0:  # BN's num_batches_tracked: one count, the same for all members
                fused[name] = parts[0]
            else:
                fused[name] = torch.stack([p.to(tensor.device, tensor.dtype) for p in parts]).reshape(tensor.shape)
        self.net.load_state_dict(fused)


def member_view(fused: torch.Tensor, member_shape: tuple[int, ...], k: int) -> torch.Tensor:
    """Member k's part of a member-major fused tensor (a view)."""
    if fused.dim() == 0:
        return fused
    return fused.reshape(-1, *member_shape)[k]


def member_state_dict(fused: FusedNet, k: int) -> dict[str, torch.Tensor]:
    """Member k's state dict, which a lone net of the architecture loads as is."""
    return {name: member_view(t, fused.member_shapes[name], k).detach().clone()
            for name, t in fused.net.state_dict().items()}


def fuse(nets: list[nn.Module], rng_states: list[dict[str, torch.Tensor]] | None = None) -> FusedNet:
    """:class:`FusedNet` of ``nets`` (raises :class:`FusionError` if they are not one architecture)."""
    return FusedNet(nets, rng_states)


__all__ = ["FusedLinear", "FusedNet", "FusedPadShortcut", "FusionError", "MemberRNG", "MemberwiseRandom",
           "check_fusable", "fuse", "member_state_dict", "member_view"]
