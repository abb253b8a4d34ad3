"""Train several runs at once on one device: ``reproduce --jobs N``.

Each run trains in its own process (``spawn`` start method, so no CUDA state is inherited):
it loads the data itself (from the decoded cache, which the parent builds once beforehand;
on a GPU each process therefore holds its own ~180 MB copy of CIFAR as uint8), calls
:func:`resnetlab.runs.get_or_train` and exits. At most ``jobs`` processes live at a time;
a finished process makes room for the next config.

* Runs that differ only in seed and initial values train as one fused net in one process
  when ``fuse`` says so ("auto": on CUDA; :mod:`.fusion`), each recorded as alone.
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
from .execute import checkpoint_iteration, checkpoint_path
from .fusion import MAX_MEMBERS, fusion_groups, fusion_wanted
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


def _child(configs: list[dict[str, Any]], runs: str, data: str | None, device: str | None,
           save_weights: list[bool], threads: int | None, results: Any, checkpoints: str | None = None) -> None:
    """The body of one process: one run, or a group of runs trained fused
    (:func:`~.fusion.get_or_train_group`); one report per run."""
    rids = [run_id(c) for c in configs]
    try:
        import torch

        if threads:
            torch.set_num_threads(threads)
        from ..data import load_cifar
        from .execute import get_or_train
        from .fusion import get_or_train_group

        arrays = load_cifar(configs[0]["dataset"], data, progress=False)
        before = [checkpoint_iteration(checkpoint_path(c, runs, checkpoints)) for c in configs]
        if len(configs) == 1:
            recs = [get_or_train(configs[0], runs=runs, dataset=arrays, device=device, save_weights=save_weights[0],
                                 progress=False, checkpoints=checkpoints)]
        else:
            recs = get_or_train_group(configs, runs=runs, dataset=arrays, device=device, save_weights=save_weights,
                                      progress=False, checkpoints=checkpoints)
        for rid, rec, start, config in zip(rids, recs, before, configs):
            done = (rec.summary.get("iterations") or 0) - start
            results.put(("ok", rid, rec.status, max(0, done) * config["recipe"]["batch_size"], None))
    except KeyboardInterrupt:
        for rid in rids:
            results.put(("interrupted", rid, None, 0, None))
    except BaseException as exc:  # report everything; the parent carries on with the other runs
        for rid in rids:
            results.put(("error", rid, None, 0, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
        raise SystemExit(1)


def _threads_per_job(device: str | None, jobs: int) -> int | None:
    """On a CPU the jobs share the cores: give each its share so they do not oversubscribe."""
    import torch

    on_cpu = (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cpu")
    if not on_cpu:
        return 1 if jobs > 1 else None  # the GPU does the work; one host thread each is plenty
    return max(1, (os.cpu_count() or 1) // jobs)


def _weights_per_config(save_weights: bool | Sequence[bool] | None, n: int) -> list[bool]:
    if save_weights is None or isinstance(save_weights, bool):
        return [bool(save_weights)] * n
    weights = [bool(w) for w in save_weights]
    if len(weights) != n:
        raise ValueError(f"save_weights has {len(weights)} entries for {n} configs")
    return weights


def _split_recorded(configs: list[dict[str, Any]], root: Path) -> tuple[dict[int, Record], list[int]]:
    """The configs already recorded (read, not retrained) and the indices still to train
    (a config given twice trains once)."""
    records: dict[int, Record] = {}
    todo: list[int] = []
    seen: set[str] = set()
    for i, config in enumerate(configs):
        rid = run_id(config)
        try:
            records[i] = load_record(root / rid)
            continue
        except RecordError:
            pass
        if rid not in seen:
            seen.add(rid)
            todo.append(i)
    return records, todo


def train_many(configs: Sequence[dict[str, Any]], *, jobs: int, runs: str | Path | None = None,
               data: str | Path | None = None, device: str | None = None,
               save_weights: bool | Sequence[bool] | None = None, progress: bool = True,
               checkpoints: str | Path | None = None, fuse: str | bool = "auto",
               max_fused: int = MAX_MEMBERS) -> TrainMany:
    """Train ``configs`` with up to ``jobs`` processes at once on ``device`` (see the module
    docstring); return their records in order, with ``wall_s``, ``images`` and
    ``images_per_s`` (aggregate throughput of this call) and ``errors``.

    ``save_weights``: one bool for all, or one per config. ``fuse`` ("auto": on CUDA): runs
    that differ only in seed and initial values train as one fused net, up to ``max_fused``
    per net, one net per process (:mod:`.fusion`)."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    configs = list(configs)
    weights = _weights_per_config(save_weights, len(configs))
    root = resolve_runs_dir(runs)
    out = TrainMany()
    out.errors = []
    t_start = time.perf_counter()
    records, todo = _split_recorded(configs, root)
    out.skipped = len(configs) - len(todo)
    if todo:
        from ..data import load_cifar

        # decode (and cache) each dataset once here, so the children only read the cache
        for name in sorted({configs[i]["dataset"] for i in todo}):
            load_cifar(name, data, progress=progress)
        if fusion_wanted(fuse, device):
            groups = [[todo[j] for j in g] for g in fusion_groups([configs[i] for i in todo], max_fused)]
        else:
            groups = [[i] for i in todo]
        _Pool(configs, weights, root, data, device, jobs, out, progress, checkpoints).run(groups)
    for i, config in enumerate(configs):
        if i not in records:
            records[i] = _record_or_error(root / run_id(config), config, out.errors)
    out.extend(records[i] for i in range(len(configs)))
    out.wall_s = time.perf_counter() - t_start
    if progress:
        failed = sum(r.failed for r in out)
        print(f"train_many: {out.trained} trained, {out.skipped} already recorded, {failed} failed, "
              f"{len(out.errors)} crashed; {out.images} images in {out.wall_s:.1f} s = "
              f"{out.images_per_s:.0f} images/s aggregate ({jobs} jobs)", file=sys.stderr)
    return out


def _record_or_error(path: Path, config: dict[str, Any], errors: list[RunError]) -> Record:
    try:
        return load_record(path)
    except RecordError:
        err = next((e for e in errors if e.run_id == path.name), None)
        return Record(path, config, {"status": "error", "failure_reason": err.message if err else "not recorded"})


class _Pool:
    """At most ``jobs`` child processes at a time, each training one config."""

    def __init__(self, configs: list[dict[str, Any]], weights: list[bool], root: Path, data: str | Path | None,
                 device: str | None, jobs: int, out: TrainMany, progress: bool,
                 checkpoints: str | Path | None) -> None:
        self.configs, self.weights, self.root, self.device, self.jobs = configs, weights, root, device, jobs
        self.data = None if data is None else str(data)
        self.checkpoints = None if checkpoints is None else str(checkpoints)
        self.out, self.progress = out, progress
        self.ctx = mp.get_context("spawn")
        self.results = self.ctx.Queue()
        self.live: dict[str, tuple[Any, list[int]]] = {}  # first run id -> (process, config indices)
        self.reported: dict[str, tuple] = {}
        self.done = self.total = 0
        self.threads: int | None = None

    def log(self, text: str) -> None:
        if self.progress:
            print(text, file=sys.stderr, flush=True)

    def drain(self, timeout: float) -> None:
        try:
            msg = self.results.get(timeout=timeout)
        except queue.Empty:
            return
        while True:
            self.reported[msg[1]] = msg
            try:
                msg = self.results.get_nowait()
            except queue.Empty:
                return

    def start(self, group: list[int]) -> None:
        configs = [self.configs[i] for i in group]
        rids = [run_id(c) for c in configs]
        p = self.ctx.Process(target=_child, name=f"resnetlab-{rids[0]}",
                             args=(configs, str(self.root), self.data, self.device, [self.weights[i] for i in group],
                                   self.threads, self.results, self.checkpoints))
        p.start()
        self.live[rids[0]] = (p, group)
        what = f"{describe(configs[0])} seed {configs[0]['seed']} ({rids[0]})" if len(group) == 1 else \
            f"{describe(configs[0])} seeds {','.join(str(c['seed']) for c in configs)} fused ({len(group)} runs)"
        self.log(f"[start] {what}, pid {p.pid}")

    def run(self, groups: list[list[int]]) -> None:
        self.threads = _threads_per_job(self.device, min(self.jobs, len(groups)))
        pending, self.total = list(groups), sum(len(g) for g in groups)
        try:
            while pending or self.live:
                while pending and len(self.live) < self.jobs:
                    self.start(pending.pop(0))
                self.drain(0.5)
                for key, (p, group) in list(self.live.items()):
                    reported = all(run_id(self.configs[i]) in self.reported for i in group)
                    if p.is_alive() and not reported:
                        continue
                    p.join(timeout=30 if reported else 0)
                    if not p.is_alive():
                        del self.live[key]
                        self.drain(0.1)  # messages written just before exiting
                        for i in group:
                            self.finish(run_id(self.configs[i]), p, i)
        except KeyboardInterrupt:
            self.log(f"interrupted: stopping {len(self.live)} process(es); their last checkpoints stay, run again "
                     f"to resume")
            _stop(self.live)
            raise
        finally:
            self.results.close()

    def finish(self, rid: str, p: Any, i: int) -> None:
        """Account for a run whose process has exited: a record, or a crash the others survive."""
        msg = self.reported.get(rid)
        self.done += 1
        where = f"[{self.done}/{self.total}] {rid}"
        if msg and msg[0] == "ok":
            self.out.trained += 1
            self.out.images += msg[3]
            try:
                rec = load_record(self.root / rid)
                err = rec.summary.get("final_test_error")
                self.log(f"{where}: {rec.status}, test error {'n/a' if err is None else f'{err:.2f}%'}"
                         + (f" ({rec.summary.get('failure_reason')})" if rec.failed else ""))
            except RecordError:
                self.log(f"{where}: {msg[2]}")
            return
        text = msg[4] if msg and msg[4] else f"process exited with code {p.exitcode} without a report"
        self.out.errors.append(RunError(self.configs[i], rid, text, p.exitcode))
        self.log(f"{where}: CRASHED (exit code {p.exitcode}); the other runs go on\n"
                 + "\n".join("    " + line for line in text.strip().splitlines()[-6:]))


def _stop(live: dict[str, tuple[Any, list[int]]]) -> None:
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
