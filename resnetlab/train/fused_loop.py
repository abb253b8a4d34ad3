"""Train K runs of one architecture as one (:func:`train_fused`): the loop of :mod:`.loop`,
member by member.

Every member keeps what its lone run keeps: its batches (its seed's order and augmentation),
its learning rate and warm-up (R-Sec. 4.2, IM appendix), its training window and evaluations,
its divergence check, its checkpoint (the lone format of :mod:`.checkpoint`, at the lone
run's path, so a fused run resumes alone and a lone run resumes fused) and its result
(:class:`~.loop.TrainResult`; the summary adds ``"fused": K``; its wall time is the fused
net's, so its images/s is the net's over K). A member that diverges is
taken out of the fused net with the state it had, and recorded failed; the others go on,
each exactly as it would alone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..data import CifarArrays
from .checkpoint import load_checkpoint, rng_state, save_checkpoint
from .fused import FusedTrainer, build_fused_trainer, evaluate_fused, fused_batches, fused_step
from .loop import (HISTORY_COLUMNS, Progress, TrainResult, _checkpoint, _fresh, _not_this_run, _progress, _summary,
                   _try_restore, divergence, loss_dtype)
from .recipe import PAPER, Recipe, learning_rate, warmup_over
from .trainer import Trainer, build_trainer, prepare_data


class ResumeMismatch(ValueError):
    """The members' checkpoints are at different iterations: they cannot step together."""


@dataclass
class Member:
    """One run of a fused group, with what :func:`~.loop.train` takes for it alone."""

    seed: int = 0
    model_options: dict[str, Any] | None = None
    checkpoint: str | Path | None = None
    identity: str | None = None
    on_eval: Callable[[dict[str, Any]], None] | None = None


@dataclass
class _State:
    """A member in the loop: its lone trainer, progress and verdict."""

    spec: Member
    trainer: Trainer
    run: Progress
    rng: dict[str, torch.Tensor]
    at_chance: int = 0
    status: str | None = None  # "failed" once it diverged
    reason: str | None = None

    @property
    def ckpt_path(self) -> Path | None:
        return Path(self.spec.checkpoint) if self.spec.checkpoint else None


def _start(model_name: str, data: CifarArrays, recipe: Recipe, spec: Member, device: Any) -> _State:
    """Build a member as its lone run builds it, resumed from its checkpoint if it has one."""
    t = build_trainer(model_name, data, recipe, model_options=spec.model_options, seed=spec.seed, device=device)
    run = _fresh(recipe, model_name, t.device)
    if spec.checkpoint:
        def accept(ckpt: dict[str, Any]) -> str | None:
            return _not_this_run(ckpt, t, model_name, recipe, spec.identity) or _try_restore(t, ckpt)

        ckpt = load_checkpoint(Path(spec.checkpoint), check=accept)
        if ckpt is not None:
            run = _progress(ckpt, t.device)
    # the random state the lone run has now (after its init, or as restored): dropout draws from it
    return _State(spec, t, run, rng_state(t.device))


class _FusedLoop:
    """One call of :func:`train_fused`: the fused trainer and its members (``active`` is in
    the fused net's member order; ``done`` holds members that diverged)."""

    def __init__(self, model_name: str, recipe: Recipe, states: list[_State], data: CifarArrays) -> None:
        self.model_name, self.recipe, self.states = model_name, recipe, states
        self.active = list(states)
        self.ft: FusedTrainer = build_fused_trainer([s.trainer for s in states], [s.rng for s in states], recipe)
        device = self.ft.device
        self.test_images, self.test_labels = data.test_images.to(device), data.test_labels.to(device)
        self.chance = 100.0 * (1 - 1 / len(data.classes))
        self.iteration = states[0].run.iteration
        self._reset_window()
        self.t0 = 0.0

    def _reset_window(self) -> None:
        k = len(self.active)
        self.win_loss = torch.zeros(k, device=self.ft.device, dtype=loss_dtype(self.ft.precision))
        self.win_wrong = torch.zeros(k, device=self.ft.device, dtype=torch.long)
        self.seen = self.batches = 0

    def save(self) -> None:
        """Every active member's checkpoint, in the lone format (with its own random state)."""
        self.ft.sync_members()
        for i, s in enumerate(self.active):
            if s.ckpt_path is not None:
                ckpt = _checkpoint(s.trainer, s.run, self.model_name, self.recipe, s.spec.identity)
                ckpt["rng"] = self.ft.rng[i]
                save_checkpoint(s.ckpt_path, ckpt)

    def run_until(self, end: int, bar: tqdm) -> None:
        self.ft.net.train()
        self.t0 = time.perf_counter()
        try:
            while self.active and self.iteration < end:
                lrs = self.step()
                it = self.iteration
                if it % self.recipe.eval_every == 0 or it == self.recipe.iterations:
                    self.evaluate_and_log(lrs, bar)
                bar.update(1)
        finally:
            bar.close()
        if self.active:
            self.ft.sync_members()
        it = self.iteration
        if self.active and it < self.recipe.iterations and it % self.recipe.eval_every == 0 \
                and it % self.recipe.checkpoint_every:
            self.save()  # stopped at an evaluation point: keep everything up to here

    def step(self) -> list[float]:
        """One iteration of every active member (and their warm-ups); their learning rates."""
        recipe, it = self.recipe, self.iteration
        lrs = [learning_rate(recipe, it, s.run.warmup_end) for s in self.active]
        xs, ys = fused_batches(self.ft, it)
        losses, out = fused_step(self.ft, xs, ys, lrs)
        wrong = (out.argmax(2) != ys.t()).sum(0)
        self.win_loss += losses.to(self.win_loss.dtype)
        self.win_wrong += wrong
        self.seen += ys.shape[1]
        self.batches += 1
        self.iteration = it = it + 1
        for i, s in enumerate(self.active):
            s.run.iteration = it
            if s.run.warmup_end is None:
                recent = s.run.warmup_recent
                recent[(it - 1) % recent.numel()] = wrong[i].float() / ys.shape[1]
                ended_by = warmup_over(recipe, it, recent)
                if ended_by:
                    s.run.warmup_end, s.run.warmup_ended_by = it, ended_by
        return lrs

    def evaluate_and_log(self, lrs: list[float], bar: tqdm) -> None:
        """An evaluation point: every member's history row, divergence check and checkpoint."""
        it, ft = self.iteration, self.ft
        # divided on the host, in double, as the lone loop's window does
        train_loss = [v / max(1, self.batches) for v in self.win_loss.tolist()]
        train_error = [100.0 * w / max(1, self.seen) for w in self.win_wrong.tolist()]
        self._reset_window()
        if any(math.isfinite(v) for v in train_loss):
            test_loss, test_error = evaluate_fused(ft, self.test_images, self.test_labels)
        else:
            test_loss = test_error = [math.nan] * len(self.active)
        now = time.perf_counter()
        failed: list[int] = []
        for i, s in enumerate(self.active):
            s.run.wall_time += now - self.t0
            finite = math.isfinite(train_loss[i])
            row = {"iteration": it, "epoch": it / s.trainer.stream.batches_per_epoch, "lr": lrs[i],
                   "train_loss": train_loss[i], "train_error": train_error[i],
                   "test_loss": test_loss[i] if finite else math.nan,
                   "test_error": test_error[i] if finite else math.nan, "wall_time": s.run.wall_time}
            s.run.history.append(row)
            if s.spec.on_eval is not None:
                s.spec.on_eval(row)
            s.at_chance, s.reason = divergence(self.recipe, row, s.run.warmup_end, s.at_chance, self.chance)
            if s.reason:
                s.status = "failed"
                failed.append(i)
        self.t0 = now
        errors = [r for i, r in enumerate(test_error) if i not in failed]
        bar.set_postfix(members=len(self.active) - len(failed),
                        test_err=f"{min(errors):.1f}-{max(errors):.1f}%" if errors else "-", refresh=False)
        for i in reversed(failed):  # frozen as they are: out of the fused net, recorded failed
            ft.remove(i)
            del self.active[i]
        if failed and self.active:
            self._reset_window()
        if self.active and it % self.recipe.checkpoint_every == 0 and it < self.recipe.iterations:
            self.save()
            self.t0 = time.perf_counter()


def check_members(members: list[Member]) -> None:
    if not members:
        raise ValueError("train_fused needs at least one member")
    ids = [m.identity for m in members if m.identity is not None]
    if len(set(ids)) != len(ids):
        raise ValueError("train_fused: two members are the same run (the same identity); a run trains once")


def train_fused(model_name: str, data: CifarArrays, recipe: Recipe = PAPER, members: list[Member] | None = None, *,
                device: str | torch.device | None = None, progress: bool = True, description: str | None = None,
                stop_after: int | None = None) -> list[TrainResult]:
    """Train ``members`` (runs of ``model_name`` with one ``recipe``, differing in seed and
    initial values) as one fused net; one :class:`~.loop.TrainResult` per member, in order,
    each what :func:`~.loop.train` would have returned for it alone (see the module docstring).

    Members resumed from checkpoints must be at the same iteration. ``stop_after``: stop
    (checkpointing) after this many iterations in this call, as :func:`~.loop.train` does.
    Raises :class:`~resnetlab.models.fused.FusionError` for nets that cannot fuse."""
    members = list(members or [Member()])
    check_members(members)
    data = prepare_data(data, recipe, members[0].seed)
    states = [_start(model_name, data, recipe, m, device) for m in members]
    at = sorted({s.run.iteration for s in states})
    if len(at) > 1:
        raise ResumeMismatch(f"fused members must resume from the same iteration, these are at {at}: "
                         f"train them separately (or fuse those at one iteration)")
    loop = _FusedLoop(model_name, recipe, states, data)
    start = loop.iteration
    end = recipe.iterations if stop_after is None else min(recipe.iterations, start + stop_after)
    bar = tqdm(total=recipe.iterations, initial=start, desc=description or f"{model_name} x{len(members)} (fused)",
               disable=not progress, unit="it", dynamic_ncols=True)
    loop.run_until(end, bar)
    results = []
    for s in states:
        status = s.status or ("complete" if s.run.iteration >= recipe.iterations else "interrupted")
        summary = {**_summary(status, s.reason, s.run, s.trainer, recipe, data), "fused": len(members)}
        results.append(TrainResult(pd.DataFrame(s.run.history, columns=HISTORY_COLUMNS), summary, s.trainer.model))
    return results


__all__ = ["Member", "ResumeMismatch", "train_fused"]
