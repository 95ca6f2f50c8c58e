#!/usr/bin/env bash
# scripts/bench train: one epoch of CD-1, 784 -> 500, batch 256, on 60,000
# MNIST-like rows (bench/rbm-data.ts), measured in one run
#   (a) over Spark: `train` in local[2], 2 partitions, async, syncEvery 20 — from
#       the first layer's initial version to its last (the rows' first trip to the
#       sidecars, every round, merge and publish included; JVM start and reading
#       the Parquet input excluded); and, from a second, 3-epoch run, each later
#       epoch (later_epoch_efficiency)
#   (b) the engine alone in one process on the same 2 cores (bench/rbm-run.ts).
# Ends with: RESULT train spark_samples_per_s=<n> engine_samples_per_s=<n> spark_efficiency=<spark/engine>
#   merge_s_per_round=<s> publish_s_per_round=<s> later_epoch_efficiency=<later epoch / engine>
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
ROWS="${BENCH_ROWS:-60000}"
SYNC="${BENCH_SYNC_EVERY:-20}"
spark_env
work="$VAR/bench/train"
mkdir -p "$work"
data="$VAR/bench/mnist-${ROWS}.f32"
[ -f "$data" ] || node out/bench/rbm-data.js "$data" "$ROWS"
parquet="$work/mnist-${ROWS}.parquet"
if [ ! -f "$parquet/_SUCCESS" ]; then
  "$SPARK_HOME/bin/spark-submit" --master 'local[2]' --driver-memory 4g --conf spark.ui.enabled=false \
    --class "$MAIN_CLASS" "$JAR" import --format f32 --input "$data" --cols 784 --out "$parquet" --partitions 2 >/dev/null 2>"$work/import.log" \
    || die "import failed; see $work/import.log"
fi
engine=$(OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 node out/bench/rbm-run.js fast "$data" "$ROWS")
train() { # EPOCHS OUT
  log "Spark: train --layers 500 --epochs $1 --batch-size 256 --mode async --partitions 2 --sync-every $SYNC"
  "$SPARK_HOME/bin/spark-submit" --master 'local[2]' --driver-memory 2g --conf spark.ui.enabled=false \
    --class "$MAIN_CLASS" "$JAR" train --input "$parquet" --layers 500 --epochs "$1" --batch-size 256 --learning-rate 0.01 \
    --momentum 0.5 --mode async --partitions 2 --sync-every "$SYNC" --monitor-rows 256 --table-prefix bench_train \
    >"$2" 2>"$2.log" || { tail -20 "$2.log"; die "train failed; see $2.log"; }
}
# The epoch of the RESULT line: a one-epoch run, the rows' first trip to the sidecars included.
train 1 "$work/train.out"
# Later epochs (rows cached in the sidecars, code warm): (3 epochs - 1 epoch) / 2, from a second run.
train 3 "$work/train3.out"
node - "$engine" "$ROWS" "$work/train.out" "$work/train3.out" <<'JS'
const fs = require('node:fs');
const [engineJson, rows, out, out3] = process.argv.slice(2);
const engine = JSON.parse(engineJson);
const text = fs.readFileSync(out, 'utf8');
const done = /layer0: done at version (\d+) in ([\d.]+) s/.exec(text);
if (!done) throw new Error(`no 'layer0: done' line in ${out}`);
const seconds = Number(done[2]);
const done3 = /layer0: done at version (\d+) in ([\d.]+) s/.exec(fs.readFileSync(out3, 'utf8'));
if (!done3) throw new Error(`no 'layer0: done' line in ${out3}`);
const later = (Number(done3[2]) - seconds) / 2;
const rounds = [...text.matchAll(/staleness (\d+), epoch \d+, (\d+) batches in ([\d.]+) s \(round ([\d.]+) s\), merge ([\d.]+) s, publish ([\d.]+) s/g)]
  .map((m) => ({ staleness: +m[1], batches: +m[2], train: +m[3], round: +m[4], merge: +m[5], publish: +m[6] }));
const mean = (k) => rounds.reduce((s, r) => s + r[k], 0) / rounds.length;
const spark = Number(rows) / seconds;
const f = (x, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
console.log('');
console.log('| what (CD-1 784->500, batch 256, one epoch) | rows | seconds | samples/s |');
console.log('|---|---:|---:|---:|');
console.log(`| Spark local[2], 2 partitions, async, ${rounds.length} merged rounds | ${f(+rows)} | ${f(seconds, 2)} | ${f(spark)} |`);
console.log(`| the same, each later epoch ((3-epoch run - 1-epoch run) / 2) | ${f(+rows)} | ${f(later, 2)} | ${f(+rows / later)} |`);
console.log(`| engine alone, one process, 2 threads | ${f(engine.rows)} | ${f(engine.seconds, 2)} | ${f(engine.samplesPerS)} |`);
console.log('');
console.log('| per round (means) | seconds |');
console.log('|---|---:|');
for (const [k, label] of [['train', 'replica training in its sidecar'], ['round', 'job submit to update on the driver'],
  ['merge', 'merge (driver sidecar)'], ['publish', 'publish (broadcast)']]) console.log(`| ${label} | ${f(mean(k), 3)} |`);
console.log(`| max staleness | ${Math.max(...rounds.map((r) => r.staleness))} |`);
console.log('');
console.log(`RESULT train spark_samples_per_s=${Math.round(spark)} engine_samples_per_s=${Math.round(engine.samplesPerS)} ` +
  `spark_efficiency=${(spark / engine.samplesPerS).toFixed(2)} merge_s_per_round=${mean('merge').toFixed(4)} publish_s_per_round=${mean('publish').toFixed(4)} ` +
  `later_epoch_efficiency=${(+rows / later / engine.samplesPerS).toFixed(2)}`);
JS
