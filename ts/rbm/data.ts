import type { Kernels } from '../math/kernels.js';
import { loadKernels } from '../math/native.js';
import { DataError } from './errors.js';
import type { VisibleUnits } from './config.js';

/** A row-major matrix of float32: `rows` samples of `cols` features. */
export interface Matrix {
  data: Float32Array;
  rows: number;
  cols: number;
}

export function matrix(data: Float32Array, cols: number): Matrix {
  if (!Number.isInteger(cols) || cols <= 0) throw new DataError(`column count must be a positive integer, got ${cols}`);
  if (data.length % cols !== 0) {
    throw new DataError(`data has ${data.length} values, not a whole number of rows of ${cols} columns`);
  }
  return { data, rows: data.length / cols, cols };
}

/**
 * Checks data before any work: shape, finiteness, and for Bernoulli units
 * the [0, 1] range. Throws a DataError naming the first bad row and column.
 */
export function validateData(m: Matrix, cols: number, units: VisibleUnits, what = 'data'): void {
  if (m.rows === 0) throw new DataError(`${what} is empty: no rows`);
  if (m.cols !== cols) throw new DataError(`${what} has ${m.cols} columns, the model has ${cols} visible units`);
  if (m.data.length !== m.rows * m.cols) {
    throw new DataError(`${what} has ${m.data.length} values, expected ${m.rows} rows x ${m.cols} columns`);
  }
  const bernoulli = units === 'bernoulli';
  // One vectorised pass: NaN fails both comparisons; +-Infinity lies outside +-FLT_MAX.
  const i = loadKernels().firstOutside(m.data, m.data.length, bernoulli ? 0 : -FLT_MAX, bernoulli ? 1 : FLT_MAX);
  if (i < 0) return;
  const x = m.data[i];
  const row = Math.floor(i / cols);
  const col = i % cols;
  const why = Number.isNaN(x) ? 'NaN' : !Number.isFinite(x) ? `${x}` : `${x}, outside [0, 1] for Bernoulli visible units`;
  throw new DataError(`${what} row ${row}, column ${col}: value is ${why}`, row, col, `value is ${why}`);
}

const FLT_MAX = 3.4028234663852886e38;

/** order = a uniformly random permutation of 0..order.length-1 (Fisher-Yates), drawn from rng: part of a seeded run. */
export function shuffleOrder(order: Uint32Array, rng: Uint32Array, kernels: Kernels): void {
  const n = order.length;
  for (let i = 0; i < n; i++) order[i] = i;
  const u = new Float32Array(n);
  kernels.uniform(rng, u, n);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.min(i, Math.floor(u[i] * (i + 1)));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
}

