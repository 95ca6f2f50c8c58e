import { encodeSnapshot } from '../io/snapshot.js';
import { decodeUpdate } from '../io/update.js';
import { DBN } from '../rbm/dbn.js';
import { ConfigError } from '../rbm/errors.js';
import { paramArrays } from '../rbm/params.js';
import { RBM, type VisibleUnits } from '../rbm/rbm.js';

export interface InitLayerArgs {
  /** The model so far; null for the first layer. */
  base: DBN | null;
  sizes: number[];
  /** Layer to add, or -1 for the soft-max layer. */
  layer: number;
  visible: VisibleUnits;
  inputMeans: number[];
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
  const rbm = RBM.create(
    { nVisible: a.sizes[a.layer], nHidden: a.sizes[a.layer + 1], visible: a.layer === 0 ? a.visible : 'bernoulli' },
    // The same per-layer seed as DBN.create, so a one-process run starts alike.
    { seed: a.seed * 31 + a.layer, means: a.inputMeans },
  );
  return a.base ? new DBN([...a.base.layers, rbm]) : new DBN([rbm]);
}

/**
 * base += sum_i w_i delta_i over the parameters the updates trained (one
 * layer, or all for fine-tuning), accumulated in double; counters added.
 */
export function mergeUpdates(base: DBN, updates: { bytes: Uint8Array; weight: number }[], epochs: number): DBN {
  if (updates.length === 0) throw new ConfigError('updates', 'nothing to merge');
  const decoded = updates.map((u, i) => ({ u: decodeUpdate(u.bytes, `updates[${i}]`), w: u.weight }));
  const layer = decoded[0].u.layer;
  let arrays: Float32Array[];
  if (layer === -1) {
    if (!base.output) throw new ConfigError('updates', 'fine-tuning updates need a base with a soft-max layer');
    arrays = paramArrays(base);
  } else {
    if (layer < 0 || layer >= base.layers.length) throw new ConfigError('updates', `layer ${layer} is not in the base (${base.layers.length} layers)`);
    arrays = paramArrays(base.layers[layer]);
  }
  const n = arrays.reduce((s, a) => s + a.length, 0);
  const acc = new Float64Array(n);
  decoded.forEach(({ u, w }, i) => {
    if (u.layer !== layer) throw new ConfigError('updates', `update ${i} is for layer ${u.layer}, update 0 for layer ${layer}`);
    if (u.delta.length !== n) throw new ConfigError('updates', `update ${i} has ${u.delta.length} values, the trained part has ${n}`);
    if (!Number.isFinite(w) || w < 0) throw new ConfigError('updates', `weight ${i} is ${w}`);
    const d = u.delta;
    for (let j = 0; j < n; j++) acc[j] += w * d[j];
  });
  let o = 0;
  for (const a of arrays) {
    for (let j = 0; j < a.length; j++) a[j] += acc[o + j];
    o += a.length;
  }
  const samples = decoded.reduce((s, { u }) => s + u.samples, 0);
  const batches = decoded.reduce((s, { u }) => s + u.batches, 0);
  if (layer === -1) {
    base.fineTuneCounters.updates += batches;
    base.fineTuneCounters.samples += samples;
    base.fineTuneCounters.epochs += epochs;
  } else {
    const c = base.layers[layer].counters;
    c.updates += batches;
    c.samples += samples;
    c.epochs += epochs;
  }
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
