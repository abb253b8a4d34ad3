"""The Measure phase of ``python -m resnetlab window``, and the speed model it yields.

1. Eager training steps (the trainer's own :func:`~resnetlab.train.train_step`) of ResNet-20,
   -56 and -110 and of one wide net (ImageNet-style ResNet-18 at 32x32), which separates what
   a step costs per layer (kernel launches) from what it costs per multiply-add.
2. 2 and 4 short runs at once through :func:`resnetlab.runs.parallel.train_many`: their
   summed steady speed says whether several runs at once pay on this device, and the wall
   time beyond the runs' own says what starting a run's process costs.
3. ResNet-20 x5 fused into one net (:mod:`resnetlab.train.fused`): the window fuses runs that
   differ only in seed when that beats several processes by 10%.

:class:`SpeedModel` projects a run's wall time from that: per step
``a + b*layers + k*batch*GMACs`` (fit to the eager steps), slowed down for ``jobs`` runs at
once as measured (the per-MAC part never faster than one run at a time), plus its
evaluations and its process start-up; then times a safety factor, and times the median
ratio of actual to projected time of the runs finished so far.
"""

from __future__ import annotations

import gc
import math
import statistics
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..data import CifarArrays
from ..models import build_model
from ..runs import make_config
from ..runs.parallel import train_many
from ..train import PAPER, build_trainer, learning_rate, train_step
from ..train.checkpoint import rng_state
from ..train.fused import build_fused_trainer, fused_batches, fused_step

#: (model, options) timed in eager mode; the last is the wide one.
MEASURED: tuple[tuple[str, dict[str, Any]], ...] = (
    ("resnet20", {}), ("resnet56", {}), ("resnet110", {}),
    ("imagenet-resnet18", {"small_input": True, "shortcut": "A"}),
)
#: How much slower the per-MAC part of a step is in fp32 (TF32 convolutions) than in bf16 on
#: a GPU: a lead (tensor-core rates), corrected by the runs' own times as they finish.
FP32_FACTOR = 2.0
SAFETY = 1.25
#: Start-up of a run's process when it was not measured (spawn, imports, CUDA, data cache).
DEFAULT_STARTUP_S = 20.0
#: runs fused when fused training is measured: IM reports the median of 5 runs
FUSED_MEMBERS = 5


@dataclass(frozen=True)
class Features:
    layers: int  # convolutions, BN layers and linear layers (a proxy for kernel launches)
    gmacs: float  # multiply-adds per 32x32 image, in billions


_FEATURES: dict[str, Features] = {}


def features(model: str, options: dict[str, Any] | None = None) -> Features:
    """Layers and GMACs of a model, counted on the meta device (no weights); cached."""
    key = f"{model}|{sorted((options or {}).items())}"
    if key not in _FEATURES:
        with torch.device("meta"):
            net = build_model(model, **(options or {}))
        macs = [0]

        def hook(mod: nn.Module, _inp: Any, out: torch.Tensor) -> None:
            if isinstance(mod, nn.Conv2d):
                macs[0] += out[0].numel() * mod.in_channels // mod.groups * math.prod(mod.kernel_size)
            else:
                macs[0] += mod.in_features * mod.out_features

        counted = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        handles = [m.register_forward_hook(hook) for m in counted]
        with torch.no_grad():
            net.eval()(torch.zeros(1, 3, 32, 32, device="meta"))
        for h in handles:
            h.remove()
        layers = sum(isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear)) for m in net.modules())
        _FEATURES[key] = Features(layers, macs[0] / 1e9)
    return _FEATURES[key]


@dataclass
class SpeedModel:
    """Projected wall time of runs on the measured device (see the module docstring)."""

    device_type: str
    a: float
    b: float
    k: float
    jobs: int = 1
    slowdown: dict[int, float] = field(default_factory=lambda: {1: 1.0})
    startup_s: float = DEFAULT_STARTUP_S  # a run in its own process (jobs > 1)
    #: fused training (resnetlab.train.fused): whether it pays here, and its measured gain
    #: (images/s of ``fused_members`` runs fused over one run's)
    fuse: bool = False
    fused_members: int = 1
    fused_gain: float = 1.0
    setup_s: float = 2.0  # a run in the window's process (jobs == 1): model, optimizer, data on the device
    ratios: list[float] = field(default_factory=list)

    @property
    def correction(self) -> float:
        """Median of actual/projected of the runs finished so far (1 before any), in [0.5, 4]."""
        return min(4.0, max(0.5, statistics.median(self.ratios))) if self.ratios else 1.0

    def _parts(self, f: Features, batch: int, precision: str) -> tuple[float, float]:
        compute = self.k * batch * f.gmacs
        if self.device_type == "cuda" and precision == "fp32":
            compute *= FP32_FACTOR
        return self.a + self.b * f.layers, compute

    def step_s(self, f: Features, batch: int, precision: str = "auto", jobs: int | None = None) -> float:
        jobs = jobs or self.jobs
        launch, compute = self._parts(f, batch, precision)
        return max((launch + compute) * self.slowdown.get(jobs, float(jobs)), jobs * compute)

    def estimate(self, config: dict[str, Any], start: int = 0) -> float:
        """Seconds the run of ``config`` needs from iteration ``start``, before the safety
        factor and the correction."""
        r = config["recipe"]
        f = features(config["model"], config.get("model_options"))
        its, every = r["iterations"], r["eval_every"]
        evals = its // every - start // every + (1 if its % every else 0)
        n_test = r.get("test_subset") or (5000 if r.get("validation") else 10_000)
        launch, compute = self._parts(f, min(1000, n_test), r.get("precision", "auto"))
        eval_s = math.ceil(n_test / 1000) * (launch + compute) / 3 * self.jobs
        step = self.step_s(f, r["batch_size"], r.get("precision", "auto"))
        return self.start_s + max(0, its - start) * step + evals * eval_s

    @property
    def start_s(self) -> float:
        """What starting a run costs: its own process when several run at once, else its setup."""
        return self.startup_s if self.jobs > 1 else self.setup_s

    def group_estimate(self, estimates: list[float]) -> float:
        """Seconds for runs of one architecture trained fused, before the safety factor and
        the correction: the longest run's, times the number of runs, over the gain measured
        for ``fused_members`` (interpolated linearly from 1 for a smaller group)."""
        n = len(estimates)
        if n == 1:
            return estimates[0]
        span = max(1, self.fused_members - 1)
        gain = 1.0 + (self.fused_gain - 1.0) * min(n - 1, span) / span
        return max(estimates) * n / max(1.0, gain)

    def project(self, config: dict[str, Any], start: int = 0) -> float:
        return self.estimate(config, start) * SAFETY * self.correction

    def observe(self, estimate_s: float, actual_s: float) -> None:
        if estimate_s > 0 and actual_s > 0:
            self.ratios.append(actual_s / estimate_s)

    def to_dict(self) -> dict[str, Any]:
        return {"step_s": "a + b*layers + k*batch*GMACs", "a": self.a, "b": self.b, "k": self.k, "jobs": self.jobs,
                "slowdown": self.slowdown, "startup_s": self.startup_s, "setup_s": self.setup_s, "safety": SAFETY,
                "fp32_factor": FP32_FACTOR, "fuse": self.fuse, "fused_members": self.fused_members,
                "fused_gain": self.fused_gain}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(model: str, options: dict[str, Any], arrays: CifarArrays, device: torch.device, batch: int,
               warmup: int, steps: int) -> dict[str, Any]:
    """Seconds per eager training step of ``model`` at ``batch`` (after ``warmup`` steps)."""
    recipe = replace(PAPER, batch_size=batch)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    t = build_trainer(model, arrays, recipe, model_options=options, seed=0, device=device)
    _sync(device)
    setup_s = time.perf_counter() - t0
    lr = learning_rate(recipe, 0, warmup_end=0)
    acc = torch.zeros((), device=device)
    for it in range(warmup):
        acc += train_step(t, *t.stream.batch(it), lr)[0].float()
    _sync(device)
    t0 = time.perf_counter()
    for it in range(warmup, warmup + steps):
        acc += train_step(t, *t.stream.batch(it), lr)[0].float()
    _sync(device)
    step_s = (time.perf_counter() - t0) / steps
    f = features(model, options)
    row = {"model": model, "options": options, "pipeline": "resnetlab", "mode": "eager", "batch_size": batch,
           "warmup_steps": warmup, "timed_steps": steps, "setup_s": setup_s, "step_ms": step_s * 1e3, "images_per_s": batch / step_s,
           "precision": t.precision, "channels_last": t.channels_last, "layers": f.layers, "gmacs": f.gmacs,
           "mean_loss": acc.item() / (warmup + steps),
           "peak_memory_bytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None}
    del t
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def time_fused(model: str, k: int, arrays: CifarArrays, device: torch.device, batch: int, warmup: int,
               steps: int) -> dict[str, Any]:
    """Seconds per training step of ``k`` runs of ``model`` fused into one net."""
    recipe = replace(PAPER, batch_size=batch)
    members = [build_trainer(model, arrays, recipe, seed=s, device=device) for s in range(k)]
    ft = build_fused_trainer(members, [rng_state(device)] * k, recipe)
    lrs = [learning_rate(recipe, 0, warmup_end=0)] * k
    for it in range(warmup):
        fused_step(ft, *fused_batches(ft, it), lrs)
    _sync(device)
    t0 = time.perf_counter()
    for it in range(warmup, warmup + steps):
        fused_step(ft, *fused_batches(ft, it), lrs)
    _sync(device)
    step_s = (time.perf_counter() - t0) / steps
    row = {"model": model, "members": k, "mode": "fused", "batch_size": batch, "warmup_steps": warmup,
           "timed_steps": steps, "step_ms": step_s * 1e3, "images_per_s": k * batch / step_s,
           "precision": members[0].precision}
    del ft, members
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def fit(rows: list[dict[str, Any]]) -> tuple[float, float, float]:
    """(a, b, k) >= 0 of ``step_s = a + b*layers + k*batch*GMACs``, least squares; a
    coefficient that comes out negative is dropped and the rest refit."""
    x = np.array([[1.0, r["layers"], r["batch_size"] * r["gmacs"]] for r in rows])
    y = np.array([r["step_ms"] / 1e3 for r in rows])
    cols = [0, 1, 2]
    coef = np.zeros(3)
    while cols:
        sol = np.linalg.lstsq(x[:, cols], y, rcond=None)[0]
        if (sol >= 0).all():
            coef[cols] = sol
            break
        cols.pop(int(np.argmin(sol)))
    return float(coef[0]), float(coef[1]), float(coef[2])


def _parallel(j: int, arrays: CifarArrays, data: str | Path | None, device: torch.device, batch: int,
              iterations: int) -> dict[str, Any]:
    """``j`` short ResNet-20 runs at once through train_many (records in a temporary folder)."""
    extra = {"train_subset": 512, "test_subset": 64} if device.type != "cuda" else {"test_subset": 1000}
    configs = [make_config("resnet20", profile="quick", seed=1000 + s, dataset="cifar10", source=arrays.kind,
                           iterations=iterations, milestones=(iterations,), eval_every=iterations,
                           checkpoint_every=iterations, warmup="none", batch_size=batch, **extra) for s in range(j)]
    with tempfile.TemporaryDirectory(prefix="resnetlab-window-measure-") as tmp:
        out = train_many(configs, jobs=j, runs=Path(tmp) / "runs", data=data, device=str(device), progress=False,
                         checkpoints=Path(tmp) / "checkpoints")
    done = [r for r in out if r.status == "complete"]
    if len(done) < j:
        errors = "; ".join(e.message.strip().splitlines()[-1] for e in out.errors) or "runs did not complete"
        return {"jobs": j, "ok": False, "error": errors[:500]}
    agg = sum(r.summary["images_per_s"] for r in done)
    loop_s = max(r.summary["wall_time_s"] for r in done)
    return {"jobs": j, "ok": True, "iterations": iterations, "batch_size": batch,
            "images_per_s_aggregate": agg, "images_per_s_each": [r.summary["images_per_s"] for r in done],
            "images_per_s_wall": out.images_per_s, "wall_s": out.wall_s, "startup_s": max(0.0, out.wall_s - loop_s)}


def _measure_fusion(speed: SpeedModel, solo: dict[str, Any], arrays: CifarArrays, device: torch.device,
                    deadline: float, timing: tuple[int, int], bench: dict[str, Any], log: Callable[[str], None]) -> None:
    """Time ResNet-20 x FUSED_MEMBERS fused; fuse (and train one net at a time) when that beats
    the best number of runs at once by 10%."""
    if deadline - time.monotonic() < DEFAULT_STARTUP_S / 2:
        log("measure: too little time left to time fused training")
        return
    try:
        row = time_fused("resnet20", FUSED_MEMBERS, arrays, device, solo["batch_size"], *timing)
    except Exception as exc:  # noqa: BLE001 - fusion then simply is not used
        log(f"measure: fused training failed: {type(exc).__name__}: {exc}")
        return
    bench["fused"] = row
    speed.fused_members, speed.fused_gain = FUSED_MEMBERS, row["images_per_s"] / solo["images_per_s"]
    processes = speed.jobs / speed.slowdown.get(speed.jobs, float(speed.jobs))
    speed.fuse = speed.fused_gain >= 1.1 * processes
    if speed.fuse:
        speed.jobs = 1
    log(f"measure: resnet20 x{FUSED_MEMBERS} fused: {row['images_per_s']:.0f} images/s, {speed.fused_gain:.2f}x one "
        f"run ({processes:.2f}x with processes): {'fusing' if speed.fuse else 'not fusing'}")


def measure(arrays: CifarArrays, device: torch.device, *, data: str | Path | None, deadline: float,
            measure_jobs: tuple[int, ...], force_jobs: int | None, log: Callable[[str], None]
            ) -> tuple[SpeedModel | None, dict[str, Any]]:
    """The Measure phase, ending by ``deadline`` (``time.monotonic()``): the speed model (None
    if too little was measured to project anything) and the bench JSON's content."""
    cuda = device.type == "cuda"
    batch, warmup, steps = (128, 10, 30) if cuda else (8, 1, 2)
    bench: dict[str, Any] = {"results": [], "parallel": [], "not_measured": {
        "cuda_graph": "no whole-step CUDA graph path yet"}}
    for model, options in MEASURED:
        if time.monotonic() > deadline:
            log(f"measure: out of time, {model} not timed")
            continue
        try:
            row = time_steps(model, options, arrays, device, batch, warmup, steps)
        except Exception as exc:  # noqa: BLE001 - one net failing (out of memory, say) leaves the others
            log(f"measure: {model} failed: {type(exc).__name__}: {exc}")
            continue
        bench["results"].append(row)
        log(f"measure: {model:18} eager, batch {batch}: {row['step_ms']:8.2f} ms/step, "
            f"{row['images_per_s']:9.0f} images/s ({row['precision']})")
    rows = bench["results"]
    if len(rows) < 2:
        log("measure: fewer than two nets timed: no projection possible, nothing will be started")
        return None, bench
    speed = SpeedModel(device.type, *fit(rows), setup_s=1.0 + max(r["setup_s"] for r in rows))
    solo = next((r for r in rows if r["model"] == "resnet20"), None)
    if solo is not None:
        iterations = max(50, min(3000, round(4.0 / (solo["step_ms"] / 1e3)))) if cuda else 4  # ~4 s of steps
        startups = []
        for j in measure_jobs:
            left = deadline - time.monotonic()
            need = DEFAULT_STARTUP_S if cuda else DEFAULT_STARTUP_S / 2
            if left < need:
                log(f"measure: {left:.0f} s left, too little for {j} runs at once through train_many")
                continue
            res = _parallel(j, arrays, data, device, solo["batch_size"], iterations)
            bench["parallel"].append(res)
            if not res["ok"]:
                log(f"measure: {j} runs at once failed: {res['error']}")
                continue
            speed.slowdown[j] = max(1.0, j * solo["images_per_s"] / res["images_per_s_aggregate"])
            startups.append(res["startup_s"])
            log(f"measure: {j} runs at once: {res['images_per_s_aggregate']:.0f} images/s together "
                f"(1 run: {solo['images_per_s']:.0f}); process start-up {res['startup_s']:.1f} s")
        if startups:
            speed.startup_s = max(startups)
        best = 1
        for j in sorted(speed.slowdown):
            if j / speed.slowdown[j] >= 1.1 * best / speed.slowdown[best]:
                best = j
        speed.jobs = best
        _measure_fusion(speed, solo, arrays, device, deadline, (warmup, steps), bench, log)
    if force_jobs:
        speed.jobs, speed.fuse = force_jobs, False
    bench["fit"] = speed.to_dict()
    log(f"measure: step = {speed.a * 1e3:.2f} ms + {speed.b * 1e3:.4f} ms/layer + {speed.k * 1e3:.4f} ms/(image*GMAC); "
        f"{speed.jobs} run(s) at once; {speed.start_s:.1f} s to start a run")
    return speed, bench


__all__ = ["FP32_FACTOR", "Features", "MEASURED", "SAFETY", "SpeedModel", "features", "fit", "measure", "time_steps"]
