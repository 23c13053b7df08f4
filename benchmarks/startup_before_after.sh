#!/bin/bash
# Fresh-process `bayes-scaling fit` times of two versions in one command, alternating, N runs each (take the
# minimum; the load average is printed before and after): the bundled transfer data, and
# `fit --model chinchilla_by_corpus.toml` on the bundled corpora data; then `import bayes_scaling.cli`.
#   benchmarks/startup_before_after.sh [BEFORE_REV] [N]      (default: 2abe9d2, the version before issue 1/2)
# Each version runs through its executable's entry point. BEFORE_REV is exported with `git archive` to a temporary folder and put first on PYTHONPATH; "after" is this
# working tree (wall and CPU seconds of each run). Both share the PyTensor/Numba caches (warmed first).
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
REV=${1:-2abe9d2}
N=${2:-5}
PY=$REPO/.venv/bin/python
OLD=$(mktemp -d)
trap 'rm -rf "$OLD"' EXIT
git -C "$REPO" archive "$REV" | tar -x -C "$OLD"
OUT=$(mktemp -d)
D=$REPO/bayes_scaling/data/datasets
declare -A CMD
CMD[transfer]="fit $D/hernandez_synthetic.csv --out $OUT/fit.nc"
CMD[corpora]="fit $D/corpora_synthetic.csv --model $REPO/models/laws/chinchilla_by_corpus.toml --out $OUT/fit.nc"
cd "$OUT" || exit 1
# the executable's entry point where the version has one (bayes_scaling_launch), else `python -m bayes_scaling`
run() {
  if [ -d "$1/bayes_scaling_launch" ]; then
    PYTHONPATH=$1 /usr/bin/time -f "%U + %S" -o "$OUT/cpu.txt" "$PY" -c "import sys; from bayes_scaling_launch import main; sys.argv[0] = 'bayes-scaling'; sys.exit(main())" ${CMD[$2]} >/dev/null 2>&1 || echo "FAILED: $1 $2" >&2
  else
    PYTHONPATH=$1 /usr/bin/time -f "%U + %S" -o "$OUT/cpu.txt" "$PY" -m bayes_scaling ${CMD[$2]} >/dev/null 2>&1 || echo "FAILED: $1 $2" >&2
  fi
  bc < "$OUT/cpu.txt" > "$OUT/cpu"   # CPU seconds, user + system: less sensitive to other jobs than the wall time
}
echo "before: $REV; after: working tree; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for case in transfer corpora; do
  run "$OLD" $case; run "$REPO" $case   # warm the caches
  for i in $(seq "$N"); do
    for v in before after; do
      root=$REPO; [ $v = before ] && root=$OLD
      s=$(date +%s.%N); run "$root" $case; e=$(date +%s.%N)
      echo "$case $v $(echo "$e - $s" | bc) s wall, $(cat "$OUT/cpu") s CPU"
    done
  done
done
for v in before after; do
  root=$REPO; [ $v = before ] && root=$OLD
  for i in $(seq "$N"); do
    s=$(date +%s.%N); PYTHONPATH=$root "$PY" -c "import bayes_scaling.cli"; e=$(date +%s.%N)
    echo "import_cli $v $(echo "$e - $s" | bc)"
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
