"""A run's config and its id: what makes two runs the same run.

A run is identified by its full config: model (canonical spelling) and options, dataset and
the kind of copy it is read from, the profile's recipe, seed. The id is a readable prefix
plus a hash of the whole config, so any change to what a run *is* gives it a new id (and
:mod:`resnetlab.runs.migrate` moves older records to theirs).
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
from dataclasses import fields
from typing import Any

import torch

from ..data import SOURCES
from ..models import build_model, canonical_name, display_name
from ..train import Recipe, get_recipe

#: policy, running-error warm-up with a cap and divergence patience; ``resnetlab.runs.migrate``
#: brings older records up to it.
CONFIG_SCHEMA = 2
#: How the data source shows in a run id (the official data adds nothing).
SOURCE_TAGS = {"torchvision": "", "jpeg-copy": "-jpeg", "image-folder": "-folder"}


def make_config(model: str, *, profile: str = "quick", seed: int = 0, dataset: str = "cifar10",
                source: str = "torchvision", model_options: dict[str, Any] | None = None,
                **recipe_overrides: Any) -> dict[str, Any]:
    """The config of one run: model (in its canonical spelling), options, dataset and the kind
    of copy it is read from (``source``, a key of :data:`resnetlab.data.SOURCES`), the
    profile's recipe (with ``recipe_overrides``), seed. Raises ``ValueError`` for an unknown
    model/option/profile/source."""
    model = canonical_name(model)
    options = dict(model_options or {})
    _validate_model(model, json.dumps(options, sort_keys=True, default=list))
    if dataset not in ("cifar10", "cifar100"):
        raise ValueError(f"unknown dataset {dataset!r}; valid choices: cifar10, cifar100")
    if source not in SOURCES:
        raise ValueError(f"unknown data source {source!r}; valid choices: {', '.join(SOURCES)}")
    recipe = get_recipe(profile, **check_overrides(recipe_overrides))
    return {"schema": CONFIG_SCHEMA, "model": model, "model_options": options, "dataset": dataset,
            "source": source, "profile": profile, "seed": int(seed), "recipe": recipe.to_dict()}


def _kind_ok(kind: str, value: Any) -> bool:
    """Whether ``value`` fits a Recipe field annotated ``kind`` (bools are not numbers here:
    ``iterations=true`` must not train 1 iteration)."""
    if value is None:
        return "None" in kind
    if isinstance(value, bool):
        return kind.startswith("bool")
    if kind.startswith("int"):
        return isinstance(value, int)
    if kind.startswith("float"):
        return isinstance(value, (int, float))
    if kind.startswith("str"):
        return isinstance(value, str)
    if kind.startswith("tuple"):
        return isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    return True


def check_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` of recipe fields, checked: a misspelled key or a value of the wrong type
    raises ``ValueError`` naming the field, its type and the closest valid key."""
    kinds = {f.name: str(f.type) for f in fields(Recipe)}
    for key, value in overrides.items():
        if key not in kinds:
            close = difflib.get_close_matches(key, kinds, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(sorted(kinds))}"
            raise ValueError(f"unknown recipe key {key!r}{hint}")
        if not _kind_ok(kinds[key], value):
            raise ValueError(f"recipe key {key!r} takes {kinds[key]}, got {value!r} ({type(value).__name__}), "
                             f"e.g. --set {key}={_example(kinds[key])}")
    return {k: (float(v) if kinds[k].startswith("float") and isinstance(v, int) else v) for k, v in overrides.items()}


def _example(kind: str) -> str:
    return {"int": "1000", "float": "0.1", "bool": "true", "str": "auto"}.get(kind.split(" ")[0], "[32000,48000]")


@functools.lru_cache(maxsize=512)
def _validate_model(model: str, options_json: str) -> None:
    """Build once on the meta device (no weights allocated) so a bad name or option fails
    before any training; cached, since experiments ask for the same nets again and again."""
    options = json.loads(options_json)
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    with torch.device("meta"):
        build_model(model, **options)


def _canonical(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True, separators=(",", ":"), default=list)


def run_id(config: dict[str, Any]) -> str:
    """A stable id: readable prefix plus a hash of the whole config.

    >>> run_id(make_config("resnet20", profile="smoke"))  # doctest: +ELLIPSIS
    'cifar10-resnet20-smoke-s0-...'
    """
    digest = hashlib.sha256(_canonical(config).encode()).hexdigest()[:10]
    tag = SOURCE_TAGS.get(config.get("source", "torchvision"), "-" + str(config.get("source")))
    return f"{config['dataset']}{tag}-{config['model']}-{config['profile']}-s{config['seed']}-{digest}"


def describe(config: dict[str, Any]) -> str:
    """A label for legends: the paper's name plus the options that differ from the default."""
    label = display_name(config["model"])
    opts = ", ".join(f"{k}={v}" for k, v in sorted(config.get("model_options", {}).items()) if k != "num_classes")
    return f"{label} ({opts})" if opts else label


