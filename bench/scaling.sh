#!/usr/bin/env bash
# scripts/bench scaling: statistical efficiency of the merge rules. P = 1, 2, 4, 8, 16 replicas on
# P shards of 8,000 binarised 14x14 digits, a 196-16 RBM (exact test log-likelihood), batch 20,
# H = 32 mini-batches between syncs, 15 epochs, sync mode; the engine's own replica trainer and
# merge (ts/rbm/distributed.ts) in one process (bench/scaling-run.ts): Spark changes the time a
# round takes, not its arithmetic, and two cores cannot run 16 executors.
# Ends with: RESULT scaling bmuf_gap_p4=<nats below one process> bmuf_gap_p16=<n> average_gap_p16=<n> sum_gap_p4=<n>
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
EPOCHS="${BENCH_EPOCHS:-15}"
H="${BENCH_SYNC_EVERY:-32}"
# bmuf with block momentum 1 - 1/P at every P (the engine's default averages above 4 replicas: bench/README "Scale-out").
one() {
  local eta=""
  [ "$2" = bmuf ] && [ "$1" -gt 1 ] && eta=",\"eta\":$(node -e "console.log(1 - 1 / $1)")"
  node out/bench/scaling-run.js "{\"P\":$1,\"H\":$H,\"rule\":\"$2\",\"mode\":\"sync\",\"epochs\":$EPOCHS,\"hidden\":16,\"batch\":20,\"seed\":1,\"resetMomentum\":false$eta}"
}
results=$( { one 1 sum; for P in 2 4 8 16; do for rule in bmuf average sum; do one "$P" "$rule"; done; done; } )
node - "$results" <<'JS'
const rows = process.argv[2].trim().split('\n').map((l) => JSON.parse(l));
const base = rows[0].testLL;
const at = (P, rule) => rows.find((r) => r.P === P && r.rule === rule);
const f = (x) => x.toFixed(2);
console.log('');
console.log(`| P (H = ${rows[0].H}, ${rows[0].epochs} epochs; one process ${f(base)} nats) | bmuf | average | sum |`);
console.log('|---:|---:|---:|---:|');
for (const P of [2, 4, 8, 16]) console.log(`| ${P} | ${f(at(P, 'bmuf').testLL)} | ${f(at(P, 'average').testLL)} | ${f(at(P, 'sum').testLL)} |`);
console.log('');
const gap = (P, rule) => f(base - at(P, rule).testLL);
console.log(`RESULT scaling bmuf_gap_p4=${gap(4, 'bmuf')} bmuf_gap_p16=${gap(16, 'bmuf')} average_gap_p16=${gap(16, 'average')} sum_gap_p4=${gap(4, 'sum')}`);
JS
