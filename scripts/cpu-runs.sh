#!/usr/bin/env bash
# Record quick-profile runs on a CPU, in the background, without letting edits break them.
#
#   scripts/cpu-runs.sh COMMIT "plain20 resnet56 plain32 resnet32" "plain56 plain44 resnet44"
#
# Each quoted list is one slot: its models train one after another and the slots run side by
# side, the cores shared out among them: $RESNETLAB_THREADS threads per run (default: cores /
# slots, at least 1). Two slots of one thread beat one slot of two threads on the 2-core
# machine (benchmarks/RESULTS.md); a single remaining run gets both cores. The code comes
# from a git worktree of COMMIT outside the checkout, so edits to the checkout cannot change
# a run in flight; records go to this checkout's data/runs, resumable checkpoints to
# $RESNETLAB_CHECKPOINTS (default /work/ckpt, outside the work tree: a later start on the
# same machine resumes each run where it was). Every run is niced to 19.
# Logs: $LOGS (default /work/run-logs)/<model>.log.
set -euo pipefail
here="${RESNETLAB_HOME:-$(cd "$(dirname "$0")/.." && pwd)}"  # the checkout (set it when running a copy of this script)
commit="$1"; shift
tree="${RESNETLAB_WORKTREE:-/work/runs-wt}"
ckpt="${RESNETLAB_CHECKPOINTS:-/work/ckpt}"
logs="${LOGS:-/work/run-logs}"
py="$here/.venv/bin/python"
mkdir -p "$ckpt" "$logs"
threads="${RESNETLAB_THREADS:-$(( $(nproc) / $# ))}"
[ "$threads" -ge 1 ] || threads=1
if [ ! -d "$tree" ]; then
  git -C "$here" worktree add --detach "$tree" "$commit" >/dev/null
else
  git -C "$tree" checkout -q --detach "$commit"
fi
# R-Fig. 7 needs the weights of these (resnetlab.experiments.arms.RESPONSE_NETS)
weights=" plain20 plain56 resnet20 resnet56 resnet110 "
for slot in "$@"; do
  (
    for model in $slot; do
      flag=""; case "$weights" in *" $model "*) flag="--save-weights";; esac
      cd "$tree" && OMP_NUM_THREADS="$threads" PYTHONPATH="$tree" nice -n 19 "$py" -m resnetlab train "$model" \
        --profile quick --data "$here/data" --runs "$here/data/runs" --checkpoints "$ckpt" $flag --no-progress \
        >>"$logs/$model.log" 2>&1 || echo "$model: exit $?" >>"$logs/$model.log"
    done
  ) &
done
wait
