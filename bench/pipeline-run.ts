// The e2e's quality problem (test/e2e/train.test.ts: 20,000 full-MNIST digits at 14x14, binarised, a
// 196-100-100 DBN, batch 25, 10 CD-1 epochs a layer, 5 of fine-tuning, test accuracy on the 10,000 test digits)
// with the engine's own replica trainers and merge (ts/rbm/distributed.ts) in one process: each topic
// (layer 0, layer 1, fine-tuning) either in one process or by P replicas on P shards, H mini-batches a block.
// Spark adds time, not maths, so this says which topic loses how much accuracy, and what a setting changes,
// in seconds instead of the e2e's minutes:
//   node out/bench/pipeline-run.js '{"P":4,"H":32,"seed":7}'          every topic by 4 replicas
//   node out/bench/pipeline-run.js '{"P":4,"H":32,"seed":7,"ftP":1}'  pre-training by 4, fine-tuning in one process
//   node out/bench/pipeline-run.js '{"P":1,"seed":7}'                  one process: the e2e's baseline (91.88%)
// prints one JSON line: the settings, layer 0's reconstruction error after pre-training, the test accuracy.
import {
  BackpropTrainer, type BlockSettings, columnMeans, DBN, difference, downsample, fineTuneConfig, finishTopic, flatten,
  initLayer, loadFullMnist, type Matrix, mergeInto, type MergeRule, RBM, RBMTrainer, replicaSeed, type Schedule, unflattenInto,
} from 'spark-dbn';
import { shard, shardLabels } from './shard.js';

interface Settings {
  /** Replicas of every topic; preP and ftP override it for pre-training and fine-tuning. 1: one process. */
  P: number;
  preP?: number;
  ftP?: number;
  /** Mini-batches a block (syncEvery). */
  H?: number;
  seed?: number;
  rule?: MergeRule;
  /** BMUF's eta (default the engine's, 1 - 1/P) and form, for pre-training and for fine-tuning. */
  preEta?: number;
  ftEta?: number;
  nesterov?: boolean;
  /** Fine-tuning's momentum schedule (default the e2e's, [[0, 0.5], [5, 0.9]]: 0.5 for all 5 epochs) and rate. */
  ftMomentum?: Schedule;
  ftLr?: number;
  /** Training rows (default the e2e's 20,000) and the mini-batch (default its 25). */
  rows?: number;
  batch?: number;
}

const s = JSON.parse(process.argv[2]) as Settings;
const ROWS = s.rows ?? 20000;
const BATCH = s.batch ?? 25;
const SIZES = [196, 100, 100];
const seed = s.seed ?? 7;
const H = s.H ?? 32;
const PRETRAIN = { epochs: 10, batchSize: BATCH, learningRate: 0.05, momentum: [[0, 0.5], [5, 0.9]] as Schedule, weightDecay: 2e-4 };
const FINETUNE = { epochs: 5, batchSize: BATCH, learningRate: s.ftLr ?? 0.05, momentum: s.ftMomentum ?? [[0, 0.5], [5, 0.9]] as Schedule };

const full = loadFullMnist();
const train = downsample({ ...full.train.images, data: full.train.images.data.subarray(0, ROWS * 784), rows: ROWS }, true);
const test = downsample(full.test.images, true);
const labels = Int32Array.from(full.train.labels.subarray(0, ROWS));

function settingsFor(P: number, eta: number | undefined): BlockSettings {
  return { rule: s.rule ?? 'bmuf', replicas: P, mode: 'sync', ...(eta !== undefined ? { blockMomentum: eta } : {}),
    ...(s.nesterov !== undefined ? { nesterov: s.nesterov } : {}) };
}

/**
 * One topic's sync blocks, as the driver runs them: every replica adopts the published part, trains
 * min(H, what is left) mini-batches of its shard and sends its delta; the deltas merge into `model`.
 * `round(p, n, epoch)` trains replica p for n mini-batches, at the schedules' values for `epoch`, from the
 * parameters it was given (in `replicas[p].part`).
 */
function blocks(model: DBN, layer: number, P: number, eta: number | undefined, replicas: { part: RBM | DBN }[],
  perEpoch: number, epochs: number, round: (p: number, n: number, epoch: number) => void): void {
  const settings = settingsFor(P, eta);
  const part = layer === -1 ? model : model.layers[layer];
  const total = perEpoch * epochs;
  let momentum: Float32Array = new Float32Array(0);
  for (let done = 0; done < total;) {
    const published = flatten(part);
    const n = Math.min(H, total - done);
    const epoch = Math.floor(done / perEpoch);
    const updates = replicas.map((r, p) => {
      unflattenInto(r.part, published);
      round(p, n, epoch);
      return { layer, delta: difference(flatten(r.part), published), samples: n * BATCH, batches: n, staleness: 0 };
    });
    done += n;
    momentum = mergeInto(model, updates, settings, momentum, Math.floor(done / perEpoch) - epoch);
  }
  finishTopic(model, layer, settings, momentum);
}

// Pre-training: in one process as the e2e's baseline; by replicas, each layer from initLayer (the driver's
// init), on the layer below's P(h|v).
const preP = s.preP ?? s.P;
let model: DBN | null = null;
let input: Matrix = train;
if (preP === 1) {
  model = DBN.create(SIZES, { seed, data: train });
  model.pretrain(train, { ...PRETRAIN, seed });
}
for (let l = 0; preP > 1 && l + 1 < SIZES.length; l++) {
  const m = initLayer({ base: model, sizes: SIZES, layer: l, visible: 'bernoulli', inputMeans: Array.from(columnMeans(input)), classes: 10, seed });
  const shards = Array.from({ length: preP }, (_, p) => shard(input, p, preP));
  const replicas = shards.map((_, p) => {
    const part = m.layers[l].clone();
    return { part, trainer: new RBMTrainer(part, { ...PRETRAIN, seed: replicaSeed(seed, l, p) }) };
  });
  blocks(m, l, preP, s.preEta, replicas, Math.ceil(ROWS / preP / BATCH), PRETRAIN.epochs, (p, n, epoch) => {
    replicas[p].part.counters.epochs = epoch;
    replicas[p].trainer.runBatches(shards[p], n, { trusted: true });
  });
  model = m;
  input = { data: m.layers[l].hiddenProbs(input), rows: input.rows, cols: SIZES[l + 1] };
}
const pretrained = model!;
const preRecon = pretrained.layers[0].reconstructionError(train);

// Fine-tuning: a soft-max layer on the pre-trained stack, back-propagation in one process or by ftP replicas.
const ftP = s.ftP ?? s.P;
const tuned = ftP === 1 ? pretrained.clone() : initLayer({ base: pretrained, sizes: SIZES, layer: -1, visible: 'bernoulli', inputMeans: [], classes: 10, seed });
if (ftP === 1) tuned.fineTune(train, labels, 10, { ...FINETUNE, seed });
const xs = ftP === 1 ? [] : Array.from({ length: ftP }, (_, p) => shard(train, p, ftP));
const ys = ftP === 1 ? [] : Array.from({ length: ftP }, (_, p) => shardLabels(labels, p, ftP));
const replicas = xs.map((_, p) => {
  const part = tuned.clone();
  return { part, trainer: new BackpropTrainer(part, fineTuneConfig({ ...FINETUNE, seed: replicaSeed(seed, -1, p) })) };
});
if (ftP > 1) blocks(tuned, -1, ftP, s.ftEta, replicas, Math.ceil(ROWS / ftP / BATCH), FINETUNE.epochs, (p, n, epoch) => {
  replicas[p].part.fineTuneCounters.epochs = epoch;
  replicas[p].trainer.runBatches(xs[p], ys[p], n);
});
console.log(JSON.stringify({ ...s, preRecon: +preRecon.toFixed(4), accuracy: +(tuned.accuracy(test, full.test.labels) * 100).toFixed(2) }));
