#!/usr/bin/env bash
# scripts/bench rbm: CD-1, 784 -> 500, batch 256, one epoch of 60,000 binarised
# MNIST-like rows, measured in one run for
#   (a) our engine: the portable native kernels (what ships), the same C as it was built before for this
#       host alone (-march=native, Debian's OpenMP OpenBLAS: scripts/build-native.sh --host), the two
#       alternated three times each since this machine's runs vary by ~20%; and the TypeScript fallback
#       (on 6,000 rows: it is ~100x slower)
#   (b) scikit-learn's BernoulliRBM at float32, same shape and batch (its own virtualenv)
#   (c) the roofline: CD-1's five matrix products alone, same shapes, same BLAS
# Each runs in its own process (peak memory is per process), 2 BLAS threads.
# Ends with: RESULT rbm samples_per_s=<n> sklearn_ratio=<ours/sklearn> roofline_fraction=<ours/bound>
#   portable_ratio=<portable / host-built, medians of the alternated runs>
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
ROWS="${BENCH_ROWS:-60000}"
TS_ROWS="${BENCH_TS_ROWS:-6000}"
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-2}" OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
sklearn_venv
venv="$SKLEARN_VENV"
data="$VAR/bench/mnist-${ROWS}.f32"
[ -f "$data" ] || node out/bench/rbm-data.js "$data" "$ROWS"

host="$VAR/bench/host-native"
[ -f "$host/spark_dbn_native.node" ] || "$ROOT/scripts/build-native.sh" --host "$host" >&2
fast=() hostrun=()
for i in 1 2 3; do
  fast+=("$(node out/bench/rbm-run.js fast "$data" "$ROWS")")
  hostrun+=("$(SPARK_DBN_NATIVE_PATH="$host/spark_dbn_native.node" node out/bench/rbm-run.js fast "$data" "$ROWS")")
done
ts=$(node out/bench/rbm-run.js ts "$data" "$TS_ROWS")
roof=$(node out/bench/rbm-run.js roofline "$data" "$ROWS")
skl=$("$venv/bin/python" bench/sklearn_rbm.py "$data" "$ROWS")

node - "$ts" "$roof" "$skl" "${fast[@]}" "${hostrun[@]}" <<'JS'
const [ts, roof, skl, ...runs] = process.argv.slice(2).map((s) => JSON.parse(s));
const median = (rs) => [...rs].sort((a, b) => a.samplesPerS - b.samplesPerS)[Math.floor(rs.length / 2)];
const fastRuns = runs.slice(0, runs.length / 2), hostRuns = runs.slice(runs.length / 2);
const fast = median(fastRuns), host = median(hostRuns);
const f = (x, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const rows = [
  ['ours, native, portable (median)', fast],
  ['ours, native, host-built (median)', host],
  ['ours, TypeScript fallback', ts],
  [`scikit-learn ${skl.version} BernoulliRBM f32`, skl],
  ['roofline: 5 sgemm only', roof],
];
console.log(`CD-1 784->500, batch 256, one epoch; BLAS: ${roof.blas.trim()} (${roof.threads} threads); sklearn BLAS: ${skl.blas}`);
console.log('| run | rows | seconds | samples/s | x sklearn | of roofline |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const [name, r] of rows) {
  console.log(`| ${name} | ${f(r.rows)} | ${f(r.seconds, 2)} | ${f(r.samplesPerS)} | ${f(r.samplesPerS / skl.samplesPerS, 2)} | ${f(r.samplesPerS / roof.samplesPerS, 2)} |`);
}
console.log(`roofline: ${f(roof.gflops, 1)} GFLOP/s in the five products`);
console.log(`alternated runs, samples/s: portable ${fastRuns.map((r) => f(r.samplesPerS)).join(', ')}; ` +
  `host-built ${hostRuns.map((r) => f(r.samplesPerS)).join(', ')}`);
const mib = (b) => f(b / 2 ** 20, 1) + ' MiB';
const budget = 1.3 * fast.dataBytes + fast.modelBytes;
const used = fast.peakRssBytes - fast.rssBeforeDataBytes;
console.log(`peak memory, native epoch: ${mib(fast.peakRssBytes)} RSS, ${mib(used)} above the process before loading data;` +
  ` data ${mib(fast.dataBytes)}, model ${mib(fast.modelBytes)}, budget 1.3 x data + model = ${mib(budget)}` +
  ` (${used <= budget ? 'within' : 'OVER'}); scikit-learn peak ${mib(skl.peakRssBytes)}`);
console.log(`RESULT rbm samples_per_s=${Math.round(fast.samplesPerS)} sklearn_ratio=${(fast.samplesPerS / skl.samplesPerS).toFixed(2)}` +
  ` roofline_fraction=${(fast.samplesPerS / roof.samplesPerS).toFixed(2)}` +
  ` portable_ratio=${(fast.samplesPerS / host.samplesPerS).toFixed(2)}`);
JS
