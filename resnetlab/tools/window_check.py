"""The Check phase of ``python -m resnetlab window``: what the machine is, and whether the
CUDA path does what it must before any time is spent training on it.

* the device, torch, CUDA, cuDNN and the driver (``nvidia-smi``), the TF32 switches;
* CUDA only: that a training step issues no host synchronisation (sync-debug mode "error",
  within one epoch), that an epoch boundary does not either (the permutations are on the
  device ahead of use, :class:`resnetlab.data.BatchStream`), and that cuDNN's autotuner is on.

Fused-vs-separate equivalence and the whole-step CUDA graph are reported as "n/a": neither
exists in the trainer yet.
"""

from __future__ import annotations

import os
import platform
import subprocess
import traceback
from dataclasses import replace
from typing import Any

import torch

from ..data import CifarArrays
from ..data.device import PERM_BLOCK_EPOCHS
from ..testing import CIFAR10_CLASSES, fabricate_images
from ..train import PAPER, build_trainer, device_name, learning_rate, train_step

NOT_YET = {"fused_vs_separate": "n/a: there is no fused training path yet",
           "cuda_graph": "n/a: there is no whole-step CUDA graph path (eager only)"}


def _driver() -> dict[str, Any]:
    """What ``nvidia-smi`` says of the GPU (driver, name, memory), or why it said nothing."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version,name,memory.total,clocks.max.sm",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=15, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        return {"nvidia_smi": f"unavailable ({type(exc).__name__})"}
    first = out.stdout.strip().splitlines()[0] if out.stdout.strip() else ""
    keys = ("driver", "gpu", "memory_total", "max_sm_clock")
    return dict(zip(keys, (v.strip() for v in first.split(","))))


def environment(device: torch.device) -> dict[str, Any]:
    """Device, torch, CUDA, cuDNN and driver, as one dict for the window's report."""
    env: dict[str, Any] = {
        "device": device_name(device), "device_type": device.type, "torch": torch.__version__,
        "python": platform.python_version(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update({
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "capability": f"{props.major}.{props.minor}", "multiprocessors": props.multi_processor_count,
            "memory_gib": round(props.total_memory / 2**30, 1), "bf16": torch.cuda.is_bf16_supported(),
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
            **_driver(),
        })
    return env


def _fake_arrays(n: int) -> CifarArrays:
    x, y = fabricate_images(n, 10)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    return CifarArrays("cifar10", "fabricated", list(CIFAR10_CLASSES), xt, yt, xt[:64], yt[:64])


def _no_sync(fn: Any) -> dict[str, Any]:
    """Run ``fn`` with CUDA's sync-debug mode "error": ``ok`` unless it synchronised."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        fn()
        torch.cuda.set_sync_debug_mode("default")
        torch.cuda.synchronize()
        return {"ok": True}
    except RuntimeError as exc:
        return {"ok": False, "detail": str(exc).strip().splitlines()[0][:300]}
    finally:
        torch.cuda.set_sync_debug_mode("default")


def cuda_checks(device: torch.device) -> dict[str, Any]:
    """The CUDA-only checks (see the module docstring); each is ``{"ok": bool, ...}``."""
    out: dict[str, Any] = {}
    try:
        _step_checks(device, out)
    except Exception as exc:  # noqa: BLE001 - a broken check is a finding, not the end of the window
        out["error"] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}"
    torch.cuda.empty_cache()
    out.update(NOT_YET)
    return out


def _step_checks(device: torch.device, out: dict[str, Any]) -> None:
    batch, per_epoch = 128, 8
    recipe = replace(PAPER, batch_size=batch)
    t = build_trainer("resnet8", _fake_arrays(batch * per_epoch), recipe, device=device)
    out["cudnn_benchmark"] = {"ok": bool(torch.backends.cudnn.benchmark)}

    def steps(its: range) -> None:
        for it in its:
            x, y = t.stream.batch(it)
            _, logits = train_step(t, x, y, learning_rate(recipe, it, warmup_end=0))
            (logits.argmax(1) != y).sum()

    steps(range(2))  # the first steps allocate state (momentum buffers, cuDNN plans)
    out["no_host_sync_in_step"] = _no_sync(lambda: steps(range(2, per_epoch - 1)))  # within epoch 0
    last = PERM_BLOCK_EPOCHS * per_epoch  # the first batch of the second block, which queues the third
    out["no_host_sync_at_epoch_boundary"] = _no_sync(
        lambda: [t.stream.batch(it) for it in (per_epoch - 1, per_epoch, per_epoch + 1, last, last + 1)])


def check(device: torch.device) -> dict[str, Any]:
    """The whole Check phase: ``{"environment": ..., "cuda": ... | None, "ok": bool}``; ``ok``
    is false only when a CUDA check failed (the window goes on and says so)."""
    env = environment(device)
    cuda = cuda_checks(device) if device.type == "cuda" else None
    ok = cuda is None or ("error" not in cuda and all(v.get("ok", True) for v in cuda.values() if isinstance(v, dict)))
    return {"environment": env, "cuda": cuda, "ok": ok}


__all__ = ["check", "cuda_checks", "environment"]
