"""``python -m resnetlab bench --fused K``: K runs fused into one net vs the same K runs one step
after another (:mod:`resnetlab.train.fused`).

Both sides train K members of one model with seeds 0..K-1 on the same batches, with the
trainer's own step (:func:`~resnetlab.train.train_step` per run, :func:`~resnetlab.train.fused.fused_step`
for the fused net), after the same warm-up; images/s counts all K members' images. On a GPU a
small CIFAR net is bound by kernel launches, which fusion shares; on a CPU the arithmetic is
the limit, and the measurement says what fusion gives there (it need not pay).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

import torch

from ..data import CifarArrays
from ..train import PAPER, build_trainer, learning_rate, train_step
from ..train.checkpoint import rng_state
from ..train.fused import build_fused_trainer, fused_batches, fused_step
from .bench_memory import PeakMemory
from .bench_pipelines import _time_steps


def bench_fused(model_name: str, k: int, arrays: CifarArrays, args: argparse.Namespace, device: torch.device,
                warmup: int, steps: int) -> dict[str, Any]:
    """Images/s (all K members) and peak memory of K separate runs and of their fused net."""
    recipe = replace(PAPER, batch_size=args.batch_size, channels_last=args.channels_last, precision=args.precision)
    lr = learning_rate(recipe, 0, warmup_end=0)
    out: dict[str, Any] = {"model": model_name, "members": k, "batch_size": args.batch_size,
                           "warmup_steps": warmup, "timed_steps": steps}
    meter = PeakMemory(device)
    with meter:
        lone = [build_trainer(model_name, arrays, recipe, seed=s, device=device) for s in range(k)]

        def separate(it: int, lone: list = lone) -> None:
            for t in lone:
                train_step(t, *t.stream.batch(it), lr)

        _, timed, _, _ = _time_steps(separate, device, warmup, steps)
    out.update(precision=lone[0].precision, separate_images_per_s=k * steps * args.batch_size / timed,
               separate_peak_memory_bytes=meter.peak_bytes)
    del lone
    meter = PeakMemory(device)
    with meter:
        members = [build_trainer(model_name, arrays, recipe, seed=s, device=device) for s in range(k)]
        ft = build_fused_trainer(members, [rng_state(device)] * k, recipe)

        def fused(it: int) -> None:
            fused_step(ft, *fused_batches(ft, it), [lr] * k)

        _, timed, _, _ = _time_steps(fused, device, warmup, steps)
    out.update(fused_images_per_s=k * steps * args.batch_size / timed, fused_peak_memory_bytes=meter.peak_bytes,
               peak_memory_kind=meter.kind)
    out["speedup"] = out["fused_images_per_s"] / out["separate_images_per_s"]
    return out


def print_fused(results: list[dict[str, Any]]) -> None:
    print(f"{'model':<14} {'K':>3} {'separate img/s':>15} {'fused img/s':>12} {'fused/separate':>15}")
    for r in results:
        print(f"{r['model']:<14} {r['members']:>3} {r['separate_images_per_s']:>15.0f} "
              f"{r['fused_images_per_s']:>12.0f} {r['speedup']:>14.2f}x")


__all__ = ["bench_fused", "print_fused"]
