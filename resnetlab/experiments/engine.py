"""Collect, train and draw experiments: what the notebooks, ``figures`` and ``reproduce`` call.

Profiles: ``smoke`` (a pipeline check: 8 s to 8 min per notebook on a 2-core CPU, measured by
benchmarks/notebook_times.py), ``quick`` (a tenth of the schedule), ``paper`` (the full
schedule, 5 seeds), and ``recorded`` (read only: the most complete set of recorded runs, paper
before quick; smoke runs are never drawn as results).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from ..runs import SOURCES, DamagedRecord, RecordError, detect_source, get_or_train, load_record, resolve_runs_dir, run_id
from ..runs.cluster import ENGINES, require_submitit, submit, visible_gpus
from ..runs.fusion import MAX_MEMBERS, fusion_groups, fusion_wanted, get_or_train_group
from .core import RECORDED_ORDER, Arm, Collected, Drawn, Experiment
from .registry import get_experiment


def _collect_profile(exp: Experiment, profile: str, root: Path, source: str) -> Collected:
    records: dict[str, list[Any]] = {arm.key: [] for arm in exp.arms}
    missing, damaged = [], []
    for arm, config in exp.configs(profile, source):
        try:
            records[arm.key].append(load_record(root / run_id(config)))
        except DamagedRecord as exc:
            damaged.append(str(exc))
            missing.append(config)
        except RecordError:
            missing.append(config)
    return Collected(exp, profile, records, missing, damaged=damaged)


def collect(name: str, profile: str = "recorded", runs: str | Path | None = None, *,
            data: str | Path | None = None, device: str | None = None,
            source: str | None = None) -> Collected:
    """The records an experiment has for ``profile``: with "recorded", the most complete set
    among the paper and quick profiles (paper wins a tie). Among the data sources the most
    complete set too (the official CIFAR wins a tie), unless ``source`` names one. ``data``
    is where analyses that need images (R-Fig. 7) find them."""
    exp = get_experiment(name)
    root = resolve_runs_dir(runs)
    best = None
    damaged: list[str] = []
    for p in (RECORDED_ORDER if profile == "recorded" else (profile,)):
        for src in ((source,) if source else tuple(SOURCES)):
            c = _collect_profile(exp, p, root, src)
            damaged += c.damaged
            if best is None or len(c.all_records) > len(best.all_records):
                best = c
    assert best is not None
    if profile == "recorded" and not best.all_records:
        # nothing recorded: what is missing is what the suggested command would train
        best = _collect_profile(exp, "quick", root, source or "torchvision")
        best.profile = None
    best.damaged = damaged
    best.data, best.device = data, device
    return best


def training_source(exp: Experiment, data: str | Path | None, dataset: Any = None) -> str:
    """The data source new runs of ``exp`` train on: that of ``dataset`` if given, else the
    copy found under ``data``; "torchvision" (the official data) when there is none yet."""
    if dataset is not None:
        return dataset.kind
    names = sorted({arm.dataset for arm in exp.arms}) or ["cifar10"]
    found = {n: detect_source(n, data) for n in names}
    kinds = {k or "torchvision" for k in found.values()}
    if len(kinds) > 1:
        held = "; ".join(f"{n}: {k}" if k else f"{n}: none (it would be downloaded as the official torchvision files)"
                         for n, k in found.items())
        raise ValueError(f"{exp.name} needs {', '.join(names)} from one kind of copy, but the data root has {held}. "
                         f"Point --data at copies of one kind (e.g. a folder with both official datasets)")
    return kinds.pop()


def keeps_weights(arm: Arm, config: dict[str, Any]) -> bool:
    """Whether a run records its final weights: only arms whose analysis needs them
    (``arm.save_weights``), and of those only seed 0. The analyses (R-Fig. 7, IM signal
    propagation) use one trained net per arm, and weights of every seed of the paper
    profile would make ``data/runs/`` (committed) five times larger for nothing."""
    return bool(arm.save_weights) and config["seed"] == 0


def reproduce(name: str, profile: str = "quick", *, runs: str | Path | None = None, data: str | Path | None = None,
              device: str | None = None, jobs: int = 1, progress: bool = True, dataset: Any = None,
              checkpoints: str | Path | None = None, engine: str | None = None, logs: str | Path | None = None,
              partition: str | None = None, account: str | None = None, time: str | None = None,
              gpus_per_job: int = 1, runs_per_gpu: int | None = None, slurm_options: dict[str, Any] | None = None,
              wait: bool | None = None, fuse: str | bool = "auto", max_fused: int = MAX_MEMBERS) -> Collected:
    """Train whatever ``name`` still lacks in ``profile`` (finished runs are read, not retrained;
    interrupted ones resume), then return everything collected.

    ``engine``: "inline" trains in this process, one run after another, or ``jobs > 1`` at once
    on one device (separate processes, :mod:`resnetlab.runs.parallel`); "local" trains one
    pack of runs per visible GPU of this machine; "slurm" submits the runs as a job array of
    packs (``runs_per_gpu`` runs each, ``gpus_per_job`` packs per job, with ``partition``,
    ``account``, ``time`` and any ``slurm_options``) and returns at once, unless ``wait``
    (see :mod:`resnetlab.runs.cluster`; ``logs`` is where the jobs' logs go). By default:
    "local" on a machine with several GPUs (and submitit installed), else "inline". With
    "local" or "slurm" the returned :class:`Collected` has the ``submission`` too.

    ``fuse``: "auto" (on CUDA), "on" or "off": runs that differ only in seed and initial
    values (the paper profile's 5 seeds, IM Table 1's gate biases) train as one fused net of
    up to ``max_fused`` runs, each recorded exactly as alone (:mod:`resnetlab.runs.fusion`)."""
    exp = get_experiment(name)
    if engine not in (None, *ENGINES):
        raise ValueError(f"unknown engine {engine!r}; valid choices: {', '.join(ENGINES)}")
    if dataset is not None and engine not in (None, "inline"):
        raise ValueError(f"engine {engine!r} trains in other processes, which load the data themselves: give data=")
    if engine is None:
        several = dataset is None and device in (None, "cuda") and find_spec("submitit") and len(visible_gpus()) > 1
        engine = "local" if several else "inline"
    if engine != "inline":
        require_submitit(engine)  # before anything is read or trained
    if profile == "recorded" or exp.static:
        return collect(name, profile, runs, data=data, device=device)
    source = training_source(exp, data, dataset)
    todo = exp.configs(profile, source)
    weights = [keeps_weights(arm, c) for arm, c in todo]
    if engine != "inline":
        from .status import run_states

        busy = {r.run_id for r in run_states([c for _, c in todo], runs=runs, logs=logs, checkpoints=checkpoints)
                if r.state == "running"}  # alive in a job (or a recent checkpoint): never trained twice at once
        if busy and progress:
            print(f"{name}: {len(busy)} run(s) still running are left to their jobs (see `status`)")
        weights = [w for (_, c), w in zip(todo, weights) if run_id(c) not in busy]
        todo = [(arm, c) for arm, c in todo if run_id(c) not in busy]
        submission = submit([c for _, c in todo], weights, engine=engine, runs=runs, data=data, device=device,
                            jobs=jobs, checkpoints=checkpoints, logs=logs, partition=partition, account=account,
                            time=time, gpus_per_job=gpus_per_job, runs_per_gpu=runs_per_gpu,
                            slurm_options=slurm_options, label=f"{name}-{profile}", wait=wait, progress=progress,
                            fuse=fuse, max_fused=max_fused)
        submission.running = len(busy)
        collected = collect(name, profile, runs, data=data, device=device, source=source)
        collected.submission = submission  # type: ignore[attr-defined]
        return collected
    if jobs > 1:
        from ..runs.parallel import train_many

        train_many([c for _, c in todo], jobs=jobs, runs=runs, data=data, device=device,
                   save_weights=weights, progress=progress, checkpoints=checkpoints, fuse=fuse, max_fused=max_fused)
    else:
        groups = (fusion_groups([c for _, c in todo], max_fused) if fusion_wanted(fuse, device)
                  else [[i] for i in range(len(todo))])
        _train_in_turn(name, todo, weights, groups, runs=runs, data=data, device=device, progress=progress,
                       dataset=dataset, checkpoints=checkpoints)
    return collect(name, profile, runs, data=data, device=device, source=source)


def _train_in_turn(name: str, todo: list[tuple[Arm, dict[str, Any]]], weights: list[bool], groups: list[list[int]],
                   *, runs: Any, data: Any, device: str | None, progress: bool, dataset: Any, checkpoints: Any) -> None:
    """Train ``todo`` one ``groups`` entry after another: a run alone, or a group fused."""
    from tqdm.auto import tqdm

    from ..runs import load_cifar

    arrays: dict[str, Any] = {}
    root = resolve_runs_dir(runs)
    for group in tqdm(groups, desc=name, disable=not progress or len(groups) < 2, unit="net"):
        configs = [todo[i][1] for i in group if not (root / run_id(todo[i][1]) / "summary.json").exists()]
        if not configs:
            continue
        key = configs[0]["dataset"]
        if dataset is None and key not in arrays:
            arrays[key] = load_cifar(key, data, progress=progress)
        given = dataset or arrays.get(key)
        keep = [weights[i] for i in group if todo[i][1] in configs]
        if len(configs) == 1:
            get_or_train(configs[0], runs=runs, data=data, dataset=given, device=device, save_weights=keep[0],
                         progress=progress, checkpoints=checkpoints)
        else:
            get_or_train_group(configs, runs=runs, data=data, dataset=given, device=device, save_weights=keep,
                               progress=progress, checkpoints=checkpoints)


def draw(name: str, profile: str = "recorded", *, runs: str | Path | None = None,
         figures_dir: str | Path | None = "figures", train: bool = False, data: str | Path | None = None,
         device: str | None = None, show_missing: bool = True, quiet: bool = False) -> Drawn:
    """The notebook's one call per figure: collect (or, with ``train=True`` and a training
    profile, reproduce) the experiment's runs, draw its figures and tables, save them to
    ``figures_dir`` (PNG+PDF, tables as CSV) unless it is ``None``, and return them."""
    from .. import plots

    exp = get_experiment(name)
    if train and profile != "recorded":
        collected = reproduce(name, profile, runs=runs, data=data, device=device)
    else:
        collected = collect(name, profile, runs, data=data, device=device)
    for problem in [] if quiet else collected.damaged:
        print(f"{name}: left out a damaged record: {problem}")
    if show_missing and collected.missing:
        print(f"{name}: {len(collected.missing)} of {len(collected.missing) + len(collected.all_records)} runs "
              f"not recorded yet; to record them: {collected.command()}")
    drawn = exp.draw(collected)
    if figures_dir is not None:
        out = Path(figures_dir)
        out.mkdir(parents=True, exist_ok=True)
        for stem, fig in drawn.figures.items():
            plots.save_figure(fig, stem, out)
        for stem, table in drawn.tables.items():
            table.to_csv(out / f"{stem}.csv", index=False)
    return drawn


@dataclass
class FigureResult:
    """What ``python -m resnetlab figures`` did for one experiment."""

    name: str
    paths: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # commands that would fill the gaps
    error: str | None = None
    damaged: list[str] = field(default_factory=list)  # records left out, with what is wrong


def make_figures(figures_dir: str | Path = "figures", runs_dir: str | Path | None = None,
                 only: list[str] | None = None, progress: bool = True) -> list[FigureResult]:
    """Draw every registered experiment (or those named in ``only``) from the recorded runs
    in ``runs_dir`` (default ``$RESNETLAB_RUNS`` or ``data/runs``) into ``figures_dir``."""
    import matplotlib
    import matplotlib.pyplot as plt
    from tqdm.auto import tqdm

    from .registry import EXPERIMENTS

    matplotlib.use("Agg", force=False)
    unknown = sorted(set(only or ()) - set(EXPERIMENTS))
    if unknown:
        raise ValueError(f"unknown figure(s) {', '.join(unknown)}; valid: {', '.join(EXPERIMENTS)}")
    names = [n for n in EXPERIMENTS if not only or n in only]
    results = []
    for name in tqdm(names, desc="figures", disable=not progress):
        try:
            drawn = draw(name, "recorded", runs=runs_dir, figures_dir=figures_dir, show_missing=False, quiet=True)
            collected = collect(name, "recorded", runs_dir)
            result = FigureResult(name, [Path(figures_dir) / f"{s}.png" for s in drawn.figures]
                                  + [Path(figures_dir) / f"{s}.csv" for s in drawn.tables])
            if collected.missing:
                result.missing.append(f"{collected.command()}  ({len(collected.missing)} runs)")
            result.damaged = sorted(set(collected.damaged))
            results.append(result)
        except Exception as exc:  # noqa: BLE001 - reported per figure, then the others go on
            results.append(FigureResult(name, error=f"{type(exc).__name__}: {exc}"))
        finally:
            plt.close("all")
    return results


__all__ = ["FigureResult", "collect", "draw", "keeps_weights", "make_figures", "reproduce", "training_source"]
