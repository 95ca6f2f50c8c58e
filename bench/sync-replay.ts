// Sync rounds driven in one process the way the JVM drives them, through the sidecar's own classes
// (TrainingPool worker threads holding SharedArrayBuffer rows, snapshots, mergeUpdates, finishTopic),
// on a chosen split of the e2e digits (the first 20,000 full-MNIST digits, 14x14, binarised):
// 196-100, batch 25, 10 epochs, lr 0.05, momentum 0.5 -> 0.9, decay 2e-4, the JVM's per-partition seeds.
// It isolates what a Spark run adds to the engine's arithmetic: fed the partitions a Spark run cached
// (f32 files, one per partition), it gives that run's model bit for bit (bench/README, session 8).
//   node out/bench/sync-replay.js '{"P":4,"H":50,"rule":"bmuf","split":"random","splitSeed":777}'
//   split: "mod" (row r to r mod P), "random" (a seeded random split), or ["p0.f32", "p1.f32", ...]
//   counts: "common" (default: the JVM's mini-batches an epoch) or "own" (each partition its own, the JVM before session 9)
//   full: true — instead, `scripts/bench train`'s problem: the 60,000 full-MNIST digits (not binarised), 784-500, batch
//     100 ("split" "mod" or "random" only); out: a path to save the model at (for `bench/train-engine.js evaluate`)
import { readFileSync, writeFileSync } from 'node:fs';
import {
  columnMeans, DBN, decodeSnapshot, downsample, encodeSnapshot, finishTopic, layerSeed, loadFullMnist, type Matrix, type MergeRule, RBM,
  replicaSeed, trainConfig
} from 'spark-dbn';
import { mergeUpdates } from '../ts/service/merge.js';
import { TrainingPool } from '../ts/service/training.js';

interface Settings {
  P: number; H: number; rule: MergeRule; split: 'mod' | 'random' | string[]; splitSeed?: number; seed?: number; counts?: 'own' | 'common';
  full?: boolean; out?: string;
  /** Overrides of the replicas' learning rate and momentum schedule, and the block momentum (eta). */
  lr?: number; momentum?: [number, number][]; eta?: number; epochs?: number;
}
const s = JSON.parse(process.argv[2]) as Settings;
const ROWS = s.full ? 60000 : 20000;
const V = s.full ? 784 : 196;
const HIDDEN = s.full ? 500 : 100;
const BATCH = s.full ? 100 : 25;
const full = loadFullMnist();
const train = s.full ? full.train.images
  : downsample({ ...full.train.images, data: full.train.images.data.subarray(0, ROWS * 784), rows: ROWS }, true);
const seed = s.seed ?? 7;

function rowsOf(rows: number[]): Matrix {
  const out = new Float32Array(rows.length * V);
  rows.forEach((r, i) => out.set(train.data.subarray(r * V, (r + 1) * V), i * V));
  return { data: out, rows: rows.length, cols: V };
}

function split(): Matrix[] {
  if (Array.isArray(s.split)) {
    return s.split.map((f) => {
      const b = readFileSync(f);
      const data = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
      return { data, rows: data.length / V, cols: V };
    });
  }
  const order = Array.from({ length: ROWS }, (_, i) => i);
  if (s.split === 'random') {
    // A seeded Fisher-Yates over mulberry32 (an LCG's low bits, taken mod i + 1, are far from uniform).
    let x = (s.splitSeed ?? 1) >>> 0;
    const next = (): number => {
      x = (x + 0x6d2b79f5) >>> 0;
      let t = Math.imul(x ^ (x >>> 15), x | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    for (let i = ROWS - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
  }
  return Array.from({ length: s.P }, (_, p) => rowsOf(order.filter((_, i) => i % s.P === p)));
}

const shards = split();
const P = shards.length;
const pool = new TrainingPool({ workers: 2, threadsPerWorker: 1, cacheBytes: 1 << 30 });
for (let p = 0; p < P; p++) await pool.cache(`replay/${p}`, [shards[p].data], V, null);
// A run's initial layer (InitLayer: the engine's layerSeed) and its per-partition replica seeds (the engine's replicaSeed).
let dbn = new DBN([RBM.create({ nVisible: V, nHidden: HIDDEN, visible: 'bernoulli' }, { seed: layerSeed(seed, 0), means: columnMeans(train) })]);
// As the JVM counts (DistributedTrainer.trainTopic): every replica trains the mean partition's batches an
// epoch; "own" counts each partition's own ceil(rows / batch), as the JVM did before session 9.
const common = Math.ceil(shards.reduce((a, m) => a + m.rows, 0) / (shards.length * BATCH));
const perEpoch = shards.map((m) => (s.counts === 'own' ? Math.ceil(m.rows / BATCH) : common));
const total = perEpoch.map((n) => n * (s.epochs ?? 10));
const done = shards.map(() => 0);
let momentum: Float32Array<ArrayBufferLike> = new Float32Array(0);
const settings = { rule: s.rule, replicas: P, mode: 'sync' as const, ...(s.eta !== undefined ? { blockMomentum: s.eta } : {}) };
while (done.some((d, p) => d < total[p])) {
  const plain = (await decodeSnapshot(await encodeSnapshot(dbn))).toPlain();
  const outs = await Promise.all(shards.map((_, p) => {
    const n = Math.min(s.H, total[p] - done[p]);
    if (n <= 0) return null;
    const config = trainConfig({ batchSize: BATCH, learningRate: s.lr ?? 0.05, momentum: s.momentum ?? [[0, 0.5], [5, 0.9]], weightDecay: 2e-4,
      seed: replicaSeed(seed, 0, p) });
    const job = { session: `replay/${p}`, modelVersion: 'v', topic: { kind: 'pretrain' as const, layer: 0, config }, batches: n, epoch: Math.floor(done[p] / perEpoch[p]),
      inputSums: false, independent: false, resetMomentum: false, task: `replay ${p}` };
    done[p] += n;
    return pool.train(job, plain);
  }));
  const m = mergeUpdates(dbn, { updates: outs.flatMap((o) => (o ? [{ bytes: o.update, staleness: 0 }] : [])), settings, momentum, epochs: 0 });
  dbn = m.dbn;
  momentum = m.momentum;
}
if (s.rule === 'bmuf') finishTopic(dbn, 0, settings, momentum);
if (s.out) writeFileSync(s.out, await encodeSnapshot(dbn));
console.log(JSON.stringify({ ...s, recon: dbn.layers[0].reconstructionError(train) }));
await pool.close();
