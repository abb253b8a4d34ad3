"""``python -m resnetlab window``: turn a short lease of a GPU into recorded runs and measured
speed, by one prepared command (issue 14); and ``python -m resnetlab import-runs``, which
brings what it packed home.

The window does four things, in order, within ``--budget`` seconds of its own start:

1. **Check** (:mod:`.window_check`): device, torch, CUDA, driver; on CUDA, that a training
   step and an epoch boundary issue no host synchronisation, and that cuDNN autotunes.
2. **Measure** (:mod:`.window_measure`, 60 s at most): eager steps of ResNet-20/56/110 and a
   wide net, then 2 and 4 runs at once through ``train_many``; written to ``bench.json``.
3. **Train** (:mod:`.window_train`): the missing runs of :data:`PRIORITY`, in that order, as
   many at once as the measurement says pays; a run that the measured speed projects cannot
   finish before the deadline is never started (a smaller one further down may be).
4. **Pack** (:func:`resnetlab.runs.pack_runs`): every record finished in the window, then the
   checkpoints of runs it had to stop, into at most 8 files of at most 16 MiB (64 MiB in all)
   under ``--out``, with ``bench.json``, ``window.json`` (the whole report) and ``window.log``.

Checkpoints live in ``--checkpoints`` (default ``.carry/checkpoints``, git-ignored): name
``.carry`` in the device tool's ``carry`` and a later window resumes them; ``import-runs``
puts imported checkpoints there by default for that reason.

The window needs the experiments' registry, which sits above this layer: the CLI passes
:mod:`resnetlab.experiments` as ``main(args, experiments)``.
"""

from __future__ import annotations

import argparse
import json
import signal
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from ..data import load_cifar
from ..runs import checkpoint_path, detect_source, import_packs, load_record, pack_runs, resolve_runs_dir, run_id
from ..runs.records import DamagedRecord, RecordError
from ..train import pick_device
from .window_check import check
from .window_measure import measure
from .window_train import Job, Outcome, Queue, Trainer

#: What a window trains, highest priority first: (experiment, profile). The one place this
#: order is kept. ``--profile smoke`` trains the same experiments in the smoke profile.
PRIORITY: tuple[tuple[str, str], ...] = (
    ("r-fig6", "quick"),  # ResNet-110 (and 1202, if it fits) included
    ("im-table1", "quick"), ("im-table2", "quick"), ("im-fig6", "quick"),
    ("r-fig4", "quick"), ("r-table3", "quick"), ("vgg-depth", "quick"),
    ("r-fig6", "paper"),  # paper-profile seeds, R-Fig. 6 first
    ("im-table1", "paper"), ("im-table2", "paper"), ("im-fig6", "paper"),
    ("r-fig4", "paper"), ("r-table3", "paper"), ("vgg-depth", "paper"),
)
#: Where a window keeps (and ``import-runs`` puts) resumable checkpoints: git-ignored, and
#: carried to the next window by the device tool's ``carry: [".carry"]``.
WINDOW_CHECKPOINTS = Path(".carry/checkpoints")
MiB = 2**20
#: window.log, window.json and bench.json besides the packs
OWN_FILES = 3


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``python -m resnetlab window``."""
    p.add_argument("--budget", type=float, required=True, metavar="SECONDS",
                   help="wall time of the whole window, packing included")
    p.add_argument("--out", required=True, metavar="DIR", help="an empty folder for the packs, bench.json and the log")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    p.add_argument("--profile", default="quick", choices=["quick", "smoke"],
                   help="quick: the window's priority order (quick runs, then paper seeds); smoke: the same "
                        "experiments in the smoke profile (a CPU dry run)")
    p.add_argument("--data", default=None, help="data root (default: $RESNETLAB_DATA or data/)")
    p.add_argument("--runs", default=None, help="recorded runs (default: $RESNETLAB_RUNS or data/runs/)")
    p.add_argument("--checkpoints", default=str(WINDOW_CHECKPOINTS),
                   help=f"resumable checkpoints (default {WINDOW_CHECKPOINTS}, which the device tool can carry)")
    p.add_argument("--max-runs", type=int, default=None, help="start at most this many runs")
    p.add_argument("--jobs", type=int, default=None, help="runs at once (default: what the measurement says pays)")
    p.add_argument("--measure-jobs", default=None,
                   help="runs at once to measure through train_many, comma-separated (default 2,4 on CUDA, 2 on "
                        "CPU; 'none' for none)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU only: torch threads of the measurement and of each run (default: the cores shared "
                        "among the runs at once)")
    p.add_argument("--max-files", type=int, default=8, help="files the window may leave in DIR (default 8)")
    p.add_argument("--max-file-mib", type=float, default=16, help="size limit of one file, MiB (default 16)")
    p.add_argument("--max-total-mib", type=float, default=64, help="size limit of all files, MiB (default 64)")


def add_import_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``python -m resnetlab import-runs``."""
    p.add_argument("files", nargs="+", metavar="FILE", help="packs a window wrote (*.tar.gz), or folders of them")
    p.add_argument("--runs", default=None, help="recorded runs (default: $RESNETLAB_RUNS or data/runs/)")
    p.add_argument("--checkpoints", default=str(WINDOW_CHECKPOINTS),
                   help=f"where resumable checkpoints go (default {WINDOW_CHECKPOINTS}, where the next window finds "
                        "them)")
    p.add_argument("--dry-run", action="store_true", help="check and say what would happen; write nothing")


def priority(profile: str) -> tuple[tuple[str, str], ...]:
    """:data:`PRIORITY` for ``profile`` ("quick" as it is; "smoke": each experiment once, in smoke)."""
    if profile == "quick":
        return PRIORITY
    return tuple(dict.fromkeys((name, profile) for name, _ in PRIORITY))


def _start_iteration(ckpt: Path) -> int:
    if not ckpt.exists():
        return 0
    try:
        return int(torch.load(ckpt, map_location="cpu", weights_only=True).get("iteration", 0))
    except Exception:  # noqa: BLE001 - unreadable: the run starts afresh (the loop sets the file aside)
        return 0


def plan(experiments: Any, profile: str, *, data: Any, runs: Path, checkpoints: Path,
         log: Callable[[str], None], counts: dict[str, int]) -> Iterator[Job]:
    """The runs still missing, in :data:`PRIORITY` order (within an experiment: seed by seed,
    arm by arm), each once; drawn lazily. ``counts`` tallies what was passed over."""
    seen: set[str] = set()
    for name, prof in priority(profile):
        exp = experiments.get_experiment(name)
        sources = {d: detect_source(d, data) for d in sorted({a.dataset for a in exp.arms})}
        for d in (d for d, s in sources.items() if s is None):
            log(f"plan: no {d} under the data root: the {d} runs of {name} are left out")
        for seed in range(exp.seeds[prof]):
            for arm in exp.arms:
                if sources[arm.dataset] is None:
                    continue
                config = arm.config(prof, seed, sources[arm.dataset])
                rid = run_id(config)
                if rid in seen:
                    continue
                seen.add(rid)
                try:
                    load_record(runs / rid)
                    counts["recorded"] = counts.get("recorded", 0) + 1
                    continue
                except DamagedRecord as exc:
                    log(f"plan: {rid} is damaged and left alone: {exc}")
                    counts["damaged"] = counts.get("damaged", 0) + 1
                    continue
                except RecordError:
                    pass
                start = _start_iteration(checkpoint_path(config, runs, checkpoints))
                yield Job(config, bool(experiments.keeps_weights(arm, config)), name, prof, start)


class _Log:
    def __init__(self, path: Path, t0: float) -> None:
        self.t0, self.file = t0, open(path, "a", encoding="utf-8")

    def __call__(self, msg: str) -> None:
        line = f"[{time.monotonic() - self.t0:6.1f}s] {msg}"
        print(line, flush=True)
        self.file.write(line + "\n")
        self.file.flush()


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, default=str) + "\n")


def _outcome_row(o: Outcome) -> dict[str, Any]:
    s = o.record.summary if o.record is not None else {}
    return {"run_id": o.job.rid, "experiment": o.job.experiment, "profile": o.job.profile, "model": o.job.config["model"],
            "status": o.status, "projected_s": round(o.projected_s, 1), "actual_s": round(o.actual_s, 1),
            "resumed_at": o.job.start, "final_test_error": s.get("final_test_error"), "precision": s.get("precision"),
            "images_per_s": s.get("images_per_s"), "detail": o.detail}


def _check_phase(args: argparse.Namespace, device: torch.device, runs: Path, ckpts: Path, log: Any,
                 report: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Check: the device, torch, CUDA, driver and the CUDA-only checks; load the data."""
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda, but torch sees no CUDA device")
    if args.threads and device.type == "cpu":
        torch.set_num_threads(args.threads)
    log(f"window: budget {args.budget:.0f} s on {device}, profile {args.profile}; runs {runs}, checkpoints {ckpts}")
    report["check"] = checked = check(device)
    env = checked["environment"]
    log(f"check: {env['device']}, torch {env['torch']}, CUDA {env.get('cuda')}, driver {env.get('driver')}, "
        f"cuDNN {env.get('cudnn')}")
    for key, value in (checked["cuda"] or {}).items():
        log(f"check: {key}: {value if not isinstance(value, dict) else ('ok' if value.get('ok') else value)}")
    arrays = load_cifar("cifar10", args.data, progress=False)
    log(f"check: data {arrays.source}, {len(arrays.train_labels)} training images")
    return arrays, env


def _measure_phase(args: argparse.Namespace, device: torch.device, arrays: Any, env: dict[str, Any], out: Path,
                   t0: float, log: Any, report: dict[str, Any]) -> Any:
    """Measure: eager steps (and several processes); write bench.json; the fitted speed."""
    from .bench import environment

    jobs_text = args.measure_jobs if args.measure_jobs is not None else ("2,4" if device.type == "cuda" else "2")
    measure_jobs = tuple(int(j) for j in jobs_text.split(",") if j.strip() and j.strip() != "none")
    m_end = min(time.monotonic() + 60.0, t0 + 0.35 * args.budget)
    speed, bench = measure(arrays, device, data=args.data, deadline=m_end, measure_jobs=measure_jobs,
                           force_jobs=args.jobs, log=log)
    _write_json(out / "bench.json", {"environment": {**environment(device), **env}, **bench})
    report["speed"] = bench.get("fit")
    return speed


def _train_phase(args: argparse.Namespace, experiments: Any, runs: Path, ckpts: Path, trainer: "Trainer", log: Any,
                 report: dict[str, Any]) -> None:
    """Train: the missing runs in priority order, as many at once as pays, within the budget."""
    counts: dict[str, int] = {}
    q = Queue(plan(experiments, args.profile, data=args.data, runs=runs, checkpoints=ckpts, log=log, counts=counts))
    trainer.run(q)
    report["queue"] = {**counts, "looked_at_not_started": len(q.items), "all_looked_at": q.drawn_all}


def main(args: argparse.Namespace, experiments: Any = None) -> int:
    """``python -m resnetlab window``; the exit status (0, or 1 if a phase broke, 2 for bad
    input). ``experiments``: :mod:`resnetlab.experiments` (the CLI passes it)."""
    if experiments is None:
        raise ValueError("window needs the experiments registry: call main(args, resnetlab.experiments)")
    t0 = time.monotonic()
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"--out {out} must be an empty folder (or not exist yet)")
    out.mkdir(parents=True, exist_ok=True)
    log = _Log(out / "window.log", t0)
    reserve = min(15.0, max(3.0, 0.03 * args.budget))  # for packing
    grace = min(10.0, max(2.0, 0.03 * args.budget))  # for the runs to stop
    end = t0 + args.budget
    runs, ckpts = resolve_runs_dir(args.runs), Path(args.checkpoints)
    report: dict[str, Any] = {"budget_s": args.budget, "profile": args.profile, "phases": {},
                              "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                              "runs_dir": str(runs), "checkpoints": str(ckpts)}
    stop = {"now": False}

    def on_signal(signum: int, _frame: Any) -> None:
        stop["now"] = True
        log(f"window: signal {signum}: stopping the runs and packing")

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    threads_before = torch.get_num_threads()
    trainer: Trainer | None = None
    rc = 0
    phase_t = time.monotonic()

    def phase(name: str) -> None:
        nonlocal phase_t
        now = time.monotonic()
        report["phases"][name] = round(now - phase_t, 1)
        phase_t = now

    try:
        device = pick_device(args.device)
        arrays, env = _check_phase(args, device, runs, ckpts, log, report)
        phase("check")
        speed = _measure_phase(args, device, arrays, env, out, t0, log, report)
        phase("measure")
        if speed is not None and not stop["now"]:
            trainer = Trainer(speed, runs, args.data, device.type if device.index is None else str(device), ckpts,
                              end - reserve - grace, log, lambda: stop["now"], args.max_runs, grace,
                              threads=args.threads, arrays={"cifar10": arrays})
            _train_phase(args, experiments, runs, ckpts, trainer, log, report)
        phase("train")
    except Exception as exc:  # noqa: BLE001 - whatever broke, what was trained is still packed
        rc = 2 if isinstance(exc, (ValueError, FileNotFoundError)) else 1
        log(f"window: {type(exc).__name__}: {exc}")
        report["error"] = traceback.format_exc()
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        torch.set_num_threads(threads_before)
        rc = _pack(out, args, runs, ckpts, trainer.outcomes if trainer else [], report, log, phase, rc)
        log.file.close()
    return rc


def _pack(out: Path, args: argparse.Namespace, runs: Path, ckpts: Path, outcomes: list[Outcome],
          report: dict[str, Any], log: Callable[[str], None], phase: Callable[[str], None], rc: int) -> int:
    records = [o.record.path for o in outcomes if o.record is not None]
    unfinished = [(checkpoint_path(o.job.config, runs, ckpts), o.job.config) for o in outcomes
                  if o.record is None]
    try:
        packed = pack_runs(out, records, unfinished, max_files=args.max_files - OWN_FILES,
                           max_file_bytes=int(args.max_file_mib * MiB),
                           max_total_bytes=int((args.max_total_mib - 1) * MiB))
        report["packed"] = {"files": [p.name for p in packed.files], "bytes": packed.bytes,
                            "records": packed.records, "checkpoints": packed.checkpoints,
                            "left_out": packed.left_out}
        for rid, why in packed.left_out:
            log(f"pack: LEFT OUT {rid}: {why}")
        log(f"pack: {len(packed.records)} record(s), {len(packed.checkpoints)} checkpoint(s) in "
            f"{len(packed.files)} file(s), {packed.bytes / MiB:.1f} MiB")
    except Exception as exc:  # noqa: BLE001
        log(f"pack: FAILED: {type(exc).__name__}: {exc}")
        report["pack_error"] = traceback.format_exc()
        rc = rc or 1
    phase("pack")
    report["runs"] = [_outcome_row(o) for o in outcomes]
    report["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for row in report["runs"]:
        err = row["final_test_error"]
        log(f"  {row['status']:8} {row['run_id']:52} {row['actual_s']:6.0f} s (projected {row['projected_s']:.0f})  "
            + ("" if err is None else f"{err:.2f}%"))
    log(f"window: done, phases {report['phases']}")
    _write_json(out / "window.json", report)
    return rc


def import_main(args: argparse.Namespace) -> int:
    """``python -m resnetlab import-runs``; 0 if everything was imported or already there, 1 if
    something was refused."""
    result = import_packs(args.files, args.runs, args.checkpoints, dry_run=args.dry_run)
    verb = "would import" if args.dry_run else "imported"
    for rid in result.imported:
        print(f"{verb}: {rid}")
    for rid in result.identical:
        print(f"already there (identical): {rid}")
    for rid, where in result.checkpoints:
        print(f"checkpoint {'would go' if args.dry_run else 'placed'}: {rid} -> {where}")
    for rid, why in result.checkpoints_skipped:
        print(f"checkpoint skipped: {rid}: {why}")
    for what, why in result.refused:
        print(f"REFUSED: {what}: {why}")
    print(f"{len(result.imported)} record(s) {verb}, {len(result.identical)} already there, "
          f"{len(result.refused)} refused, {len(result.checkpoints)} checkpoint(s) into {args.checkpoints}; "
          f"runs: {resolve_runs_dir(args.runs)}")
    return 0 if result.ok else 1


__all__ = ["OWN_FILES", "PRIORITY", "WINDOW_CHECKPOINTS", "add_arguments", "add_import_arguments", "import_main",
           "main", "plan", "priority"]
