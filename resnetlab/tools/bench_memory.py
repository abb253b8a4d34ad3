"""Peak memory, for ``python -m resnetlab bench``: :class:`PeakMemory` over any block, and
``--memory``: one training step of ResNet-1202 and ResNet-1001 (pre-act) at batch 128 with
and without activation checkpointing (IM Sec. 4: the 1001-layer net on one GPU)."""

from __future__ import annotations

import argparse
import gc
import threading
import time
from dataclasses import replace
from typing import Any

import torch

from ..data import CifarArrays
from ..testing import CIFAR10_CLASSES
from ..train import PAPER, build_trainer, learning_rate, train_step


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:  # no /proc (not Linux)
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
            self._start_sampling()
        return self

    def _start_sampling(self) -> None:
        self._sampled, self._stop = self._base, threading.Event()

        def sample() -> None:
            while not self._stop.wait(0.002):
                self._sampled = max(self._sampled, _status_kb("VmRSS") or 0)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        self.kind += " (sampled every 2 ms)"

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


def sync(device: torch.device) -> None:
    """Wait for the device (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def split_list(text: str) -> list[str]:
    """The items of a comma-separated option."""
    return [s.strip() for s in text.split(",") if s.strip()]


def gib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2**30:.2f} GiB"


def _segments(text: str) -> list[int]:
    try:
        values = [int(v) for v in split_list(text)]
    except ValueError:
        values = []
    if not values or min(values) < 0:
        raise SystemExit(f"error: --checkpoint-segments wants comma-separated integers >= 0 (0 = none), got {text!r}")
    return values


def _memory_one(name: str, segments: int, batch: int, steps: int, precision: str, channels_last: str,
                device_str: str) -> dict[str, Any]:
    """Peak memory of ``steps`` training steps of ``name`` (the trainer's own step)."""
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
            train_step(t, x, y, learning_rate(recipe, it, warmup_end=0))
        sync(device)
        step_s = (time.perf_counter() - t0) / steps
    return {"model": name, "activation_checkpointing": segments, "batch_size": batch, "steps": steps,
            "precision": t.precision, "channels_last": t.channels_last,
            "params": sum(p.numel() for p in t.model.parameters()),
            "peak_memory_bytes": meter.peak_bytes, "peak_memory_kind": meter.kind, "step_s": step_s}


def _memory_in_fresh_process(job: tuple[Any, ...]) -> dict[str, Any]:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        row = pool.submit(_memory_one, *job).result()
    row["peak_memory_kind"] += " (a fresh process per config)"
    return row


def bench_memory(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    """On CUDA each config runs here (the allocator's peak is reset between them); on CPU each
    runs in a fresh process, since memory freed by one config stays resident and would hide
    the next one's growth."""
    steps = args.memory_steps or (2 if device.type == "cuda" else 1)
    rows = []
    for name in split_list(args.memory_models):
        for segments in _segments(args.checkpoint_segments):
            job = (name, segments, args.memory_batch, steps, args.precision, args.channels_last, str(device))
            if device.type == "cuda":
                row = _memory_one(*job)
                gc.collect()
                torch.cuda.empty_cache()
            else:
                row = _memory_in_fresh_process(job)
            rows.append(row)
            print(f"  {name:14} checkpointing {segments:>2} segments/stage: peak {gib(row['peak_memory_bytes'])} "
                  f"({row['peak_memory_kind']}), {row['step_s']:.1f} s/step, {row['precision']}", flush=True)
    return rows
