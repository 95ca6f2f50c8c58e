#!/usr/bin/env bash
# scripts/bench rounds: the fixed cost of a sync round (all of it but the slowest replica's training:
# scheduling, the model and updates between processes, the merge, publishing) with 2 and with 8
# partitions, a topic's rounds in one barrier stage (the default) against a Spark job per round
# (spark.dbn.roundsInOneStage=false), alternated, RUNS runs each. CD-1 784 -> 500, batch 100, EPOCHS
# epochs of the full MNIST (the train bench's Parquet), default syncEvery (32; before session 14, 64 at P = 2 and 9 at P = 8).
# P = 8 runs local[8] on this machine's 2 cores: a barrier stage needs a task slot per partition.
# Ends with: RESULT rounds p2_stage_ms=<n> p2_job_ms=<n> p8_stage_ms=<n> p8_job_ms=<n>
#   p2_ratio=<job/stage> p8_ratio=<job/stage> p2_share=<fixed / round at P = 2, stage>
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
EPOCHS="${BENCH_EPOCHS:-3}"
RUNS="${BENCH_RUNS:-2}"
spark_env
work="$VAR/bench/rounds"
mkdir -p "$work"
bench_mnist_parquet
parquet="$MNIST_PARQUET"
names=()
for run in $(seq 1 "$RUNS"); do
  for p in 2 8; do
    for stage in true false; do
      name="p$p-$([ "$stage" = true ] && echo stage || echo job)-$run"
      log "run $run: $p partitions, rounds in one stage: $stage"
      rm -rf "$work/model-$name"
      "$SPARK_HOME/bin/spark-submit" --master "local[$p]" --driver-memory 2g --conf spark.ui.enabled=false \
        --conf spark.dbn.roundsInOneStage="$stage" \
        --class "$MAIN_CLASS" "$JAR" train --input "$parquet" --layers 500 --epochs "$EPOCHS" --batch-size 100 \
        --partitions "$p" --seed 1 --table-prefix bench_rounds --model-out "$work/model-$name" \
        >"$work/$name.out" 2>"$work/$name.log" || { tail -20 "$work/$name.log"; die "train failed; see $work/$name.log"; }
      names+=("$name")
    done
  done
done
node - "$work" "${names[@]}" <<'JS'
const fs = require('node:fs');
const [work, ...names] = process.argv.slice(2);
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const rows = names.map((name) => {
  const text = fs.readFileSync(`${work}/${name}.out`, 'utf8') + fs.readFileSync(`${work}/${name}.log`, 'utf8');
  const rounds = [...text.matchAll(/layer0 round (\d+) -> version \d+: .*round ([\d.]+) s \(training ([\d.]+) s\), merge ([\d.]+) s, publish ([\d.]+) s/g)]
    .map((m) => ({ wall: +m[2] + +m[4] + +m[5], train: +m[3] }));
  if (rounds.length < 3) throw new Error(`${name}: fewer than 3 round lines`);
  // The first round carries the rows' first trip into the sidecars; the last may be short.
  const later = rounds.slice(1, -1);
  const [, p, how] = /^p(\d+)-(\w+)-/.exec(name);
  return { name, p: +p, how, n: later.length, fixed: mean(later.map((r) => (r.wall - r.train) * 1000)),
    wall: mean(later.map((r) => r.wall * 1000)), train: mean(later.map((r) => r.train * 1000)) };
});
console.log('');
console.log('| run | partitions | rounds | rounds measured | round wall (ms) | slowest training (ms) | fixed cost (ms) | share of the round |');
console.log('|---|---:|---|---:|---:|---:|---:|---:|');
for (const r of rows) {
  console.log(`| ${r.name} | ${r.p} | ${r.how === 'stage' ? 'one stage' : 'a job each'} | ${r.n} | ${r.wall.toFixed(0)} | ${r.train.toFixed(0)} | ${r.fixed.toFixed(1)} | ${(r.fixed / r.wall).toFixed(3)} |`);
}
const fixed = (p, how) => mean(rows.filter((r) => r.p === p && r.how === how).map((r) => r.fixed));
const share = (p, how) => mean(rows.filter((r) => r.p === p && r.how === how).map((r) => r.fixed / r.wall));
const [s2, j2, s8, j8] = [fixed(2, 'stage'), fixed(2, 'job'), fixed(8, 'stage'), fixed(8, 'job')];
console.log('');
console.log(`RESULT rounds p2_stage_ms=${s2.toFixed(1)} p2_job_ms=${j2.toFixed(1)} p8_stage_ms=${s8.toFixed(1)} p8_job_ms=${j8.toFixed(1)} ` +
  `p2_ratio=${(j2 / s2).toFixed(2)} p8_ratio=${(j8 / s8).toFixed(2)} p2_share=${share(2, 'stage').toFixed(3)}`);
JS
