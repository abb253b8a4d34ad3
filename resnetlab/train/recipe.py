"""The papers' training recipe as data, and the rules that follow from it (R-Sec. 4.2; IM appendix).

Mini-batch 128, SGD with momentum 0.9 and weight decay 1e-4, learning rate 0.1 divided by
10 at 32k and 48k iterations, stop at 64k. ResNet-110 and deeper warm up at 0.01 "until the
training error is below 80% (about 400 iterations)"; IM warms every run up for 400
iterations. Everything here is a pure function of the recipe (and of the iteration): the
loop (:mod:`.loop`) only keeps the state these functions are given.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch

from ..models import parse_model_name

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


PRECISIONS = ("auto", "bf16", "fp16", "fp32", "fp64")


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
    #: "auto": bf16 on GPUs that have it, else fp16 with loss scaling; fp32 on CPU. "fp64"
    #: (weights and activations in float64) is for exactness checks such as fused vs lone.
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
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; valid choices: {', '.join(PRECISIONS)}")
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
    def from_dict(cls, d: dict[str, Any]) -> Recipe:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown recipe field(s) {', '.join(sorted(unknown))}; valid: {', '.join(sorted(known))}")
        return cls(**d)

    def scaled(self, fraction: float) -> Recipe:
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
#: Colab-class GPU, paper for the full schedule. The smoke profile is a pipeline check of a
#: few iterations, too short for any net to leave chance: its at-chance divergence check is
#: off (``diverge_after_fraction`` 2.0, i.e. after the run has ended); a non-finite loss still
#: marks a smoke run failed.
PROFILES: dict[str, Recipe] = {
    "paper": PAPER,
    "quick": replace(PAPER.scaled(0.1), eval_every=200, checkpoint_every=800),
    "smoke": Recipe(iterations=24, batch_size=32, milestones=(12, 18), eval_every=8, checkpoint_every=8,
                    warmup="none", train_subset=512, test_subset=256, diverge_after_fraction=2.0),
}
#: How many seeds each profile's figures use: IM reports the median of 5 runs.
PROFILE_SEEDS: dict[str, int] = {"paper": 5, "quick": 1, "smoke": 1}


def get_recipe(profile: str, **overrides: Any) -> Recipe:
    """The recipe of ``profile`` (a key of :data:`PROFILES`) with ``overrides`` applied."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid choices: {', '.join(PROFILES)}")
    return replace(PROFILES[profile], **overrides) if overrides else PROFILES[profile]


def learning_rate(recipe: Recipe, iteration: int, warmup_end: int | None) -> float:
    """The learning rate of step ``iteration`` (0-based), a pure function of it: ``warmup_lr``
    before ``warmup_end`` (R-Sec. 4.2, IM), else ``lr`` divided by 10 at each milestone.

    ``warmup_end``: the number of warm-up steps, as :func:`initial_warmup_end` and
    :func:`warmup_over` give it: 0 for a run without warm-up, ``None`` while an "auto"
    warm-up is still going on (it ends when the training error says so)."""
    if warmup_end is None or iteration < warmup_end:
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


def initial_warmup_end(recipe: Recipe, model_name: str) -> int | None:
    """The ``warmup_end`` a run starts with: 0 (no warm-up) unless :func:`wants_warmup`, else
    ``None`` until :func:`warmup_over` ends it. For a "fixed" warm-up (IM) the end is known in
    advance: it is ``warmup_iterations``, which :func:`warmup_over` then confirms."""
    return None if wants_warmup(recipe, model_name) else 0


def warmup_over(recipe: Recipe, it: int, recent: torch.Tensor) -> str | None:
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
