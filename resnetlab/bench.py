"""``python -m resnetlab bench``: how fast does resnetlab train, and against what?

Two pipelines, timed in the same process run on the same images, model and optimizer
(SGD, momentum 0.9, weight decay 1e-4, batch 128):

* **resnetlab**: the trainer's own step (:func:`resnetlab.train.build_trainer` and
  :func:`resnetlab.train.train_step`, the code :func:`resnetlab.train.train` runs): uint8 data
  on the training device, normalisation and the R-Sec. 4.2 crop/flip augmentation as batch
  operations there, bf16 autocast + fused SGD on CUDA, channels_last on CUDA and CPU (the
  "auto" policies), optionally ``torch.compile``.
* **standard**: what a user would otherwise write: ``torchvision.datasets.CIFAR10`` with PIL
  transforms (RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor, Normalize), a
  ``DataLoader`` with worker processes, fp32 eager, NCHW, ``loss.item()`` every step as in
  the PyTorch tutorial. torchvision's class checks the md5 of the official pickles; when the
  data root holds those, the real class is used, otherwise :class:`PickleCIFAR10`, which reads
  torchvision's pickle format the way torchvision does (the images are written in that
  format to a temporary folder first when the source is an image folder). The output says
  which.

Per model and pipeline it prints images/s (after warm-up; on CUDA timed between
synchronisations, with no syncs inside the timed steps except the standard pipeline's own
``loss.item()``), the ratio resnetlab/standard, peak memory (``torch.cuda.max_memory_allocated``
on CUDA; on CPU the growth of the process's peak resident set size, labelled as such) and
the projected wall time of the paper's schedule: ``64000*128/images_per_s`` plus the
estimated time of its 128 evaluations on the 10k test images.

``--memory``: peak memory of one training step of ResNet-1202 and ResNet-1001 (pre-act) at
batch 128 with and without activation checkpointing (mixed precision on CUDA).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

PAPER_ITERATIONS = 64_000
PAPER_BATCH = 128
DEFAULT_MODELS = ("resnet20", "resnet56", "resnet110")
MEMORY_MODELS = ("resnet1202", "preresnet1001")


def default_workers() -> int:
    """DataLoader workers for the standard pipeline: one per core, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", default=",".join(DEFAULT_MODELS),
                   help=f"comma-separated models (default {','.join(DEFAULT_MODELS)})")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", default=None, help="data root (default: $RESNETLAB_DATA or data/)")
    src.add_argument("--fake", action="store_true", help="fabricated CIFAR-10 (for tests; numbers mean little)")
    p.add_argument("--fake-images", type=int, default=1024, help="training images of the fake set (default 1024)")
    p.add_argument("--device", default=None, help="cuda, cpu, ... (default: cuda if available)")
    p.add_argument("--pipelines", default="resnetlab,standard", help="which pipelines (default both)")
    p.add_argument("--batch-size", type=int, default=PAPER_BATCH, help="default 128 (the paper's)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 20 on CUDA, 3 on CPU)")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 200 on CUDA, 20 on CPU)")
    p.add_argument("--workers", type=int, default=default_workers(),
                   help=f"DataLoader workers of the standard pipeline (default {default_workers()}: cores, max 8)")
    p.add_argument("--channels-last", default="auto", choices=["auto", "on", "off"],
                   help="resnetlab pipeline: channels_last memory format (auto: on for CUDA and CPU)")
    p.add_argument("--compile", default="off", choices=["off", "default", "reduce-overhead", "max-autotune"],
                   help="resnetlab pipeline: torch.compile mode (reduce-overhead uses CUDA graphs); "
                        "compile time is measured and printed separately")
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp16", "fp32"],
                   help="resnetlab pipeline (auto: bf16 on CUDA, fp32 on CPU)")
    p.add_argument("--eval-images", type=int, default=None,
                   help="test images timed for the evaluation estimate (default all on CUDA, 1000 on CPU)")
    p.add_argument("--memory", action="store_true",
                   help="instead: peak memory of one training step of --memory-models with and without "
                        "activation checkpointing")
    p.add_argument("--memory-models", default=",".join(MEMORY_MODELS), help=f"default {','.join(MEMORY_MODELS)}")
    p.add_argument("--memory-batch", type=int, default=PAPER_BATCH, help="batch size of --memory (default 128)")
    p.add_argument("--memory-steps", type=int, default=None, help="steps per --memory config (default 2 on CUDA, 1 on CPU)")
    p.add_argument("--checkpoint-segments", default="0,16",
                   help="--memory: comma-separated activation-checkpointing segments per stage to compare "
                        "(0 = none; default 0,16)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")


# ---------------------------------------------------------------------------------------
# memory


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class PeakMemory:
    """Peak memory over a block: CUDA allocator peak, or on CPU the growth of the process's
    peak resident set size (VmHWM reset through /proc/self/clear_refs, else sampled)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.kind = ("torch.cuda.max_memory_allocated" if device.type == "cuda"
                     else "CPU peak RSS growth of this process")
        self.peak_bytes: int | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakMemory:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        self._base = _status_kb("VmRSS") or 0
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
            self._hwm = True
        except OSError:
            self._hwm = False
            self._sampled, self._stop = self._base, threading.Event()

            def sample() -> None:
                while not self._stop.wait(0.002):
                    self._sampled = max(self._sampled, _status_kb("VmRSS") or 0)

            self._thread = threading.Thread(target=sample, daemon=True)
            self._thread.start()
            self.kind += " (sampled every 2 ms)"
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device)
            return
        if self._hwm:
            peak = _status_kb("VmHWM") or 0
        else:
            self._stop.set()
            assert self._thread is not None
            self._thread.join()
            peak = self._sampled
        self.peak_bytes = max(0, peak - self._base) * 1024


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------------------------------
# the standard pipeline's dataset


class PickleCIFAR10(torch.utils.data.Dataset):
    """torchvision's ``CIFAR10`` without the md5 check: reads ``cifar-10-batches-py`` the way
    torchvision does (pickles with ``encoding="latin1"``, ``data`` reshaped to HWC uint8) and
    returns ``transform(PIL image), label`` per item."""

    def __init__(self, folder: str | Path, train: bool = True, transform: Any = None) -> None:
        import pickle

        folder = Path(folder)
        files = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        data, self.targets = [], []
        for name in files:
            with open(folder / name, "rb") as fh:
                entry = pickle.load(fh, encoding="latin1")
            # official files come back with str keys; files written by Python 3 (fabricated) with bytes keys
            entry = {k.decode() if isinstance(k, bytes) else k: v for k, v in entry.items()}
            data.append(entry["data"])
            self.targets.extend(entry["labels"] if "labels" in entry else entry["fine_labels"])
        self.data = np.vstack(data).reshape(-1, 3, 32, 32).transpose((0, 2, 3, 1))  # HWC
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


def standard_datasets(arrays: Any, root: Path | None, workdir: Path) -> tuple[Any, Any, str]:
    """(train set with the usual augmentation, test set, description) for the standard pipeline."""
    from torchvision import transforms

    mean, std = _channel_stats(arrays.train_images)
    train_tf = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                                   transforms.ToTensor(), transforms.Normalize(mean, std)])
    test_tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
    pickles = root / "cifar-10-batches-py" if root is not None else None
    if pickles is not None and "torchvision pickles" in arrays.source:
        from torchvision.datasets import CIFAR10

        try:
            train = CIFAR10(str(root), train=True, transform=train_tf, download=False)
            test = CIFAR10(str(root), train=False, transform=test_tf, download=False)
            return train, test, f"torchvision.datasets.CIFAR10 (official pickles in {pickles})"
        except RuntimeError:  # md5 mismatch: not the official files
            pass
        note = f"resnetlab.bench.PickleCIFAR10 reading {pickles} (torchvision's format; md5 check skipped)"
    else:
        from .testing import _write_pickles

        pickles = workdir / "cifar-10-batches-py"
        _write_pickles(workdir, "cifar10", list(arrays.classes),
                       (arrays.train_images.numpy(), arrays.train_labels.numpy()),
                       (arrays.test_images.numpy(), arrays.test_labels.numpy()))
        note = (f"resnetlab.bench.PickleCIFAR10 reading the same images written in torchvision's pickle format "
                f"to a temporary folder (source: {arrays.source})")
    return PickleCIFAR10(pickles, True, train_tf), PickleCIFAR10(pickles, False, test_tf), note


# ---------------------------------------------------------------------------------------
# the two pipelines


def _project(images_per_s: float, eval_s_per_10k: float, batch: int, evals: int) -> dict[str, float]:
    train_s = PAPER_ITERATIONS * batch / images_per_s
    eval_s = evals * eval_s_per_10k
    return {"projected_train_s": train_s, "projected_eval_s": eval_s, "projected_total_s": train_s + eval_s}


def bench_resnetlab(model_name: str, arrays: Any, args: argparse.Namespace, device: torch.device,
                    warmup: int, steps: int, eval_images: int) -> dict[str, Any]:
    from .train import PAPER, build_trainer, evaluate, learning_rate, train_step

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
            loss, out = train_step(t, x, y, learning_rate(recipe, it))
            loss_acc += loss.float()
            wrong_acc += (out.argmax(1) != y).sum()

        _sync(device)
        t0 = time.perf_counter()
        step(0)
        _sync(device)
        first_s = time.perf_counter() - t0
        for it in range(1, warmup):
            step(it)
        _sync(device)
        t0 = time.perf_counter()
        marks = []
        for it in range(warmup, warmup + steps):
            step(it)
            marks.append(time.perf_counter())  # on CUDA these are launch times: only the total is used there
        _sync(device)
        timed_s = time.perf_counter() - t0
    step_s = timed_s / steps
    ips = steps * args.batch_size / timed_s
    n = min(eval_images, len(arrays.test_labels))
    test_x, test_y = arrays.test_images[:n].to(device), arrays.test_labels[:n].to(device)
    evaluate(t.model, test_x[:min(n, 256)], test_y[:min(n, 256)], t.normalizer, device,
             precision=t.precision, channels_last=t.channels_last)  # warm-up
    t0 = time.perf_counter()
    evaluate(t.model, test_x, test_y, t.normalizer, device, precision=t.precision, channels_last=t.channels_last)
    eval_s = (time.perf_counter() - t0) * 10_000 / n
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


def _median(marks: list[float], t0: float, batch: int, device: torch.device) -> dict[str, float | None]:
    """On CPU, the median step time (robust to bursts of load from other processes on a
    shared machine); on CUDA steps are not synchronised one by one, so None."""
    if device.type == "cuda" or not marks:
        return {"step_ms_median": None, "images_per_s_median": None}
    med = statistics.median(np.diff([t0, *marks]))
    return {"step_ms_median": med * 1e3, "images_per_s_median": batch / med}


def _cycle(loader: Any):
    while True:
        yield from loader


def bench_standard(model_name: str, train_set: Any, test_set: Any, args: argparse.Namespace,
                   device: torch.device, warmup: int, steps: int, eval_images: int) -> dict[str, Any]:
    from torch.utils.data import DataLoader, Subset

    from .models import build_model
    from .train import PAPER

    cuda = device.type == "cuda"
    meter = PeakMemory(device)
    with meter:
        torch.manual_seed(0)
        model = build_model(model_name, num_classes=10).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=PAPER.lr, momentum=PAPER.momentum,
                              weight_decay=PAPER.weight_decay)
        loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                            drop_last=True, pin_memory=cuda, persistent_workers=args.workers > 0)
        batches = _cycle(loader)
        model.train()
        running = 0.0

        def step() -> None:
            nonlocal running
            x, y = next(batches)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            out = model(x)
            loss = F.cross_entropy(out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            running += loss.item()

        for _ in range(warmup):
            step()
        _sync(device)
        t0 = time.perf_counter()
        marks = []
        for _ in range(steps):
            step()
            marks.append(time.perf_counter())
        _sync(device)
        timed_s = time.perf_counter() - t0
    del batches, loader  # stops the workers
    ips = steps * args.batch_size / timed_s
    n = min(eval_images, len(test_set))
    test_loader = DataLoader(Subset(test_set, range(n)), batch_size=1000, num_workers=args.workers,
                             pin_memory=cuda)
    model.eval()
    t0 = time.perf_counter()
    with torch.no_grad():
        wrong = 0
        for x, y in test_loader:
            out = model(x.to(device, non_blocking=True))
            wrong += (out.argmax(1).cpu() != y).sum().item()
    eval_s = (time.perf_counter() - t0) * 10_000 / n
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


# ---------------------------------------------------------------------------------------
# memory mode


def _memory_one(name: str, segments: int, batch: int, steps: int, precision: str, channels_last: str,
                device_str: str) -> dict[str, Any]:
    """Peak memory of ``steps`` training steps of ``name`` (the trainer's own step)."""
    from .data import CifarArrays
    from .testing import CIFAR10_CLASSES
    from .train import PAPER, build_trainer, learning_rate, train_step

    device = torch.device(device_str)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (batch,), generator=g)
    arrays = CifarArrays("cifar10", "random uint8 images", list(CIFAR10_CLASSES), images, labels, images[:8], labels[:8])
    recipe = replace(PAPER, batch_size=batch, activation_checkpointing=segments, precision=precision,
                     channels_last=channels_last)
    meter = PeakMemory(device)
    with meter:
        t = build_trainer(name, arrays, recipe, seed=0, device=device)
        t0 = time.perf_counter()
        for it in range(steps):
            x, y = t.stream.batch(it)
            train_step(t, x, y, learning_rate(recipe, it))
        _sync(device)
        step_s = (time.perf_counter() - t0) / steps
    return {"model": name, "activation_checkpointing": segments, "batch_size": batch, "steps": steps,
            "precision": t.precision, "channels_last": t.channels_last,
            "params": sum(p.numel() for p in t.model.parameters()),
            "peak_memory_bytes": meter.peak_bytes, "peak_memory_kind": meter.kind, "step_s": step_s}


def bench_memory(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    """On CUDA each config runs here (the allocator's peak is reset between them); on CPU each
    runs in a fresh process, since memory freed by one config stays resident and would hide
    the next one's growth."""
    steps = args.memory_steps or (2 if device.type == "cuda" else 1)
    rows = []
    for name in _split(args.memory_models):
        for segments in _segments(args.checkpoint_segments):
            job = (name, segments, args.memory_batch, steps, args.precision, args.channels_last, str(device))
            if device.type == "cuda":
                row = _memory_one(*job)
                gc.collect()
                torch.cuda.empty_cache()
            else:
                import multiprocessing as mp
                from concurrent.futures import ProcessPoolExecutor

                with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
                    row = pool.submit(_memory_one, *job).result()
                row["peak_memory_kind"] += " (a fresh process per config)"
            rows.append(row)
            print(f"  {name:14} checkpointing {segments:>2} segments/stage: peak {_gib(row['peak_memory_bytes'])} "
                  f"({row['peak_memory_kind']}), {row['step_s']:.1f} s/step, {row['precision']}", flush=True)
    return rows


# ---------------------------------------------------------------------------------------
# output


def _segments(text: str) -> list[int]:
    try:
        values = [int(v) for v in _split(text)]
    except ValueError:
        values = []
    if not values or min(values) < 0:
        raise SystemExit(f"error: --checkpoint-segments wants comma-separated integers >= 0 (0 = none), got {text!r}")
    return values


def _split(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def _gib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2**30:.2f} GiB"


def _duration(s: float) -> str:
    if not math.isfinite(s):
        return "n/a"
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: torch.device) -> dict[str, Any]:
    import torchvision

    from .train import device_name

    env = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": device_name(device),
        "device_type": device.type,
        "cpu": f"{_cpu_model()}, {os.cpu_count()} logical CPUs",
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "command": "python -m resnetlab " + " ".join(sys.argv[1:]) if sys.argv and "resnetlab" in sys.argv[0] else None,
    }
    if hasattr(os, "getloadavg"):
        env["load_average_start"] = list(os.getloadavg())
    return env


def _print_table(results: list[dict[str, Any]]) -> None:
    header = (f"{'model':11} {'pipeline':10} {'images/s':>9} {'step ms':>9} {'median/s':>9} {'peak memory':>12}  "
              f"{'64k train':>10} {'+ evals':>9} {'= total':>10}  notes")
    print(header)
    print("-" * len(header))
    for r in results:
        notes = [r["precision"], "channels_last" if r["channels_last"] else "NCHW"]
        if r["pipeline"] == "standard":
            notes.append(f"{r['workers']} workers")
        if r.get("compile_s") is not None:
            notes.append(f"compile {r['compile'] } {r['compile_s']:.1f} s")
        med = r.get("images_per_s_median")
        print(f"{r['model']:11} {r['pipeline']:10} {r['images_per_s']:9.1f} {r['step_ms']:9.1f} "
              f"{'-' if med is None else f'{med:.1f}':>9} "
              f"{_gib(r['peak_memory_bytes']):>12}  {_duration(r['projected_train_s']):>10} "
              f"{_duration(r['projected_eval_s']):>9} {_duration(r['projected_total_s']):>10}  {', '.join(notes)}")


def main(args: argparse.Namespace) -> int:
    from .data import DatasetNotFoundError, load_cifar, resolve_data_root
    from .train import pick_device

    device = pick_device(args.device)
    cuda = device.type == "cuda"
    env = environment(device)
    print(f"resnetlab bench  {env['date']}")
    print(f"  device: {env['device']}   cpu: {env['cpu']}   torch threads: {env['torch_threads']}")
    print(f"  torch {env['torch']}, torchvision {env['torchvision']}, python {env['python']}")
    if "load_average_start" in env:
        print("  load average at start: " + " ".join(f"{v:.2f}" for v in env["load_average_start"]))
    out: dict[str, Any] = {"environment": env}

    if args.memory:
        print(f"memory mode: one training step at batch {args.memory_batch}, peak memory "
              f"({'CUDA allocator' if cuda else 'CPU peak RSS growth: not GPU memory'})")
        out["memory"] = bench_memory(args, device)
        return _finish(out, args)

    warmup = args.warmup if args.warmup is not None else (20 if cuda else 3)
    steps = args.steps if args.steps is not None else (200 if cuda else 20)
    warmup = max(1, warmup)
    eval_images = args.eval_images or (10_000 if cuda else 1000)
    pipelines = _split(args.pipelines)
    unknown = set(pipelines) - {"resnetlab", "standard"}
    if unknown:
        print(f"error: unknown pipeline(s) {', '.join(sorted(unknown))}; valid: resnetlab, standard", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="resnetlab-bench-") as tmp:
        try:
            if args.fake:
                from .testing import fabricate_cifar

                root = fabricate_cifar(Path(tmp) / "fake", "cifar10", "pickle", n_train=args.fake_images,
                                       n_test=max(100, args.fake_images // 5))
            else:
                root = resolve_data_root(args.data)
            arrays = load_cifar("cifar10", root, progress=False)
        except DatasetNotFoundError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if args.batch_size > len(arrays.train_labels):
            print(f"error: --batch-size {args.batch_size} > {len(arrays.train_labels)} training images", file=sys.stderr)
            return 2
        env["data"] = arrays.source + (" (fabricated by --fake)" if args.fake else "")
        print(f"  data: {env['data']}: {len(arrays.train_labels)} training / {len(arrays.test_labels)} test images")
        if "standard" in pipelines:
            train_set, test_set, note = standard_datasets(arrays, root, Path(tmp))
            env["standard_dataset"] = note
            print(f"  standard pipeline dataset: {note}")
        print(f"  batch {args.batch_size}, {warmup} warm-up + {steps} timed steps per run; "
              f"evaluation estimate from {min(eval_images, len(arrays.test_labels))} test images scaled to 10k "
              f"x {PAPER_ITERATIONS // 500} evaluations", flush=True)
        results = []
        for name in _split(args.models):
            for pipe in pipelines:
                print(f"  ... {name} {pipe}", flush=True)
                if pipe == "resnetlab":
                    r = bench_resnetlab(name, arrays, args, device, warmup, steps, eval_images)
                else:
                    r = bench_standard(name, train_set, test_set, args, device, warmup, steps, eval_images)
                results.append(r)
                gc.collect()
                if cuda:
                    torch.cuda.empty_cache()
    out["results"] = results
    if hasattr(os, "getloadavg"):
        env["load_average_end"] = list(os.getloadavg())
    print()
    _print_table(results)
    ratios, med = {}, {}
    for name in _split(args.models):
        by = {r["pipeline"]: r for r in results if r["model"] == name}
        if "resnetlab" in by and "standard" in by:
            ours, theirs = by["resnetlab"], by["standard"]
            ratios[name] = ours["images_per_s"] / theirs["images_per_s"]
            if ours.get("images_per_s_median") and theirs.get("images_per_s_median"):
                med[name] = ours["images_per_s_median"] / theirs["images_per_s_median"]
    if ratios:
        print("\nratio resnetlab/standard (images/s): "
              + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))
    if med:
        print("ratio of median step rates (CPU; robust to load bursts): "
              + ", ".join(f"{k} {v:.2f}x" for k, v in med.items()))
        out["ratios_median"] = med
    out["ratios"] = ratios
    kinds = sorted({r["peak_memory_kind"] for r in results})
    print("peak memory: " + "; ".join(kinds))
    print(f"projection: {PAPER_ITERATIONS}*{args.batch_size}/images_per_s + {PAPER_ITERATIONS // 500} evaluations "
          "of the 10k test images at the measured evaluation speed")
    if "load_average_end" in env:
        print("load average at end: " + " ".join(f"{v:.2f}" for v in env["load_average_end"]))
    return _finish(out, args)


def _finish(out: dict[str, Any], args: argparse.Namespace) -> int:
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2, default=str) + "\n")
        print(f"wrote {path}")
    return 0


__all__ = ["add_arguments", "main", "PickleCIFAR10", "PeakMemory", "bench_resnetlab", "bench_standard",
           "bench_memory", "standard_datasets"]
