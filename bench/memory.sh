#!/usr/bin/env bash
# scripts/bench memory: what a sidecar holds against its budget (spark.dbn.sidecar.memory, default 1536m).
#  1. The main job's network (784-500-500-2000, the full MNIST's 60,000 rows, 2 partitions, local[2]),
#     MAIN_EPOCHS epochs a layer and of fine-tuning: the sidecar's peak resident memory (its VmHWM, as the
#     run prints it and the runs table keeps it) and the JVM's (driver and executor in one, local mode).
#  2. A soak: SOAK_EPOCHS epochs of a 64-64 RBM over 20,000 rows, syncEvery 4, batch 10: 10,000 rounds at
#     the default 40 epochs. The sidecar's resident memory is sampled twice a second; after the first 20%
#     of the rounds it should stay within 10% of its level at the middle, and its peak within the budget.
# Ends with: RESULT memory main_sidecar_mb=<n> main_jvm_mb=<n> sidecar_jvm_ratio=<n> budget_mb=<n>
#   soak_rounds=<n> soak_drift=<max |rss / middle - 1| after 20%> soak_peak_mb=<n>
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
MAIN_EPOCHS="${BENCH_MAIN_EPOCHS:-2}"
SOAK_EPOCHS="${BENCH_SOAK_EPOCHS:-40}"
spark_env
work="$VAR/bench/memory"
mkdir -p "$work"
bench_mnist_parquet
parquet="$MNIST_PARQUET"
soak_data="$work/soak-20000x64.parquet"
if [ ! -f "$soak_data/_SUCCESS" ]; then
  "$SPARK_HOME/bin/spark-submit" --master 'local[2]' --conf spark.ui.enabled=false --class "$MAIN_CLASS" "$JAR" \
    gen-data --out "$soak_data" --rows 20000 --cols 64 --as array >/dev/null 2>"$work/gen.log" || die "gen-data failed; see $work/gen.log"
fi

# Runs spark-submit with "$@" and samples, every half second, the JVM's VmHWM and its sidecar's (a node
# child of the JVM) VmRSS: "<seconds> <sidecar rss kB>" lines into $1.samples, the JVM's peak into $1.jvm.
sampled() {
  local name="$1"; shift
  "$SPARK_HOME/bin/spark-submit" "$@" >"$work/$name.out" 2>"$work/$name.log" &
  local pid=$! t0 hwm=0 sc
  t0=$(date +%s.%N)
  : >"$work/$name.samples"
  while kill -0 "$pid" 2>/dev/null; do
    h=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$h" ] && [ "$h" -gt "$hwm" ] && hwm=$h
    for sc in $(pgrep -P "$pid" -x node 2>/dev/null || true); do
      r=$(awk '/^VmRSS:/ {print $2}' "/proc/$sc/status" 2>/dev/null || true)
      [ -n "$r" ] && echo "$(echo "$(date +%s.%N) - $t0" | bc) $r" >>"$work/$name.samples"
    done
    sleep 0.5
  done
  wait "$pid" || { tail -20 "$work/$name.log"; die "$name failed; see $work/$name.log"; }
  echo "$hwm" >"$work/$name.jvm"
}

source "$ROOT/scripts/mnist-settings.sh"
MNIST_EPOCHS=$MAIN_EPOCHS MNIST_FT_EPOCHS=$MAIN_EPOCHS source "$ROOT/scripts/mnist-settings.sh"
log "main job: 784-500-500-2000, 60,000 rows, 2 partitions, $MAIN_EPOCHS epochs a layer and of fine-tuning"
rm -rf "$work/main-model"
sampled main --master 'local[2]' --driver-memory 2g --conf spark.ui.enabled=false --class "$MAIN_CLASS" "$JAR" \
  train --input "$parquet" --label-col label "${MNIST_TRAIN_ARGS[@]}" --partitions 2 --seed 1 --table-prefix bench_memory \
  --model-out "$work/main-model"
log "soak: 64-64, 20,000 rows, syncEvery 4, batch 10, $SOAK_EPOCHS epochs"
sampled soak --master 'local[2]' --driver-memory 1g --conf spark.ui.enabled=false --class "$MAIN_CLASS" "$JAR" \
  train --input "$soak_data" --layers 64 --epochs "$SOAK_EPOCHS" --batch-size 10 --sync-every 4 --partitions 2 --seed 1 \
  --table-prefix bench_memory

node - "$work" <<'JS'
const fs = require('node:fs');
const work = process.argv[2];
const read = (f) => fs.readFileSync(`${work}/${f}`, 'utf8');
const budget = Number(/spark\.dbn\.sidecar\.memory=(\d+)m/.exec(read('main.out'))[1]);
const peakOf = (name) => Number(/sidecar peak memory: driver (\d+)m/.exec(read(`${name}.out`))[1]);
const mainSidecar = peakOf('main');
const mainJvm = Math.round(Number(read('main.jvm')) / 1024);
// The soak's samples while its sidecar lived, as fractions of that time (rounds run at an even pace).
const samples = read('soak.samples').trim().split('\n').map((l) => l.split(' ').map(Number)).map(([t, kb]) => ({ t, mb: kb / 1024 }));
const [t0, t1] = [samples[0].t, samples[samples.length - 1].t];
const at = (f) => samples.reduce((best, s) => (Math.abs(s.t - (t0 + f * (t1 - t0))) < Math.abs(best.t - (t0 + f * (t1 - t0))) ? s : best));
const middle = at(0.5).mb;
const after = samples.filter((s) => s.t >= t0 + 0.2 * (t1 - t0));
const drift = Math.max(...after.map((s) => Math.abs(s.mb / middle - 1)));
const soakRounds = Math.max(...[...(read('soak.out') + read('soak.log')).matchAll(/layer0 round (\d+) -> version/g)].map((m) => Number(m[1]) + 1));
console.log('');
console.log('| run | sidecar peak (MB) | JVM peak (MB) | budget (MB) |');
console.log('|---|---:|---:|---:|');
console.log(`| main job, 784-500-500-2000, 60,000 rows, local[2] | ${mainSidecar} | ${mainJvm} | ${budget} |`);
console.log(`| soak, 64-64, ~${soakRounds} rounds | ${peakOf('soak')} | ${Math.round(Number(read('soak.jvm')) / 1024)} | ${budget} |`);
console.log('');
console.log('| soak: share of the run | 10% | 20% | 35% | 50% | 65% | 80% | 100% |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
console.log(`| sidecar resident (MB) | ${[0.1, 0.2, 0.35, 0.5, 0.65, 0.8, 1].map((f) => at(f).mb.toFixed(0)).join(' | ')} |`);
console.log(`RESULT memory main_sidecar_mb=${mainSidecar} main_jvm_mb=${mainJvm} sidecar_jvm_ratio=${(mainSidecar / mainJvm).toFixed(2)} ` +
  `budget_mb=${budget} soak_rounds=${soakRounds} soak_drift=${drift.toFixed(3)} soak_peak_mb=${peakOf('soak')}`);
JS
