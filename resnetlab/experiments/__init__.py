"""Experiments: which runs each figure needs, and how to get them.

An :class:`Experiment` is one figure (or table) of a paper: a list of :class:`Arm` s (the
curves or rows: "plain-20", "ResNet-110 (b_g=-6)"), each trained with a profile's recipe
and a number of seeds, and a ``draw`` function that turns the collected records into
figures and tables. The same experiment serves the notebook cell, ``python -m resnetlab
figures`` and ``python -m resnetlab reproduce``.

Profiles: ``smoke`` (seconds on CPU, tests), ``quick`` (a tenth of the schedule), ``paper``
(the full schedule, 5 seeds), and ``recorded`` (read only: the best complete set of
recorded runs, paper before quick; smoke runs are never drawn as results).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..data import SOURCES, detect_source
from ..runs import Record, RecordError, get_or_train, load_record, make_config, resolve_runs_dir, run_id
from ..train import PROFILE_SEEDS

TRAIN_PROFILES = ("smoke", "quick", "paper")
PROFILES = ("recorded", *TRAIN_PROFILES)
#: Recorded runs are looked up in this order of preference.
RECORDED_ORDER = ("paper", "quick")


@dataclass(frozen=True)
class Arm:
    """One curve or table row of an experiment: a model with options and recipe changes."""

    key: str
    label: str
    model: str
    options: dict[str, Any] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)  # recipe overrides for every profile
    smoke: dict[str, Any] = field(default_factory=dict)  # extra overrides for the smoke profile only
    dataset: str = "cifar10"
    save_weights: bool = False

    def config(self, profile: str, seed: int, source: str = "torchvision") -> dict[str, Any]:
        overrides = {**self.recipe, **(self.smoke if profile == "smoke" else {})}
        return make_config(self.model, profile=profile, seed=seed, dataset=self.dataset, source=source,
                           model_options=self.options, **overrides)


@dataclass
class Collected:
    """The records of an experiment: ``records[arm.key]`` lists one record per seed found."""

    experiment: "Experiment"
    profile: str | None
    records: dict[str, list[Record]]
    missing: list[dict[str, Any]]
    data: Path | str | None = None  # where analyses that need images (R-Fig. 7) find the dataset
    device: str | None = None

    @property
    def all_records(self) -> list[Record]:
        return [r for rs in self.records.values() for r in rs]

    @property
    def complete(self) -> bool:
        return not self.missing

    def by_label(self) -> dict[str, list[Record]]:
        return {arm.label: self.records.get(arm.key, []) for arm in self.experiment.arms}

    def command(self) -> str:
        return f"python -m resnetlab reproduce {self.experiment.name} --profile quick"


@dataclass
class Drawn:
    figures: dict[str, Any] = field(default_factory=dict)  # file stem -> matplotlib Figure
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # file stem -> table


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    notebook: str
    arms: tuple[Arm, ...]
    draw: Callable[[Collected], Drawn] | None = None
    seeds: dict[str, int] = field(default_factory=lambda: dict(PROFILE_SEEDS))

    def configs(self, profile: str, source: str = "torchvision") -> list[tuple[Arm, dict[str, Any]]]:
        if profile not in TRAIN_PROFILES:
            raise ValueError(f"unknown training profile {profile!r}; valid choices: {', '.join(TRAIN_PROFILES)}")
        return [(arm, arm.config(profile, seed, source)) for arm in self.arms for seed in range(self.seeds[profile])]


EXPERIMENTS: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    EXPERIMENTS[experiment.name] = experiment
    return experiment


def get_experiment(name: str) -> Experiment:
    _load_all()
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; valid choices: {', '.join(EXPERIMENTS) or '(none)'}")
    return EXPERIMENTS[name]


def _load_all() -> None:
    """Import the modules that register experiments (one per paper)."""
    import importlib

    for module in ("resnet_paper", "identity_mappings"):
        try:
            importlib.import_module(f"{__name__}.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{module}":
                raise


def _collect_profile(exp: Experiment, profile: str, root: Path, source: str) -> Collected:
    records: dict[str, list[Record]] = {arm.key: [] for arm in exp.arms}
    missing = []
    for arm, config in exp.configs(profile, source):
        try:
            records[arm.key].append(load_record(root / run_id(config)))
        except RecordError:
            missing.append(config)
    return Collected(exp, profile, records, missing)


def collect(name: str, profile: str = "recorded", runs: str | Path | None = None, *,
            data: str | Path | None = None, device: str | None = None,
            source: str | None = None) -> Collected:
    """The records an experiment has for ``profile``: with "recorded", the most complete set
    among the paper and quick profiles (paper wins a tie). Among the data sources the most
    complete set too (the official CIFAR wins a tie), unless ``source`` names one. ``data``
    is where analyses that need images (R-Fig. 7) find them."""
    collected = _collect(name, profile, runs, (source,) if source else tuple(SOURCES))
    collected.data, collected.device = data, device
    return collected


def _collect(name: str, profile: str, runs: str | Path | None, sources: tuple[str, ...]) -> Collected:
    exp = get_experiment(name)
    root = resolve_runs_dir(runs)
    best = None
    for p in (RECORDED_ORDER if profile == "recorded" else (profile,)):
        for src in sources:
            c = _collect_profile(exp, p, root, src)
            if best is None or len(c.all_records) > len(best.all_records):
                best = c
    assert best is not None
    if profile == "recorded" and not best.all_records:
        best.profile = None
    return best


def _training_source(exp: Experiment, data: str | Path | None, dataset: Any) -> str:
    """The data source new runs of ``exp`` train on: that of ``dataset`` if given, else the
    copy found under ``data``; "torchvision" (the official data) when there is none yet."""
    if dataset is not None:
        return dataset.kind
    names = sorted({arm.dataset for arm in exp.arms}) or ["cifar10"]
    kinds = {detect_source(n, data) or "torchvision" for n in names}
    if len(kinds) > 1:
        raise ValueError(f"{exp.name} needs {', '.join(names)} from one kind of copy, but the data root holds "
                         f"{', '.join(sorted(kinds))}; point --data at copies of one kind")
    return kinds.pop()


def keeps_weights(arm: Arm, config: dict[str, Any]) -> bool:
    """Whether a run records its final weights: only arms whose analysis needs them
    (``arm.save_weights``), and of those only seed 0. The analyses (R-Fig. 7, IM signal
    propagation) use one trained net per arm, and weights of every seed of the paper
    profile would make ``data/runs/`` (committed) five times larger for nothing."""
    return bool(arm.save_weights) and config["seed"] == 0


def reproduce(name: str, profile: str = "quick", *, runs: str | Path | None = None, data: str | Path | None = None,
              device: str | None = None, jobs: int = 1, progress: bool = True, dataset: Any = None,
              checkpoints: str | Path | None = None) -> Collected:
    """Train whatever ``name`` still lacks in ``profile`` (finished runs are read, not retrained;
    interrupted ones resume), then return everything collected.

    ``jobs > 1`` trains that many runs at once on one device (separate processes,
    :mod:`resnetlab.parallel`)."""
    exp = get_experiment(name)
    if profile == "recorded":
        return collect(name, profile, runs, data=data, device=device)
    source = _training_source(exp, data, dataset)
    todo = [(arm, c) for arm, c in exp.configs(profile, source)]
    weights = [keeps_weights(arm, c) for arm, c in todo]
    if jobs > 1:
        from ..parallel import train_many

        train_many([c for _, c in todo], jobs=jobs, runs=runs, data=data, device=device,
                   save_weights=weights, progress=progress, checkpoints=checkpoints)
    else:
        from tqdm.auto import tqdm

        arrays: dict[str, Any] = {}
        for (arm, config), keep in tqdm(list(zip(todo, weights)), desc=name, disable=not progress or len(todo) < 2,
                                        unit="run"):
            if dataset is None and config["dataset"] not in arrays:
                from ..data import load_cifar

                root = resolve_runs_dir(runs) / run_id(config)
                if (root / "summary.json").exists():
                    continue
                arrays[config["dataset"]] = load_cifar(config["dataset"], data, progress=progress)
            get_or_train(config, runs=runs, data=data, dataset=dataset or arrays.get(config["dataset"]),
                         device=device, save_weights=keep, progress=progress, checkpoints=checkpoints)
    return collect(name, profile, runs, data=data, device=device, source=source)


def draw(name: str, profile: str = "recorded", *, runs: str | Path | None = None,
         figures_dir: str | Path | None = "figures", train: bool = False, data: str | Path | None = None,
         device: str | None = None, show_missing: bool = True) -> Drawn:
    """The notebook's one call per figure: collect (or, with ``train=True`` and a training
    profile, reproduce) the experiment's runs, draw its figures and tables, save them to
    ``figures_dir`` (PNG+PDF, tables as CSV) unless it is ``None``, and return them."""
    from .. import plots

    exp = get_experiment(name)
    if train and profile != "recorded":
        collected = reproduce(name, profile, runs=runs, data=data, device=device)
    else:
        collected = collect(name, profile, runs, data=data, device=device)
    if show_missing and collected.missing:
        print(f"{name}: {len(collected.missing)} of {len(collected.missing) + len(collected.all_records)} runs "
              f"not recorded yet; to record them: {collected.command()}")
    drawn = exp.draw(collected) if exp.draw else Drawn()
    if figures_dir is not None:
        out = Path(figures_dir)
        out.mkdir(parents=True, exist_ok=True)
        for stem, fig in drawn.figures.items():
            plots.save_figure(fig, stem, out)
        for stem, table in drawn.tables.items():
            table.to_csv(out / f"{stem}.csv", index=False)
    return drawn


def list_experiments() -> dict[str, Experiment]:
    _load_all()
    return dict(EXPERIMENTS)


__all__ = ["Arm", "Collected", "Drawn", "Experiment", "EXPERIMENTS", "PROFILES", "collect", "draw", "get_experiment",
           "keeps_weights", "list_experiments", "register", "reproduce"]
