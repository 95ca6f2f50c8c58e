/**
 * The numeric kernels of an RBM step. Two implementations: the TypeScript
 * reference (reference.ts: plain loops, the fallback) and the native fast path
 * (native.ts: OpenBLAS sgemm plus vectorised C loops). Matrices are row-major
 * Float32Array; every kernel works in place on the arrays it is given.
 */
export interface Kernels {
  /** "openblas" or "ts". */
  readonly name: string;
  /** C (M, N) = alpha * op(A) (M, K) * op(B) (K, N) + beta * C; op transposes when its flag is set. */
  sgemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: Float32Array, lda: number, B: Float32Array, ldb: number, beta: number, C: Float32Array, ldc: number): void;
  /** X (rows, cols) = sigmoid(X + bias) in place; bias (cols) may be null. NaN stays NaN. */
  sigmoidBias(X: Float32Array, rows: number, cols: number, bias: Float32Array | null): void;
  /** X (rows, cols) += bias (cols) on every row. */
  addBias(X: Float32Array, rows: number, cols: number, bias: Float32Array): void;
  /** out[0..n) = uniforms in [0, 1) from the 16-lane xoshiro128** state (rng.ts). */
  uniform(state: Uint32Array, out: Float32Array, n: number): void;
  /**
   * out[i] = u_i < P[i] ? 1 : 0, u_i = counterUniform(key, i) for one key drawn from the state
   * (rng.ts nextKey); NaN stays NaN; P and out may alias; n at most 2^32.
   */
  bernoulli(P: Float32Array, out: Float32Array, n: number, state: Uint32Array): void;
  /** out (cols) = beta * out + alpha * (sum over rows of X (rows, cols)). */
  colSums(X: Float32Array, rows: number, cols: number, out: Float32Array, alpha: number, beta: number): void;
  /** V = momentum * V + lr * (G - decay * W); W += V, over the first n elements. */
  momentumStep(W: Float32Array, V: Float32Array, G: Float32Array, n: number, lr: number, momentum: number, decay: number): void;
  /**
   * V -= decay * W; W += V; V *= scale: the end of an update whose V holds momentum * V + lr * G,
   * scale the next update's momentum (so that its gradient product adds to V with beta = 1).
   */
  decayAdd(W: Float32Array, V: Float32Array, n: number, decay: number, scale: number): void;
  /** out (n, cols) = rows idx[from..from+n) of X (rows, cols): a mini-batch. RangeError for an index past the end. */
  gatherRows(X: Float32Array, cols: number, idx: Uint32Array, from: number, n: number, out: Float32Array): void;
  /**
   * A merge of replicas' updates over the first n elements: G_j = sum_i weights[i] * deltas[i][j] in
   * double, in the updates' order; with D (block momentum) d = eta * D_j + zeta * G_j, D_j = d, then
   * W_j += d (classical), or W_j += zeta * G_j + eta * d when `nesterov` (W the look-ahead; d in double);
   * without D (null), W_j += G_j. At least one delta.
   */
  blockMerge(W: Float32Array, D: Float32Array | null, deltas: Float32Array[], weights: Float64Array, n: number,
    eta: number, zeta: number, nesterov: boolean): void;
  /** Index of the first X[i], i < n, outside [lo, hi] or NaN; -1 when there is none. */
  firstOutside(X: Float32Array, n: number, lo: number, hi: number): number;
}
