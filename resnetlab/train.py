"""Train a CIFAR net the papers' way (R-Sec. 4.2; IM appendix).

The recipe: mini-batch 128, SGD with momentum 0.9 and weight decay 1e-4, learning rate 0.1
divided by 10 at 32k and 48k iterations, stop at 64k. ResNet-110 and deeper warm up at
0.01 "until the training error is below 80% (about 400 iterations)"; IM warms every run
up for 400 iterations. The reported result is the final iterate's test error.

One code path for CPU and GPU: the data lives on the training device as uint8 and is
augmented there (:mod:`resnetlab.data`); on a GPU the step runs in bf16 autocast (fp16 with
loss scaling where bf16 is missing) with fp32 master weights and a fused optimizer; on a
CPU in fp32. The loop never waits for the GPU except at evaluation points (and, during
the R-Sec. 4.2 warm-up, every 10th step). :func:`build_trainer` and :func:`train_step`
are the setup and the step of that loop, shared with ``python -m resnetlab bench``.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .data import BatchStream, CifarArrays, Normalizer, eval_batches
from .models import build_model, parse_model_name

HISTORY_COLUMNS = ["iteration", "epoch", "lr", "train_loss", "train_error", "test_loss", "test_error", "wall_time"]
CHECKPOINT_VERSION = 1


#: Which parameters weight decay reaches. The official code (fb.resnet.torch ``train.lua``,
#: which KaimingHe/resnet-1k-layers builds on) hands *every* parameter, BN's gamma/beta and the
#: FC bias included, to ``optim.sgd`` with ``weightDecay = 1e-4``; we follow it, except for IM's
#: gate biases b_g, which the official code does not have: IM Table 1 varies the initial b_g
#: (0, -6, -7) and decay alone would pull it towards 0 (from -6 to about -4 by iteration 4,000),
#: erasing the very setting the table is about.
WEIGHT_DECAY_POLICIES: dict[str, str] = {
    "no_gate_bias": "every parameter but the gate biases b_g (IM Sec. 3.1): the default",
    "all": "every parameter (fb.resnet.torch), gate biases included",
    "weights_only": "convolution and linear weights only (no BN, no biases)",
}


@dataclass(frozen=True)
class Recipe:
    """Everything that decides how a run trains. Defaults are the paper's (R-Sec. 4.2)."""

    iterations: int = 64_000
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    milestones: tuple[int, ...] = (32_000, 48_000)
    lr_factor: float = 0.1
    #: "auto": R-Sec. 4.2, warm up at ``warmup_lr`` until the training error is below
    #: ``warmup_threshold`` for nets of ``warmup_min_depth`` layers or more; "fixed": warm up
    #: for ``warmup_iterations`` (IM); "none".
    warmup: str = "auto"
    warmup_lr: float = 0.01
    warmup_iterations: int = 400
    warmup_threshold: float = 80.0
    warmup_min_depth: int = 110
    #: "auto" warm-up: the training error compared with ``warmup_threshold`` is the running
    #: error over the last ``warmup_window`` batches (checked every 10 iterations), not one
    #: batch's; 1 is the single-batch rule of schema-1 records.
    warmup_window: int = 50
    #: "auto" warm-up ends here at the latest, so that the milestones always apply
    #: (0: no cap, the schema-1 rule). 1,200 = 3x the paper's "about 400 iterations".
    warmup_max_iterations: int = 1_200
    #: which parameters weight decay reaches (see :data:`WEIGHT_DECAY_POLICIES`)
    weight_decay_policy: str = "no_gate_bias"
    eval_every: int = 500
    checkpoint_every: int = 4_000
    normalization: str = "per_pixel_mean"
    augment: bool = True
    validation: bool = False  # train on 45k, test on the held-out 5k (R-Sec. 4.2)
    train_subset: int | None = None
    test_subset: int | None = None
    #: "auto": bf16 on GPUs that have it, else fp16 with loss scaling; fp32 on CPU.
    precision: str = "auto"
    channels_last: str = "auto"  # "auto": on CUDA and CPU (see channels_last_for)
    compile: bool = False
    #: activation checkpointing segments per stage (0: off); for ResNet-1001/1202 on small GPUs
    activation_checkpointing: int = 0
    #: a run is "failed" (diverged) when its training error is at chance in ``diverge_patience``
    #: evaluations in a row, the last of them at least this fraction of the run after warm-up.
    #: Half the run, i.e. past the first lr drop of the paper's schedule: IM Fig. 1's original
    #: ResNet-1001 "reduced very slowly at the beginning", and a slow run must not be cut.
    diverge_after_fraction: float = 0.5
    diverge_patience: int = 3

    def __post_init__(self) -> None:
        if self.warmup not in ("auto", "fixed", "none"):
            raise ValueError(f"unknown warmup {self.warmup!r}; valid choices: auto, fixed, none")
        if self.weight_decay_policy not in WEIGHT_DECAY_POLICIES:
            raise ValueError(f"unknown weight_decay_policy {self.weight_decay_policy!r}; valid choices: "
                             f"{', '.join(WEIGHT_DECAY_POLICIES)}")
        if self.warmup_window < 1 or self.warmup_max_iterations < 0 or self.diverge_patience < 1:
            raise ValueError("warmup_window and diverge_patience must be >= 1, warmup_max_iterations >= 0")
        if self.precision not in ("auto", "bf16", "fp16", "fp32"):
            raise ValueError(f"unknown precision {self.precision!r}; valid choices: auto, bf16, fp16, fp32")
        if self.iterations < 1 or self.batch_size < 1 or self.eval_every < 1:
            raise ValueError("iterations, batch_size and eval_every must be positive")
        if self.checkpoint_every % self.eval_every:
            raise ValueError(f"checkpoint_every ({self.checkpoint_every}) must be a multiple of eval_every "
                             f"({self.eval_every}): checkpoints are taken at evaluation points")
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["milestones"] = list(self.milestones)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Recipe":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown recipe field(s) {', '.join(sorted(unknown))}; valid: {', '.join(sorted(known))}")
        return cls(**d)

    def scaled(self, fraction: float) -> "Recipe":
        """The same schedule shrunk to ``fraction`` of its length (milestones move with it)."""
        return replace(
            self,
            iterations=max(1, round(self.iterations * fraction)),
            milestones=tuple(max(1, round(m * fraction)) for m in self.milestones),
            eval_every=(e := max(1, round(self.eval_every * fraction))),
            checkpoint_every=max(1, round(self.checkpoint_every * fraction / e)) * e,
        )


PAPER = Recipe()
#: Profiles (issue "Train the papers' way"): smoke for tests, quick for notebooks on one
#: Colab-class GPU, paper for the full schedule.
PROFILES: dict[str, Recipe] = {
    "paper": PAPER,
    "quick": replace(PAPER.scaled(0.1), eval_every=200, checkpoint_every=800),
    "smoke": Recipe(iterations=24, batch_size=32, milestones=(12, 18), eval_every=8, checkpoint_every=8,
                    warmup="none", train_subset=512, test_subset=256, diverge_after_fraction=0.5),
}
#: How many seeds each profile's figures use: IM reports the median of 5 runs.
PROFILE_SEEDS: dict[str, int] = {"paper": 5, "quick": 1, "smoke": 1}


def get_recipe(profile: str, **overrides: Any) -> Recipe:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid choices: {', '.join(PROFILES)}")
    return replace(PROFILES[profile], **overrides) if overrides else PROFILES[profile]


def learning_rate(recipe: Recipe, iteration: int, warming_up: bool = False) -> float:
    """The learning rate at ``iteration`` (0-based): ``lr`` divided by 10 at each milestone;
    ``warmup_lr`` while warming up (R-Sec. 4.2)."""
    if warming_up:
        return recipe.warmup_lr
    drops = sum(iteration >= m for m in recipe.milestones)
    return recipe.lr * recipe.lr_factor ** drops


def wants_warmup(recipe: Recipe, model_name: str) -> bool:
    """R-Sec. 4.2 warms up ResNet-110 (and 1202); IM warms up every run ("fixed")."""
    if recipe.warmup == "fixed":
        return True
    if recipe.warmup == "none":
        return False
    family, depth = parse_model_name(model_name)
    return family.startswith("cifar") and depth >= recipe.warmup_min_depth


def _warmup_over(recipe: Recipe, it: int, recent: torch.Tensor) -> str | None:
    """Whether the warm-up ends after iteration ``it`` (1-based count of steps done), and why:
    "fixed" (IM: after ``warmup_iterations``), "threshold" (R-Sec. 4.2: the running training
    error of the last ``warmup_window`` batches is below ``warmup_threshold``), "cap" (it never
    got there by ``warmup_max_iterations``); ``None`` while it goes on. The threshold is read
    (one host sync) only every 10 iterations, and only during the warm-up."""
    if recipe.warmup == "fixed":
        return "fixed" if it >= recipe.warmup_iterations else None
    if recipe.warmup_max_iterations and it >= recipe.warmup_max_iterations:
        return "cap"
    if it % 10 or it < recent.numel():
        return None
    return "threshold" if 100.0 * recent.mean().item() < recipe.warmup_threshold else None


def stuck_at_chance(recipe: Recipe, it: int, warmup_end: int | None, at_chance: int) -> bool:
    """Whether a run whose training error has been at chance in the last ``at_chance``
    evaluations has diverged: only ``diverge_patience`` evaluations in a row, and only
    ``diverge_after_fraction`` of the run after the warm-up ended, so that a net that is
    merely slow at first (IM Fig. 1's original ResNet-1001) is never cut short."""
    settled = (warmup_end if warmup_end is not None else it) + recipe.diverge_after_fraction * recipe.iterations
    return it >= settled and at_chance >= recipe.diverge_patience


class DivergedError(RuntimeError):
    """Raised inside the loop when a run fails; the trainer records it, it never escapes."""


class CheckpointError(RuntimeError):
    """No usable checkpoint, and the caller asked to resume."""


@dataclass
class TrainResult:
    history: pd.DataFrame
    summary: dict[str, Any]
    model: nn.Module


def pick_device(device: str | torch.device | None = None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _precision(recipe: Recipe, device: torch.device) -> str:
    if device.type != "cuda":
        return "fp32" if recipe.precision == "auto" else recipe.precision
    if recipe.precision != "auto":
        return recipe.precision
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    n = torch.get_num_threads()
    return f"CPU ({platform.processor() or platform.machine()}, {n} thread{'' if n == 1 else 's'})"


# ---------------------------------------------------------------------------------------
# checkpoints


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(obj, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _prev(path: Path) -> Path:
    return path.with_name(path.stem + ".prev" + path.suffix)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write atomically, keeping the previous checkpoint as a fallback."""
    if path.exists():
        os.replace(path, _prev(path))
    _atomic_save(state, path)


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The newest readable checkpoint at ``path`` (or its ``.prev``); ``None`` if there is none.

    A corrupt file is renamed ``*.corrupt`` (kept, never silently reused) with a warning.
    """
    for candidate in (path, _prev(path)):
        if not candidate.exists():
            continue
        try:
            state = torch.load(candidate, map_location="cpu", weights_only=True)
            if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
                raise ValueError("not a resnetlab checkpoint of this version")
            return state
        except Exception as exc:  # unreadable, truncated, foreign
            bad = candidate.with_name(candidate.name + ".corrupt")
            os.replace(candidate, bad)
            warnings.warn(f"checkpoint {candidate} is unusable ({type(exc).__name__}: {exc}); "
                          f"kept as {bad.name}, trying an older one or starting afresh", RuntimeWarning, stacklevel=2)
    return None


def _rng_state(device: torch.device) -> dict[str, Any]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


# ---------------------------------------------------------------------------------------
# the loop


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, normalizer: Normalizer,
             device: torch.device, *, precision: str = "fp32", channels_last: bool = False,
             batch_size: int = 1000) -> tuple[float, float]:
    """Test loss and error (%) of ``model`` in eval mode (BN uses its running statistics)."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=device)
    wrong = torch.zeros((), device=device, dtype=torch.long)
    n = 0
    for x, y in eval_batches(images, labels, normalizer, batch_size=batch_size, device=device):
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(device, precision):
            out = model(x)
        loss_sum += F.cross_entropy(out.float(), y, reduction="sum")
        wrong += (out.argmax(1) != y).sum()
        n += len(y)
    model.train(was_training)
    return loss_sum.item() / n, 100.0 * wrong.item() / n


def _autocast(device: torch.device, precision: str):
    if precision in ("bf16", "fp16"):
        return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
    return torch.autocast(device.type, enabled=False)


def decay_groups(model: nn.Module, policy: str) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """The parameters weight decay reaches and those it does not, by ``policy``
    (:data:`WEIGHT_DECAY_POLICIES`)."""
    from .models import Gate

    gate_biases = {id(m.conv.bias) for m in model.modules() if isinstance(m, Gate)}
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if policy == "all":
                keep = True
            elif policy == "no_gate_bias":
                keep = id(p) not in gate_biases
            else:  # weights_only
                keep = name == "weight" and isinstance(module, (nn.Conv2d, nn.Linear))
            (decay if keep else no_decay).append(p)
    return decay, no_decay


def _optimizer(model: nn.Module, recipe: Recipe, device: torch.device) -> torch.optim.Optimizer:
    """SGD with classic momentum 0.9 and weight decay by ``recipe.weight_decay_policy``.

    Classic, not Nesterov, momentum: the papers give "a momentum of 0.9" (R-Sec. 3.4,
    4.2) and trained with Caffe, whose SGD is classic momentum. The authors' later Torch code
    (fb.resnet.torch ``train.lua``, which resnet-1k-layers reuses for IM) sets
    ``nesterov = true``; we follow the papers' text and say so here."""
    kwargs: dict[str, Any] = {"fused": True} if device.type == "cuda" else {"foreach": True}
    decay, no_decay = decay_groups(model, recipe.weight_decay_policy)
    groups = [{"params": decay, "weight_decay": recipe.weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum, **kwargs)


def prepare_data(data: CifarArrays, recipe: Recipe, seed: int) -> CifarArrays:
    """Apply the recipe's validation split and subsets (fixed seeds, so every run of a
    config sees the same images)."""
    if recipe.validation:
        data = data.split_validation(5000, seed=0)
    if recipe.train_subset or recipe.test_subset:
        clamp = lambda k, n: min(k, n) if k else None  # a subset never asks for more than there is
        data = data.subset(clamp(recipe.train_subset, len(data.train_labels)),
                           clamp(recipe.test_subset, len(data.test_labels)), seed=0)
    return data


def channels_last_for(recipe: Recipe, device: torch.device) -> bool:
    """The ``channels_last`` policy: "on", "off", or "auto".

    "auto" is on for CUDA (tensor-core convolutions want NHWC) and for CPU, where oneDNN's
    NHWC convolutions measured 15-20% faster per training step than NCHW for ResNet-20/56 on
    the 2-core AVX2 development machine (``python -m resnetlab bench --channels-last on|off``,
    benchmarks/RESULTS.md); off elsewhere (MPS). The layout changes no arithmetic of the
    recipe, only the memory order of activations."""
    return recipe.channels_last == "on" or (recipe.channels_last == "auto" and device.type in ("cuda", "cpu"))


@dataclass
class Trainer:
    """What one training step needs, built by :func:`build_trainer` and advanced by
    :func:`train_step`; :func:`train` and ``resnetlab.bench`` share both."""

    model: nn.Module
    step_model: nn.Module  # ``model`` or its compiled wrapper (same parameters)
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    normalizer: Normalizer
    stream: BatchStream
    device: torch.device
    precision: str
    channels_last: bool


def build_trainer(model_name: str, data: CifarArrays, recipe: Recipe, *, model_options: dict[str, Any] | None = None,
                  seed: int = 0, device: str | torch.device | None = None,
                  compile_mode: str | None = None) -> Trainer:
    """Model, optimizer, loss scaler and batch stream for ``recipe`` on ``device``; ``data``
    as given (see :func:`prepare_data`). Seeds the global RNG with ``seed`` first, so the
    initial weights depend on ``seed`` only. ``compile_mode``: the ``torch.compile`` mode
    when ``recipe.compile`` is set (default: torch's default mode)."""
    device = pick_device(device)
    precision = _precision(recipe, device)
    use_cl = channels_last_for(recipe, device)
    model_options = dict(model_options or {})
    model_options.setdefault("num_classes", len(data.classes))
    torch.manual_seed(seed)
    model = build_model(model_name, **model_options).to(device)
    if recipe.activation_checkpointing:
        if not hasattr(model, "set_activation_checkpointing"):
            raise ValueError(f"{model_name} does not support activation checkpointing (ResNets do)")
        model.set_activation_checkpointing(recipe.activation_checkpointing)
    if use_cl:
        model = model.to(memory_format=torch.channels_last)
    optimizer = _optimizer(model, recipe, device)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    normalizer = Normalizer(recipe.normalization, data.train_images).to(device)
    stream = BatchStream(data.train_images, data.train_labels, recipe.batch_size, seed, normalizer,
                         augment=recipe.augment, device=device)
    if recipe.compile:
        step_model = torch.compile(model, mode=compile_mode) if compile_mode else torch.compile(model)
    else:
        step_model = model
    return Trainer(model, step_model, optimizer, scaler, normalizer, stream, device, precision, use_cl)


def train_step(t: Trainer, x: torch.Tensor, y: torch.Tensor, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One SGD step at learning rate ``lr`` on the batch ``(x, y)``; returns the (detached)
    loss and logits. Never waits for the device."""
    for group in t.optimizer.param_groups:
        group["lr"] = lr
    if t.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with _autocast(t.device, t.precision):
        out = t.step_model(x)
        loss = F.cross_entropy(out, y)
    t.optimizer.zero_grad(set_to_none=True)
    t.scaler.scale(loss).backward()
    t.scaler.step(t.optimizer)
    t.scaler.update()
    return loss.detach(), out.detach()


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
) -> TrainResult:
    """Train ``model_name`` on ``data`` with ``recipe``; see the module docstring.

    ``checkpoint``: file to save to every ``recipe.checkpoint_every`` iterations and to
    resume from if it exists (the resumed run ends with the same weights on CPU).
    ``stop_after``: stop (checkpointing) after this many iterations in this call, as an
    interruption would; the summary's status is then "interrupted".
    A diverging run (non-finite loss, or training error at chance long after warm-up)
    ends early with status "failed" and its history: it does not raise.
    """
    from tqdm.auto import tqdm

    data = prepare_data(data, recipe, seed)
    num_classes = len(data.classes)
    trainer = build_trainer(model_name, data, recipe, model_options=model_options, seed=seed, device=device)
    device, precision, use_cl = trainer.device, trainer.precision, trainer.channels_last
    model, optimizer, scaler = trainer.model, trainer.optimizer, trainer.scaler
    normalizer, stream = trainer.normalizer, trainer.stream
    # the test set lives on the device too: no host-to-device copies (and syncs) per evaluation
    test_images, test_labels = data.test_images.to(device), data.test_labels.to(device)

    start = 0
    warming_up = wants_warmup(recipe, model_name)
    warmup_end: int | None = None if warming_up else 0
    warmup_ended_by: str | None = None if warming_up else "no warm-up"
    # per-batch training errors of the last ``warmup_window`` batches, on the device
    recent = torch.zeros(recipe.warmup_window, device=device)
    rows: list[dict[str, Any]] = []
    elapsed = 0.0
    ckpt_path = Path(checkpoint) if checkpoint else None
    if ckpt_path is not None:
        state = load_checkpoint(ckpt_path)
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scaler.load_state_dict(state["scaler"])
            _set_rng_state(state["rng"], device)
            start, warming_up, warmup_end = state["iteration"], state["warming_up"], state["warmup_end"]
            warmup_ended_by = state.get("warmup_ended_by", warmup_ended_by)
            if "warmup_recent" in state:
                recent = state["warmup_recent"].to(device)
            rows, elapsed = state["history"], state["wall_time"]
            if device.type == "cpu" and state.get("threads") and state["threads"] != torch.get_num_threads():
                # CPU arithmetic depends on the thread count: resume with the run's own, so
                # that a resumed run is bit-identical to an uninterrupted one
                torch.set_num_threads(int(state["threads"]))

    def checkpoint_now(iteration: int) -> None:
        if ckpt_path is None:
            return
        save_checkpoint(ckpt_path, {
            "version": CHECKPOINT_VERSION, "model_name": model_name, "recipe": recipe.to_dict(),
            "iteration": iteration, "warming_up": warming_up, "warmup_end": warmup_end,
            "warmup_ended_by": warmup_ended_by, "warmup_recent": recent.cpu(), "threads": torch.get_num_threads(),
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
            "rng": _rng_state(device), "history": rows, "wall_time": elapsed,
        })

    status, reason = "complete", None
    chance = 100.0 * (1 - 1 / num_classes)
    last_test = rows[-1]["test_error"] if rows else math.nan
    loss_acc = torch.zeros((), device=device)
    wrong_acc = torch.zeros((), device=device, dtype=torch.long)
    seen = batches = 0
    at_chance = 0  # consecutive evaluations with the training error at chance
    end = recipe.iterations if stop_after is None else min(recipe.iterations, start + stop_after)
    bar = tqdm(total=recipe.iterations, initial=start, desc=description or model_name, disable=not progress,
               unit="it", dynamic_ncols=True)
    model.train()
    t0 = time.perf_counter()
    it = start
    try:
        while it < end:
            lr = learning_rate(recipe, it, warming_up)
            x, y = stream.batch(it)
            loss, out = train_step(trainer, x, y, lr)
            loss_acc += loss.float()
            batch_wrong = (out.argmax(1) != y).sum()
            wrong_acc += batch_wrong
            seen += len(y)
            batches += 1
            it += 1

            if warming_up:
                recent[(it - 1) % recent.numel()] = batch_wrong.float() / len(y)
                ended_by = _warmup_over(recipe, it, recent)
                if ended_by:
                    warming_up, warmup_end, warmup_ended_by = False, it, ended_by

            if it % recipe.eval_every == 0 or it == recipe.iterations:
                train_loss = loss_acc.item() / max(1, batches)
                train_error = 100.0 * wrong_acc.item() / max(1, seen)
                if not math.isfinite(train_loss):
                    test_loss, test_error = math.nan, math.nan
                else:
                    test_loss, test_error = evaluate(model, test_images, test_labels, normalizer, device,
                                                     precision=precision, channels_last=use_cl)
                now = time.perf_counter()
                elapsed += now - t0
                t0 = now
                row = {"iteration": it, "epoch": it / stream.batches_per_epoch, "lr": lr,
                       "train_loss": train_loss, "train_error": train_error, "test_loss": test_loss,
                       "test_error": test_error, "wall_time": elapsed}
                rows.append(row)
                if on_eval is not None:
                    on_eval(row)
                last_test = test_error
                loss_acc.zero_()
                wrong_acc.zero_()
                seen = batches = 0
                bar.set_postfix(lr=f"{lr:g}", train_err=f"{train_error:.1f}%", test_err=f"{test_error:.1f}%",
                                refresh=False)
                if not math.isfinite(train_loss) or not math.isfinite(test_loss):
                    raise DivergedError(f"non-finite loss by iteration {it}")
                at_chance = at_chance + 1 if train_error >= chance - 1.0 else 0
                if stuck_at_chance(recipe, it, warmup_end, at_chance):
                    raise DivergedError(f"training error {train_error:.1f}% is at chance ({chance:.0f}%) "
                                        f"at iteration {it}, long after warm-up")
                if it % recipe.checkpoint_every == 0 and it < recipe.iterations:
                    checkpoint_now(it)
                    t0 = time.perf_counter()
            bar.update(1)
    except DivergedError as exc:
        status, reason = "failed", str(exc)
    finally:
        bar.close()
    if status == "complete" and it < recipe.iterations:
        status = "interrupted"
        if it % recipe.eval_every == 0 and it % recipe.checkpoint_every:
            checkpoint_now(it)  # stopped at an evaluation point: keep everything up to here

    history = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    final = rows[-1] if rows else {}
    summary = {
        "status": status,
        "failure_reason": reason,
        "iterations": it,
        "final_test_error": final.get("test_error", math.nan) if status == "complete" else last_test,
        "final_train_error": final.get("train_error", math.nan),
        "final_test_loss": final.get("test_loss", math.nan),
        "final_train_loss": final.get("train_loss", math.nan),
        "warmup_end": warmup_end,
        "warmup_ended_by": warmup_ended_by,
        "device": device_name(device),
        "precision": precision,
        "channels_last": use_cl,
        "compiled": recipe.compile,
        "torch_version": torch.__version__,
        "data_source": data.source,
        "train_images": len(data.train_labels),
        "test_images": len(data.test_labels),
        "wall_time_s": elapsed,
        "images_per_s": (it * recipe.batch_size / elapsed) if elapsed > 0 else math.nan,
        "params": sum(p.numel() for p in model.parameters()),
    }
    return TrainResult(history, summary, model)


def half_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Weights for a record: floating tensors in fp16 (loads with ``weights_only=True``)."""
    return {k: (v.detach().to("cpu", torch.float16) if v.is_floating_point() else v.detach().cpu())
            for k, v in model.state_dict().items()}
