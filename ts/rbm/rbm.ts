import type { Kernels } from '../math/kernels.js';
import { loadKernels } from '../math/native.js';
import { fillNormal, newRngState } from '../math/rng.js';
import { type EpochStats, type RBMShape, type RBMTrainConfig, type VisibleUnits } from './config.js';
import { type Matrix, validateData } from './data.js';
import { ConfigError } from './errors.js';
import { RBMTrainer } from './trainer.js';

/** Per-column sums, accumulated in double. */
export function columnSums(m: Matrix): Float64Array {
  const sum = new Float64Array(m.cols);
  for (let r = 0; r < m.rows; r++) for (let c = 0; c < m.cols; c++) sum[c] += m.data[r * m.cols + c];
  return sum;
}

/** Per-column means, accumulated in double. */
export function columnMeans(m: Matrix): Float64Array {
  return columnSums(m).map((s) => s / m.rows);
}

export function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/**
 * A restricted Boltzmann machine: visible units v (Bernoulli or unit-variance
 * Gaussian), Bernoulli hidden units h, energy
 *   Bernoulli: E(v, h) = -b.v - c.h - v'Wh
 *   Gaussian:  E(v, h) = |v - b|^2 / 2 - c.h - v'Wh
 * Parameters: W (V, H) row-major, b = vBias (V), c = hBias (H).
 */
export class RBM {
  readonly nVisible: number;
  readonly nHidden: number;
  readonly visible: VisibleUnits;
  /** W: (V, H), row-major. */
  readonly W: Float32Array;
  readonly vBias: Float32Array;
  readonly hBias: Float32Array;
  /** Training so far: epochs, parameter updates, samples seen. */
  readonly counters = { epochs: 0, updates: 0, samples: 0 };
  readonly kernels: Kernels;

  constructor(shape: RBMShape, params?: { W: Float32Array; vBias: Float32Array; hBias: Float32Array }, kernels?: Kernels) {
    const { nVisible: V, nHidden: H, visible } = shape;
    if (!Number.isInteger(V) || V < 1) throw new ConfigError('nVisible', `must be a positive integer, got ${V}`);
    if (!Number.isInteger(H) || H < 1) throw new ConfigError('nHidden', `must be a positive integer, got ${H}`);
    if (visible !== 'bernoulli' && visible !== 'gaussian') {
      throw new ConfigError('visible', `must be 'bernoulli' or 'gaussian', got '${visible}'`);
    }
    this.nVisible = V;
    this.nHidden = H;
    this.visible = visible;
    this.kernels = kernels ?? loadKernels();
    if (params) {
      if (params.W.length !== V * H) throw new ConfigError('W', `has ${params.W.length} values, expected ${V}x${H}`);
      if (params.vBias.length !== V) throw new ConfigError('vBias', `has ${params.vBias.length} values, expected ${V}`);
      if (params.hBias.length !== H) throw new ConfigError('hBias', `has ${params.hBias.length} values, expected ${H}`);
      this.W = params.W;
      this.vBias = params.vBias;
      this.hBias = params.hBias;
    } else {
      this.W = new Float32Array(V * H);
      this.vBias = new Float32Array(V);
      this.hBias = new Float32Array(H);
    }
  }

  get shape(): RBMShape {
    return { nVisible: this.nVisible, nHidden: this.nHidden, visible: this.visible };
  }

  /**
   * Initialisation after Hinton's practical guide: W ~ N(0, 0.01^2); visible
   * biases log(p / (1 - p)) of the data's per-unit means (Bernoulli), or the
   * means themselves (Gaussian); hidden biases 0.
   */
  static create(shape: RBMShape, opts: { seed: number; data?: Matrix; means?: ArrayLike<number>; weightStd?: number; kernels?: Kernels }): RBM {
    const rbm = new RBM(shape, undefined, opts.kernels);
    fillNormal(newRngState(opts.seed), rbm.W, rbm.W.length, 0, opts.weightStd ?? 0.01);
    let means = opts.means;
    if (opts.data) {
      validateData(opts.data, shape.nVisible, shape.visible);
      means = columnMeans(opts.data);
    }
    if (means) rbm.initVisibleBias(means);
    return rbm;
  }

  /** Visible biases from the data's per-unit means: log(p / (1 - p)) (Bernoulli), or the means (Gaussian). */
  initVisibleBias(means: ArrayLike<number>): void {
    if (means.length !== this.nVisible) throw new ConfigError('means', `has ${means.length} values, the layer has ${this.nVisible} visible units`);
    for (let c = 0; c < this.nVisible; c++) {
      const p = means[c];
      if (!Number.isFinite(p)) throw new ConfigError('means', `value ${c} is ${p}`);
      if (this.visible === 'bernoulli') {
        // Clamp so that a unit that is always off (or on) gets a finite bias.
        const q = Math.min(1 - 1e-3, Math.max(1e-3, p));
        this.vBias[c] = Math.log(q / (1 - q));
      } else {
        this.vBias[c] = p;
      }
    }
  }

  clone(): RBM {
    const r = new RBM(this.shape, { W: this.W.slice(), vBias: this.vBias.slice(), hBias: this.hBias.slice() }, this.kernels);
    Object.assign(r.counters, this.counters);
    return r;
  }

  private checkInput(v: Matrix, what = 'data'): void {
    validateData(v, this.nVisible, this.visible, what);
  }

  /** P(h = 1 | v): (rows, H). Also `transform`. */
  hiddenProbs(v: Matrix, out = new Float32Array(v.rows * this.nHidden)): Float32Array {
    this.checkInput(v);
    this.hiddenProbsUnchecked(v.data, v.rows, out);
    return out;
  }

  /** v: (B, V) -> out (B, H) = sigmoid(v W + c). */
  hiddenProbsUnchecked(v: Float32Array, rows: number, out: Float32Array): void {
    const { nVisible: V, nHidden: H, kernels: k } = this;
    k.sgemm(false, false, rows, H, V, 1, v, V, this.W, H, 0, out, H);
    k.sigmoidBias(out, rows, H, this.hBias);
  }

  /** h: (B, H) -> out (B, V) = E[v | h]: sigmoid(h W' + b), or h W' + b for Gaussian units. */
  visibleMeansUnchecked(h: Float32Array, rows: number, out: Float32Array): void {
    const { nVisible: V, nHidden: H, kernels: k } = this;
    k.sgemm(false, true, rows, V, H, 1, h, H, this.W, H, 0, out, V);
    if (this.visible === 'bernoulli') k.sigmoidBias(out, rows, V, this.vBias);
    else k.addBias(out, rows, V, this.vBias);
  }

  transform(v: Matrix): Float32Array {
    return this.hiddenProbs(v);
  }

  /** E[v | h = P(h|v)]: the mean-field reconstruction, (rows, V). */
  reconstruct(v: Matrix): Float32Array {
    const h = this.hiddenProbs(v);
    const out = new Float32Array(v.rows * this.nVisible);
    this.visibleMeansUnchecked(h, v.rows, out);
    return out;
  }

  /** Per row, the squared reconstruction error summed over units: sum_i (v_i - E[v_i | h = P(h|v)])^2, in double. */
  reconstructionErrors(v: Matrix): Float64Array {
    const rec = this.reconstruct(v);
    const V = this.nVisible;
    const out = new Float64Array(v.rows);
    for (let r = 0; r < v.rows; r++) {
      let s = 0;
      for (let i = r * V; i < (r + 1) * V; i++) {
        const d = v.data[i] - rec[i];
        s += d * d;
      }
      out[r] = s;
    }
    return out;
  }

  /** Mean over rows of `reconstructionErrors`. */
  reconstructionError(v: Matrix): number {
    let s = 0;
    for (const e of this.reconstructionErrors(v)) s += e;
    return s / v.rows;
  }

  /**
   * Free energy F(v) = -log sum_h exp(-E(v, h)), per row, in double:
   *   Bernoulli: -b.v - sum_j softplus(c_j + (vW)_j)
   *   Gaussian:  |v - b|^2 / 2 - sum_j softplus(c_j + (vW)_j)
   */
  freeEnergy(v: Matrix): Float64Array {
    this.checkInput(v);
    const { nVisible: V, nHidden: H } = this;
    const pre = new Float32Array(v.rows * H);
    this.kernels.sgemm(false, false, v.rows, H, V, 1, v.data, V, this.W, H, 0, pre, H);
    const out = new Float64Array(v.rows);
    for (let r = 0; r < v.rows; r++) {
      let f = 0;
      const o = r * V;
      if (this.visible === 'bernoulli') {
        for (let i = 0; i < V; i++) f -= this.vBias[i] * v.data[o + i];
      } else {
        for (let i = 0; i < V; i++) {
          const d = v.data[o + i] - this.vBias[i];
          f += 0.5 * d * d;
        }
      }
      const p = r * H;
      for (let j = 0; j < H; j++) f -= softplus(pre[p + j] + this.hBias[j]);
      out[r] = f;
    }
    return out;
  }

  /** Mean free energy of a data set. */
  meanFreeEnergy(v: Matrix): number {
    const f = this.freeEnergy(v);
    let s = 0;
    for (const x of f) s += x;
    return s / f.length;
  }

  /**
   * Gibbs sampling from the model ("daydreaming"): `chains` chains of `steps`
   * alternating updates, started from `init` rows (or from noise), returning the
   * final visible means (rows = chains).
   */
  sample(opts: { chains: number; steps: number; seed: number; init?: Matrix }): Matrix {
    const { nVisible: V, nHidden: H, kernels: k } = this;
    const n = opts.chains;
    if (!Number.isInteger(n) || n < 1) throw new ConfigError('chains', `must be a positive integer, got ${n}`);
    if (!Number.isInteger(opts.steps) || opts.steps < 1) throw new ConfigError('steps', `must be a positive integer, got ${opts.steps}`);
    const rng = newRngState(opts.seed);
    const v = new Float32Array(n * V);
    if (opts.init) {
      this.checkInput(opts.init, 'init');
      for (let r = 0; r < n; r++) v.set(opts.init.data.subarray((r % opts.init.rows) * V, (r % opts.init.rows + 1) * V), r * V);
    } else if (this.visible === 'bernoulli') {
      k.uniform(rng, v, v.length);
      k.bernoulli(v, v, v.length, rng);
    } else {
      fillNormal(rng, v, v.length);
    }
    const h = new Float32Array(n * H);
    const noise = this.visible === 'gaussian' ? new Float32Array(n * V) : null;
    for (let s = 0; s < opts.steps; s++) {
      this.hiddenProbsUnchecked(v, n, h);
      k.bernoulli(h, h, h.length, rng);
      this.visibleMeansUnchecked(h, n, v);
      if (s === opts.steps - 1) break;
      if (noise) {
        fillNormal(rng, noise, noise.length);
        for (let i = 0; i < v.length; i++) v[i] += noise[i];
      } else {
        k.bernoulli(v, v, v.length, rng);
      }
    }
    return { data: v, rows: n, cols: V };
  }

  /** Trains for `cfg.epochs` epochs; `onEpoch` sees each epoch's figures. */
  fit(data: Matrix, cfg: Partial<RBMTrainConfig> = {}, onEpoch?: (s: EpochStats) => void): EpochStats[] {
    const trainer = new RBMTrainer(this, cfg);
    return trainer.fit(data, onEpoch);
  }
}
