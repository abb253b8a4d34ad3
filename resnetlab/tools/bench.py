"""``python -m resnetlab bench``: how fast does resnetlab train, and against what?

Two pipelines, timed in the same process run on the same images, model and optimizer
(SGD, momentum 0.9, weight decay 1e-4, batch 128; :mod:`.bench_pipelines`):

* **resnetlab**: the trainer's own step (:func:`resnetlab.train.build_trainer` and
  :func:`resnetlab.train.train_step`, the code :func:`resnetlab.train.train` runs): uint8 data
  on the training device, normalisation and the R-Sec. 4.2 crop/flip augmentation as batch
  operations there, bf16 autocast + fused SGD on CUDA, channels_last on CUDA and CPU (the
  "auto" policies), optionally ``torch.compile``.
* **standard**: what a user would otherwise write: ``torchvision.datasets.CIFAR10`` with PIL
  transforms (RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor, Normalize), a
  ``DataLoader`` with worker processes, fp32 eager, NCHW, ``loss.item()`` every step as in
  the PyTorch tutorial. torchvision's class checks the md5 of the official pickles; when the
  data root holds those, the real class is used, otherwise :class:`PickleCIFAR10`, which holds
  the same images the way torchvision's class does (HWC uint8 arrays, PIL per item). The
  output says which.

Per model and pipeline it prints images/s (after warm-up; on CUDA timed between
synchronisations, with no syncs inside the timed steps except the standard pipeline's own
``loss.item()``), the ratio resnetlab/standard, peak memory (``torch.cuda.max_memory_allocated``
on CUDA; on CPU the growth of the process's peak resident set size, labelled as such) and
the projected wall time of the paper's schedule: ``64000*128/images_per_s`` plus the
estimated time of its 128 evaluations on the 10k test images.

``--memory``: peak memory of one training step of ResNet-1202 and ResNet-1001 (pre-act) at
batch 128 with and without activation checkpointing (mixed precision on CUDA;
:mod:`.bench_memory`).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from ..data import CifarArrays, DatasetNotFoundError, load_cifar, resolve_data_root
from ..testing import fabricate_cifar
from ..train import PAPER, device_name, pick_device
from .bench_fused import bench_fused, print_fused
from .bench_memory import PeakMemory, bench_memory, gib, split_list
from .bench_pipelines import PAPER_ITERATIONS, PickleCIFAR10, bench_resnetlab, bench_standard, standard_datasets

PAPER_BATCH = 128
DEFAULT_MODELS = ("resnet20", "resnet56", "resnet110")
MEMORY_MODELS = ("resnet1202", "preresnet1001")


def default_workers() -> int:
    """DataLoader workers for the standard pipeline: one per core, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``python -m resnetlab bench``."""
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
    p.add_argument("--fused", type=int, default=0, metavar="K",
                   help="instead: K runs of each model fused into one net vs the same K runs one after another "
                        "(images/s of all K; resnetlab.train.fused)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")


# ---------------------------------------------------------------------------------------
# the environment and the output


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # no /proc (not Linux)
        pass
    return platform.processor() or platform.machine()


def environment(device: torch.device) -> dict[str, Any]:
    """Date, device, CPU, threads and versions: what a measurement depends on."""
    import torchvision

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
    if hasattr(os, "getloadavg"):  # Unix only
        env["load_average_start"] = list(os.getloadavg())
    return env


def _print_environment(env: dict[str, Any]) -> None:
    print(f"resnetlab bench  {env['date']}")
    print(f"  device: {env['device']}   cpu: {env['cpu']}   torch threads: {env['torch_threads']}")
    print(f"  torch {env['torch']}, torchvision {env['torchvision']}, python {env['python']}")
    if "load_average_start" in env:
        print("  load average at start: " + " ".join(f"{v:.2f}" for v in env["load_average_start"]))


def _duration(s: float) -> str:
    if not math.isfinite(s):
        return "n/a"
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


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
              f"{gib(r['peak_memory_bytes']):>12}  {_duration(r['projected_train_s']):>10} "
              f"{_duration(r['projected_eval_s']):>9} {_duration(r['projected_total_s']):>10}  {', '.join(notes)}")


def _print_ratios(results: list[dict[str, Any]], models: list[str], out: dict[str, Any]) -> None:
    ratios, med = {}, {}
    for name in models:
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


def _finish(out: dict[str, Any], args: argparse.Namespace) -> int:
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2, default=str) + "\n")
        print(f"wrote {path}")
    return 0


# ---------------------------------------------------------------------------------------
# the command


def _load(args: argparse.Namespace, tmp: Path) -> tuple[CifarArrays, Path]:
    """The CIFAR-10 to time on (fabricated under ``tmp`` with ``--fake``) and its data root."""
    if args.fake:
        root = fabricate_cifar(tmp / "fake", "cifar10", "pickle", n_train=args.fake_images,
                               n_test=max(100, args.fake_images // 5))
    else:
        root = resolve_data_root(args.data)
    return load_cifar("cifar10", root, progress=False), root


class BenchError(ValueError):
    """Options the bench cannot run with (reported as an error, exit status 2)."""


def _run_pipelines(args: argparse.Namespace, device: torch.device, env: dict[str, Any], pipelines: list[str],
                   tmp: Path) -> list[dict[str, Any]]:
    """Every model through every pipeline, one result row each."""
    cuda = device.type == "cuda"
    warmup = max(1, args.warmup if args.warmup is not None else (20 if cuda else 3))
    steps = args.steps if args.steps is not None else (200 if cuda else 20)
    eval_images = args.eval_images or (10_000 if cuda else 1000)
    arrays, root = _load(args, tmp)
    if args.batch_size > len(arrays.train_labels):
        raise BenchError(f"--batch-size {args.batch_size} > {len(arrays.train_labels)} training images")
    env["data"] = arrays.source + (" (fabricated by --fake)" if args.fake else "")
    print(f"  data: {env['data']}: {len(arrays.train_labels)} training / {len(arrays.test_labels)} test images")
    if "standard" in pipelines:
        train_set, test_set, env["standard_dataset"] = standard_datasets(arrays, root)
        print(f"  standard pipeline dataset: {env['standard_dataset']}")
    print(f"  batch {args.batch_size}, {warmup} warm-up + {steps} timed steps per run; "
          f"evaluation estimate from {min(eval_images, len(arrays.test_labels))} test images scaled to 10k "
          f"x {PAPER_ITERATIONS // PAPER.eval_every} evaluations", flush=True)
    results = []
    for name in split_list(args.models):
        for pipe in pipelines:
            print(f"  ... {name} {pipe}", flush=True)
            if pipe == "resnetlab":
                results.append(bench_resnetlab(name, arrays, args, device, warmup, steps, eval_images))
            else:
                results.append(bench_standard(name, train_set, test_set, args, device, warmup, steps, eval_images))
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()
    return results


def _fused_mode(args: argparse.Namespace, device: torch.device, out: dict[str, Any]) -> int:
    """``--fused K``: fused vs separate training of K runs per model (:mod:`.bench_fused`)."""
    cuda = device.type == "cuda"
    warmup = max(1, args.warmup if args.warmup is not None else (20 if cuda else 2))
    steps = args.steps if args.steps is not None else (100 if cuda else 5)
    if args.fused < 1:
        print("error: --fused K needs K >= 1", file=sys.stderr)
        return 2
    try:
        with tempfile.TemporaryDirectory(prefix="resnetlab-bench-") as tmp:
            arrays, _ = _load(args, Path(tmp))
            print(f"fused mode: {args.fused} runs per model, batch {args.batch_size}, {warmup} warm-up + {steps} "
                  f"timed steps of each side; data: {arrays.source}", flush=True)
            results = []
            for name in split_list(args.models):
                print(f"  ... {name} x{args.fused}", flush=True)
                results.append(bench_fused(name, args.fused, arrays, args, device, warmup, steps))
    except DatasetNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out["fused"] = results
    if hasattr(os, "getloadavg"):
        out["environment"]["load_average_end"] = list(os.getloadavg())
    print()
    print_fused(results)
    return _finish(out, args)


def main(args: argparse.Namespace) -> int:
    """``python -m resnetlab bench`` with the options of :func:`add_arguments`; the exit status."""
    device = pick_device(args.device)
    env = environment(device)
    _print_environment(env)
    out: dict[str, Any] = {"environment": env}
    if args.memory:
        print(f"memory mode: one training step at batch {args.memory_batch}, peak memory "
              f"({'CUDA allocator' if device.type == 'cuda' else 'CPU peak RSS growth: not GPU memory'})")
        out["memory"] = bench_memory(args, device)
        return _finish(out, args)
    if args.fused:
        return _fused_mode(args, device, out)
    pipelines = split_list(args.pipelines)
    unknown = set(pipelines) - {"resnetlab", "standard"}
    try:
        if unknown:
            raise BenchError(f"unknown pipeline(s) {', '.join(sorted(unknown))}; valid: resnetlab, standard")
        with tempfile.TemporaryDirectory(prefix="resnetlab-bench-") as tmp:
            out["results"] = results = _run_pipelines(args, device, env, pipelines, Path(tmp))
    except (BenchError, DatasetNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if hasattr(os, "getloadavg"):
        env["load_average_end"] = list(os.getloadavg())
    print()
    _print_table(results)
    _print_ratios(results, split_list(args.models), out)
    print("peak memory: " + "; ".join(sorted({r["peak_memory_kind"] for r in results})))
    print(f"projection: {PAPER_ITERATIONS}*{args.batch_size}/images_per_s + {PAPER_ITERATIONS // PAPER.eval_every} "
          "evaluations of the 10k test images at the measured evaluation speed")
    if "load_average_end" in env:
        print("load average at end: " + " ".join(f"{v:.2f}" for v in env["load_average_end"]))
    return _finish(out, args)


__all__ = ["add_arguments", "main", "PickleCIFAR10", "PeakMemory", "bench_resnetlab", "bench_standard",
           "bench_memory", "standard_datasets"]
