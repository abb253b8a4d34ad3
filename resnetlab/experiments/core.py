"""What an experiment is: arms (the curves or table rows of one figure), and what it draws.

An :class:`Experiment` is one figure (or table) of a paper: a tuple of :class:`Arm` s
("plain-20", "ResNet-110 (b_g=-6)"), each trained with a profile's recipe and a number of
seeds, and a ``draw`` function that turns the collected records into figures and tables.
A static figure (counts, diagrams, receptive fields) is an experiment with no arms.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..runs import PROFILE_SEEDS, Record, make_config

TRAIN_PROFILES = ("smoke", "quick", "paper")
PROFILES = ("recorded", *TRAIN_PROFILES)
#: Recorded runs are looked up in this order of preference (a tie goes to the first).
RECORDED_ORDER = ("paper", "quick")


@dataclass(frozen=True)
class Arm:
    """One curve or table row: a model with options and recipe changes.

    ``smoke_model``: a shallow stand-in of the same family trained instead of ``model`` in
    the smoke profile only (ResNet-1001 is far too slow for a CPU pipeline check).
    """

    key: str
    label: str
    model: str
    options: dict[str, Any] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)  # recipe overrides for every profile
    smoke: dict[str, Any] = field(default_factory=dict)  # extra overrides for the smoke profile only
    dataset: str = "cifar10"
    save_weights: bool = False
    smoke_model: str | None = None

    def config(self, profile: str, seed: int, source: str = "torchvision") -> dict[str, Any]:
        """The run config of this arm (:func:`resnetlab.runs.make_config`)."""
        if profile == "smoke" and self.smoke_model:
            return replace(self, model=self.smoke_model, smoke_model=None).config(profile, seed, source)
        overrides = {**self.recipe, **(self.smoke if profile == "smoke" else {})}
        return make_config(self.model, profile=profile, seed=seed, dataset=self.dataset, source=source,
                           model_options=self.options, **overrides)


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    notebook: str
    arms: tuple[Arm, ...]
    draw: Callable[["Collected"], "Drawn"]
    seeds: dict[str, int] = field(default_factory=lambda: dict(PROFILE_SEEDS))

    @property
    def static(self) -> bool:
        """A figure drawn from code alone (counts, diagrams): nothing to train."""
        return not self.arms

    def configs(self, profile: str, source: str = "torchvision") -> list[tuple[Arm, dict[str, Any]]]:
        if profile not in TRAIN_PROFILES:
            raise ValueError(f"unknown training profile {profile!r}; valid choices: {', '.join(TRAIN_PROFILES)}")
        return [(arm, arm.config(profile, seed, source)) for arm in self.arms for seed in range(self.seeds[profile])]


@dataclass
class Collected:
    """The records of an experiment: ``records[arm.key]`` lists one record per seed found."""

    experiment: Experiment
    profile: str | None
    records: dict[str, list[Record]]
    missing: list[dict[str, Any]]
    data: Path | str | None = None  # where analyses that need images (R-Fig. 7) find the dataset
    device: str | None = None
    #: records found but damaged (their files disagree): reported, never drawn
    damaged: list[str] = field(default_factory=list)

    @property
    def all_records(self) -> list[Record]:
        return [r for rs in self.records.values() for r in rs]

    @property
    def complete(self) -> bool:
        return not self.missing

    def command(self) -> str:
        return f"python -m resnetlab reproduce {self.experiment.name} --profile quick"

    def of(self, key: str) -> list[Record]:
        """The records of the arm ``key`` (empty if it has none)."""
        return list(self.records.get(key, []))


@dataclass
class Drawn:
    figures: dict[str, Any] = field(default_factory=dict)  # file stem -> matplotlib Figure
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # file stem -> table


__all__ = ["Arm", "Collected", "Drawn", "Experiment", "PROFILES", "RECORDED_ORDER", "TRAIN_PROFILES"]
