#!/usr/bin/env bash
# scripts/bench small: the defaults on a small real data set, as a newcomer meets them (issue 11, item 7).
# scikit-learn's 8x8 digits (1,797 rows, 64 pixel features, shipped inside scikit-learn), an 80/20
# stratified split; a DBN of one hidden layer of 100 units, 10 epochs, every other param at its default
# (PySpark, local[2]), its features fed to a logistic regression; in the same run, on the same split,
# the same classifier on the raw pixels and on the features of scikit-learn's own BernoulliRBM pipeline.
# Seeds 1-3 for both RBMs. Prints a table and ends with:
#   RESULT small dbn_acc=<ours, defaults> sklearn_acc=<n> pixels_acc=<n> gap_points=<sklearn - ours, points>
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
spark_env
sklearn_venv
venv="$SKLEARN_VENV"
work="$VAR/bench/small"
mkdir -p "$work"
"$venv/bin/python" bench/small.py split "$work" >&2
log "DBN over Spark: 64-100, 10 epochs, local[2], defaults (and the settings that matter), seeds 1-3"
"$VENV/bin/python" bench/small_spark.py "$work" >"$work/spark.out" 2>"$work/spark.log" \
  || { tail -20 "$work/spark.log"; die "the DBN runs failed; see $work/spark.log"; }
log "peers (scikit-learn) and scores"
OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 "$venv/bin/python" bench/small.py score "$work"
