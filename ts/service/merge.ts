import {
  blockCentre, blockRule, type BlockSettings, ConfigError, DBN, encodeSnapshot, flatten, mergeBlock, mergeWeights,
  paramCount, RBM, unflattenInto, type VisibleUnits
} from 'spark-dbn';
import { decodeUpdate } from '../io/update.js';

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
 * The model with layer `layer` added, initialised after Hinton's guide from the
 * data's input means; or with a fresh soft-max layer for `classes`.
 */
export function initLayer(a: InitLayerArgs): DBN {
  if (a.layer === -1) {
    if (!a.base) throw new ConfigError('base', 'the soft-max layer goes on a pre-trained model; base is empty');
    a.base.initOutput(a.classes, a.seed);
    return a.base;
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
    { seed: a.seed * 31 + a.layer, means: scaling ? new Float64Array(a.inputMeans.length) : a.inputMeans },
  );
  const dbn = a.base ? new DBN([...a.base.layers, rbm]) : new DBN([rbm]);
  dbn.setInputScaling(scaling ?? a.base?.inputScaling ?? null);
  return dbn;
}

export interface MergeArgs {
  updates: { bytes: Uint8Array; staleness: number }[];
  settings: BlockSettings;
  /** The topic's block momentum so far; empty: zeros. */
  momentum: Float32Array;
  epochs: number;
}

/** The trained part of a model: one RBM layer, or (layer -1) the whole fine-tuned network. */
function trainedPart(base: DBN, layer: number): RBM | DBN {
  if (layer === -1) {
    if (!base.output) throw new ConfigError('updates', 'fine-tuning updates need a base with a soft-max layer');
    return base;
  }
  if (!Number.isInteger(layer) || layer < 0 || layer >= base.layers.length) {
    throw new ConfigError('updates', `layer ${layer} is not in the base (${base.layers.length} layers)`);
  }
  return base.layers[layer];
}

/** The momentum as the merge needs it: empty means zeros. */
function momentumFor(part: RBM | DBN, m: Float32Array): Float32Array {
  const n = paramCount(part);
  if (m.length === 0) return new Float32Array(n);
  if (m.length !== n) throw new ConfigError('momentum', `has ${m.length} values, the trained part has ${n}`);
  return m;
}

/**
 * The published model moved, in place, by the updates under the merge rule
 * (ts/rbm/distributed.ts); counters added. Answers the model and the momentum after it.
 */
export function mergeUpdates(base: DBN, a: MergeArgs): { dbn: DBN; momentum: Float32Array } {
  if (a.updates.length === 0) throw new ConfigError('updates', 'nothing to merge');
  const decoded = a.updates.map((u, i) => decodeUpdate(u.bytes, `updates[${i}]`));
  const layer = decoded[0].layer;
  decoded.forEach((u, i) => {
    if (u.layer !== layer) throw new ConfigError('updates', `update ${i} is for layer ${u.layer}, update 0 for layer ${layer}`);
  });
  const part = trainedPart(base, layer);
  // Only block momentum keeps momentum; the other rules neither read nor answer any.
  const momentum = blockRule(a.settings).rule === 'bmuf' ? momentumFor(part, a.momentum) : new Float32Array(0);
  const weights = mergeWeights(a.settings, decoded.map((u, i) => ({ samples: u.samples, staleness: a.updates[i].staleness })));
  const published = flatten(part);
  mergeBlock(published, momentum, decoded.map((u) => u.delta), weights, a.settings);
  unflattenInto(part, published);
  const samples = decoded.reduce((s, u) => s + u.samples, 0);
  const batches = decoded.reduce((s, u) => s + u.batches, 0);
  const c = layer === -1 ? base.fineTuneCounters : base.layers[layer].counters;
  c.updates += batches;
  c.samples += samples;
  c.epochs += a.epochs;
  return { dbn: base, momentum };
}

/** The topic's final model, in place: the centre under BMUF (base - eta D), the base itself otherwise. */
export function finishTopic(base: DBN, layer: number, settings: BlockSettings, momentum: Float32Array): DBN {
  const part = trainedPart(base, layer);
  const published = flatten(part);
  blockCentre(published, momentumFor(part, momentum), settings);
  unflattenInto(part, published);
  return base;
}

export async function snapshotOf(dbn: DBN, trainingConfig: string): Promise<Buffer> {
  let cfg: unknown = {};
  try {
    cfg = trainingConfig ? JSON.parse(trainingConfig) : {};
  } catch {
    throw new ConfigError('trainingConfig', 'is not JSON');
  }
  return encodeSnapshot(dbn, { trainingConfig: cfg });
}
