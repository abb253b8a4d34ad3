"""Bring recorded runs written under an older config layout up to :data:`runs.CONFIG_SCHEMA`.

A run's id is a hash of its whole config, so a change to the config layout would orphan
every recorded run: the figures would ask for new ids and never find the old folders. This
module rewrites each old record's config to the one the same run has today, and moves the
folder to the new id. It only ever writes what is *true* of the old run:

Schema 1 -> 2:

* ``source``: the kind of copy the run really trained on, read from the record's own
  ``summary.json`` ("CIFAR-10 (JPEG copy)" -> ``jpeg-copy``; torchvision pickles ->
  ``torchvision``; a PNG folder -> ``image-folder``).
* ``recipe.weight_decay_policy``: schema 1 decayed every parameter. For a net without gates
  that is exactly today's default, ``no_gate_bias``; a gated net gets ``all``, what it had.
* ``recipe.warmup_window`` / ``warmup_max_iterations``: a run that warmed up under the
  R-Sec. 4.2 rule (``warmup="auto"``, 110 layers or more) keeps the schema-1 rule, one batch
  and no cap (1 / 0). A run that never warmed up that way is unaffected by the rule and gets
  today's defaults.
* ``recipe.diverge_after_fraction`` / ``diverge_patience``: today's rule is strictly more
  lenient than schema 1's (0.25, 2 evaluations) with the same trajectory, so a run that was
  not stopped by it would not be stopped now: it gets today's defaults. A run that schema 1
  stopped "at chance" keeps the old values.
* ``model``: the canonical spelling (:func:`resnetlab.models.canonical_name`).

The moved record's ``summary.json`` says ``migrated_from`` (the old id) and when.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..models import canonical_name, parse_model_name
from ..train import PAPER, Recipe, wants_warmup
from .config import CONFIG_SCHEMA, run_id
from .records import resolve_runs_dir

#: analysis caches kept in a record's folder that name their run
CACHE_FILES = ("layer_responses.json",)
#: schema-1 values of the fields schema 2 added or changed, for runs that relied on them
_V1_DIVERGE = {"diverge_after_fraction": 0.25, "diverge_patience": 2}


class MigrationError(ValueError):
    """A record that cannot be brought up to date without guessing."""


def _source_of(summary: dict[str, Any], where: Path) -> str:
    text = str(summary.get("data_source") or "")
    if "JPEG copy" in text:
        return "jpeg-copy"
    if "torchvision pickles" in text:
        return "torchvision"
    if "image folder" in text:
        return "image-folder"
    raise MigrationError(f"{where}: summary.json does not say which copy of the data trained it "
                         f"(data_source={text!r}); cannot tell its source")


def upgrade_config(config: dict[str, Any], summary: dict[str, Any], where: Path = Path(".")) -> dict[str, Any]:
    """The schema-:data:`CONFIG_SCHEMA` config of the run recorded with ``config`` and
    ``summary`` (see the module docstring); ``config`` itself when it is current."""
    schema = int(config.get("schema", 1))
    if schema == CONFIG_SCHEMA:
        return config
    if schema != 1:
        raise MigrationError(f"{where}: config schema {schema} is newer than this resnetlab ({CONFIG_SCHEMA}); "
                             f"update resnetlab")
    new = {k: v for k, v in config.items()}
    new["schema"] = CONFIG_SCHEMA
    new["model"] = canonical_name(config["model"])
    new["source"] = _source_of(summary, where)
    recipe = dict(config["recipe"])
    gated = str(config.get("model_options", {}).get("variant", "")).endswith("gating")
    recipe["weight_decay_policy"] = "all" if gated else "no_gate_bias"
    old = Recipe.from_dict({**{k: v for k, v in recipe.items() if k in Recipe.__dataclass_fields__},
                            "milestones": tuple(recipe["milestones"])})
    if recipe.get("warmup") == "auto" and wants_warmup(old, new["model"]):
        recipe["warmup_window"], recipe["warmup_max_iterations"] = 1, 0
    else:
        recipe["warmup_window"], recipe["warmup_max_iterations"] = PAPER.warmup_window, PAPER.warmup_max_iterations
    stopped_at_chance = summary.get("status") == "failed" and "at chance" in str(summary.get("failure_reason"))
    if stopped_at_chance:
        recipe["diverge_patience"] = _V1_DIVERGE["diverge_patience"]
    else:
        if recipe.get("diverge_after_fraction") == _V1_DIVERGE["diverge_after_fraction"]:
            recipe["diverge_after_fraction"] = PAPER.diverge_after_fraction
        recipe["diverge_patience"] = PAPER.diverge_patience
    Recipe.from_dict({**recipe, "milestones": tuple(recipe["milestones"])})  # still a valid recipe
    new["recipe"] = recipe
    parse_model_name(new["model"])
    return new


@dataclass
class Moved:
    old_id: str
    new_id: str
    note: str = ""


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def migrate_runs(runs: str | Path | None = None, *, dry_run: bool = False) -> list[Moved]:
    """Upgrade every finished record under ``runs`` whose config is older than
    :data:`CONFIG_SCHEMA`, moving it to its new id. A record whose new id is already taken by
    another record is left where it is and reported (``note``), never overwritten."""
    root = resolve_runs_dir(runs)
    moved: list[Moved] = []
    if not root.is_dir():
        return moved
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        cfg_file, sum_file = d / "config.json", d / "summary.json"
        if not (cfg_file.is_file() and sum_file.is_file()):
            continue
        config, summary = json.loads(cfg_file.read_text()), json.loads(sum_file.read_text())
        if int(config.get("schema", 1)) == CONFIG_SCHEMA:
            continue
        new = upgrade_config(config, summary, d)
        new_id = run_id(new)
        target = root / new_id
        if target.exists():
            moved.append(Moved(d.name, new_id, f"not moved: {target} exists already"))
            continue
        moved.append(Moved(d.name, new_id))
        if dry_run:
            continue
        when = datetime.now(timezone.utc).isoformat(timespec="seconds")
        os.rename(d, target)
        _write_json(target / "config.json", new)
        _write_json(target / "summary.json", {**summary, "run_id": new_id, "migrated_from": d.name,
                                              "migrated": f"config schema {config.get('schema', 1)} -> "
                                                          f"{CONFIG_SCHEMA} on {when}"})
        for name in CACHE_FILES:  # analysis caches name their run
            cache = target / name
            if cache.is_file():
                blob = json.loads(cache.read_text())
                if isinstance(blob, dict) and blob.get("run_id") == d.name:
                    blob["run_id"] = new_id
                    cache.write_text(json.dumps(blob, indent=1) + "\n")
    return moved


def stale_records(runs: str | Path | None = None) -> list[Path]:
    """Record folders whose config is older than :data:`CONFIG_SCHEMA` (``migrate`` them)."""
    root = resolve_runs_dir(runs)
    out = []
    if root.is_dir():
        for d in sorted(p for p in root.iterdir() if p.is_dir()):
            try:
                config = json.loads((d / "config.json").read_text())
            except (OSError, ValueError):
                continue
            if int(config.get("schema", 1)) != CONFIG_SCHEMA:
                out.append(d)
    return out


__all__ = ["MigrationError", "Moved", "migrate_runs", "stale_records", "upgrade_config"]
