"""Recorded runs: the sole owner of ``data/runs/<id>/``.

* :mod:`.config`: a run's config and id (:func:`make_config`, :func:`run_id`);
* :mod:`.records`: reading and writing records (:class:`Record`, :func:`load_record`);
* :mod:`.execute`: training a config unless it is recorded (:func:`get_or_train`);
* :mod:`.parallel`: several runs at once (:func:`train_many`);
* :mod:`.migrate`: moving records of an older config layout to their current ids;
* :mod:`.transfer`: packing records and checkpoints into a few files, importing them elsewhere;
* :mod:`.cluster`: packs of runs as submitit jobs on SLURM or on the GPUs of one machine (:func:`submit`).

The experiments layer talks to training only through this package, so the few names of
:mod:`resnetlab.train` and :mod:`resnetlab.data` it needs are re-exported here.
"""

from ..data import SOURCES, DatasetNotFoundError, detect_source, load_cifar
from ..train import PROFILE_SEEDS, PROFILES, get_recipe
from .config import CONFIG_SCHEMA, SOURCE_TAGS, describe, make_config, run_id
from .execute import CHECKPOINTS_ENV, checkpoint_path, get_or_train
from .records import (FINISHED, RUNS_ENV, DamagedRecord, Record, RecordError, Scan, find_records, load_record,
                      recorded_table, resolve_runs_dir, save_record, scan_records)
from .transfer import Imported, Packed, import_packs, pack_runs
from .cluster import ENGINES, Submission, SubmititMissing, submit

__all__ = ["CHECKPOINTS_ENV", "CONFIG_SCHEMA", "DatasetNotFoundError", "FINISHED", "PROFILES", "PROFILE_SEEDS",
           "RUNS_ENV", "DamagedRecord", "Record", "RecordError", "Scan", "scan_records", "SOURCES", "SOURCE_TAGS", "checkpoint_path", "describe",
           "detect_source", "find_records", "get_or_train", "get_recipe", "load_cifar", "load_record", "make_config",
           "recorded_table", "resolve_runs_dir", "run_id", "save_record", "Imported", "Packed", "import_packs",
           "pack_runs", "ENGINES", "Submission", "SubmititMissing", "submit"]
