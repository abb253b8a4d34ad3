"""What every notebook's first cells need: paths, profile, device, style.

>>> ctx = setup(PROFILE, DATA, RUNS, FIGURES)          # doctest: +SKIP
>>> drawn = ctx.figure("r-fig6")                         # doctest: +SKIP

``PROFILE = "recorded"`` draws from the runs committed in ``data/runs`` (no GPU, no data);
``"smoke"``, ``"quick"`` and ``"paper"`` train what is missing first (see
:mod:`resnetlab.experiments`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .experiments import PROFILES, Drawn, collect, draw
from .paths import project_root


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
        """Train what the profile lacks (unless "recorded"), draw, save to ``figures``, show."""
        drawn = draw(experiment, self.profile, runs=self.runs, figures_dir=self.figures, train=self.trains,
                     data=self.data, device=self.device)
        if show:
            _show(drawn)
        return drawn

    def collect(self, experiment: str):
        return collect(experiment, self.profile, self.runs)


def _show(drawn: Drawn) -> None:
    try:
        from IPython.display import display
    except ImportError:  # pragma: no cover - outside IPython
        return
    import matplotlib.pyplot as plt

    for fig in drawn.figures.values():
        display(fig)
        plt.close(fig)  # shown once: the inline backend would draw open figures again
    for table in drawn.tables.values():
        display(table)


def setup(profile: str = "recorded", data: str | Path | None = None, runs: str | Path | None = None,
          figures: str | Path | None = None, *, quiet: bool = False) -> Context:
    """Resolve the notebook's parameters; paths default to the checkout's ``data/``,
    ``data/runs/`` and ``figures/`` wherever the notebook runs from."""
    import torch

    from . import plots

    if profile not in PROFILES:
        raise ValueError(f"unknown PROFILE {profile!r}; valid choices: {', '.join(PROFILES)}")
    root = project_root()
    ctx = Context(
        profile=profile,
        data=Path(data) if data else Path(os.environ.get("RESNETLAB_DATA", root / "data")),
        runs=Path(runs) if runs else Path(os.environ.get("RESNETLAB_RUNS", root / "data" / "runs")),
        figures=Path(figures) if figures else root / "figures",
        device="cuda" if torch.cuda.is_available() else "cpu",
    )
    plots.set_style()
    if not quiet:
        gpu = torch.cuda.get_device_name() if ctx.device == "cuda" else "none (CPU only)"
        print(f"profile: {ctx.profile} | GPU: {gpu} | torch {torch.__version__}\n"
              f"recorded runs: {ctx.runs}\nfigures: {ctx.figures}")
        if ctx.trains and ctx.device == "cpu" and profile != "smoke":
            print("warning: training the quick/paper profile on a CPU takes hours to days; use a GPU runtime")
    return ctx
