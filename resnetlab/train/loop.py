"""Train a CIFAR net the papers' way (R-Sec. 4.2; IM appendix): the loop.

:func:`train` runs :func:`~.trainer.train_step` at the learning rate of
:func:`~.recipe.learning_rate`, evaluates every ``eval_every`` iterations, checkpoints every
``checkpoint_every`` (:mod:`.checkpoint`) and stops a run that diverges. The reported result
is the final iterate's test error. The loop never waits for the GPU except at evaluation
points (and, during the R-Sec. 4.2 warm-up, every 10th step).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ..data import CifarArrays
from .checkpoint import CHECKPOINT_VERSION, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .recipe import PAPER, Recipe, initial_warmup_end, learning_rate, stuck_at_chance, warmup_over
from .trainer import Trainer, build_trainer, device_name, evaluate, prepare_data, train_step

HISTORY_COLUMNS = ["iteration", "epoch", "lr", "train_loss", "train_error", "test_loss", "test_error", "wall_time"]


class DivergedError(RuntimeError):
    """Raised inside the loop when a run fails; the trainer records it, it never escapes."""


@dataclass
class TrainResult:
    history: pd.DataFrame
    summary: dict[str, Any]
    model: nn.Module


@dataclass
class Progress:
    """Where a run is: the loop's part of a checkpoint (its fields are checkpoint keys)."""

    iteration: int  # steps done
    warmup_end: int | None  # None while warming up (see learning_rate)
    warmup_ended_by: str | None
    warmup_recent: torch.Tensor  # per-batch training errors of the last ``warmup_window`` batches, on the device
    history: list[dict[str, Any]]
    wall_time: float


class _Window:
    """Training loss and errors summed on the device between two evaluations (no host sync)."""

    def __init__(self, device: torch.device, dtype: torch.dtype = torch.float32) -> None:
        self.loss = torch.zeros((), device=device, dtype=dtype)
        self.wrong = torch.zeros((), device=device, dtype=torch.long)
        self.seen = self.batches = 0

    def add(self, loss: torch.Tensor, wrong: torch.Tensor, n: int) -> None:
        self.loss += loss.to(self.loss.dtype)
        self.wrong += wrong
        self.seen += n
        self.batches += 1

    def pop(self) -> tuple[float, float]:
        """(mean training loss, training error %) of the window, which starts afresh."""
        loss, error = self.loss.item() / max(1, self.batches), 100.0 * self.wrong.item() / max(1, self.seen)
        self.loss.zero_()
        self.wrong.zero_()
        self.seen = self.batches = 0
        return loss, error


def loss_dtype(precision: str) -> torch.dtype:
    """The dtype losses are summed in: float64 for "fp64" runs (exactness checks), else float32."""
    return torch.float64 if precision == "fp64" else torch.float32


def _fresh(recipe: Recipe, model_name: str, device: torch.device) -> Progress:
    warmup_end = initial_warmup_end(recipe, model_name)
    return Progress(0, warmup_end, None if warmup_end is None else "no warm-up",
                    torch.zeros(recipe.warmup_window, device=device), [], 0.0)


def _checkpoint(t: Trainer, run: Progress, model_name: str, recipe: Recipe, identity: str | None) -> dict[str, Any]:
    """The checkpoint dict (:data:`~.checkpoint.CHECKPOINT_KEYS`); :func:`_restore` and
    :func:`_progress` read it."""
    return {
        "version": CHECKPOINT_VERSION, "identity": identity, "model_name": model_name, "recipe": recipe.to_dict(),
        "model": t.model.state_dict(), "optimizer": t.optimizer.state_dict(), "scaler": t.scaler.state_dict(),
        "rng": rng_state(t.device), "threads": torch.get_num_threads(),
        "iteration": run.iteration, "warming_up": run.warmup_end is None, "warmup_end": run.warmup_end,
        "warmup_ended_by": run.warmup_ended_by, "warmup_recent": run.warmup_recent.cpu(),
        "history": run.history, "wall_time": run.wall_time,
    }


def _not_this_run(ckpt: dict[str, Any], t: Trainer, model_name: str, recipe: Recipe,
                  identity: str | None) -> str | None:
    """Why ``ckpt`` is not a checkpoint of this run (another run's, another model's), or ``None``.
    A version-1 checkpoint predates identities: only its model and recipe are compared."""
    if ckpt["version"] >= 2 and ckpt["identity"] != identity:
        if ckpt["identity"] is None:
            return f"it was written by a run without an identity, not by {identity!r}"
        return f"it belongs to run {ckpt['identity']!r}, not to {identity!r}"
    if ckpt["model_name"] != model_name:
        return f"it is a checkpoint of {ckpt['model_name']!r}, not of {model_name!r}"
    mine = recipe.to_dict()
    theirs = ckpt["recipe"] if isinstance(ckpt["recipe"], dict) else {}
    differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    if differ:
        return f"it was trained with another recipe ({', '.join(f'{k}={theirs.get(k)!r}' for k in differ)})"
    state, want = ckpt["model"], t.model.state_dict()
    if not isinstance(state, dict):
        return "its weights are not a state dict"
    missing, unexpected = sorted(set(want) - set(state)), sorted(set(state) - set(want))
    shapes = sorted(k for k in set(want) & set(state)
                    if not isinstance(state[k], torch.Tensor) or state[k].shape != want[k].shape)
    if missing or unexpected or shapes:
        parts = [f"{what} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                 for what, keys in (("missing", missing), ("unexpected", unexpected), ("other shapes of", shapes))
                 if keys]
        return f"its weights are of a different model ({'; '.join(parts)})"
    return None


def _restore(t: Trainer, ckpt: dict[str, Any]) -> None:
    """Restore the trainer from a checkpoint written by :func:`_checkpoint`."""
    t.model.load_state_dict(ckpt["model"])
    t.optimizer.load_state_dict(ckpt["optimizer"])
    t.scaler.load_state_dict(ckpt["scaler"])
    set_rng_state(ckpt["rng"], t.device)
    if t.device.type == "cpu" and ckpt["threads"] and ckpt["threads"] != torch.get_num_threads():
        # CPU arithmetic depends on the thread count: resume with the run's own, so
        # that a resumed run is bit-identical to an uninterrupted one
        torch.set_num_threads(int(ckpt["threads"]))


def _progress(ckpt: dict[str, Any], device: torch.device) -> Progress:
    """The run's progress in a checkpoint written by :func:`_checkpoint`."""
    return Progress(ckpt["iteration"], None if ckpt["warming_up"] else ckpt["warmup_end"], ckpt["warmup_ended_by"],
                    ckpt["warmup_recent"].to(device), ckpt["history"], ckpt["wall_time"])


def _try_restore(t: Trainer, ckpt: dict[str, Any]) -> str | None:
    """Restore ``ckpt`` into ``t``; on failure put ``t`` back as it was and say why."""
    before = (copy.deepcopy(t.model.state_dict()), copy.deepcopy(t.optimizer.state_dict()),
              copy.deepcopy(t.scaler.state_dict()), rng_state(t.device), torch.get_num_threads())
    try:
        _restore(t, ckpt)
        _progress(ckpt, t.device)
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        model, optimizer, scaler, rng, threads = before
        t.model.load_state_dict(model)
        t.optimizer.load_state_dict(optimizer)
        t.scaler.load_state_dict(scaler)
        set_rng_state(rng, t.device)
        torch.set_num_threads(threads)
        return f"it does not fit this model ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    return None


class _Loop:
    """One call of :func:`train`: the trainer, the run's :class:`Progress` and what the
    evaluations need."""

    def __init__(self, model_name: str, recipe: Recipe, t: Trainer, data: CifarArrays, ckpt_path: Path | None,
                 on_eval: Callable[[dict[str, Any]], None] | None, identity: str | None = None) -> None:
        self.model_name, self.recipe, self.t, self.ckpt_path, self.on_eval = model_name, recipe, t, ckpt_path, on_eval
        self.identity = identity
        # the test set lives on the device too: no host-to-device copies (and syncs) per evaluation
        self.test_images, self.test_labels = data.test_images.to(t.device), data.test_labels.to(t.device)
        self.run = _fresh(recipe, model_name, t.device)

        def accept(ckpt: dict[str, Any]) -> str | None:  # restores the trainer when the checkpoint is this run's
            return _not_this_run(ckpt, t, model_name, recipe, identity) or _try_restore(t, ckpt)

        ckpt = load_checkpoint(ckpt_path, check=accept) if ckpt_path is not None else None
        if ckpt is not None:
            self.run = _progress(ckpt, t.device)
        self.window = _Window(t.device, loss_dtype(t.precision))
        self.chance = 100.0 * (1 - 1 / len(data.classes))
        self.at_chance = 0  # consecutive evaluations with the training error at chance
        self.t0 = 0.0

    def save(self) -> None:
        if self.ckpt_path is not None:
            save_checkpoint(self.ckpt_path, _checkpoint(self.t, self.run, self.model_name, self.recipe, self.identity))

    def run_until(self, end: int, bar: tqdm) -> tuple[str, str | None]:
        """Train up to iteration ``end``; (status, failure reason)."""
        status, reason = "complete", None
        self.t.model.train()
        self.t0 = time.perf_counter()
        try:
            while self.run.iteration < end:
                lr = self.step()
                it = self.run.iteration
                if it % self.recipe.eval_every == 0 or it == self.recipe.iterations:
                    self.evaluate_and_log(lr, bar)
                bar.update(1)
        except DivergedError as exc:
            status, reason = "failed", str(exc)
        finally:
            bar.close()
        it = self.run.iteration
        if status == "complete" and it < self.recipe.iterations:
            status = "interrupted"
            if it % self.recipe.eval_every == 0 and it % self.recipe.checkpoint_every:
                self.save()  # stopped at an evaluation point: keep everything up to here
        return status, reason

    def step(self) -> float:
        """One iteration (and the warm-up's bookkeeping); its learning rate."""
        run, recipe = self.run, self.recipe
        lr = learning_rate(recipe, run.iteration, run.warmup_end)
        x, y = self.t.stream.batch(run.iteration)
        loss, out = train_step(self.t, x, y, lr)
        batch_wrong = (out.argmax(1) != y).sum()
        self.window.add(loss, batch_wrong, len(y))
        run.iteration += 1
        if run.warmup_end is None:
            recent = run.warmup_recent
            recent[(run.iteration - 1) % recent.numel()] = batch_wrong.float() / len(y)
            ended_by = warmup_over(recipe, run.iteration, recent)
            if ended_by:
                run.warmup_end, run.warmup_ended_by = run.iteration, ended_by
        return lr

    def evaluate_and_log(self, lr: float, bar: tqdm) -> None:
        """An evaluation point: test, record a history row, check for divergence, checkpoint."""
        it, t = self.run.iteration, self.t
        train_loss, train_error = self.window.pop()
        if not math.isfinite(train_loss):
            test_loss, test_error = math.nan, math.nan
        else:
            test_loss, test_error = evaluate(t.model, self.test_images, self.test_labels, t.normalizer, t.device,
                                             precision=t.precision, channels_last=t.channels_last)
        now = time.perf_counter()
        self.run.wall_time += now - self.t0
        self.t0 = now
        row = {"iteration": it, "epoch": it / t.stream.batches_per_epoch, "lr": lr,
               "train_loss": train_loss, "train_error": train_error, "test_loss": test_loss,
               "test_error": test_error, "wall_time": self.run.wall_time}
        self.run.history.append(row)
        if self.on_eval is not None:
            self.on_eval(row)
        bar.set_postfix(lr=f"{lr:g}", train_err=f"{train_error:.1f}%", test_err=f"{test_error:.1f}%", refresh=False)
        self.check_divergence(row)
        if it % self.recipe.checkpoint_every == 0 and it < self.recipe.iterations:
            self.save()
            self.t0 = time.perf_counter()

    def check_divergence(self, row: dict[str, Any]) -> None:
        """Raise :class:`DivergedError` when :func:`divergence` says the run has failed."""
        self.at_chance, reason = divergence(self.recipe, row, self.run.warmup_end, self.at_chance, self.chance)
        if reason:
            raise DivergedError(reason)


def divergence(recipe: Recipe, row: dict[str, Any], warmup_end: int | None, at_chance: int,
               chance: float) -> tuple[int, str | None]:
    """At an evaluation point (history ``row``): the evaluations in a row with the training
    error at ``chance`` so far, and why the run has failed, or ``None``: a non-finite loss, or a
    training error at chance long after warm-up (:func:`~.recipe.stuck_at_chance`)."""
    it, train_error = row["iteration"], row["train_error"]
    if not math.isfinite(row["train_loss"]) or not math.isfinite(row["test_loss"]):
        return at_chance, f"non-finite loss by iteration {it}"
    at_chance = at_chance + 1 if train_error >= chance - 1.0 else 0
    if stuck_at_chance(recipe, it, warmup_end, at_chance):
        return at_chance, (f"training error {train_error:.1f}% is at chance ({chance:.0f}%) "
                           f"at iteration {it}, long after warm-up")
    return at_chance, None


def _summary(status: str, reason: str | None, run: Progress, t: Trainer, recipe: Recipe,
             data: CifarArrays) -> dict[str, Any]:
    final = run.history[-1] if run.history else {}
    it, elapsed = run.iteration, run.wall_time
    return {
        "status": status,
        "failure_reason": reason,
        "iterations": it,
        "final_test_error": final.get("test_error", math.nan),  # the final iterate's, not the best
        "final_train_error": final.get("train_error", math.nan),
        "final_test_loss": final.get("test_loss", math.nan),
        "final_train_loss": final.get("train_loss", math.nan),
        "warmup_end": run.warmup_end,
        "warmup_ended_by": run.warmup_ended_by,
        "device": device_name(t.device),
        "precision": t.precision,
        "channels_last": t.channels_last,
        "compiled": recipe.compile,
        "torch_version": torch.__version__,
        "data_source": data.source,
        "train_images": len(data.train_labels),
        "test_images": len(data.test_labels),
        "wall_time_s": elapsed,
        "images_per_s": (it * recipe.batch_size / elapsed) if elapsed > 0 else math.nan,
        "params": sum(p.numel() for p in t.model.parameters()),
    }


def train(
    model_name: str,
    data: CifarArrays,
    recipe: Recipe = PAPER,
    *,
    model_options: dict[str, Any] | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    checkpoint: str | Path | None = None,
    progress: bool = True,
    description: str | None = None,
    stop_after: int | None = None,
    on_eval: Callable[[dict[str, Any]], None] | None = None,
    identity: str | None = None,
) -> TrainResult:
    """Train ``model_name`` on ``data`` with ``recipe`` (R-Sec. 4.2; see the module docstring).

    ``checkpoint``: file to save to every ``recipe.checkpoint_every`` iterations and to
    resume from if it exists (the resumed run ends with the same weights on CPU).
    ``identity``: what run this is (:func:`~resnetlab.runs.get_or_train` passes the run id);
    it is stored in the checkpoint, and a checkpoint of another identity, model or recipe is
    set aside as ``*.foreign`` with a warning, and the run starts afresh.
    ``stop_after``: stop (checkpointing) after this many iterations in this call, as an
    interruption would; the summary's status is then "interrupted".
    A diverging run (non-finite loss, or training error at chance long after warm-up)
    ends early with status "failed" and its history: it does not raise.
    """
    data = prepare_data(data, recipe, seed)
    t = build_trainer(model_name, data, recipe, model_options=model_options, seed=seed, device=device)
    loop = _Loop(model_name, recipe, t, data, Path(checkpoint) if checkpoint else None, on_eval, identity)
    start = loop.run.iteration
    end = recipe.iterations if stop_after is None else min(recipe.iterations, start + stop_after)
    bar = tqdm(total=recipe.iterations, initial=start, desc=description or model_name, disable=not progress,
               unit="it", dynamic_ncols=True)
    status, reason = loop.run_until(end, bar)
    history = pd.DataFrame(loop.run.history, columns=HISTORY_COLUMNS)
    return TrainResult(history, _summary(status, reason, loop.run, t, recipe, data), t.model)
