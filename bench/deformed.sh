#!/usr/bin/env bash
# scripts/bench deformed: the payoff of data that needs a cluster. The main job's network (784-500-500-2000,
# CD-1 pre-training and back-propagation, scripts/mnist-settings.sh's rates and decay) trained over Spark
# (local[2], 2 partitions) on ROWS (1,200,000) deformed digits (`deform-digits`, seed 1: the scale-out
# bench's data, made once and shared with it) and tested on the 10,000 untouched MNIST test digits.
# Epochs are over the deformed rows: EPOCHS (2) a layer and FT_EPOCHS (8) of fine-tuning are 2.4 million
# and 9.6 million samples, against the main job's 0.6 and 1.8 million; the momentum reaches 0.9 after the
# first epoch and the fine-tuning rate drops to 0.03 at FT_DROP (4).
# minutes: the `train` command's wall time (the data made beforehand is not counted).
# Ends with: RESULT deformed test_accuracy=<n> minutes=<n> rows=<n> sidecar_peak_mb=<n>
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
ROWS="${BENCH_ROWS:-1200000}"
EPOCHS="${BENCH_EPOCHS:-2}"
FT_EPOCHS="${BENCH_FT_EPOCHS:-8}"
FT_DROP="${BENCH_FT_DROP:-4}"
spark_env
source "$ROOT/scripts/mnist-settings.sh"
work="$VAR/bench/deformed"
mkdir -p "$work"
source "$ROOT/bench/lib/deformed-data.sh"
parquet="$(deformed_digits "$ROWS")"
"$ROOT/scripts/mnist-parquet" "$VAR/bench/mnist" >&2
# The rows and the upper layers' inputs derived from them stay in the sidecar (4 bytes x (784 + 500 + 500) a
# row: 8.6 GB for 1.2 million); the JVM caches the rows once more as Spark's blocks.
args=(--layers "$MNIST_LAYERS" --epochs "$EPOCHS" --batch-size "$MNIST_BATCH" --learning-rate "$MNIST_LR"
  --momentum "0:0.5,1:0.9" --weight-decay "$MNIST_WEIGHT_DECAY" --fine-tune-epochs "$FT_EPOCHS"
  --fine-tune-learning-rate "0:0.1,$FT_DROP:0.03" --fine-tune-momentum "0:0.5,1:0.9" --held-out-rows "$MNIST_HELD_OUT")
log "Spark: train ${args[*]} on $ROWS deformed digits"
t0=$(date +%s.%N)
"$SPARK_HOME/bin/spark-submit" --master 'local[2]' --driver-memory 7g --conf spark.ui.enabled=false \
  --conf spark.dbn.sidecar.memory=11g --class "$MAIN_CLASS" "$JAR" train --input "$parquet" --label-col label "${args[@]}" \
  --partitions 2 --table-prefix bench_deformed --run-id "deformed-$(date +%s)" --features-input "$VAR/bench/mnist/test.parquet" \
  >"$work/train.out" 2>"$work/train.log" || { tail -20 "$work/train.log"; die "train failed; see $work/train.log"; }
t1=$(date +%s.%N)
node - "$work/train.out" "$t0" "$t1" "$ROWS" <<'JS'
const fs = require('node:fs');
const [out, t0, t1, rows] = process.argv.slice(2);
const text = fs.readFileSync(out, 'utf8');
const acc = /; accuracy ([\d.]+)%/.exec(text);
if (!acc) throw new Error(`no accuracy in ${out}`);
const done = [...text.matchAll(/train: (\w+): done at version \d+ in ([\d.]+) s/g)].map((m) => [m[1], +m[2]]);
const peak = Math.max(0, ...[...text.matchAll(/sidecar peak memory: .*?(\d+)m \(/g)].map((m) => +m[1]));
const minutes = (+t1 - +t0) / 60;
console.log('');
console.log(`| 784-500-500-2000 on ${rows} deformed digits, tested on the 10,000 MNIST test digits | minutes | test accuracy |`);
console.log('|---|---:|---:|');
console.log(`| Spark local[2], 2 partitions (${done.map(([t, s]) => `${t} ${s.toFixed(0)} s`).join(', ')}) | ${minutes.toFixed(2)} | ${(+acc[1]).toFixed(2)}% |`);
console.log('| the main job: 60,000 plain digits (bench/README, `mnist`) | 3.75 | 98.51% |');
console.log('');
console.log(`RESULT deformed test_accuracy=${(+acc[1] / 100).toFixed(4)} minutes=${minutes.toFixed(2)} rows=${rows} sidecar_peak_mb=${peak || 'unknown'}`);
JS
