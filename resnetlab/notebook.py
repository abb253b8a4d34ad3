"""What every notebook's first cells need: paths, profile, device, style.

>>> ctx = setup(PROFILE, DATA, RUNS, FIGURES)          # doctest: +SKIP
>>> drawn = ctx.figure("r-fig6")                         # doctest: +SKIP

``PROFILE = "recorded"`` draws from the runs committed in ``data/runs`` (no GPU, no data);
``"smoke"``, ``"quick"`` and ``"paper"`` train what is missing first (see
:mod:`resnetlab.experiments`). Paths default to the course's own ``data/``, ``data/runs/``
and ``figures/``, found from where ``resnetlab`` is installed, so a notebook works from any
working directory (Colab, a restarted runtime). The smoke profile is a pipeline check: unless
``RUNS``/``FIGURES`` are given it writes to a temporary folder, never over the course's
recorded runs or slide figures. ``RUNS = "drive"`` keeps runs on Google Drive (Colab), so a
recycled machine loses nothing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .experiments import PROFILES, Drawn, collect, draw
from .paths import project_root

#: where ``RUNS = "drive"`` keeps the runs on Google Drive
DRIVE_RUNS = "/content/drive/MyDrive/resnetlab/runs"


@dataclass
class Context:
    profile: str
    data: Path
    runs: Path
    figures: Path
    device: str

    @property
    def trains(self) -> bool:
        return self.profile != "recorded"

    def figure(self, experiment: str, *, show: bool = True) -> Drawn:
        """Train what the profile lacks (unless "recorded"), draw, save to ``figures``, and
        show each figure once (``show=False``: return them for the cells below to show)."""
        import matplotlib.pyplot as plt

        drawn = draw(experiment, self.profile, runs=self.runs, figures_dir=self.figures, train=self.trains,
                     data=self.data, device=self.device)
        for fig in drawn.figures.values():
            plt.close(fig)  # closed figures still display when shown; the inline backend skips them
        if show:
            _show(drawn)
        return drawn

    def collect(self, experiment: str):
        return collect(experiment, self.profile, self.runs)

    def timings(self, notebook: str):
        """How long ``notebook`` (its file stem) takes in each profile, measured: its execution
        times and its runs' own wall times (:func:`resnetlab.experiments.timings.notebook_timings`),
        from the course's recorded runs and this context's."""
        from .experiments.timings import notebook_timings

        course = project_root() / "data" / "runs"
        roots = [course] + ([self.runs] if self.runs.resolve() != course.resolve() else [])
        return notebook_timings(notebook, runs=roots)


def _show(drawn: Drawn) -> None:
    try:
        from IPython.display import display
    except ImportError:  # pragma: no cover - outside IPython
        return
    for fig in drawn.figures.values():
        display(fig)
    for table in drawn.tables.values():
        display(table)


def _drive_runs(root: Path) -> Path:
    """Mount Google Drive (Colab) and keep runs there; the course's recorded runs are copied
    in once (existing folders are left alone), so figures still find them."""
    try:
        from google.colab import drive  # type: ignore[import-not-found]
    except ImportError as exc:
        raise RuntimeError('RUNS = "drive" works on Colab only; elsewhere give RUNS a folder') from exc
    drive.mount("/content/drive")
    target = Path(DRIVE_RUNS)
    target.mkdir(parents=True, exist_ok=True)
    for rec in (root / "data" / "runs").glob("*/summary.json"):
        if not (target / rec.parent.name).exists():
            shutil.copytree(rec.parent, target / rec.parent.name)
    return target


def setup(profile: str = "recorded", data: str | Path | None = None, runs: str | Path | None = None,
          figures: str | Path | None = None, *, quiet: bool = False) -> Context:
    """Resolve the notebook's parameters (see the module docstring)."""
    import torch

    from . import plots

    if profile not in PROFILES:
        raise ValueError(f"unknown PROFILE {profile!r}; valid choices: {', '.join(PROFILES)}")
    root = project_root()
    scratch = Path(tempfile.mkdtemp(prefix="resnetlab-smoke-")) if profile == "smoke" else None
    if runs == "drive":
        runs_dir = _drive_runs(root)
    elif runs:
        runs_dir = Path(runs)
    else:
        runs_dir = scratch / "runs" if scratch else Path(os.environ.get("RESNETLAB_RUNS", root / "data" / "runs"))
    ctx = Context(
        profile=profile,
        data=Path(data) if data else Path(os.environ.get("RESNETLAB_DATA", root / "data")),
        runs=runs_dir,
        figures=Path(figures) if figures else (scratch / "figures" if scratch else root / "figures"),
        device="cuda" if torch.cuda.is_available() else "cpu",
    )
    plots.set_style()
    if not quiet:
        gpu = torch.cuda.get_device_name() if ctx.device == "cuda" else "none (CPU only)"
        print(f"profile: {ctx.profile} | GPU: {gpu} | torch {torch.__version__}\n"
              f"recorded runs: {ctx.runs}\nfigures: {ctx.figures}")
        if scratch:
            print("smoke profile: a pipeline check; its runs and figures go to the temporary folder above")
        if ctx.trains and ctx.device == "cpu" and profile != "smoke":
            print("warning: training the quick/paper profile on a CPU takes hours to days; use a GPU runtime")
    return ctx
