"""Every figure and table of the course, drawn from recorded runs (the README's main job).

Each :class:`FigureJob` draws one figure and says which recorded runs it still lacks, so
``python -m resnetlab figures`` redraws everything it can in seconds, without a GPU, and
lists the command that would produce each missing piece.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import matplotlib

from . import plots


@dataclass
class FigureResult:
    name: str
    paths: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # commands that would fill the gaps
    error: str | None = None


@dataclass(frozen=True)
class FigureJob:
    name: str
    title: str
    draw: Callable[[Path, Path], FigureResult]  # (figures_dir, runs_dir) -> result


def _complexity(figures_dir: Path, runs_dir: Path) -> FigureResult:
    from .analysis.complexity import complexity_table

    table = complexity_table()
    result = FigureResult("r_fig3_complexity")
    result.paths += plots.save_figure(plots.fig_complexity(table), result.name, figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    csv = figures_dir / "r_table1_complexity.csv"
    table.round(4).to_csv(csv, index=False)
    result.paths.append(csv)
    return result


def _diagrams(figures_dir: Path, runs_dir: Path) -> FigureResult:
    from . import diagrams

    result = FigureResult("diagrams")
    for name, fn in [("r_fig2_residual_unit", diagrams.fig_residual_unit),
                     ("r_fig5_basic_vs_bottleneck", diagrams.fig_basic_vs_bottleneck),
                     ("im_fig2_shortcut_variants", diagrams.fig_shortcut_variants),
                     ("im_fig4_activation_variants", diagrams.fig_activation_variants)]:
        result.paths += plots.save_figure(fn(), name, figures_dir)
    return result


JOBS: list[FigureJob] = [
    FigureJob("r_fig3_complexity", "R-Fig. 3 / R-Table 1: FLOPs and parameters, ours vs the paper", _complexity),
    FigureJob("diagrams", "R-Fig. 2, R-Fig. 5, IM Fig. 2, IM Fig. 4: unit diagrams from the model layouts", _diagrams),
]


# --- R paper / VGG (notebooks 01, 05)


def _receptive_field(figures_dir: Path, runs_dir: Path) -> FigureResult:
    from .analysis import receptive_field as rf

    result = FigureResult("vgg_receptive_field")
    fig = plots.fig_receptive_field(rf.gradient_maps(), rf.theoretical_rfs(),
                                    title="Receptive field: three stacked 3x3 convs vs one 7x7 (VGG Sec. 2.3)")
    result.paths += plots.save_figure(fig, result.name, figures_dir)
    csv = figures_dir / "vgg_stack_cost.csv"
    rf.stack_cost().to_csv(csv, index=False)
    result.paths.append(csv)
    return result


def _bottleneck_cost(figures_dir: Path, runs_dir: Path) -> FigureResult:
    from .analysis.bottleneck import bottleneck_cost

    table = bottleneck_cost()
    result = FigureResult("r_fig5_bottleneck_cost")
    result.paths += plots.save_figure(plots.fig_bottleneck_cost(table), result.name, figures_dir)
    csv = figures_dir / "r_fig5_bottleneck_cost.csv"
    table.to_csv(csv, index=False)
    result.paths.append(csv)
    return result


JOBS += [
    FigureJob("vgg_receptive_field", "VGG Sec. 2.3: receptive field and cost of three 3x3 convs vs one 7x7",
              _receptive_field),
    FigureJob("r_fig5_bottleneck_cost", "R-Fig. 5: parameters and multiply-adds, basic vs bottleneck block",
              _bottleneck_cost),
]


def _experiment_job(name: str, title: str) -> FigureJob:
    def run(figures_dir: Path, runs_dir: Path) -> FigureResult:
        from .experiments import draw

        drawn = draw(name, "recorded", runs=runs_dir, figures_dir=figures_dir, show_missing=False)
        from .experiments import collect

        collected = collect(name, "recorded", runs_dir)
        result = FigureResult(name)
        result.paths += [figures_dir / f"{stem}.png" for stem in drawn.figures]
        result.paths += [figures_dir / f"{stem}.csv" for stem in drawn.tables]
        if collected.missing:
            result.missing.append(f"{collected.command()}  ({len(collected.missing)} runs)")
        return result

    return FigureJob(name, title, run)


def all_jobs() -> list[FigureJob]:
    """The static figures above plus one job per registered experiment."""
    from .experiments import list_experiments

    return JOBS + [_experiment_job(e.name, e.title) for e in list_experiments().values() if e.draw is not None]


def make_figures(figures_dir: str | Path = "figures", runs_dir: str | Path = "data/runs",
                 only: list[str] | None = None, progress: bool = True) -> list[FigureResult]:
    """Draw every figure (or those named in ``only``) from recorded runs into ``figures_dir``."""
    from tqdm.auto import tqdm
    import matplotlib.pyplot as plt

    matplotlib.use("Agg", force=False)
    every = all_jobs()
    jobs = [j for j in every if not only or j.name in only]
    if only and len(jobs) != len(set(only)):
        unknown = sorted(set(only) - {j.name for j in every})
        raise ValueError(f"unknown figure(s) {', '.join(unknown)}; valid: {', '.join(j.name for j in every)}")
    results = []
    for job in tqdm(jobs, desc="figures", disable=not progress):
        try:
            results.append(job.draw(Path(figures_dir), Path(runs_dir)))
        except Exception as exc:  # one broken figure must not stop the others
            results.append(FigureResult(job.name, error=f"{type(exc).__name__}: {exc}"))
        finally:
            plt.close("all")
    return results
