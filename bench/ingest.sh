#!/usr/bin/env bash
# scripts/bench ingest: see bench/ingest.py. Needs pyarrow beside pyspark (installed here once).
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
spark_env
ROWS="${BENCH_ROWS:-200000}"
py="$VENV/bin/python"
[ -x "$py" ] || die "the project virtualenv has no python; use the pyspark installed by scripts/setup (SPARK_HOME=$SPARK_HOME)"
if ! "$py" -c 'import pyarrow, numpy' 2>/dev/null; then
  log "installing pyarrow and numpy into .venv for PySpark's Arrow path (bench/requirements-ingest.txt)"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r bench/requirements-ingest.txt
fi
model="$VAR/bench/ingest-784-1.avro"
mkdir -p "$VAR/bench"
[ -f "$model" ] || node out/bench/ingest-model.js "$model"
export PYSPARK_PYTHON="$py" PYSPARK_DRIVER_PYTHON="$py"
"$py" bench/ingest.py "$model" "$ROWS" "$JAR"

