"""Experiments: one module per figure of the papers, one registry, one engine.

A reader finds the code behind any figure in two hops: the notebook calls
``ctx.figure("r-fig6")``; :mod:`resnetlab.experiments.r_fig6` holds that figure's arms as
data and its short ``draw()``. :mod:`.registry` lists every experiment by name;
:mod:`.engine` collects, trains (``reproduce``) and draws them; :mod:`.arms` and
:mod:`.tables` hold what several figures share. The static figures (counts, diagrams,
receptive fields) are experiments with no arms (:mod:`.static`). :mod:`.status` says where
each run of an experiment stands (recorded, running, failed, missing).
"""

from .core import PROFILES, Arm, Collected, Drawn, Experiment
from .engine import FigureResult, collect, draw, keeps_weights, make_figures, reproduce
from .registry import EXPERIMENTS, get_experiment, list_experiments
from .status import RunState, status
from .single import (MigrationError, check_device, export_tensorboard, list_models, migrate_runs, recorded_table, resolve_runs_dir, scan_records,
                     train_model)

__all__ = ["Arm", "Collected", "Drawn", "EXPERIMENTS", "Experiment", "FigureResult", "PROFILES", "collect", "draw",
           "check_device", "export_tensorboard", "get_experiment", "keeps_weights", "list_experiments", "make_figures", "reproduce", "MigrationError",
           "list_models", "migrate_runs", "recorded_table", "resolve_runs_dir", "scan_records", "train_model", "RunState",
           "status"]
