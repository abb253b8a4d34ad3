"""On a CPU, do two runs at a time with one thread each beat one run with all the threads?

Times the trainer's own step (:func:`resnetlab.train.build_trainer` / :func:`train_step`,
what ``train`` runs) for a model in two layouts on the same machine:

* ``1 x T``: one process with T threads (T = all cores);
* ``P x 1``: P processes at once (P = cores), one thread each.

and prints the aggregate images/s of each (the sum over processes, timed over the same wall
window after warm-up). The faster layout is what ``reproduce --jobs`` should use on a CPU.

    python benchmarks/threads.py --models resnet20,resnet56 --steps 40 --data data
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone


def _worker(model: str, threads: int, warmup: int, steps: int, data: str | None, start_at: float) -> None:
    import torch

    torch.set_num_threads(threads)
    from resnetlab.data import load_cifar
    from resnetlab.train import build_trainer, get_recipe, prepare_data

    arrays = load_cifar("cifar10", data, progress=False)
    recipe = get_recipe("quick")
    t = build_trainer(model, prepare_data(arrays, recipe, 0), recipe, device="cpu")
    from resnetlab.train import train_step

    for i in range(warmup):
        x, y = t.stream.batch(i)
        train_step(t, x, y, 0.1)
    while time.time() < start_at:  # start the timed window together with the other processes
        time.sleep(0.01)
    t0 = time.perf_counter()
    for i in range(warmup, warmup + steps):
        x, y = t.stream.batch(i)
        train_step(t, x, y, 0.1)
    wall = time.perf_counter() - t0
    print(json.dumps({"steps": steps, "batch": recipe.batch_size, "wall_s": wall}), flush=True)


def _layout(model: str, procs: int, threads: int, args: argparse.Namespace) -> dict:
    start_at = time.time() + args.sync_s
    cmd = [sys.executable, __file__, "--worker", model, str(threads), str(args.warmup), str(args.steps),
           args.data or "", str(start_at)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    children = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) for _ in range(procs)]
    results = []
    for c in children:
        out, _ = c.communicate()
        if c.returncode:
            raise SystemExit(f"worker failed with exit code {c.returncode}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    images = sum(r["steps"] * r["batch"] for r in results)
    wall = max(r["wall_s"] for r in results)
    return {"model": model, "processes": procs, "threads_each": threads, "images_per_s": images / wall,
            "per_process_images_per_s": [r["steps"] * r["batch"] / r["wall_s"] for r in results]}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        model, threads, warmup, steps, data, start_at = sys.argv[2:8]
        _worker(model, int(threads), int(warmup), int(steps), data or None, float(start_at))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="resnet20")
    p.add_argument("--steps", type=int, default=40, help="timed steps per process (default 40)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--data", default=None, help="data root (default: $RESNETLAB_DATA or data/)")
    p.add_argument("--sync-s", type=float, default=45.0,
                   help="seconds given to the processes to load data before the timed window opens")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    cores = os.cpu_count() or 1
    rows = []
    for model in args.models.split(","):
        for procs, threads in ((1, cores), (cores, 1)):
            row = _layout(model, procs, threads, args)
            rows.append(row)
            print(f"{model:10} {procs} process(es) x {threads} thread(s): {row['images_per_s']:6.1f} images/s "
                  f"aggregate", flush=True)
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cores": cores,
              "load_before": os.getloadavg(), "rows": rows}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
