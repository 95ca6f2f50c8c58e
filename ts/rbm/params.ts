import { ConfigError } from './errors.js';
import type { DBN } from './dbn.js';
import type { RBM } from './rbm.js';

/**
 * Parameter averaging for data-parallel training. Every replica of a model
 * exposes its parameters as one flat float32 vector in a fixed order:
 * for each RBM layer W (V x H, row-major), visible bias, hidden bias; then the
 * soft-max layer's W and bias if there is one. Averages accumulate in double.
 */
export function paramArrays(model: RBM | DBN): Float32Array[] {
  if ('layers' in model) {
    const arrays = model.layers.flatMap((l) => [l.W, l.vBias, l.hBias]);
    if (model.output) arrays.push(model.output.W, model.output.bias);
    return arrays;
  }
  return [model.W, model.vBias, model.hBias];
}

export function paramCount(model: RBM | DBN): number {
  return paramArrays(model).reduce((s, a) => s + a.length, 0);
}

/** A copy of the model's parameters as one vector. */
export function flatten(model: RBM | DBN): Float32Array {
  const out = new Float32Array(paramCount(model));
  let o = 0;
  for (const a of paramArrays(model)) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}

/** Writes a flat vector back into the model's parameters. */
export function unflattenInto(model: RBM | DBN, flat: Float32Array): void {
  const n = paramCount(model);
  if (flat.length !== n) throw new ConfigError('params', `has ${flat.length} values, the model has ${n}`);
  let o = 0;
  for (const a of paramArrays(model)) {
    a.set(flat.subarray(o, o + a.length));
    o += a.length;
  }
}

/** sum_r w_r x_r / sum_r w_r over replicas (weights: e.g. samples seen). */
export function weightedAverage(replicas: Float32Array[], weights: number[]): Float32Array {
  if (replicas.length === 0) throw new ConfigError('replicas', 'needs at least one replica');
  if (weights.length !== replicas.length) throw new ConfigError('weights', `${weights.length} weights for ${replicas.length} replicas`);
  const n = replicas[0].length;
  let total = 0;
  replicas.forEach((r, i) => {
    if (r.length !== n) throw new ConfigError('replicas', `replica ${i} has ${r.length} values, replica 0 has ${n}`);
    const w = weights[i];
    if (!Number.isFinite(w) || w < 0) throw new ConfigError('weights', `weight ${i} is ${w}`);
    total += w;
  });
  if (total <= 0) throw new ConfigError('weights', 'sum to zero');
  const acc = new Float64Array(n);
  replicas.forEach((r, i) => {
    const w = weights[i] / total;
    for (let j = 0; j < n; j++) acc[j] += w * r[j];
  });
  return Float32Array.from(acc);
}

/** a - b: the update that takes b to a. */
export function difference(a: Float32Array, b: Float32Array): Float32Array {
  if (a.length !== b.length) throw new ConfigError('params', `lengths differ: ${a.length} and ${b.length}`);
  const d = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) d[i] = a[i] - b[i];
  return d;
}

/** base += scale * delta, in place. */
export function applyUpdate(base: Float32Array, delta: Float32Array, scale = 1): Float32Array {
  if (base.length !== delta.length) throw new ConfigError('params', `lengths differ: ${base.length} and ${delta.length}`);
  for (let i = 0; i < base.length; i++) base[i] += scale * delta[i];
  return base;
}
