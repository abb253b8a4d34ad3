"""One training step on a device, and what it needs (R-Sec. 3.4, 4.2).

One code path for CPU and GPU: the data lives on the training device as uint8 and is
augmented there (:mod:`resnetlab.data`); on a GPU the step runs in bf16 autocast (fp16 with
loss scaling where bf16 is missing) with fp32 master weights and a fused optimizer; on a
CPU in fp32. :func:`build_trainer` and :func:`train_step` are the setup and the step of the
loop (:func:`resnetlab.train.train`), shared with ``python -m resnetlab bench``; neither
waits for the device.
"""

from __future__ import annotations

import platform
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data import BatchStream, CifarArrays, Normalizer, eval_batches
from ..models import Gate, build_model
from .recipe import Recipe


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device``, else CUDA when there is one, else the CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _precision(recipe: Recipe, device: torch.device) -> str:
    if device.type != "cuda":
        return "fp32" if recipe.precision == "auto" else recipe.precision
    if recipe.precision != "auto":
        return recipe.precision
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def device_name(device: torch.device) -> str:
    """The device in words, for summaries: the GPU's name, or the CPU and its threads."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    n = torch.get_num_threads()
    return f"CPU ({platform.processor() or platform.machine()}, {n} thread{'' if n == 1 else 's'})"


def channels_last_for(recipe: Recipe, device: torch.device) -> bool:
    """The ``channels_last`` policy: "on", "off", or "auto".

    "auto" is on for CUDA (tensor-core convolutions want NHWC) and for CPU, where oneDNN's
    NHWC convolutions measured 15-20% faster per training step than NCHW for ResNet-20/56 on
    the 2-core AVX2 development machine (``python -m resnetlab bench --channels-last on|off``,
    benchmarks/RESULTS.md); off elsewhere (MPS). The layout changes no arithmetic of the
    recipe, only the memory order of activations."""
    return recipe.channels_last == "on" or (recipe.channels_last == "auto" and device.type in ("cuda", "cpu"))


def prepare_data(data: CifarArrays, recipe: Recipe, seed: int) -> CifarArrays:
    """Apply the recipe's validation split and subsets (fixed seeds, so every run of a
    config sees the same images)."""
    if recipe.validation:
        data = data.split_validation(5000, seed=0)
    if recipe.train_subset or recipe.test_subset:
        clamp = lambda k, n: min(k, n) if k else None  # a subset never asks for more than there is
        data = data.subset(clamp(recipe.train_subset, len(data.train_labels)),
                           clamp(recipe.test_subset, len(data.test_labels)), seed=0)
    return data


def decay_groups(model: nn.Module, policy: str) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """The parameters weight decay reaches and those it does not, by ``policy``
    (:data:`~resnetlab.train.WEIGHT_DECAY_POLICIES`)."""
    gate_biases = {id(m.conv.bias) for m in model.modules() if isinstance(m, Gate)}
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if policy == "all":
                keep = True
            elif policy == "no_gate_bias":
                keep = id(p) not in gate_biases
            else:  # weights_only
                keep = name == "weight" and isinstance(module, (nn.Conv2d, nn.Linear))
            (decay if keep else no_decay).append(p)
    return decay, no_decay


def build_optimizer(model: nn.Module, recipe: Recipe, device: torch.device) -> torch.optim.Optimizer:
    """SGD with classic momentum 0.9 and weight decay by ``recipe.weight_decay_policy``.

    Classic, not Nesterov, momentum: the papers give "a momentum of 0.9" (R-Sec. 3.4,
    4.2) and trained with Caffe, whose SGD is classic momentum. The authors' later Torch code
    (fb.resnet.torch ``train.lua``, which resnet-1k-layers reuses for IM) sets
    ``nesterov = true``; we follow the papers' text and say so here."""
    kwargs: dict[str, Any] = {"fused": True} if device.type == "cuda" else {"foreach": True}
    decay, no_decay = decay_groups(model, recipe.weight_decay_policy)
    groups = [{"params": decay, "weight_decay": recipe.weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum, **kwargs)


@dataclass
class Trainer:
    """What one training step needs, built by :func:`build_trainer` and advanced by
    :func:`train_step`; :func:`resnetlab.train.train` and ``resnetlab.tools.bench`` share both."""

    model: nn.Module
    step_model: nn.Module  # ``model`` or its compiled wrapper (same parameters)
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    normalizer: Normalizer
    stream: BatchStream
    device: torch.device
    precision: str
    channels_last: bool


def _model(model_name: str, recipe: Recipe, options: dict[str, Any], device: torch.device,
           channels_last: bool, precision: str = "fp32") -> nn.Module:
    model = build_model(model_name, **options).to(device)
    if precision == "fp64":
        model = model.double()
    if recipe.activation_checkpointing:
        if not hasattr(model, "set_activation_checkpointing"):
            raise ValueError(f"{model_name} does not support activation checkpointing (ResNets do)")
        model.set_activation_checkpointing(recipe.activation_checkpointing)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def build_trainer(model_name: str, data: CifarArrays, recipe: Recipe, *, model_options: dict[str, Any] | None = None,
                  seed: int = 0, device: str | torch.device | None = None,
                  compile_mode: str | None = None) -> Trainer:
    """Model, optimizer, loss scaler and batch stream for ``recipe`` on ``device``; ``data``
    as given (see :func:`prepare_data`). Seeds the global RNG with ``seed`` first, so the
    initial weights depend on ``seed`` only. ``compile_mode``: the ``torch.compile`` mode
    when ``recipe.compile`` is set (default: torch's default mode). On CUDA it turns on
    ``torch.backends.cudnn.benchmark`` (process-wide)."""
    device = pick_device(device)
    if device.type == "cuda":
        # the shapes of a run never change (fixed batch, 32x32): let cuDNN time its algorithms
        # once per shape and keep the fastest; it only picks among algorithms (no effect on CPU)
        torch.backends.cudnn.benchmark = True
    precision = _precision(recipe, device)
    use_cl = channels_last_for(recipe, device)
    options = dict(model_options or {})
    options.setdefault("num_classes", len(data.classes))
    torch.manual_seed(seed)
    model = _model(model_name, recipe, options, device, use_cl, precision)
    optimizer = build_optimizer(model, recipe, device)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    normalizer = Normalizer(recipe.normalization, data.train_images).to(device)
    stream = BatchStream(data.train_images, data.train_labels, recipe.batch_size, seed, normalizer,
                         augment=recipe.augment, device=device)
    if recipe.compile:
        step_model = torch.compile(model, mode=compile_mode) if compile_mode else torch.compile(model)
    else:
        step_model = model
    return Trainer(model, step_model, optimizer, scaler, normalizer, stream, device, precision, use_cl)


def _autocast(device: torch.device, precision: str) -> AbstractContextManager:
    if precision in ("bf16", "fp16"):
        return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
    return torch.autocast(device.type, enabled=False)


def as_input(x: torch.Tensor, precision: str, channels_last: bool) -> torch.Tensor:
    """A batch as the net takes it: float64 for "fp64" (else the float32 of the data
    pipeline, which autocast lowers), channels_last when the net is."""
    if precision == "fp64":
        x = x.double()
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def train_step(t: Trainer, x: torch.Tensor, y: torch.Tensor, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One SGD step at learning rate ``lr`` on the batch ``(x, y)``; returns the (detached)
    loss and logits. Never waits for the device."""
    for group in t.optimizer.param_groups:
        group["lr"] = lr
    x = as_input(x, t.precision, t.channels_last)
    with _autocast(t.device, t.precision):
        out = t.step_model(x)
        loss = F.cross_entropy(out, y)
    t.optimizer.zero_grad(set_to_none=True)
    t.scaler.scale(loss).backward()
    t.scaler.step(t.optimizer)
    t.scaler.update()
    return loss.detach(), out.detach()


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, normalizer: Normalizer,
             device: torch.device, *, precision: str = "fp32", channels_last: bool = False,
             batch_size: int = 1000) -> tuple[float, float]:
    """Test loss and error (%) of ``model`` in eval mode (BN uses its running statistics), on
    the single view of each 32x32 test image (R-Sec. 4.2)."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=device, dtype=torch.float64 if precision == "fp64" else torch.float32)
    wrong = torch.zeros((), device=device, dtype=torch.long)
    n = 0
    for x, y in eval_batches(images, labels, normalizer, batch_size=batch_size, device=device):
        x = as_input(x, precision, channels_last)
        with _autocast(device, precision):
            out = model(x)
        loss_sum += F.cross_entropy(out.double() if precision == "fp64" else out.float(), y, reduction="sum")
        wrong += (out.argmax(1) != y).sum()
        n += len(y)
    model.train(was_training)
    return loss_sum.item() / n, 100.0 * wrong.item() / n


def half_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Weights for a record: floating tensors in fp16 (loads with ``weights_only=True``)."""
    return {k: (v.detach().to("cpu", torch.float16) if v.is_floating_point() else v.detach().cpu())
            for k, v in model.state_dict().items()}
