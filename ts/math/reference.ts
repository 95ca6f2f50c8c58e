import type { Kernels } from './kernels.js';
import { counterUniform, fillUniform, nextKey } from './rng.js';

/** sigmoid in double, rounded once to float32 by the store. */
export function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/** The TypeScript kernels: the reference every fast kernel is tested against, and the fallback. */
export const referenceKernels: Kernels = {
  name: 'ts',

  sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) {
    // Accumulate in double: the reference is the more exact of the two.
    const acc = new Float64Array(N);
    for (let i = 0; i < M; i++) {
      acc.fill(0);
      for (let k = 0; k < K; k++) {
        const a = transA ? A[k * lda + i] : A[i * lda + k];
        if (a === 0) continue;
        if (transB) {
          for (let j = 0; j < N; j++) acc[j] += a * B[j * ldb + k];
        } else {
          const row = k * ldb;
          for (let j = 0; j < N; j++) acc[j] += a * B[row + j];
        }
      }
      const c = i * ldc;
      for (let j = 0; j < N; j++) C[c + j] = alpha * acc[j] + (beta === 0 ? 0 : beta * C[c + j]);
    }
    // A skipped zero must not hide a NaN or infinity elsewhere in that column of B.
    if (M > 0 && N > 0) propagateNonFinite(transA, transB, M, N, K, A, lda, B, ldb, C, ldc);
  },

  sigmoidBias(X, rows, cols, bias) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      for (let c = 0; c < cols; c++) X[o + c] = sigmoid(X[o + c] + (bias ? bias[c] : 0));
    }
  },

  addBias(X, rows, cols, bias) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      for (let c = 0; c < cols; c++) X[o + c] += bias[c];
    }
  },

  uniform(state, out, n) {
    fillUniform(state, out, n);
  },

  bernoulli(P, out, n, state) {
    if (n > 2 ** 32) throw new RangeError(`bernoulli: n=${n} is more than one counter stream (2^32)`);
    const key = nextKey(state);
    for (let i = 0; i < n; i++) {
      const p = P[i];
      out[i] = Number.isNaN(p) ? p : counterUniform(key, i) < p ? 1 : 0;
    }
  },

  colSums(X, rows, cols, out, alpha, beta) {
    const acc = new Float64Array(cols);
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      for (let c = 0; c < cols; c++) acc[c] += X[o + c];
    }
    for (let c = 0; c < cols; c++) out[c] = (beta === 0 ? 0 : beta * out[c]) + alpha * acc[c];
  },

  decayAdd(W, V, n, decay, scale) {
    const sc = Math.fround(scale);
    for (let i = 0; i < n; i++) {
      const v = Math.fround(V[i] - decay * W[i]);
      W[i] += v;
      V[i] = sc * v;
    }
  },

  gatherRows(X, cols, idx, from, n, out) {
    const rows = Math.floor(X.length / cols);
    for (let r = 0; r < n; r++) {
      const i = idx[from + r];
      if (i >= rows) throw new RangeError(`gatherRows: index ${i} is beyond the ${rows} rows`);
      out.set(X.subarray(i * cols, (i + 1) * cols), r * cols);
    }
  },

  firstOutside(X, n, lo, hi) {
    const l = Math.fround(lo);
    const h = Math.fround(hi);
    for (let i = 0; i < n; i++) if (!(X[i] >= l && X[i] <= h)) return i;
    return -1;
  },

  blockMerge(W, D, deltas, weights, n, eta, zeta, nesterov) {
    const P = deltas.length;
    const d0 = deltas[0];
    const w0 = weights[0];
    for (let j = 0; j < n; j++) {
      let g = w0 * d0[j];
      for (let i = 1; i < P; i++) g += weights[i] * deltas[i][j];
      if (D) {
        const d = eta * D[j] + zeta * g;
        D[j] = d;
        W[j] += nesterov ? zeta * g + eta * d : d;
      } else W[j] += g;
    }
  },

  momentumStep(W, V, G, n, lr, momentum, decay) {
    for (let i = 0; i < n; i++) {
      const v = Math.fround(momentum * V[i] + lr * (G[i] - decay * W[i]));
      V[i] = v;
      W[i] += v;
    }
  },
};

/** BLAS semantics: 0 * NaN and 0 * Inf are NaN; the zero-skip above loses that, so restore it. */
function propagateNonFinite(transA: boolean, transB: boolean, M: number, N: number, K: number,
  A: Float32Array, lda: number, B: Float32Array, ldb: number, C: Float32Array, ldc: number): void {
  for (let i = 0; i < M; i++) {
    for (let k = 0; k < K; k++) {
      const a = transA ? A[k * lda + i] : A[i * lda + k];
      if (a !== 0) continue;
      for (let j = 0; j < N; j++) {
        const b = transB ? B[j * ldb + k] : B[k * ldb + j];
        if (!Number.isFinite(b)) C[i * ldc + j] = NaN;
      }
    }
  }
}
