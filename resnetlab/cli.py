"""The command line: ``python -m resnetlab {figures,list,...}``."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def _cmd_figures(args: argparse.Namespace) -> int:
    from .experiments import make_figures

    results = make_figures(args.figures, args.runs, only=args.only or None)
    failed = False
    for r in results:
        status = "error" if r.error else ("partial" if r.missing else "ok")
        print(f"[{status:7}] {r.name}: " + ", ".join(str(p) for p in r.paths if p.suffix != ".pdf"))
        if r.error:
            failed = True
            print(f"          {r.error}")
        for cmd in r.missing:
            print(f"          missing runs, to record them: {cmd}")
        for problem in r.damaged:
            print(f"          left out a damaged record: {problem}")
    return 1 if failed else 0


def _cmd_list(args: argparse.Namespace) -> int:
    from .experiments import list_experiments, list_models, recorded_table, resolve_runs_dir, scan_records

    print("Models the papers name (any 6n+2 / 9n+2 depth builds too):")
    for name, where in list_models().items():
        print(f"  {name:22} {where}")
    print("\nExperiments (python -m resnetlab reproduce NAME --profile P; static ones train nothing):")
    for name, exp in list_experiments().items():
        print(f"  {name:22} {exp.title}")
    runs_dir = resolve_runs_dir(args.runs)
    scan = scan_records(runs_dir)
    table = recorded_table(scan=scan)
    print(f"\nRecorded runs in {runs_dir}: {len(table)}")
    if len(table):
        cols = ["model", "label", "profile", "seed", "status", "final_test_error", "data_source"]
        print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    for path in scan.unfinished:
        print(f"unfinished (interrupted or still running; the same command resumes it): {path}")
    for path, problem in scan.damaged:
        print(f"damaged, left out of every figure: {problem}")
    return 0


def _parse_value(text: str):
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _pairs(items: list[str] | None, what: str) -> dict:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"{what} {item!r} must look like KEY=VALUE, e.g. {what} iterations=1000")
        key, value = item.split("=", 1)
        value = _parse_value(value)
        out[key] = tuple(value) if isinstance(value, list) else value
    return out


def _cmd_train(args: argparse.Namespace) -> int:
    from .experiments import check_device, train_model

    check_device(args.device)
    records = train_model(args.model, profile=args.profile, seed=args.seed, seeds=args.seeds,
                          dataset=args.dataset, options=_pairs(args.option, "--option"),
                          overrides=_pairs(args.set, "--set"), data=args.data, runs=args.runs,
                          device=args.device, save_weights=args.save_weights, progress=not args.no_progress,
                          checkpoints=args.checkpoints)
    for rec in records:
        err = rec.summary.get("final_test_error")
        err_text = "n/a" if err is None else f"{err:.2f}%"
        print(f"{rec.id}: {rec.status}, final test error {err_text}"
              + (f" ({rec.summary.get('failure_reason')})" if rec.failed else "")
              + f", {rec.summary.get('images_per_s', 0) or 0:.0f} images/s on {rec.summary.get('device')}")
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    import time

    from .experiments import check_device, reproduce

    if args.engine != "slurm":  # on SLURM the device is the compute nodes', not this machine's
        check_device(args.device)
    t0 = time.perf_counter()
    collected = reproduce(args.experiment, args.profile, runs=args.runs, data=args.data, device=args.device,
                          jobs=args.jobs, progress=not args.no_progress, checkpoints=args.checkpoints,
                          engine=args.engine, logs=args.logs, partition=args.partition, account=args.account,
                          time=args.time, gpus_per_job=args.gpus_per_job, runs_per_gpu=args.runs_per_gpu,
                          slurm_options=_pairs(args.slurm_option, "--slurm-option"), fuse=args.fuse,
                          max_fused=args.max_fused)
    wall = time.perf_counter() - t0
    sub = getattr(collected, "submission", None)
    if sub is not None and sub.engine == "slurm":
        print(sub.summary())
        if sub.packs:
            where = " ".join(f"--{k} {v}" for k, v in (("runs", args.runs), ("logs", args.logs), ("data", args.data))
                             if v)
            print(f"watch them: python -m resnetlab status {args.experiment} --profile {args.profile} {where}".rstrip()
                  + "; submitting again trains only what is still missing")
        return 0
    for job_id, why in [] if sub is None else sub.crashed:
        print(f"  job {job_id} died: {why}")
    for rid, error in [] if sub is None else sub.errors:
        print(f"  {rid} raised: {error} (log in {sub.logs})")
    records = collected.all_records
    images = sum((r.summary.get("iterations") or 0) * r.config["recipe"]["batch_size"] for r in records)
    failed = [r for r in records if r.failed]
    print(f"{args.experiment} ({args.profile}): {len(records)} runs recorded, {len(failed)} diverged, "
          f"{len(collected.missing)} missing; {wall:.0f} s wall")
    if wall > 0 and images:
        print(f"aggregate throughput (all runs in this call, recorded ones included): {images / wall:.0f} images/s")
    for r in records:
        err = r.summary.get("final_test_error")
        print(f"  {r.label:40} seed {r.config['seed']}: {r.status:8} "
              + ("n/a" if err is None else f"{err:.2f}%"))
    if collected.missing:  # a run crashed (its error was printed above): the call did not do its job
        print(f"error: {len(collected.missing)} run(s) of {args.experiment} are still not recorded; "
              f"run the same command again to resume them", file=sys.stderr)
        return 1
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from .experiments import status

    rows = status(args.experiment, args.profile, runs=args.runs, logs=args.logs, checkpoints=args.checkpoints,
                  data=args.data)
    counts = {s: sum(r.state == s for r in rows) for s in ("recorded", "running", "failed", "missing")}
    print(f"{args.experiment} ({args.profile}): " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    for r in rows:
        print(f"  {r.state:8} {r.label:32} seed {r.seed}  {r.run_id}" + (f"\n           {r.detail}" if r.detail else "")
              + (f"\n           log: {r.log}" if r.log else ""))
    return 0


def _cmd_migrate(args: argparse.Namespace) -> int:
    from .experiments import MigrationError, migrate_runs, resolve_runs_dir

    try:
        moved = migrate_runs(args.runs, dry_run=args.dry_run)
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    root = resolve_runs_dir(args.runs)
    for m in moved:
        print(f"{'would move' if args.dry_run else 'moved'} {m.old_id} -> {m.new_id}" + (f" ({m.note})" if m.note else ""))
    print(f"{len(moved)} record(s) in {root} {'need' if args.dry_run else 'were brought'} up to date"
          if moved else f"every record in {root} is up to date")
    return 1 if any(m.note for m in moved) else 0


def _cmd_tensorboard(args: argparse.Namespace) -> int:
    from .experiments import export_tensorboard, scan_records

    n = export_tensorboard(scan_records(args.runs).records, args.logdir)
    print(f"{n} run(s) written to {args.logdir}; view them with: tensorboard --logdir {args.logdir}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from .tools.bench import main as bench_main

    return bench_main(args)


def _cmd_window(args: argparse.Namespace) -> int:
    from . import experiments
    from .tools.window import main as window_main

    return window_main(args, experiments)


def _cmd_import_runs(args: argparse.Namespace) -> int:
    from .tools.window import import_main

    return import_main(args)


def _cmd_download(args: argparse.Namespace) -> int:
    from .tools.download import main as download_main

    return download_main(args)


RUNS_HELP = "recorded runs (default: $RESNETLAB_RUNS or data/runs/)"
DATA_HELP = "data root (default: $RESNETLAB_DATA or data/)"
LOGS_HELP = "jobs' logs and pack states (default: $RESNETLAB_LOGS, else logs/ beside the runs folder)"
CHECKPOINTS_HELP = ("folder for resumable checkpoints (default: $RESNETLAB_CHECKPOINTS, else inside each run's "
                    "folder); put it outside the work tree to keep long runs resumable")


def _add_training_options(p: argparse.ArgumentParser) -> None:
    """What ``train`` and ``reproduce`` share: profile, data, runs, device, checkpoints."""
    p.add_argument("--profile", default="quick", choices=["smoke", "quick", "paper"])
    p.add_argument("--data", default=None, help=DATA_HELP)
    p.add_argument("--runs", default=None, help=RUNS_HELP)
    p.add_argument("--device", default=None, help="cuda, cpu, ... (default: cuda if available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--checkpoints", default=None, help=CHECKPOINTS_HELP)


def _add_drawing_commands(sub: Any) -> None:
    p = sub.add_parser("figures", help="redraw every figure from recorded runs (no GPU needed)")
    p.add_argument("--figures", default="figures", help="output folder (default: figures/)")
    p.add_argument("--runs", default=None, help=RUNS_HELP)
    p.add_argument("--only", nargs="*", help="only these figures (experiment names, see `list`)")
    p.set_defaults(func=_cmd_figures)
    p = sub.add_parser("list", help="models, experiments and recorded runs")
    p.add_argument("--runs", default=None, help=RUNS_HELP)
    p.set_defaults(func=_cmd_list)


def _add_training_commands(sub: Any) -> None:
    p = sub.add_parser("train", help="train one model (or read its record if it exists)",
                       description="Train MODEL with a profile's recipe and record the run in --runs. "
                                   "An interrupted run resumes from its last checkpoint.")
    p.add_argument("model", help="e.g. resnet20, plain56, preresnet164 (python -m resnetlab list)")
    _add_training_options(p)
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--seeds", type=int, default=1, help="number of seeds, from --seed on (default 1)")
    p.add_argument("--dataset", default="cifar10", choices=["cifar10", "cifar100"])
    p.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="model option, e.g. shortcut=B, variant=exclusive_gating, gate_bias=-6 (repeatable)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="recipe override, e.g. iterations=1000 or compile=true (repeatable)")
    p.add_argument("--save-weights", action="store_true", help="also record the final weights (fp16)")
    p.set_defaults(func=_cmd_train)
    p = sub.add_parser("reproduce", help="train what one experiment (figure) still lacks",
                       description="Train the runs an experiment needs in a profile; recorded runs are read, "
                                   "interrupted ones resume. See `list` for the experiments.")
    p.add_argument("experiment")
    _add_training_options(p)
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once on the device (default 1)")
    p.add_argument("--fuse", choices=["auto", "on", "off"], default="auto",
                   help="train runs that differ only in seed (or gate bias) as one fused net, each recorded as "
                        "alone; auto: on a GPU, where it pays, not on a CPU, where it does not (default auto)")
    p.add_argument("--max-fused", type=int, default=8, help="runs per fused net at most (default 8)")
    _add_cluster_options(p)
    p.set_defaults(func=_cmd_reproduce)
    p = sub.add_parser("status", help="where each run of an experiment stands: recorded, running, failed, missing",
                       description="For each run an experiment needs in a profile: recorded, running (its job is "
                                   "alive, or its checkpoint is recent), failed (it raised, or its job ended before "
                                   "it did) or missing, and where its job's log is.")
    p.add_argument("experiment")
    p.add_argument("--profile", default="quick", choices=["smoke", "quick", "paper"])
    p.add_argument("--runs", default=None, help=RUNS_HELP)
    p.add_argument("--logs", default=None, help=LOGS_HELP)
    p.add_argument("--checkpoints", default=None, help=CHECKPOINTS_HELP)
    p.add_argument("--data", default=None, help=DATA_HELP + "; says which copy's runs to show")
    p.set_defaults(func=_cmd_status)


def _add_cluster_options(p: argparse.ArgumentParser) -> None:
    """``reproduce`` on several GPUs or a SLURM cluster (resnetlab.runs.cluster, through submitit)."""
    g = p.add_argument_group("many GPUs, many machines (needs pip install 'resnetlab[cluster]')")
    g.add_argument("--engine", choices=["inline", "local", "slurm"], default=None,
                   help="inline: in this process, as always; local: one pack of runs per visible GPU of this "
                        "machine; slurm: a job array of packs (default: local where several GPUs are visible, "
                        "else inline)")
    g.add_argument("--partition", default=None, help="SLURM partition (default: the cluster's)")
    g.add_argument("--account", default=None, help="SLURM account to charge")
    g.add_argument("--time", default=None, help="time limit per job, e.g. 4:00:00 or 1-00:00:00 (default 4:00:00 "
                                                 "on SLURM); a job out of time is requeued and resumes")
    g.add_argument("--gpus-per-job", type=int, default=1, help="GPUs per SLURM job, one pack each (default 1)")
    g.add_argument("--runs-per-gpu", type=int, default=None,
                   help="runs in a pack, trained one after another, or --jobs at once (default 4 on SLURM; "
                        "local: the runs are shared out among the GPUs)")
    g.add_argument("--logs", default=None, help=LOGS_HELP)
    g.add_argument("--slurm-option", action="append", metavar="KEY=VALUE",
                   help="any other sbatch option, e.g. qos=normal, constraint=a100, mem=32G, "
                        "setup='module load cuda' (repeatable)")


def _add_record_commands(sub: Any) -> None:
    p = sub.add_parser("migrate", help="bring recorded runs of an older config layout up to date (new ids)")
    p.add_argument("--runs", default=None, help=RUNS_HELP)
    p.add_argument("--dry-run", action="store_true", help="only say what would move")
    p.set_defaults(func=_cmd_migrate)
    p = sub.add_parser("tensorboard", help="write the recorded runs' histories as TensorBoard scalars")
    p.add_argument("--logdir", default="tb", help="TensorBoard log folder (default: tb/)")
    p.add_argument("--runs", default=None, help=RUNS_HELP)
    p.set_defaults(func=_cmd_tensorboard)


def _add_tool_commands(sub: Any) -> None:
    from .tools.bench import add_arguments

    p = sub.add_parser("bench", help="time resnetlab's trainer against the standard torchvision pipeline")
    add_arguments(p)
    p.set_defaults(func=_cmd_bench)
    from .tools.window import add_arguments as window_arguments, add_import_arguments

    p = sub.add_parser("window", help="spend a GPU window: check, measure, train the missing runs by priority "
                                      "within --budget, pack them into --out")
    window_arguments(p)
    p.set_defaults(func=_cmd_window)
    p = sub.add_parser("import-runs", help="merge the records (and checkpoints) a window packed into data/runs")
    add_import_arguments(p)
    p.set_defaults(func=_cmd_import_runs)
    p = sub.add_parser("download", help="download CIFAR through torchvision (needs a network)")
    p.add_argument("dataset", choices=["cifar10", "cifar100"])
    p.add_argument("--data", default=None, help=DATA_HELP)
    p.set_defaults(func=_cmd_download)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m resnetlab",
        description="Rebuild the figures and tables of the two ResNet papers by really training.",
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback of a failure")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_drawing_commands, _add_training_commands, _add_record_commands, _add_tool_commands):
        add(sub)
    return parser


INTERRUPTED = ("interrupted: finished runs are recorded, and the run in progress keeps its last checkpoint; "
               "run the same command again to resume it")


def main(argv: list[str] | None = None) -> int:
    """Run one command. A failure prints one line on stderr saying what is wrong and what to
    do, and exits non-zero (2 for bad input, 1 for a failed job, 130 for Ctrl-C); ``--debug``
    shows the traceback instead."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(INTERRUPTED, file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every failure is one clear line; --debug shows the rest
        if args.debug:
            raise
        text = str(exc).strip() or type(exc).__name__
        kind = "" if isinstance(exc, (ValueError, OSError)) else f"{type(exc).__name__}: "
        print(f"error: {kind}{text}" + ("" if kind == "" else "  (run with --debug for the traceback)"),
              file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
