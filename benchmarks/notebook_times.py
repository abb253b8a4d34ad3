"""Time every notebook top to bottom in the ``recorded`` and ``smoke`` profiles, on this machine.

    python benchmarks/notebook_times.py [--profiles recorded,smoke] [--only 02_degradation_problem]

Writes ``benchmarks/notebook-times.json`` (seconds per notebook and profile, the experiments
each notebook draws, the machine, torch, the date), which every notebook's "How long this
notebook takes" table reads (``resnetlab.experiments.timings``); the quick and paper rows of
that table come from the recorded runs themselves. ``recorded`` draws from the course's
``data/runs``; ``smoke`` trains its few iterations on the data under ``--data`` (default
``data/``), writing into a temporary folder as the smoke profile always does. Figures go to a
temporary folder too, so the slide figures are left alone. GPUs are hidden: this is the CPU a
student without a GPU runtime has.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
def run_notebook(path: Path, profile: str, data: Path, scratch: Path) -> float:
    """Seconds to execute ``path`` with ``PROFILE = profile``."""
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", []))
    figures = scratch / f"{path.stem}-{profile}-figures"
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(
        f"PROFILE = {profile!r}\nDATA = {str(data)!r}\nFIGURES = {str(figures)!r}"))
    client = nbclient.NotebookClient(nb, timeout=3600, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    t0 = time.perf_counter()
    client.execute()
    return time.perf_counter() - t0


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU ({cpu}, {os.cpu_count()} logical CPUs, {torch.get_num_threads()} torch threads), no GPU"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profiles", default="recorded,smoke")
    p.add_argument("--only", nargs="*", default=None, help="notebook stems (default: all)")
    p.add_argument("--data", default=str(ROOT / "data"))
    p.add_argument("--data-label", default=None, help="what --data is, for the JSON (default: its path)")
    p.add_argument("--json", default=str(ROOT / "benchmarks" / "notebook-times.json"))
    args = p.parse_args()
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    os.environ.pop("MPLBACKEND", None)
    import torch

    from resnetlab.experiments.timings import notebook_experiments

    out_path = Path(args.json)
    blob = json.loads(out_path.read_text()) if out_path.exists() else {}
    notebooks = blob.setdefault("notebooks", {})
    paths = sorted((ROOT / "notebooks").glob("*.ipynb"))
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    with tempfile.TemporaryDirectory(prefix="resnetlab-nbtimes-") as tmp:
        for path in paths:
            if args.only and path.stem not in args.only:
                continue
            entry = notebooks.setdefault(path.stem, {})
            entry["experiments"] = notebook_experiments(path)
            for profile in args.profiles.split(","):
                try:
                    seconds = run_notebook(path, profile, Path(args.data), Path(tmp))
                except Exception as exc:  # noqa: BLE001 - said in the JSON; the other notebooks go on
                    entry[f"{profile}_error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:300]}"
                    print(f"{path.stem:32} {profile:9} failed: {entry[f'{profile}_error']}", flush=True)
                    continue
                entry.pop(f"{profile}_error", None)
                entry[f"{profile}_s"] = round(seconds, 1)
                entry[f"{profile}_data"] = args.data_label or str(args.data)
                entry[f"{profile}_date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
                print(f"{path.stem:32} {profile:9} {seconds:7.1f} s", flush=True)
                blob.update(machine=machine(), torch=torch.__version__, python=platform.python_version(),
                            date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                            load_average_start=list(load) if load else None,
                            command="python benchmarks/notebook_times.py --profiles " + args.profiles)
                out_path.write_text(json.dumps(blob, indent=2, sort_keys=True) + "\n")  # after each: nothing lost
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
