"""The two pipelines ``python -m resnetlab bench`` times: resnetlab's trainer and the
standard torchvision one (see :mod:`.bench`)."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset

from ..data import CifarArrays
from ..models import build_model
from ..train import PAPER, build_trainer, evaluate, learning_rate, train_step
from .bench_memory import PeakMemory, sync

PAPER_ITERATIONS = 64_000


def _project(images_per_s: float, eval_s_per_10k: float, batch: int, evals: int) -> dict[str, float]:
    """The paper's schedule at the measured speeds: ``64000*batch/images_per_s`` plus ``evals``
    evaluations of the 10k test images."""
    train_s = PAPER_ITERATIONS * batch / images_per_s
    eval_s = evals * eval_s_per_10k
    return {"projected_train_s": train_s, "projected_eval_s": eval_s, "projected_total_s": train_s + eval_s}


def _median(marks: list[float], t0: float, batch: int, device: torch.device) -> dict[str, float | None]:
    """On CPU, the median step time (robust to bursts of load from other processes on a
    shared machine); on CUDA steps are not synchronised one by one, so None."""
    if device.type == "cuda" or not marks:
        return {"step_ms_median": None, "images_per_s_median": None}
    med = statistics.median(np.diff([t0, *marks]))
    return {"step_ms_median": med * 1e3, "images_per_s_median": batch / med}


# ---------------------------------------------------------------------------------------
# resnetlab's pipeline


def _time_steps(step: Callable[[int], None], device: torch.device, warmup: int,
                steps: int) -> tuple[float, float, float, list[float]]:
    """(first step's s, timed s, start of the timed steps, the end of each) of ``step(it)``:
    ``warmup`` untimed steps (the first one timed alone, for the compile time), then ``steps``
    timed ones."""
    sync(device)
    t0 = time.perf_counter()
    step(0)
    sync(device)
    first_s = time.perf_counter() - t0
    for it in range(1, warmup):
        step(it)
    sync(device)
    t0 = time.perf_counter()
    marks = []
    for it in range(warmup, warmup + steps):
        step(it)
        marks.append(time.perf_counter())  # on CUDA these are launch times: only the total is used there
    sync(device)
    return first_s, time.perf_counter() - t0, t0, marks


def _eval_seconds(t: Any, arrays: CifarArrays, device: torch.device, eval_images: int) -> tuple[float, int]:
    """Seconds per 10k test images of the trainer's evaluation, and how many were timed."""
    n = min(eval_images, len(arrays.test_labels))
    test_x, test_y = arrays.test_images[:n].to(device), arrays.test_labels[:n].to(device)
    evaluate(t.model, test_x[:min(n, 256)], test_y[:min(n, 256)], t.normalizer, device,
             precision=t.precision, channels_last=t.channels_last)  # warm-up
    t0 = time.perf_counter()
    evaluate(t.model, test_x, test_y, t.normalizer, device, precision=t.precision, channels_last=t.channels_last)
    return (time.perf_counter() - t0) * 10_000 / n, n


def bench_resnetlab(model_name: str, arrays: CifarArrays, args: argparse.Namespace, device: torch.device,
                    warmup: int, steps: int, eval_images: int) -> dict[str, Any]:
    """The trainer's own step (:func:`~resnetlab.train.build_trainer`, :func:`~resnetlab.train.train_step`)."""
    recipe = replace(PAPER, batch_size=args.batch_size, channels_last=args.channels_last,
                     precision=args.precision, compile=args.compile != "off")
    meter = PeakMemory(device)
    with meter:
        t = build_trainer(model_name, arrays, recipe, seed=0, device=device,
                          compile_mode=None if args.compile in ("off", "default") else args.compile)
        loss_acc = torch.zeros((), device=device)
        wrong_acc = torch.zeros((), device=device, dtype=torch.long)  # train() keeps the same running sums

        def step(it: int) -> None:
            nonlocal loss_acc, wrong_acc
            x, y = t.stream.batch(it)
            loss, out = train_step(t, x, y, learning_rate(recipe, it, warmup_end=0))
            loss_acc += loss.float()
            wrong_acc += (out.argmax(1) != y).sum()

        first_s, timed_s, t0, marks = _time_steps(step, device, warmup, steps)
    step_s = timed_s / steps
    ips = steps * args.batch_size / timed_s
    eval_s, n = _eval_seconds(t, arrays, device, eval_images)
    out = {
        "model": model_name, "pipeline": "resnetlab", "images_per_s": ips, "step_ms": step_s * 1e3,
        **_median(marks, t0, args.batch_size, device),
        "first_step_s": first_s, "compile_s": max(0.0, first_s - step_s) if recipe.compile else None,
        "warmup_steps": warmup, "timed_steps": steps, "batch_size": args.batch_size,
        "precision": t.precision, "channels_last": t.channels_last, "compile": args.compile,
        "optimizer": "SGD fused" if device.type == "cuda" else "SGD foreach",
        "peak_memory_bytes": meter.peak_bytes, "peak_memory_kind": meter.kind,
        "eval_s_per_10k": eval_s, "eval_images_timed": n,
        "final_loss": loss_acc.item() / (warmup + steps),
    }
    out.update(_project(ips, eval_s, args.batch_size, PAPER_ITERATIONS // recipe.eval_every))
    del t
    return out


# ---------------------------------------------------------------------------------------
# the standard pipeline


class PickleCIFAR10(Dataset):
    """torchvision's ``CIFAR10`` without its md5 check: the images as HWC uint8 ``data`` and
    the labels as a list ``targets``, as torchvision holds them once it has read its pickles,
    and ``transform(PIL image), label`` per item. It holds the images :mod:`resnetlab.data`
    decoded (with its restricted pickle reader, or from an image folder): nothing is read
    twice."""

    def __init__(self, arrays: CifarArrays, train: bool = True, transform: Any = None) -> None:
        images, labels = (arrays.train_images, arrays.train_labels) if train else (arrays.test_images, arrays.test_labels)
        self.data = images.permute(0, 2, 3, 1).numpy()  # HWC
        self.targets: list[int] = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        from PIL import Image

        img = Image.fromarray(self.data[index])
        if self.transform is not None:
            img = self.transform(img)
        return img, self.targets[index]


def _channel_stats(images_uint8: torch.Tensor) -> tuple[list[float], list[float]]:
    x = images_uint8.to(torch.float64) / 255
    return x.mean((0, 2, 3)).tolist(), x.std((0, 2, 3)).tolist()


def standard_datasets(arrays: CifarArrays, root: Path | None) -> tuple[Dataset, Dataset, str]:
    """(train set with the usual augmentation, test set, description) for the standard
    pipeline: torchvision's own ``CIFAR10`` when ``root`` holds the official pickles (md5
    checked), else :class:`PickleCIFAR10`."""
    from torchvision import transforms  # slow import, only needed here

    mean, std = _channel_stats(arrays.train_images)
    train_tf = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                                   transforms.ToTensor(), transforms.Normalize(mean, std)])
    test_tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
    if root is not None and arrays.kind == "torchvision":
        from torchvision.datasets import CIFAR10

        pickles = root / "cifar-10-batches-py"
        try:
            train = CIFAR10(str(root), train=True, transform=train_tf, download=False)
            test = CIFAR10(str(root), train=False, transform=test_tf, download=False)
            return train, test, f"torchvision.datasets.CIFAR10 (official pickles in {pickles})"
        except RuntimeError:  # md5 mismatch: not the official files
            pass
        note = (f"resnetlab.tools.bench.PickleCIFAR10 holding the images resnetlab.data read from {pickles} "
                "(torchvision's format; md5 check skipped)")
    else:
        note = (f"resnetlab.tools.bench.PickleCIFAR10 holding the same images as torchvision holds them "
                f"(source: {arrays.source})")
    return PickleCIFAR10(arrays, True, train_tf), PickleCIFAR10(arrays, False, test_tf), note


def _cycle(loader: DataLoader) -> Iterator[Any]:
    while True:
        yield from loader


def _standard_model(model_name: str, device: torch.device) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = build_model(model_name, num_classes=10).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=PAPER.lr, momentum=PAPER.momentum, weight_decay=PAPER.weight_decay)
    return model, opt


@torch.no_grad()
def _standard_eval_seconds(model: torch.nn.Module, test_set: Dataset, args: argparse.Namespace,
                           device: torch.device, eval_images: int) -> tuple[float, int]:
    n = min(eval_images, len(test_set))
    test_loader = DataLoader(Subset(test_set, range(n)), batch_size=1000, num_workers=args.workers,
                             pin_memory=device.type == "cuda")
    model.eval()
    t0 = time.perf_counter()
    wrong = 0
    for x, y in test_loader:
        out = model(x.to(device, non_blocking=True))
        wrong += (out.argmax(1).cpu() != y).sum().item()
    return (time.perf_counter() - t0) * 10_000 / n, n


def bench_standard(model_name: str, train_set: Dataset, test_set: Dataset, args: argparse.Namespace,
                   device: torch.device, warmup: int, steps: int, eval_images: int) -> dict[str, Any]:
    """What a user would otherwise write: DataLoader with workers, fp32 eager, NCHW,
    ``loss.item()`` every step as in the PyTorch tutorial."""
    cuda = device.type == "cuda"
    meter = PeakMemory(device)
    with meter:
        model, opt = _standard_model(model_name, device)
        loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                            drop_last=True, pin_memory=cuda, persistent_workers=args.workers > 0)
        batches = _cycle(loader)
        model.train()
        running = 0.0

        def step(_: int) -> None:
            nonlocal running
            x, y = next(batches)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            out = model(x)
            loss = F.cross_entropy(out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            running += loss.item()

        _, timed_s, t0, marks = _time_steps(step, device, warmup, steps)
    del batches, loader  # stops the workers
    ips = steps * args.batch_size / timed_s
    eval_s, n = _standard_eval_seconds(model, test_set, args, device, eval_images)
    out = {
        "model": model_name, "pipeline": "standard", "images_per_s": ips, "step_ms": timed_s / steps * 1e3,
        **_median(marks, t0, args.batch_size, device),
        "first_step_s": None, "compile_s": None, "warmup_steps": warmup, "timed_steps": steps,
        "batch_size": args.batch_size, "precision": "fp32", "channels_last": False, "compile": "off",
        "optimizer": "SGD (torch default: foreach on CUDA)", "workers": args.workers,
        "peak_memory_bytes": meter.peak_bytes,
        "peak_memory_kind": meter.kind + ("" if cuda else " (main process only; DataLoader workers not counted)"),
        "eval_s_per_10k": eval_s, "eval_images_timed": n, "final_loss": running / (warmup + steps),
    }
    out.update(_project(ips, eval_s, args.batch_size, PAPER_ITERATIONS // PAPER.eval_every))
    return out
