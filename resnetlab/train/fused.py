"""K runs of one architecture trained as one (HFTA, MLSys 2021): the fused trainer and its step.

Each member is first built exactly as its lone run builds it (:func:`~.trainer.build_trainer`
with its own seed: the same initial weights, the same batch stream, the same random state
for dropout), then the K nets are fused (:class:`resnetlab.models.fused.FusedNet`). One step
runs the K members' batches through the fused net, sums their K losses (the gradient of
member k is that of its own loss: no parameter is shared) and applies SGD with momentum and
weight decay (R-Sec. 3.4) with each member's own learning rate, a device tensor ``[K]``. On
fp16 each member has its own loss scale, as its own ``GradScaler`` would keep it.

The member trainers stay: :meth:`FusedTrainer.sync_members` writes each member's weights,
momentum buffers and random state back into its lone trainer, so that a member's checkpoint,
record and weights are exactly those of a lone run (:mod:`.fused_loop`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..models.fused import FusedNet, FusionError, MemberwiseRandom, fuse, member_view
from .recipe import Recipe
from .trainer import Trainer, _autocast, as_input, decay_groups, eval_batches

#: torch.amp.GradScaler's defaults, which a member's own scaler would use
SCALE_INIT, SCALE_GROWTH, SCALE_BACKOFF, SCALE_INTERVAL = 2.0**16, 2.0, 0.5, 2000


@dataclass
class FusedTrainer:
    """The fused net of K member trainers, its optimizer state and the members' step inputs."""

    members: list[Trainer]
    rng: list[dict[str, torch.Tensor]]  # each member's global random state, as in its lone run
    recipe: Recipe
    net: FusedNet = field(init=False)
    step_net: torch.nn.Module = field(init=False)
    names: list[str] = field(init=False)  # fused parameter names, the lone nets' names
    decays: list[bool] = field(init=False)
    momentum: list[torch.Tensor | None] = field(init=False)
    scale: torch.Tensor | None = field(init=False)  # fp16: per-member loss scale [K]
    growth: torch.Tensor | None = field(init=False)
    _lr: tuple[tuple[float, ...], list[torch.Tensor]] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        # kept apart from the members: they outlive the last member's removal
        self._device, self._precision = self.members[0].device, self.members[0].precision
        self.fuse()

    @property
    def k(self) -> int:
        return len(self.members)

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def precision(self) -> str:
        return self._precision

    def fuse(self) -> None:
        """(Re)build the fused net, momentum and loss scales from the member trainers."""
        lead = self.members[0]
        self.net = fuse([t.model for t in self.members], self.rng).to(lead.device)
        if getattr(lead.model, "checkpoint_segments", 0) and any(isinstance(m, MemberwiseRandom)
                                                                 for m in self.net.modules()):
            # the recomputation would restore only the global generator, not each member's stream
            raise FusionError("fused dropout with activation checkpointing would draw other masks in the "
                              "recomputation: train these runs separately")
        if lead.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.step_net = torch.compile(self.net) if self.recipe.compile else self.net
        lone = dict(lead.model.named_parameters())
        decayed = {id(p) for p in decay_groups(lead.model, self.recipe.weight_decay_policy)[0]}
        self.names = [n for n, _ in self.net.net.named_parameters()]
        self.decays = [id(lone[n]) in decayed for n in self.names]
        self.momentum = []
        for name, p in self.net.net.named_parameters():
            bufs = [_momentum_of(t, name) for t in self.members]
            if any(b is None for b in bufs):
                if any(b is not None for b in bufs):
                    raise FusionError("some members have momentum buffers and others not: train them separately")
                self.momentum.append(None)
            else:
                stacked = torch.stack([b.to(p.device, p.dtype) for b in bufs]).reshape(p.shape)
                self.momentum.append(torch.empty_like(p).copy_(stacked))  # p's memory layout
        self.scale = self.growth = None
        if lead.precision == "fp16":
            states = [t.scaler.state_dict() for t in self.members]
            self.scale = torch.tensor([s.get("scale", SCALE_INIT) for s in states], device=lead.device)
            self.growth = torch.tensor([s.get("_growth_tracker", 0) for s in states], device=lead.device)
        self._lr = None

    def learning_rates(self, lrs: list[float]) -> list[torch.Tensor]:
        """The members' learning rates ``lrs`` spread over each parameter (member k's part of
        every tensor holds ``lrs[k]``), on the device. Built only when the rates change (at a
        milestone, or when a member's warm-up ends), so a step never copies or waits; the
        update is then one ``_foreach_addcmul_`` over tensors of equal shapes."""
        key = tuple(lrs)
        if self._lr is None or self._lr[0] != key:
            lr = torch.tensor(key, dtype=torch.float64, device=self.device)  # cast per tensor below
            full = []
            for p in self.net.net.parameters():
                spread = lr.view(self.k, *([1] * p.dim())).expand(self.k, p.shape[0] // self.k, *p.shape[1:])
                full.append(torch.empty_like(p).copy_(spread.reshape(p.shape)))
            self._lr = (key, full)
        return self._lr[1]

    def sync_members(self) -> None:
        """Write each member's weights, BN statistics, momentum, loss scale and random state
        back into its lone trainer."""
        fused_state = self.net.net.state_dict()
        for k, t in enumerate(self.members):
            t.model.load_state_dict({n: member_view(v, self.net.member_shapes[n], k) for n, v in fused_state.items()})
            lone = dict(t.model.named_parameters())
            for name, buf in zip(self.names, self.momentum):
                if buf is not None:
                    t.optimizer.state[lone[name]]["momentum_buffer"] = (
                        member_view(buf, self.net.member_shapes[name], k).detach().clone())
            if self.scale is not None and self.growth is not None:
                t.scaler.load_state_dict({"scale": float(self.scale[k]), "growth_factor": SCALE_GROWTH,
                                          "backoff_factor": SCALE_BACKOFF, "growth_interval": SCALE_INTERVAL,
                                          "_growth_tracker": int(self.growth[k])})
            self.rng[k] = dict(self.net.rng.states[k])

    def remove(self, k: int) -> None:
        """Take member k out of the fused net (its lone trainer keeps its final state)."""
        self.sync_members()
        del self.members[k], self.rng[k]
        if self.members:
            self.fuse()


def _momentum_of(t: Trainer, name: str) -> torch.Tensor | None:
    p = dict(t.model.named_parameters())[name]
    state = t.optimizer.state.get(p, {})
    return state.get("momentum_buffer")


def build_fused_trainer(members: list[Trainer], rng: list[dict[str, torch.Tensor]], recipe: Recipe) -> FusedTrainer:
    """The fused trainer of ``members`` (lone trainers of one architecture and recipe, each
    built and, if resumed, restored as its lone run; ``rng`` their random states)."""
    lead = members[0]
    for k, t in enumerate(members[1:], start=1):
        if (t.device, t.precision, t.channels_last, t.stream.batch_size) != \
                (lead.device, lead.precision, lead.channels_last, lead.stream.batch_size):
            raise FusionError(f"member {k} trains on another device, precision, layout or batch size than member 0")
    return FusedTrainer(list(members), list(rng), recipe)


def fused_step(ft: FusedTrainer, xs: list[torch.Tensor], ys: torch.Tensor,
               lrs: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """One SGD step of every member on its own batch (``xs[k]``, ``ys[k]``) at its own learning
    rate ``lrs[k]``; the members' (detached) losses ``[K]`` and logits ``[B, K, classes]``.
    Never waits for the device."""
    lead = ft.members[0]
    x = as_input(torch.cat(xs, 1), lead.precision, lead.channels_last)
    with _autocast(lead.device, lead.precision):
        out = ft.step_net(x)
        logits = out if lead.precision == "fp64" else out.float()
        losses = F.cross_entropy(logits.permute(0, 2, 1), ys.t(), reduction="none").mean(0)
    params = list(ft.net.net.parameters())
    for p in params:
        p.grad = None
    total = (losses * ft.scale).sum() if ft.scale is not None else losses.sum()
    total.backward()
    with torch.no_grad():
        if ft.scale is None:
            _sgd(ft, params, ft.learning_rates(lrs))
        else:
            _sgd_scaled(ft, params, torch.tensor(lrs, dtype=torch.float64, device=lead.device))
    return losses.detach(), out.detach()


def _grads(ft: FusedTrainer, params: list[torch.Tensor]) -> list[torch.Tensor]:
    """The gradients with weight decay added (``g + wd * p``, as torch.optim.SGD does)."""
    wd = ft.recipe.weight_decay
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    return [g.add(p, alpha=wd) if wd and decay else g for g, p, decay in zip(grads, params, ft.decays)]


def _sgd(ft: FusedTrainer, params: list[torch.Tensor], lr_full: list[torch.Tensor]) -> None:
    """torch.optim.SGD's update (classic momentum: ``buf = m * buf + d``, the first step
    ``buf = d``; ``p -= lr * buf``), every member at its own rate (``lr_full``)."""
    d = _grads(ft, params)
    if all(b is None for b in ft.momentum):
        ft.momentum = [g.clone() for g in d]
    else:
        bufs = [b for b in ft.momentum if b is not None]
        torch._foreach_mul_(bufs, ft.recipe.momentum)
        torch._foreach_add_(bufs, d)
    torch._foreach_addcmul_(params, [b for b in ft.momentum if b is not None], lr_full, value=-1)


def _sgd_scaled(ft: FusedTrainer, params: list[torch.Tensor], lr: torch.Tensor) -> None:
    """The fp16 step: each member's gradients unscaled by its own loss scale; a member whose
    gradients overflowed skips its step and halves its scale, one that did not for
    ``SCALE_INTERVAL`` steps doubles it (torch.amp.GradScaler's rule, per member)."""
    assert ft.scale is not None and ft.growth is not None
    k = ft.k
    inv = (1.0 / ft.scale).float()
    for p in params:
        if p.grad is not None:
            p.grad.unflatten(0, (k, -1)).mul_(inv.view(k, *([1] * p.dim())))
    d = _grads(ft, params)
    skip = torch.stack([(~torch.isfinite(g.unflatten(0, (k, -1)))).flatten(1).any(1) for g in d]).any(0)
    for i, (p, g) in enumerate(zip(params, d)):
        shape = (k, *([1] * p.dim()))
        keep = skip.view(shape)
        buf = ft.momentum[i]
        new = (g.clone() if buf is None else buf.mul(ft.recipe.momentum).add_(g)).unflatten(0, (k, -1))
        # a skipped member keeps its buffer (none yet: zero, so that its first real step is ``buf = d``)
        old = torch.zeros_like(new) if buf is None else buf.unflatten(0, (k, -1))
        new = torch.where(keep, old, new)
        view = p.unflatten(0, (k, -1))
        view.copy_(torch.where(keep, view, view.addcmul(new, lr.to(p.dtype).view(shape), value=-1)))
        ft.momentum[i] = new.flatten(0, 1)
    grown = torch.where(skip, torch.zeros_like(ft.growth), ft.growth + 1)
    ft.scale = torch.where(skip, ft.scale * SCALE_BACKOFF,
                           torch.where(grown >= SCALE_INTERVAL, ft.scale * SCALE_GROWTH, ft.scale))
    ft.growth = torch.where(grown >= SCALE_INTERVAL, torch.zeros_like(grown), grown)


@torch.no_grad()
def evaluate_fused(ft: FusedTrainer, images: torch.Tensor, labels: torch.Tensor,
                   batch_size: int = 1000) -> tuple[list[float], list[float]]:
    """Every member's test loss and error (%) on the same test images, in eval mode (BN's
    running statistics, R-Sec. 4.2's single view): one fused pass per batch, one host sync."""
    lead, net = ft.members[0], ft.net
    was_training = net.training
    net.eval()
    wide = lead.precision == "fp64"
    loss_sum = torch.zeros(ft.k, device=lead.device, dtype=torch.float64 if wide else torch.float32)
    wrong = torch.zeros(ft.k, device=lead.device, dtype=torch.long)
    n = 0
    for x, y in eval_batches(images, labels, lead.normalizer, batch_size=batch_size, device=lead.device):
        x = as_input(x.repeat(1, ft.k, 1, 1), lead.precision, lead.channels_last)
        with _autocast(lead.device, lead.precision):
            out = net(x)
        yk = y[:, None].expand(-1, ft.k)
        logits = out.double() if wide else out.float()
        loss_sum += F.cross_entropy(logits.permute(0, 2, 1), yk, reduction="none").sum(0)
        wrong += (out.argmax(2) != yk).sum(0)
        n += len(y)
    net.train(was_training)
    # divided on the host, in double, as the lone evaluation does: the same numbers in the record
    return [v / n for v in loss_sum.tolist()], [100.0 * w / n for w in wrong.tolist()]


def fused_batches(ft: FusedTrainer, iteration: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Each member's batch of ``iteration`` from its own stream (its seed's order and
    augmentation, as alone): the images ``[K x [B, 3, 32, 32]]`` and labels ``[K, B]``."""
    batches = [t.stream.batch(iteration) for t in ft.members]
    return [x for x, _ in batches], torch.stack([y for _, y in batches])


__all__ = ["FusedTrainer", "build_fused_trainer", "evaluate_fused", "fused_batches", "fused_step"]
