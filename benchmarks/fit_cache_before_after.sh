#!/bin/bash
# Fresh-process `bayes-scaling fit` of the bundled transfer data and `fit --model chinchilla_by_corpus` on the
# bundled corpora data: BEFORE's executable (default /work/main/.venv/bin/bayes-scaling) against this working
# tree's, alternating, N runs each (default 5), warm caches (one run of each first); then one cold-cache run of
# each (PyTensor's, Numba's and the fit cache emptied). Prints wall, user and system seconds of every run.
#   benchmarks/fit_cache_before_after.sh [BEFORE_EXE] [N]
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
BEFORE=${1:-/work/main/.venv/bin/bayes-scaling}
N=${2:-5}
AFTER=$REPO/.venv/bin/bayes-scaling
D=$REPO/bayes_scaling/data/datasets
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
args() {
  if [ "$1" = transfer ]; then echo "fit $D/hernandez_synthetic.csv --out $T/fit.nc"
  else echo "fit $D/corpora_synthetic.csv --model chinchilla_by_corpus --out $T/fit.nc"; fi
}
run() {  # EXE CASE LABEL [env...]
  local exe=$1 c=$2 label=$3; shift 3
  (cd "$T" && env "$@" /usr/bin/time -f "%e %U %S" -o "$T/t" "$exe" $(args "$c") >/dev/null 2>&1) || echo "FAILED $label"
  echo "$c $label $(cat "$T/t") (wall user sys s; load $(cut -d' ' -f1 /proc/loadavg))"
}
echo "before: $BEFORE; after: $AFTER; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for c in transfer corpora; do
  run "$BEFORE" $c warm-up-before; run "$AFTER" $c warm-up-after
  for i in $(seq "$N"); do run "$BEFORE" $c before; run "$AFTER" $c after; done
done
for c in transfer corpora; do
  for v in before after; do
    exe=$AFTER; [ $v = before ] && exe=$BEFORE
    rm -rf "$T/cold"
    run "$exe" $c "$v-cold" PYTENSOR_FLAGS="base_compiledir=$T/cold/pytensor" NUMBA_CACHE_DIR="$T/cold/numba"
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
