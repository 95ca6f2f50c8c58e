// One point of `scripts/bench scaleout`: P replicas of CD-1 784-<hidden> on the deformed digits, in one process
// with the engine's own replica trainer and merge (replica-sim.ts), the test log-likelihood of the untouched
// MNIST test digits (thresholded at 0.5) by AIS at chosen sample counts; with `target`, it stops at the first
// check that reaches it and prints the samples it took, linearly interpolated between the last two checks.
//   node out/bench/scaleout-run.js <json settings>   prints a JSON line per check, then a summary line
import { readFileSync } from 'node:fs';
import {
  ais, blockRule, type BlockSettings, columnMeans, defaultTrainConfig, loadFullMnist, logLikelihood, type Matrix, RBM, scheduleAt,
  setBlasThreads
} from 'spark-dbn';
import { Replicas } from './replica-sim.js';

interface Settings {
  /** Rows of 784 bytes (bench/parquet_bytes.py's output). */
  data: string;
  P: number;
  /** Mini-batches a replica trains between syncs. */
  H: number;
  /** Total samples (all replicas) at which to measure; the run stops after the last. */
  checks: number[];
  /** Stop at the first check whose log-likelihood is at least this. */
  target?: number;
  hidden: number;
  batch: number;
  seed: number;
  /** The replicas' learning rate (default the engine's), times lrScale. */
  lr?: number;
  lrScale?: number;
  eta?: number;
  zeta?: number;
  nesterov?: boolean;
  /** Post-local SGD: sync every warmupH mini-batches until warmupSamples, then every H. */
  warmupSamples?: number;
  warmupH?: number;
  /** Block momentum ramped linearly from 0 over this many rounds. */
  etaRampRounds?: number;
  aisRuns: number;
  aisTemperatures: number;
  /** BLAS threads (default: the engine's, the cores). */
  threads?: number;
}

const s = JSON.parse(process.argv[2]) as Settings;
if (s.threads) setBlasThreads(s.threads);
const V = 784;
const bytes = readFileSync(s.data);
const rows = bytes.length / V;
if (!Number.isInteger(rows)) throw new Error(`${s.data}: ${bytes.length} bytes is not a whole number of ${V}-byte rows`);

/** Rows r = p, p + P, ... as floats in [0, 1] (bench/shard.ts's dealing, from bytes). */
function shardOf(p: number, P: number, limit = rows): Matrix {
  const n = Math.ceil((limit - p) / P);
  const out = new Float32Array(n * V);
  for (let i = 0; i < n; i++) {
    const from = (p + i * P) * V;
    for (let j = 0; j < V; j++) out[i * V + j] = bytes[from + j] / 255;
  }
  return { data: out, rows: n, cols: V };
}

const base = shardOf(0, 1, Math.min(rows, 10000)); // AIS base rates and the initial visible biases
const test = loadFullMnist().test.images;
const testBinary: Matrix = { ...test, data: test.data.map((v) => (v > 0.5 ? 1 : 0)) };
// The engine's own learning rate unless the settings change it.
const lr = s.lr ?? scheduleAt(defaultTrainConfig.learningRate, 0);
const cfg = { batchSize: s.batch, ...(s.lr !== undefined || s.lrScale !== undefined ? { learningRate: lr * (s.lrScale ?? 1) } : {}) };
const model = RBM.create({ nVisible: V, nHidden: s.hidden, visible: 'bernoulli' }, { seed: s.seed, means: columnMeans(base) });
const shards = Array.from({ length: s.P }, (_, p) => shardOf(p, s.P));
const sim = new Replicas(model, shards, cfg, s.seed);

const settingsAt = (round: number): BlockSettings => {
  // A ramp goes to eta, or to block momentum's 1 - 1/P (what the engine gives only up to a few replicas).
  const eta = s.etaRampRounds ? (s.eta ?? 1 - 1 / s.P) * Math.min(1, round / s.etaRampRounds) : s.eta;
  return { rule: 'bmuf', replicas: s.P, mode: 'sync', ...(eta !== undefined ? { blockMomentum: eta } : {}),
    ...(s.zeta !== undefined ? { blockLearningRate: s.zeta } : {}), ...(s.nesterov !== undefined ? { nesterov: s.nesterov } : {}) };
};
const all = shards.map((_, p) => p);
const t0 = performance.now();
let samples = 0;
let trainSeconds = 0;
let last: { samples: number; ll: number } | null = null;
let reached: number | null = null;
for (const check of s.checks) {
  const t1 = performance.now();
  while (samples < check) {
    const H = s.warmupSamples && samples < s.warmupSamples ? (s.warmupH ?? 1) : s.H;
    sim.round(all, () => H, settingsAt(sim.rounds));
    samples += s.P * H * s.batch;
  }
  trainSeconds += (performance.now() - t1) / 1000;
  const m = sim.current(settingsAt(sim.rounds));
  const ll = logLikelihood(m, testBinary, ais(m, { runs: s.aisRuns, temperatures: s.aisTemperatures, data: base, seed: 1 }).logZ);
  console.log(JSON.stringify({ P: s.P, samples, ll, rounds: sim.rounds, trainSeconds, seconds: (performance.now() - t0) / 1000 }));
  if (s.target !== undefined && ll >= s.target) {
    reached = last && last.ll < s.target ? last.samples + ((s.target - last.ll) / (ll - last.ll)) * (samples - last.samples) : samples;
    break;
  }
  last = { samples, ll };
}
const rule = blockRule(settingsAt(sim.rounds));
console.log(JSON.stringify({ summary: true, ...s, rows, rule: { eta: rule.eta, zeta: rule.zeta, nesterov: rule.nesterov }, samplesToTarget: reached, finalSamples: samples, finalLL: last && reached === null ? last.ll : undefined,
  rounds: sim.rounds, trainSeconds, samplesPerSecond: samples / trainSeconds, peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024) }));
