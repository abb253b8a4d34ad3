"""The Train phase of ``python -m resnetlab window``: the missing runs, in priority order,
as many at once as the measurement says pays, none started that the speed model projects
cannot finish by the deadline.

Every run goes through :func:`resnetlab.runs.get_or_train`, so it is recorded exactly as any
other run and resumes from its checkpoint if it has one. When a slot frees, the first queued
run that fits in the time left starts. At the deadline (or on SIGINT/SIGTERM to the window)
the runs still going are interrupted; each keeps its last periodic checkpoint.

* Several at once: each run in its own process (``spawn``, as :mod:`resnetlab.runs.parallel`
  does); a crash stops only that run.
* One at a time: in the window's own process, which saves each run the start of a process
  (seconds of imports and CUDA set-up); an exception ends only that run, and the deadline is
  an interval timer (``SIGALRM``). When the measurement says fusion pays (``speed.fuse``),
  "one" is one fused net of the next runs that differ only in seed or gate bias
  (:mod:`resnetlab.runs.fusion`), each recorded as alone.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_mod
import signal
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from ..runs import checkpoint_path, get_or_train, load_cifar, load_record, run_id
from ..runs.fusion import fusion_key, get_or_train_group
from ..runs.records import RecordError
from .window_measure import SpeedModel


@dataclass
class Job:
    """One run the window may train."""

    config: dict[str, Any]
    weights: bool
    experiment: str
    profile: str
    start: int = 0  # iterations its checkpoint already holds

    @property
    def rid(self) -> str:
        return run_id(self.config)


@dataclass
class Outcome:
    job: Job
    status: str  # complete | failed (diverged; recorded) | stopped (checkpoint kept) | crashed
    projected_s: float
    actual_s: float
    detail: str | None = None
    record: Any = None


class Queue:
    """The queued jobs, drawn from ``source`` only as far as a scan needs (building a deep
    net's config costs seconds), in order."""

    def __init__(self, source: Iterator[Job]) -> None:
        self._source, self.items, self.drawn_all = source, [], False

    def scan(self) -> Iterator[Job]:
        i = 0
        while True:
            if i == len(self.items):
                if self.drawn_all:
                    return
                nxt = next(self._source, None)
                if nxt is None:
                    self.drawn_all = True
                    return
                self.items.append(nxt)
            yield self.items[i]
            i += 1

    def take(self, job: Job) -> None:
        self.items.remove(job)


def _child(config: dict[str, Any], runs: str, data: str | None, device: str, weights: bool, threads: int,
           checkpoints: str, results: Any) -> None:
    rid = run_id(config)
    try:
        import torch

        torch.set_num_threads(threads)
        from ..data import load_cifar
        from ..runs import get_or_train

        arrays = load_cifar(config["dataset"], data, progress=False)
        rec = get_or_train(config, runs=runs, dataset=arrays, device=device, save_weights=weights,
                           progress=False, checkpoints=checkpoints)
        results.put(("ok", rid, rec.status))
    except KeyboardInterrupt:
        results.put(("stopped", rid, None))
    except BaseException as exc:  # noqa: BLE001 - reported to the window, which goes on
        results.put(("error", rid, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}"))
        raise SystemExit(1)


@dataclass
class Trainer:
    """Runs the Train phase (see the module docstring)."""

    speed: SpeedModel
    runs: Path
    data: str | None
    device: str
    checkpoints: Path
    deadline: float  # time.monotonic()
    log: Callable[[str], None]
    stop_requested: Callable[[], bool] = lambda: False
    max_runs: int | None = None
    grace_s: float = 10.0
    threads: int | None = None  # CPU: torch threads per run (default: the cores shared among the jobs)
    arrays: dict[str, Any] = field(default_factory=dict)  # datasets already loaded, by name
    outcomes: list[Outcome] = field(default_factory=list)

    def _threads(self) -> int:
        if self.device != "cpu":
            return 1  # the GPU does the work; one host thread each is plenty
        return self.threads or max(1, (os.cpu_count() or 1) // self.speed.jobs)

    def _pick(self, q: Queue, now: float) -> tuple[Job, float, float] | None:
        if now + self.speed.start_s * self._factor() > self.deadline:
            return None  # not even a process start fits: no need to cost the rest of the queue
        for job in q.scan():
            try:
                est = self.speed.estimate(job.config, job.start)
            except Exception as exc:  # noqa: BLE001 - a net the model cannot cost is left out, said why
                self.log(f"train: cannot project {job.rid} ({type(exc).__name__}: {exc}); left out")
                q.take(job)
                return self._pick(q, now)
            if now + est * self._factor() <= self.deadline:
                return job, est, est * self._factor()
        return None

    def _factor(self) -> float:
        from .window_measure import SAFETY

        return SAFETY * self.speed.correction

    def run(self, q: Queue) -> list[Outcome]:
        """Train from ``q`` until it is empty, nothing left fits, or the deadline."""
        return self._run_here(q) if self.speed.jobs == 1 else self._run_processes(q)

    def _started(self, job: Job, projected: float, now: float) -> None:
        self.log(f"train: start {job.rid} ({job.experiment} {job.profile}"
                 + (f", resuming at {job.start}" if job.start else "")
                 + f"): projected {projected:.0f} s, {self.deadline - now:.0f} s left")

    def _run_here(self, q: Queue) -> list[Outcome]:
        started = 0
        while self.max_runs is None or started < self.max_runs:
            now = time.monotonic()
            if self.stop_requested() or now >= self.deadline:
                break
            picked = self._pick(q, now)
            if picked is None:
                break
            job, est, projected = picked
            room = None if self.max_runs is None else self.max_runs - started
            group, est, projected = self._group(q, job, est, projected, now, room)
            for j in group:
                q.take(j)
            started += len(group)
            for j in group:
                self._started(j, projected, now)
            t0 = time.monotonic()
            try:
                with _until(self.deadline):
                    if len(group) == 1:
                        get_or_train(job.config, runs=self.runs, dataset=self._arrays(job.config), device=self.device,
                                     save_weights=job.weights, progress=False, checkpoints=self.checkpoints)
                    else:
                        get_or_train_group([j.config for j in group], runs=self.runs,
                                           dataset=self._arrays(job.config), device=self.device,
                                           save_weights=[j.weights for j in group], progress=False,
                                           checkpoints=self.checkpoints)
            except _Stop as stop:
                for j in group:
                    self._stopped(j, time.monotonic() - t0, projected)
                self.log(f"train: stopped by {stop}")
                break
            except Exception as exc:  # noqa: BLE001 - one run's failure is reported; the window goes on
                msg = ("error", job.rid, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}")
                for j in group:
                    self._finish(j, (*msg[:1], j.rid, msg[2]), None, time.monotonic() - t0, est, projected)
                continue
            for i, j in enumerate(group):
                self._finish(j, None, 0, time.monotonic() - t0, est, projected, observe=i == 0)
        return self.outcomes

    def _group(self, q: Queue, job: Job, est: float, projected: float, now: float,
               room: int | None = None) -> tuple[list[Job], float, float]:
        """``job`` and, when fusion pays here (``speed.fuse``), the next queued runs it fuses with
        (same fusion key and resume point, up to ``speed.fused_members``) that still fit by the
        deadline: the group, its estimate and its projection."""
        if not self.speed.fuse:
            return [job], est, projected
        key, group, ests = fusion_key(job.config), [job], [est]
        most = min(self.speed.fused_members, room if room is not None else self.speed.fused_members)
        for looked, other in enumerate(q.scan()):
            if looked >= 4 * self.speed.fused_members or len(group) >= most:
                break
            if other is job or fusion_key(other.config) != key or other.start != job.start:
                continue
            trial = self.speed.group_estimate(ests + [self.speed.estimate(other.config, other.start)])
            if now + trial * self._factor() > self.deadline:
                break
            group.append(other)
            ests.append(self.speed.estimate(other.config, other.start))
        total = self.speed.group_estimate(ests)
        return group, total, total * self._factor()

    def _arrays(self, config: dict[str, Any]) -> Any:
        key = config["dataset"]
        if key not in self.arrays:
            self.arrays[key] = load_cifar(key, self.data, progress=False)
        return self.arrays[key]

    def _stopped(self, job: Job, actual: float, projected: float) -> None:
        ckpt = checkpoint_path(job.config, self.runs, self.checkpoints)
        self.outcomes.append(Outcome(job, "stopped", projected, actual,
                                     "checkpoint kept" if ckpt.exists() else "no checkpoint yet"))

    def _run_processes(self, q: Queue) -> list[Outcome]:
        ctx = mp.get_context("spawn")
        results = ctx.Queue()
        live: dict[str, tuple[Any, Job, float, float, float]] = {}  # rid -> (process, job, t0, est, projected)
        reports: dict[str, tuple] = {}
        started = 0
        try:
            while True:
                now = time.monotonic()
                if self.stop_requested() or now >= self.deadline:
                    break
                while len(live) < self.speed.jobs and (self.max_runs is None or started < self.max_runs):
                    picked = self._pick(q, now)
                    if picked is None:
                        break
                    job, est, projected = picked
                    q.take(job)
                    p = ctx.Process(target=_child, name=f"resnetlab-window-{job.rid}",
                                    args=(job.config, str(self.runs), self.data, self.device, job.weights,
                                          self._threads(), str(self.checkpoints), results))
                    p.start()
                    live[job.rid] = (p, job, time.monotonic(), est, projected)
                    started += 1
                    self._started(job, projected, now)
                if not live:
                    break
                self._drain(results, reports, 0.5)
                for rid, (p, job, t0, est, projected) in list(live.items()):
                    if p.is_alive() and rid not in reports:
                        continue
                    p.join(timeout=30)
                    if p.is_alive():
                        continue
                    del live[rid]
                    self._drain(results, reports, 0.05)
                    self._finish(job, reports.get(rid), p.exitcode, time.monotonic() - t0, est, projected)
        finally:
            self._stop(live, results, reports)
            results.close()
        return self.outcomes

    @staticmethod
    def _drain(results: Any, reports: dict[str, tuple], timeout: float) -> None:
        try:
            msg = results.get(timeout=timeout)
        except queue_mod.Empty:
            return
        reports[msg[1]] = msg
        while True:
            try:
                msg = results.get_nowait()
            except queue_mod.Empty:
                return
            reports[msg[1]] = msg

    def _finish(self, job: Job, msg: tuple | None, exitcode: int | None, actual: float, est: float,
                projected: float, observe: bool = True) -> None:
        try:
            rec = load_record(self.runs / job.rid)
        except RecordError:
            rec = None
        if rec is not None:
            if observe:  # a fused group's time is observed once, not once per member
                self.speed.observe(est, actual)
            err = rec.summary.get("final_test_error")
            out = Outcome(job, rec.status, projected, actual, rec.summary.get("failure_reason"), rec)
            self.log(f"train: {rec.status:8} {job.rid}: {actual:.0f} s (projected {projected:.0f}), test error "
                     + ("n/a" if err is None else f"{err:.2f}%") + f", {rec.summary.get('precision')}")
        else:
            detail = msg[2] if msg and msg[0] == "error" else f"exit code {exitcode} without a record"
            out = Outcome(job, "crashed", projected, actual, detail)
            self.log(f"train: CRASHED {job.rid} after {actual:.0f} s: "
                     + " | ".join(str(detail).strip().splitlines()[-3:]))
        self.outcomes.append(out)

    def _stop(self, live: dict[str, tuple], results: Any, reports: dict[str, tuple]) -> None:
        """Interrupt what still runs (SIGINT: the run keeps its last checkpoint), then terminate."""
        if not live:
            return
        self.log(f"train: stopping {len(live)} run(s) at the deadline; each keeps its last checkpoint")
        for p, *_ in live.values():
            if p.is_alive() and p.pid is not None:
                try:
                    os.kill(p.pid, signal.SIGINT)
                except OSError:
                    pass
        end = time.monotonic() + self.grace_s
        for p, *_ in live.values():
            p.join(timeout=max(0.0, end - time.monotonic()))
        for rid, (p, job, t0, est, projected) in live.items():
            if p.is_alive():
                p.terminate()
                p.join(5)
            self._drain(results, reports, 0.05)
            actual = time.monotonic() - t0
            try:  # it may have finished just before the signal
                rec = load_record(self.runs / rid)
                self.outcomes.append(Outcome(job, rec.status, projected, actual, None, rec))
                continue
            except RecordError:
                pass
            self._stopped(job, actual, projected)


class _Stop(BaseException):
    """The deadline (or a signal to the window) ends the run trained in the window's process."""


@contextmanager
def _until(deadline: float) -> Iterator[None]:
    """Raise :class:`_Stop` at ``deadline`` (``time.monotonic()``), or on SIGINT/SIGTERM, in
    the block (main thread only): the loop stops between two Python steps, and the run keeps
    its last periodic checkpoint (written atomically, with the one before as a fallback)."""

    def stop(signum: int, _frame: Any) -> None:
        raise _Stop("the deadline" if signum == signal.SIGALRM else f"signal {signum}")

    old = {s: signal.signal(s, stop) for s in (signal.SIGALRM, signal.SIGINT, signal.SIGTERM)}
    signal.setitimer(signal.ITIMER_REAL, max(0.001, deadline - time.monotonic()))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for s, handler in old.items():
            signal.signal(s, handler)


__all__ = ["Job", "Outcome", "Queue", "Trainer"]
