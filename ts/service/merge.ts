import { type BlockSettings, combineUpdates, ConfigError, DBN, encodeSnapshot, mergeInto } from 'spark-dbn';
import { decodeUpdate, type ModelUpdate } from '../io/update.js';

// The driver's side of a merge: the updates decoded from their bytes, the engine's maths
// (rbm/distributed.ts: mergeInto, finishTopic, initLayer) applied, the answer encoded.

export interface MergeArgs {
  /** Each update as its bytes (proto/update.avsc), or decoded already (held by this sidecar). */
  updates: ({ bytes: Uint8Array; staleness: number } | { decoded: ModelUpdate; staleness: number })[];
  settings: BlockSettings;
  /** The topic's block momentum so far; empty: zeros. */
  momentum: Float32Array;
  epochs: number;
}

/** The published model moved, in place, by the updates (decoded here) under the merge rule; answers it and the momentum after it. */
export function mergeUpdates(base: DBN, a: MergeArgs): { dbn: DBN; momentum: Float32Array } {
  const updates = a.updates.map((u, i) =>
    ({ ...('decoded' in u ? u.decoded : decodeUpdate(u.bytes, `updates[${i}]`)), staleness: u.staleness }));
  return { dbn: base, momentum: mergeInto(base, updates, a.settings, a.momentum, a.epochs) };
}

/**
 * The updates of one sync round's replicas as one (the engine's combineUpdates), with their figures: the
 * monitors' means weighted by samples, the longest time.
 */
export function combineHeld(settings: BlockSettings, updates: ModelUpdate[]): ModelUpdate {
  const base = updates[0]?.baseVersion;
  updates.forEach((u, i) => {
    if (u.baseVersion !== base) throw new ConfigError('updates', `update ${i} started from version ${u.baseVersion}, update 0 from ${base}`);
  });
  const c = combineUpdates(settings, updates.map((u) => ({ ...u, staleness: 0 })));
  const mean = (f: (u: ModelUpdate) => number) => (c.samples > 0 ? updates.reduce((a, u) => a + f(u) * u.samples, 0) / c.samples : NaN);
  return { baseVersion: base, layer: c.layer, delta: c.delta, replicas: c.replicas ?? 1, samples: c.samples, batches: c.batches,
    reconstructionError: mean((u) => u.reconstructionError), freeEnergy: mean((u) => u.freeEnergy),
    heldOutFreeEnergy: mean((u) => u.heldOutFreeEnergy), loss: mean((u) => u.loss), accuracy: mean((u) => u.accuracy),
    seconds: Math.max(...updates.map((u) => u.seconds)) };
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
