import { loadKernels } from '../math/native.js';
import { DBN, layerSeed } from './dbn.js';
import { ConfigError } from './errors.js';
import { checkOption, optionDefault, optionSpecs } from './options.js';
import { difference, flatten, paramArrays, paramCount, unflattenInto } from './params.js';
import type { VisibleUnits } from './config.js';
import { RBM } from './rbm.js';

/**
 * The maths of data-parallel training: how the published model moves by the
 * updates of its replicas. The driver's sidecar applies it; the JVM only says
 * which rule, how many replicas and how stale each update is.
 *
 * Every replica starts a block from the published vector Wg, trains H
 * mini-batches and sends delta_i = (its parameters) - Wg. With G = sum_i w_i delta_i:
 *
 *   bmuf     (blockwise model-update filtering with block momentum, Chen & Huo, ICASSP 2016;
 *            CNTK's data-parallel default)
 *              D  <- eta * D + zeta * G             (block momentum, kept by the driver)
 *              W  <- W + D                           (the model)
 *            Classical block momentum broadcasts W itself: Wg = W. In Nesterov's form the next broadcast
 *            is a look-ahead, Wg <- W + eta * D; since W_prev + eta * D_prev = Wg_prev, only (Wg, D) need
 *            be kept:
 *              D' = eta * D + zeta * G;  Wg' = Wg + zeta * G + eta * D';  W = Wg - eta * D.
 *            Default: classical for P = 2, Nesterov's above. The replicas keep their own momentum across a
 *            sync, so under Nesterov's form the look-ahead and their momentum both carry the last block on:
 *            on scripts/bench train's problem at P = 2 (bench/README, "two momenta in series") the classical
 *            form came within a nat of one process, Nesterov's 5-7 nats below. With more replicas the
 *            classical form's slow start (P blocks to full speed) costs more: P = 4 and 8 lost 6 and 98
 *            nats more than Nesterov's on the same problem, P = 8 and 16 2.6 and 10 on scripts/bench scaling's.
 *            Sync weights w_i = 1 / P (G is the mean delta); eta defaults to 1 - 1/P up to
 *            BLOCK_MOMENTUM_MAX_REPLICAS replicas and to 0 (model averaging) above.
 *            Async, each update is merged as it arrives as a block of its own with
 *            w = 1 / max(P, staleness + 1): one arrival is one P-th of a sync block, and a staler one
 *            counts less (Zhang et al., IJCAI 2016). With C replicas in flight an update is about
 *            C - 1 versions old, and momentum applied to such stale deltas overshoots: measured
 *            (bench/scaling-run.ts, 5 epochs, H = 32), eta = 1 - 1/P per arrival matched sync BMUF
 *            with C = 2 (P = 4: -40.2 nats, P = 8: -40.7) and diverged with C = P (-66.7, -186.9).
 *            So async eta defaults to (1 - 1/P)^max(1, C - 1): the momentum a delta would have
 *            compounded over the C - 1 merges it missed.
 *   sum      Wg <- Wg + G, w_i = 1 (async: min(1, P / (staleness + 1))): P replicas make the
 *            progress of one process taking all their steps; overshoots as H grows.
 *   average  Wg <- Wg + G, w_i = samples_i / sum samples (async: 1 / max(P, staleness + 1)):
 *            model averaging; steady, but P replicas progress like one.
 */
export type MergeRule = 'bmuf' | 'sum' | 'average';

export interface BlockSettings {
  rule: MergeRule;
  /** P: the replicas (partitions). */
  replicas: number;
  /** Sync: each merge is one block of all replicas' updates; async: of one arriving update. */
  mode: 'sync' | 'async';
  /** Async: replicas training at once (the task slots), at most P; default P. */
  inFlight?: number;
  /** eta, bmuf only; default 1 - 1/P. */
  blockMomentum?: number;
  /** zeta, bmuf only; default 1. */
  blockLearningRate?: number;
  /** bmuf only: Nesterov's block momentum (the broadcast a look-ahead); default: for P > 2 replicas (see above). */
  nesterov?: boolean;
}

export interface ReplicaDelta {
  delta: Float32Array;
  samples: number;
  /** Versions published between the one the replica started from and the one it is merged into. */
  staleness: number;
}

/**
 * The most replicas for which bmuf's eta defaults to block momentum; with more it defaults to 0, model
 * averaging: on data that needs a cluster, summing many replicas' blocks overshoots (bench/README, "Scale-out").
 */
export const BLOCK_MOMENTUM_MAX_REPLICAS = 4;

/** eta when the user sets none: 1 - 1/P (sync) or (1 - 1/P)^max(1, C - 1) (async) up to BLOCK_MOMENTUM_MAX_REPLICAS, else 0. */
function defaultBlockMomentum(P: number, sync: boolean, C: number): number {
  if (P > BLOCK_MOMENTUM_MAX_REPLICAS) return 0;
  return sync ? 1 - 1 / P : (1 - 1 / P) ** Math.max(1, C - 1);
}

/** The block momentum and block learning rate in force: the defaults filled in and every value checked. */
export function blockRule(s: BlockSettings): { rule: MergeRule; P: number; sync: boolean; eta: number; zeta: number; nesterov: boolean } {
  if (s.rule !== 'bmuf' && s.rule !== 'sum' && s.rule !== 'average') {
    throw new ConfigError('rule', `must be 'bmuf', 'sum' or 'average', got '${s.rule}'`);
  }
  if (!Number.isInteger(s.replicas) || s.replicas < 1) throw new ConfigError('replicas', `must be an integer >= 1, got ${s.replicas}`);
  if (s.mode !== 'sync' && s.mode !== 'async') throw new ConfigError('mode', `must be 'sync' or 'async', got '${s.mode}'`);
  const sync = s.mode === 'sync';
  const C = s.inFlight ?? s.replicas;
  if (!Number.isInteger(C) || C < 1 || C > s.replicas) throw new ConfigError('inFlight', `must be an integer in [1, ${s.replicas}], got ${C}`);
  if (s.rule !== 'bmuf') {
    const given = (['blockMomentum', 'blockLearningRate', 'nesterov'] as const).find((k) => s[k] !== undefined);
    if (given) throw new ConfigError(given, `applies to the 'bmuf' rule only, not '${s.rule}'`);
    return { rule: s.rule, P: s.replicas, sync, eta: 0, zeta: 1, nesterov: false };
  }
  const eta = s.blockMomentum ?? defaultBlockMomentum(s.replicas, sync, C);
  // Ranges and zeta's default: proto/sidecar.proto's BlockRule (the JVM's params check the same).
  const spec = optionSpecs('BlockRule');
  const zeta = s.blockLearningRate ?? (optionDefault(spec.blockLearningRate) as number);
  checkOption('blockMomentum', spec.blockMomentum, eta);
  checkOption('blockLearningRate', spec.blockLearningRate, zeta);
  // Classical at P = 2, Nesterov's above (the contract's BlockRule.nesterov says why).
  const nesterov = s.nesterov ?? s.replicas > 2;
  if (typeof nesterov !== 'boolean') throw new ConfigError('nesterov', 'must be true or false');
  return { rule: 'bmuf', P: s.replicas, sync, eta, zeta, nesterov };
}

/**
 * w_i of each update (see the rules above). An update that combines r replicas' (combineUpdates: their
 * mean, weighted as the rule weighs them) counts as r of them: sync only.
 */
export function mergeWeights(s: BlockSettings, updates: { samples: number; staleness: number; replicas?: number }[]): number[] {
  const { rule, P, sync } = blockRule(s);
  const r = updates.map((u, i) => {
    if (!Number.isInteger(u.staleness) || u.staleness < 0) throw new ConfigError('updates', `staleness ${i} is ${u.staleness}`);
    if (!(u.samples >= 0)) throw new ConfigError('updates', `samples ${i} is ${u.samples}`);
    const replicas = u.replicas ?? 1;
    if (!Number.isInteger(replicas) || replicas < 1) throw new ConfigError('updates', `replicas ${i} is ${replicas}`);
    if (replicas > 1 && !sync) throw new ConfigError('updates', `update ${i} combines ${replicas} replicas: async merges take one at a time`);
    return replicas;
  });
  if (sync) {
    if (rule === 'sum') return r;
    const all = r.reduce((a, b) => a + b, 0);
    if (rule === 'bmuf') return r.map((k) => k / all);
    const total = updates.reduce((a, u) => a + u.samples, 0);
    if (total <= 0) throw new ConfigError('updates', 'trained no samples: nothing to average');
    return updates.map((u) => u.samples / total);
  }
  return updates.map((u) => (rule === 'sum' ? Math.min(1, P / (u.staleness + 1)) : 1 / Math.max(P, u.staleness + 1)));
}

/**
 * One merge, in place: `published` (the flat parameters the replicas started
 * from, the look-ahead under bmuf) and, under bmuf, `momentum` (D, zeros at a
 * topic's start; sum and average neither read nor write it, and take an empty
 * one) move by G = sum_i weights[i] * deltas[i].
 * Accumulates in double; counters are the caller's.
 */
export function mergeBlock(published: Float32Array, momentum: Float32Array, deltas: Float32Array[], weights: number[],
  s: BlockSettings): void {
  const { rule, eta, zeta, nesterov } = blockRule(s);
  const n = published.length;
  if (rule === 'bmuf' && momentum.length !== n) throw new ConfigError('momentum', `has ${momentum.length} values, the trained part has ${n}`);
  if (deltas.length === 0) throw new ConfigError('updates', 'nothing to merge');
  if (weights.length !== deltas.length) throw new ConfigError('weights', `${weights.length} weights for ${deltas.length} updates`);
  deltas.forEach((d, i) => {
    if (d.length !== n) throw new ConfigError('updates', `update ${i} has ${d.length} values, the trained part has ${n}`);
    if (!Number.isFinite(weights[i]) || weights[i] < 0) throw new ConfigError('weights', `weight ${i} is ${weights[i]}`);
  });
  // The kernel sums G in double per parameter in the updates' order (native: a vector loop a delta at a
  // time; the JavaScript loop took ~6 ns a multiply-add, 18 ms for 8 updates of 784-500).
  loadKernels().blockMerge(published, rule === 'bmuf' ? momentum : null, deltas, Float64Array.from(weights), n, eta, zeta,
    nesterov);
}

/**
 * The centre W = Wg - eta * D: under Nesterov's bmuf, the topic's final model (the look-ahead is for replicas
 * only); otherwise the published model is W already.
 */
export function blockCentre(published: Float32Array, momentum: Float32Array, s: BlockSettings): void {
  const { eta, nesterov } = blockRule(s);
  if (momentum.length !== published.length) {
    throw new ConfigError('momentum', `has ${momentum.length} values, the trained part has ${published.length}`);
  }
  if (eta === 0 || !nesterov) return;
  for (let j = 0; j < published.length; j++) published[j] -= eta * momentum[j];
}

// ---------------------------------------------------------------- models
// The same maths on models: what a topic trains, how a replica adopts a published version and
// what it sends back, a merge and a topic's end. The sidecar only decodes, routes and encodes.

const LONG = 64;
const MAX_SAFE = 9007199254740991n;

/**
 * The seed of one replica: partition `partition` training `layer` (-1: fine-tuning) in a run seeded with
 * `runSeed`. Kept distinct per (layer, partition) so replicas sample apart; in 64-bit two's complement
 * (the arithmetic the JVM used when it owned this rule), reduced to a safe integer.
 */
export function replicaSeed(runSeed: number, layer: number, partition: number): number {
  if (!Number.isSafeInteger(runSeed)) throw new ConfigError('runSeed', `must be a safe integer, got ${runSeed}`);
  if (!Number.isInteger(layer) || layer < -1) throw new ConfigError('layer', `must be an integer >= -1, got ${layer}`);
  if (!Number.isInteger(partition) || partition < 0) throw new ConfigError('partition', `must be an integer >= 0, got ${partition}`);
  const wrap = (x: bigint) => BigInt.asIntN(LONG, x);
  const s = wrap(wrap(wrap(BigInt(runSeed) * 1000003n) + BigInt(layer + 2) * 7919n) + BigInt(partition) * 104729n);
  return Number(s % MAX_SAFE);
}

export interface InitLayerArgs {
  /** The model so far; null for the first layer. */
  base: DBN | null;
  sizes: number[];
  /** Layer to add, or -1 for the soft-max layer. */
  layer: number;
  visible: VisibleUnits;
  inputMeans: number[];
  /** Layer 0, Gaussian: the inputs' standard deviations; with the means, the model's input scaling. Empty: none. */
  inputStddevs?: number[];
  classes: number;
  seed: number;
}

/**
 * A new model: `base` with layer `layer` added, initialised after Hinton's guide from the data's
 * input means; or `base` with a fresh soft-max layer for `classes`. `base` itself is not changed.
 */
export function initLayer(a: InitLayerArgs): DBN {
  if (a.layer === -1) {
    if (!a.base) throw new ConfigError('base', 'the soft-max layer goes on a pre-trained model; base is empty');
    const dbn = a.base.clone();
    dbn.initOutput(a.classes, a.seed);
    return dbn;
  }
  const have = a.base ? a.base.layers.length : 0;
  if (a.layer !== have) throw new ConfigError('layer', `is ${a.layer}, but the base model has ${have} layers: the next is ${have}`);
  if (a.layer + 1 >= a.sizes.length) throw new ConfigError('layer', `is ${a.layer}; sizes [${a.sizes}] have ${a.sizes.length - 1} layers`);
  const stddevs = a.inputStddevs ?? [];
  const scaled = a.layer === 0 && stddevs.length > 0;
  if (scaled && a.visible !== 'gaussian') throw new ConfigError('inputStddevs', 'standardising the input needs Gaussian visible units');
  const scaling = scaled ? { mean: Float64Array.from(a.inputMeans), std: Float64Array.from(stddevs) } : null;
  const rbm = RBM.create(
    { nVisible: a.sizes[a.layer], nHidden: a.sizes[a.layer + 1], visible: a.layer === 0 ? a.visible : 'bernoulli' },
    // The same per-layer seed as DBN.create, so a one-process run starts alike. Standardised input has mean 0.
    { seed: layerSeed(a.seed, a.layer), means: scaling ? new Float64Array(a.inputMeans.length) : a.inputMeans },
  );
  const dbn = new DBN(a.base ? [...a.base.layers.map((l) => l.clone()), rbm] : [rbm]);
  dbn.setInputScaling(scaling ?? a.base?.inputScaling ?? null);
  return dbn;
}

/** The trained part of a model: one RBM layer, or (layer -1) the whole fine-tuned network. */
export function trainedPart(model: DBN, layer: number): RBM | DBN {
  if (layer === -1) {
    if (!model.output) throw new ConfigError('layer', 'fine-tuning (layer -1) needs a model with a soft-max layer');
    return model;
  }
  if (!Number.isInteger(layer) || layer < 0 || layer >= model.layers.length) {
    throw new ConfigError('layer', `${layer} is not in the model (${model.layers.length} layers)`);
  }
  return model.layers[layer];
}

/** A replica's parameters become the published ones (its momentum, chains and position stay its own). */
export function adoptPublished(replica: RBM | DBN, published: RBM | DBN): void {
  if (replica instanceof RBM && published instanceof RBM) {
    replica.W.set(published.W);
    replica.vBias.set(published.vBias);
    replica.hBias.set(published.hBias);
  } else {
    unflattenInto(replica, flatten(published));
  }
}

/** What a replica sends after a round: its parameters minus the published ones it started from, flat. */
export function replicaDelta(replica: RBM | DBN, published: RBM | DBN): Float32Array {
  return difference(flatten(replica), flatten(published));
}

/** One replica's round as a merge takes it. */
export interface BlockUpdate {
  /** The trained part: an RBM layer, or -1 for fine-tuning. */
  layer: number;
  delta: Float32Array;
  samples: number;
  batches: number;
  /** Versions published between the one the replica started from and the one it is merged into. */
  staleness: number;
  /** Replicas whose rounds this update combines (combineUpdates); default 1. */
  replicas?: number;
}

/**
 * The updates of several replicas of one sync round as one (where they were trained, so that one crosses to
 * the driver instead of each): the mean of their deltas weighted as the merge would weigh them (by replicas
 * under bmuf and sum, by samples under average), their samples, batches and replicas summed. Merging the
 * combined updates of any grouping gives the merge of all of them, up to float32 rounding of the mean.
 */
export function combineUpdates(settings: BlockSettings, updates: BlockUpdate[]): BlockUpdate {
  if (updates.length === 0) throw new ConfigError('updates', 'nothing to combine');
  const { rule, sync } = blockRule(settings);
  if (!sync) throw new ConfigError('mode', 'async merges take each update as it arrives: nothing to combine');
  const { layer } = updates[0];
  const n = updates[0].delta.length;
  updates.forEach((u, i) => {
    if (u.layer !== layer) throw new ConfigError('updates', `update ${i} is for layer ${u.layer}, update 0 for layer ${layer}`);
    if (u.delta.length !== n) throw new ConfigError('updates', `update ${i} has ${u.delta.length} values, update 0 has ${n}`);
    if (u.staleness !== 0) throw new ConfigError('updates', `update ${i} has staleness ${u.staleness}: a sync round's are 0`);
  });
  // The merge's own weights, normalised: the combined update then weighs what its parts did together.
  const w = mergeWeights(settings, updates);
  const total = w.reduce((a, b) => a + b, 0);
  const delta = new Float32Array(n);
  if (total > 0) mergeBlock(delta, new Float32Array(0), updates.map((u) => u.delta), w.map((x) => x / total), { rule: 'sum', replicas: updates.length, mode: 'sync' });
  const sum = (f: (u: BlockUpdate) => number) => updates.reduce((a, u) => a + f(u), 0);
  return { layer, delta, samples: sum((u) => u.samples), batches: sum((u) => u.batches), staleness: 0, replicas: sum((u) => u.replicas ?? 1) };
}

/** The momentum as the merge needs it: empty means zeros. */
function momentumFor(part: RBM | DBN, m: Float32Array): Float32Array {
  const n = paramCount(part);
  if (m.length === 0) return new Float32Array(n);
  if (m.length !== n) throw new ConfigError('momentum', `has ${m.length} values, the trained part has ${n}`);
  return m;
}

/**
 * A merge, in place: the published model `base` moved by the updates under the rule, its trained
 * part's counters advanced (`epochs`: epochs completed meanwhile). Answers the momentum after it
 * (empty under rules that keep none).
 */
export function mergeInto(base: DBN, updates: BlockUpdate[], settings: BlockSettings, momentum: Float32Array, epochs: number): Float32Array {
  if (updates.length === 0) throw new ConfigError('updates', 'nothing to merge');
  const layer = updates[0].layer;
  updates.forEach((u, i) => {
    if (u.layer !== layer) throw new ConfigError('updates', `update ${i} is for layer ${u.layer}, update 0 for layer ${layer}`);
  });
  const part = trainedPart(base, layer);
  const m = blockRule(settings).rule === 'bmuf' ? momentumFor(part, momentum) : new Float32Array(0);
  const weights = mergeWeights(settings, updates);
  // Checked whole before any array moves (the loop below merges one parameter array at a time).
  const n = paramCount(part);
  updates.forEach((u, i) => {
    if (u.delta.length !== n) throw new ConfigError('updates', `update ${i} has ${u.delta.length} values, the trained part has ${n}`);
  });
  // Each parameter array in place, with its stretch of the flat momentum and deltas (no flat copy).
  let o = 0;
  for (const a of paramArrays(part)) {
    const end = o + a.length;
    mergeBlock(a, m.length > 0 ? m.subarray(o, end) : m, updates.map((u) => u.delta.subarray(o, end)), weights, settings);
    o = end;
  }
  const c = layer === -1 ? base.fineTuneCounters : base.layers[layer].counters;
  c.updates += updates.reduce((s, u) => s + u.batches, 0);
  c.samples += updates.reduce((s, u) => s + u.samples, 0);
  c.epochs += epochs;
  return m;
}

/** A topic's final model, in place: the centre under Nesterov's bmuf (base - eta D), the base itself otherwise. */
export function finishTopic(base: DBN, layer: number, settings: BlockSettings, momentum: Float32Array): DBN {
  const part = trainedPart(base, layer);
  const published = flatten(part);
  blockCentre(published, momentumFor(part, momentum), settings);
  unflattenInto(part, published);
  return base;
}
