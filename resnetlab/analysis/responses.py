"""R-Fig. 7: the standard deviation of each 3x3 layer's response on the test set.

R-Sec. 4.2, "Analysis of Layer Responses": "The responses are the outputs of each 3x3
layer, after BN and before other nonlinearity (ReLU/addition)." The models tag exactly
those BatchNorm modules with ``layer_response = True``; we put a forward hook on each,
run the trained network (eval mode) over the run's test set, and take the standard
deviation of all the values each layer produces (every image, channel and position).
The paper's reading: "ResNets have generally smaller responses than their plain
counterparts", supporting the idea that residual functions are closer to zero.

Results are cached next to the run's weights (``layer_responses.json``, keyed by the
weights' hash), so figures can be redrawn later without the dataset.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn

RESPONSES_FILE = "layer_responses.json"
CACHE_VERSION = 1


def response_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The (name, module) pairs whose output is a "layer response", in forward order."""
    return [(name, m) for name, m in model.named_modules() if getattr(m, "layer_response", False)]


@torch.no_grad()
def layer_response_stds(model: nn.Module, batches: Iterable[torch.Tensor]) -> tuple[list[str], np.ndarray]:
    """Names and standard deviations of the responses of every tagged layer of ``model``
    (eval mode, BN with its running statistics) over the input ``batches``.

    Streaming float64 sums, so the whole test set never has to be held at once.
    """
    modules = response_modules(model)
    if not modules:
        raise ValueError("the model has no 3x3 layer tagged layer_response (build it with resnetlab.models)")
    n = torch.zeros(len(modules), dtype=torch.float64)
    s = torch.zeros(len(modules), dtype=torch.float64)
    ss = torch.zeros(len(modules), dtype=torch.float64)

    def hook(i: int):
        def fn(_module, _inputs, out):
            v = out.detach().double()
            n[i] += v.numel()
            s[i] += v.sum().cpu()
            ss[i] += v.square().sum().cpu()
        return fn

    handles = [m.register_forward_hook(hook(i)) for i, (_, m) in enumerate(modules)]
    was_training = model.training
    model.eval()
    try:
        for x in batches:
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if (n == 0).any():
        raise ValueError("no batches were given")
    mean = s / n
    var = (ss / n - mean.square()).clamp_min(0)
    return [name for name, _ in modules], var.sqrt().numpy()


def _weights_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def _read_cache(record: Any, digest: str) -> dict[str, Any] | None:
    file = Path(record.path) / RESPONSES_FILE
    try:
        blob = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if blob.get("version") != CACHE_VERSION or blob.get("weights_sha256") != digest:
        return None
    return blob


def record_responses(record: Any, data: str | os.PathLike | None = None, *, device: str | None = None,
                     dataset: Any = None, cache: bool = True, batch_size: int = 500) -> dict[str, Any]:
    """R-Fig. 7 responses of one recorded run (it needs ``weights.pt``).

    Uses the run's own test set (its recipe's subsets / validation split) and its own
    input normalisation. ``dataset`` may be loaded :class:`~resnetlab.data.CifarArrays`;
    otherwise the data is found from ``data`` / ``$RESNETLAB_DATA``. Returns a dict with
    ``layers`` (module names), ``stds``, ``data_source``, ``test_images``; the result is
    cached in the run's folder (``cache=False``: neither read nor written).

    Raises ``FileNotFoundError`` for a run without weights and
    :class:`~resnetlab.data.DatasetNotFoundError` when the test set cannot be found.
    """
    from ..data import Normalizer, eval_batches, load_cifar
    from ..train import Recipe, pick_device, prepare_data

    if record.weights_path is None:
        raise FileNotFoundError(f"run {record.id} was recorded without weights; R-Fig. 7 needs them "
                                f"(train it with save_weights=True)")
    digest = _weights_digest(record.weights_path)
    if cache:
        blob = _read_cache(record, digest)
        if blob is not None:
            return blob
    config = record.config
    recipe = Recipe.from_dict({**config["recipe"], "milestones": tuple(config["recipe"]["milestones"])})
    arrays = dataset if dataset is not None else load_cifar(config["dataset"], data, progress=False)
    arrays = prepare_data(arrays, recipe, config["seed"])
    dev = pick_device(device)
    model = record.load_model(dev)
    normalizer = Normalizer(recipe.normalization, arrays.train_images)
    batches = (x for x, _ in eval_batches(arrays.test_images, arrays.test_labels, normalizer,
                                          batch_size=batch_size, device=dev))
    layers, stds = layer_response_stds(model, batches)
    blob = {"version": CACHE_VERSION, "run_id": record.id, "weights_sha256": digest, "layers": layers,
            "stds": [float(v) for v in stds], "data_source": arrays.source, "test_images": len(arrays.test_labels),
            "torch_version": torch.__version__}
    if cache:
        _write_cache(Path(record.path) / RESPONSES_FILE, blob)
    return blob


def _write_cache(file: Path, blob: dict[str, Any]) -> None:
    """Keep the computed responses beside the run; a runs folder that cannot be written (read
    only, full) costs only the cache, never the result: a warning, and the caller gets the blob."""
    tmp = file.with_name(f".{file.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(blob, indent=1) + "\n")
        os.replace(tmp, file)
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only folder could not have taken the temporary file either
        warnings.warn(f"could not cache R-Fig. 7 responses in {file} ({exc.strerror or exc}); they are used "
                      f"now and computed again next time", RuntimeWarning, stacklevel=3)


__all__ = ["RESPONSES_FILE", "response_modules", "layer_response_stds", "record_responses"]
