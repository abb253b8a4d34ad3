"""Train several runs at once on one device: ``reproduce --jobs N``.

Each run trains in its own process (``spawn`` start method, so no CUDA state is inherited):
it loads the data itself (from the decoded cache, which the parent builds once beforehand;
on a GPU each process therefore holds its own ~180 MB copy of CIFAR as uint8), calls
:func:`resnetlab.runs.get_or_train` and exits. At most ``jobs`` processes live at a time;
a finished process makes room for the next config.

* Runs already recorded are read, not retrained, and start no process.
* A run that diverges is *recorded* as failed by the trainer, like any other run.
* A run whose process crashes (an exception, an out-of-memory kill, a segfault) is reported
  (``TrainMany.errors``) and does not stop the others; its checkpoint, if any, stays, so the
  next call resumes it.
* Ctrl-C (KeyboardInterrupt) stops every run: the children receive the interrupt, the parent
  waits briefly and then terminates what is left, and re-raises. Each run keeps its last
  periodic checkpoint (``recipe.checkpoint_every``), so calling again resumes all of them.

Why processes, and not CUDA streams in one process: a small CIFAR ResNet at batch 128 is
too small to fill an H100 (a 16-channel 32x32 convolution over 128 images is a few
microseconds of GPU work), so a single run is bound by the CPU that launches its kernels.
Several processes each launch their own kernels from their own CPU core; the GPU
time-slices between their contexts, filling the gaps that one launcher leaves. Streams in
one Python process would share one launching thread (and the GIL) and gain little. CUDA MPS
(``nvidia-cuda-mps-control -d`` before starting) lets kernels of different processes run
*concurrently* instead of time-sliced and may add more; it is optional and needs no code
change. What to measure on an H100 (see benchmarks/README.md): aggregate images/s of the
nine R-Fig. 6 runs for ``--jobs`` 1, 2, 3, 4, 6, 9, with and without MPS, and the peak memory
per process (``nvidia-smi``).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .config import describe, run_id
from .execute import checkpoint_path
from .records import Record, RecordError, load_record, resolve_runs_dir

#: seconds the children get to stop on their own after Ctrl-C before they are terminated
INTERRUPT_GRACE_S = 10.0


@dataclass
class RunError:
    """A run whose process crashed (not a diverged run: those are recorded as failed)."""

    config: dict[str, Any]
    run_id: str
    message: str
    exitcode: int | None


class TrainMany(list):
    """The list of records :func:`train_many` returns, in the order of the configs, plus the
    call's aggregate figures. A run whose process crashed has a placeholder :class:`Record`
    with status "error" (nothing is written for it) and an entry in :attr:`errors`."""

    wall_s: float = 0.0
    #: images trained in this call (runs already recorded count zero)
    images: int = 0
    trained: int = 0
    skipped: int = 0
    errors: list[RunError]

    @property
    def images_per_s(self) -> float:
        return self.images / self.wall_s if self.wall_s > 0 else 0.0


def _child(config: dict[str, Any], runs: str, data: str | None, device: str | None, save_weights: bool,
           threads: int | None, results: Any, checkpoints: str | None = None) -> None:
    """The body of one run's process."""
    rid = run_id(config)
    try:
        import torch

        if threads:
            torch.set_num_threads(threads)
        from ..data import load_cifar
        from .execute import get_or_train

        arrays = load_cifar(config["dataset"], data, progress=False)
        before = _trained_iterations(checkpoint_path(config, runs, checkpoints))
        rec = get_or_train(config, runs=runs, dataset=arrays, device=device, save_weights=save_weights,
                           progress=False, checkpoints=checkpoints)
        done = (rec.summary.get("iterations") or 0) - before
        results.put(("ok", rid, rec.status, max(0, done) * config["recipe"]["batch_size"], None))
    except KeyboardInterrupt:
        results.put(("interrupted", rid, None, 0, None))
    except BaseException as exc:  # report everything; the parent carries on with the other runs
        results.put(("error", rid, None, 0, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
        raise SystemExit(1)


def _trained_iterations(ckpt: Path) -> int:
    """Iterations a resumed run already had (from its checkpoint), so that the aggregate
    throughput counts only the work of this call."""
    if not ckpt.exists():
        return 0
    try:
        import torch

        return int(torch.load(ckpt, map_location="cpu", weights_only=True).get("iteration", 0))
    except Exception:
        return 0


def _threads_per_job(device: str | None, jobs: int) -> int | None:
    """On a CPU the jobs share the cores: give each its share so they do not oversubscribe."""
    import torch

    on_cpu = (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cpu")
    if not on_cpu:
        return 1 if jobs > 1 else None  # the GPU does the work; one host thread each is plenty
    return max(1, (os.cpu_count() or 1) // jobs)


def train_many(configs: Sequence[dict[str, Any]], *, jobs: int, runs: str | Path | None = None,
               data: str | Path | None = None, device: str | None = None,
               save_weights: bool | Sequence[bool] | None = None, progress: bool = True,
               checkpoints: str | Path | None = None) -> TrainMany:
    """Train ``configs`` with up to ``jobs`` runs at once on ``device`` (see the module
    docstring); return their records in order, with ``wall_s``, ``images`` and
    ``images_per_s`` (aggregate throughput of this call) and ``errors``.

    ``save_weights``: one bool for all, or one per config."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    configs = list(configs)
    if save_weights is None or isinstance(save_weights, bool):
        weights = [bool(save_weights)] * len(configs)
    else:
        weights = [bool(w) for w in save_weights]
        if len(weights) != len(configs):
            raise ValueError(f"save_weights has {len(weights)} entries for {len(configs)} configs")
    root = resolve_runs_dir(runs)
    out = TrainMany()
    out.errors = []
    t_start = time.perf_counter()

    records: dict[int, Record] = {}
    todo: list[int] = []
    seen_ids: dict[str, int] = {}
    for i, config in enumerate(configs):
        rid = run_id(config)
        try:
            records[i] = load_record(root / rid)
            continue
        except RecordError:
            pass
        if rid in seen_ids:  # the same config twice: train it once
            continue
        seen_ids[rid] = i
        todo.append(i)
    out.skipped = len(configs) - len(todo)

    if todo:
        from ..data import load_cifar

        # decode (and cache) each dataset once here, so the children only read the cache
        for name in sorted({configs[i]["dataset"] for i in todo}):
            load_cifar(name, data, progress=progress)
        _run_processes(configs, todo, weights, root, data, device, jobs, out, progress, checkpoints)

    for i, config in enumerate(configs):
        if i in records:
            continue
        rid = run_id(config)
        try:
            records[i] = load_record(root / rid)
        except RecordError:
            err = next((e for e in out.errors if e.run_id == rid), None)
            summary = {"status": "error", "failure_reason": err.message if err else "not recorded"}
            records[i] = Record(root / rid, config, summary)
    out.extend(records[i] for i in range(len(configs)))
    out.wall_s = time.perf_counter() - t_start
    if progress:
        failed = sum(r.failed for r in out)
        print(f"train_many: {out.trained} trained, {out.skipped} already recorded, {failed} failed, "
              f"{len(out.errors)} crashed; {out.images} images in {out.wall_s:.1f} s = "
              f"{out.images_per_s:.0f} images/s aggregate ({jobs} jobs)", file=sys.stderr)
    return out


def _run_processes(configs: list[dict[str, Any]], todo: list[int], weights: list[bool], root: Path,
                   data: str | Path | None, device: str | None, jobs: int, out: TrainMany,
                   progress: bool, checkpoints: str | Path | None = None) -> None:
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    threads = _threads_per_job(device, min(jobs, len(todo)))
    pending = list(todo)
    live: dict[str, tuple[Any, int]] = {}  # run id -> (process, config index)
    reported: dict[str, tuple] = {}
    done = 0

    def log(text: str) -> None:
        if progress:
            print(text, file=sys.stderr, flush=True)

    def drain(timeout: float) -> None:
        try:
            msg = results.get(timeout=timeout)
        except queue.Empty:
            return
        reported[msg[1]] = msg
        while True:
            try:
                msg = results.get_nowait()
            except queue.Empty:
                return
            reported[msg[1]] = msg

    try:
        while pending or live:
            while pending and len(live) < jobs:
                i = pending.pop(0)
                rid = run_id(configs[i])
                p = ctx.Process(target=_child, name=f"resnetlab-{rid}",
                                args=(configs[i], str(root), None if data is None else str(data), device,
                                      weights[i], threads, results,
                                      None if checkpoints is None else str(checkpoints)))
                p.start()
                live[rid] = (p, i)
                log(f"[start] {describe(configs[i])} seed {configs[i]['seed']} ({rid}), pid {p.pid}")
            drain(0.5)
            for rid, (p, i) in list(live.items()):
                if p.is_alive() and rid not in reported:
                    continue
                p.join(timeout=30 if rid in reported else 0)
                if p.is_alive():
                    continue
                del live[rid]
                drain(0.1)  # a message written just before exiting
                msg = reported.get(rid)
                done += 1
                if msg and msg[0] == "ok":
                    out.trained += 1
                    out.images += msg[3]
                    try:
                        rec = load_record(root / rid)
                        err = rec.summary.get("final_test_error")
                        log(f"[{done}/{len(todo)}] {rid}: {rec.status}, test error "
                            f"{'n/a' if err is None else f'{err:.2f}%'}"
                            + (f" ({rec.summary.get('failure_reason')})" if rec.failed else ""))
                    except RecordError:
                        log(f"[{done}/{len(todo)}] {rid}: {msg[2]}")
                else:
                    text = msg[4] if msg and msg[4] else f"process exited with code {p.exitcode} without a report"
                    out.errors.append(RunError(configs[i], rid, text, p.exitcode))
                    log(f"[{done}/{len(todo)}] {rid}: CRASHED (exit code {p.exitcode}); the other runs go on\n"
                        + "\n".join("    " + line for line in text.strip().splitlines()[-6:]))
    except KeyboardInterrupt:
        log(f"interrupted: stopping {len(live)} run(s); their last checkpoints stay, run again to resume")
        _stop(live)
        raise
    finally:
        results.close()


def _stop(live: dict[str, tuple[Any, int]]) -> None:
    import signal

    procs = [p for p, _ in live.values()]
    for p in procs:  # the terminal's Ctrl-C reached them too; this covers a KeyboardInterrupt from elsewhere
        if p.is_alive() and p.pid is not None:
            try:
                os.kill(p.pid, signal.SIGINT)
            except OSError:
                pass
    deadline = time.monotonic() + INTERRUPT_GRACE_S
    for p in procs:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.terminate()
            p.join(5)


__all__ = ["train_many", "TrainMany", "RunError"]
