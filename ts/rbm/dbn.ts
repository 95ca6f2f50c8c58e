import type { Kernels } from '../math/kernels.js';
import { fillNormal, newRngState } from '../math/rng.js';
import { type Matrix, validateData } from './data.js';
import { ConfigError, DataError } from './errors.js';
import type { EpochStats, RBMTrainConfig, VisibleUnits } from './config.js';
import { RBM } from './rbm.js';
import { BackpropTrainer, type FineTuneConfig, fineTuneConfig, type FineTuneStats } from './finetune.js';

/** The soft-max output layer added by fine-tuning: W (nIn, nClasses), bias (nClasses). */
export interface SoftmaxLayer {
  nIn: number;
  nClasses: number;
  W: Float32Array;
  bias: Float32Array;
}

/** The seed of layer l's initial weights in a stack seeded with `seed` (DBN.create and the distributed initLayer alike). */
export function layerSeed(seed: number, layer: number): number {
  return seed * 31 + layer;
}


/**
 * Standardisation a model applies to its raw input before its first layer: x'_i = (x_i - mean_i) / std_i.
 * Gaussian visible units have unit variance, so a model of real-valued columns carries its columns'
 * statistics (measured on the training data) and its users pass raw values to training and scoring.
 */
export interface InputScaling {
  mean: Float64Array;
  std: Float64Array;
}

/** Checks a scaling against n inputs; throws ConfigError naming the first bad input. */
export function checkInputScaling(s: InputScaling, n: number): void {
  if (s.mean.length !== n || s.std.length !== n) {
    throw new ConfigError('inputScaling', `has ${s.mean.length} means and ${s.std.length} deviations for ${n} inputs`);
  }
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(s.mean[i])) throw new ConfigError('inputScaling', `input ${i}: mean is ${s.mean[i]}`);
    if (!(Number.isFinite(s.std[i]) && s.std[i] > 0)) {
      throw new ConfigError('inputScaling', `input ${i}: standard deviation is ${s.std[i]}${s.std[i] === 0 ? ' (a constant input)' : ''}; it must be positive`);
    }
  }
}

/** A DBN as plain data (DBN.toPlain), to cross a worker thread's boundary. */
export interface PlainDBN {
  inputScaling: InputScaling | null;
  layers: { nVisible: number; nHidden: number; visible: VisibleUnits; W: Float32Array; vBias: Float32Array; hBias: Float32Array;
    counters: { epochs: number; updates: number; samples: number } }[];
  output: SoftmaxLayer | null;
  fineTuneCounters: { epochs: number; updates: number; samples: number };
}

/**
 * A deep belief network: a stack of RBMs where each layer's visible units are
 * the previous layer's hidden units, plus, once fine-tuned, a soft-max layer.
 */
export class DBN {
  output: SoftmaxLayer | null = null;
  /** Fine-tuning so far. */
  readonly fineTuneCounters = { epochs: 0, updates: 0, samples: 0 };
  private scaling: InputScaling | null = null;

  constructor(readonly layers: RBM[], output: SoftmaxLayer | null = null) {
    if (layers.length === 0) throw new ConfigError('layers', 'a DBN needs at least one RBM');
    for (let l = 1; l < layers.length; l++) {
      if (layers[l].nVisible !== layers[l - 1].nHidden) {
        throw new ConfigError('layers', `layer ${l} has ${layers[l].nVisible} visible units, layer ${l - 1} has ${layers[l - 1].nHidden} hidden`);
      }
      if (layers[l].visible !== 'bernoulli') throw new ConfigError('layers', `layer ${l} must have Bernoulli visible units`);
    }
    if (output) {
      if (output.nIn !== this.top.nHidden) throw new ConfigError('output', `takes ${output.nIn} inputs, the top layer has ${this.top.nHidden}`);
      if (output.W.length !== output.nIn * output.nClasses || output.bias.length !== output.nClasses) {
        throw new ConfigError('output', 'weights and bias do not match its shape');
      }
    }
    this.output = output;
  }

  /** The standardisation of the raw input (null: the input goes to the first layer as it is). */
  get inputScaling(): InputScaling | null {
    return this.scaling;
  }

  /** Sets (or clears, with null) the standardisation; only Gaussian visible units take standardised input. */
  setInputScaling(s: InputScaling | null): void {
    if (s) {
      if (this.layers[0].visible !== 'gaussian') throw new ConfigError('inputScaling', 'needs Gaussian visible units (Bernoulli inputs lie in [0, 1])');
      checkInputScaling(s, this.layers[0].nVisible);
    }
    this.scaling = s;
  }

  /**
   * Raw input (rows, V) -> the first layer's input (rows, V): standardised with the model's scaling,
   * or `data` itself without one. Checks the raw values first (DataError naming row and column).
   */
  scaleInput(data: Matrix): Matrix {
    const l0 = this.layers[0];
    validateData(data, l0.nVisible, l0.visible);
    const s = this.scaling;
    if (!s) return data;
    const V = data.cols;
    const out = new Float32Array(data.data.length);
    for (let r = 0; r < data.rows; r++) {
      const o = r * V;
      for (let i = 0; i < V; i++) out[o + i] = (data.data[o + i] - s.mean[i]) / s.std[i];
    }
    return { data: out, rows: data.rows, cols: V };
  }

  /**
   * Per-row anomaly scores of raw input under the first RBM, on the scaled input: the free energy
   * F(v) (RBM.freeEnergy) and the squared reconstruction error summed over units (RBM.reconstructionErrors).
   */
  scores(data: Matrix): { freeEnergy: Float64Array; reconstructionError: Float64Array } {
    return this.scoresScaled(this.scaleInput(data));
  }

  /** As `scores`, from input already scaled (`scaleInput`) and checked. */
  scoresScaled(scaled: Matrix): { freeEnergy: Float64Array; reconstructionError: Float64Array } {
    const first = this.layers[0];
    return { freeEnergy: first.freeEnergy(scaled), reconstructionError: first.reconstructionErrors(scaled) };
  }

  /**
   * A fresh stack of the given sizes ([784, 500, 500]: two RBMs), each with
   * Hinton's initialisation; the first layer's visible biases come from `data`.
   */
  static create(sizes: number[], opts: { visible?: VisibleUnits; seed: number; data?: Matrix; kernels?: Kernels }): DBN {
    if (sizes.length < 2) throw new ConfigError('sizes', `needs the input size and at least one hidden layer, got [${sizes}]`);
    const layers = [];
    for (let l = 0; l + 1 < sizes.length; l++) {
      layers.push(RBM.create(
        { nVisible: sizes[l], nHidden: sizes[l + 1], visible: l === 0 ? opts.visible ?? 'bernoulli' : 'bernoulli' },
        { seed: layerSeed(opts.seed, l), data: l === 0 ? opts.data : undefined, kernels: opts.kernels },
      ));
    }
    return new DBN(layers);
  }

  /** A deep copy: parameters and counters. */
  clone(): DBN {
    const o = this.output;
    const d = new DBN(this.layers.map((l) => l.clone()), o ? { ...o, W: o.W.slice(), bias: o.bias.slice() } : null);
    Object.assign(d.fineTuneCounters, this.fineTuneCounters);
    const s = this.scaling;
    d.scaling = s ? { mean: s.mean.slice(), std: s.std.slice() } : null;
    return d;
  }

  /**
   * The model as plain data (typed arrays, numbers): what a worker thread's postMessage can clone. Sharing
   * the arrays, not copying them; `fromPlain` of it equals this model. A sidecar's main thread decodes a
   * snapshot once and hands its training workers this, not the bytes to decode again.
   */
  toPlain(): PlainDBN {
    const o = this.output;
    return {
      layers: this.layers.map((l) => ({ nVisible: l.nVisible, nHidden: l.nHidden, visible: l.visible, W: l.W, vBias: l.vBias,
        hBias: l.hBias, counters: { ...l.counters } })),
      output: o ? { nIn: o.nIn, nClasses: o.nClasses, W: o.W, bias: o.bias } : null,
      fineTuneCounters: { ...this.fineTuneCounters },
      inputScaling: this.scaling,
    };
  }

  /** The model of `toPlain`'s data, on its arrays (the shapes are checked as by the constructors). */
  static fromPlain(p: PlainDBN, kernels?: Kernels): DBN {
    const layers = p.layers.map((l) => {
      const rbm = new RBM({ nVisible: l.nVisible, nHidden: l.nHidden, visible: l.visible }, { W: l.W, vBias: l.vBias, hBias: l.hBias }, kernels);
      Object.assign(rbm.counters, l.counters);
      return rbm;
    });
    const d = new DBN(layers, p.output ? { ...p.output } : null);
    Object.assign(d.fineTuneCounters, p.fineTuneCounters);
    if (p.inputScaling) d.setInputScaling(p.inputScaling);
    return d;
  }

  get top(): RBM {
    return this.layers[this.layers.length - 1];
  }

  get kernels(): Kernels {
    return this.layers[0].kernels;
  }

  get sizes(): number[] {
    return [this.layers[0].nVisible, ...this.layers.map((l) => l.nHidden)];
  }

  /**
   * Greedy layer-wise pre-training: layer l learns from layer l-1's hidden
   * probabilities. `cfg` is one config for all layers or one per layer.
   */
  pretrain(data: Matrix, cfg: Partial<RBMTrainConfig> | Partial<RBMTrainConfig>[] = {},
    onEpoch?: (layer: number, s: EpochStats) => void): EpochStats[][] {
    const cfgs = Array.isArray(cfg) ? cfg : this.layers.map(() => cfg);
    if (cfgs.length !== this.layers.length) throw new ConfigError('cfg', `needs ${this.layers.length} layer configs, got ${cfgs.length}`);
    const all: EpochStats[][] = [];
    let input = this.scaleInput(data);
    this.layers.forEach((rbm, l) => {
      all.push(rbm.fit(input, cfgs[l], (s) => onEpoch?.(l, s)));
      if (l + 1 < this.layers.length) input = { data: rbm.hiddenProbs(input), rows: input.rows, cols: rbm.nHidden };
    });
    return all;
  }

  /** The raw input as layer `upTo`'s input (default: the top layer's P(h|v), (rows, top.nHidden)), passed up deterministically. */
  transform(data: Matrix, upTo = this.layers.length): Matrix {
    return this.transformScaled(this.scaleInput(data), upTo);
  }

  /** As `transform`, from input already scaled (`scaleInput`) and checked: nothing is checked again. */
  transformScaled(scaled: Matrix, upTo = this.layers.length): Matrix {
    // Each layer's output is a probability, so no per-layer checks.
    let x = scaled;
    for (let l = 0; l < upTo; l++) {
      const h = new Float32Array(x.rows * this.layers[l].nHidden);
      this.layers[l].hiddenProbsUnchecked(x.data, x.rows, h);
      x = { data: h, rows: x.rows, cols: this.layers[l].nHidden };
    }
    return x;
  }

  /**
   * Generative sampling from the top down (Hinton et al. 2006): Gibbs sampling
   * in the top RBM, then one down pass through the lower layers' generative
   * weights, sampling binary states between layers and returning visible means.
   */
  sample(opts: { chains: number; steps: number; seed: number }): Matrix {
    const top = this.top.sample(opts);
    let h = top.data;
    const rng = newRngState(opts.seed + 1);
    for (let l = this.layers.length - 2; l >= 0; l--) {
      const layer = this.layers[l];
      this.kernels.bernoulli(h, h, h.length, rng);
      const v = new Float32Array(opts.chains * layer.nVisible);
      layer.visibleMeansUnchecked(h, opts.chains, v);
      h = v;
    }
    return { data: h, rows: opts.chains, cols: this.layers[0].nVisible };
  }

  private checkLabels(data: Matrix, labels: Uint8Array | Int32Array, classes: number): void {
    if (labels.length !== data.rows) throw new DataError(`${labels.length} labels for ${data.rows} rows`);
    for (let r = 0; r < labels.length; r++) {
      const y = labels[r];
      if (!Number.isInteger(y) || y < 0 || y >= classes) throw new DataError(`label of row ${r} is ${y}, outside [0, ${classes})`, r);
    }
  }

  /**
   * Supervised fine-tuning: adds a soft-max layer for `classes` (if there is
   * none) and trains the whole stack as a feed-forward network on the
   * cross-entropy, by mini-batch back-propagation with momentum.
   */
  fineTune(data: Matrix, labels: Uint8Array | Int32Array, classes: number, cfg: Partial<FineTuneConfig> = {},
    onEpoch?: (s: FineTuneStats) => void): FineTuneStats[] {
    const c = fineTuneConfig(cfg);
    validateData(data, this.layers[0].nVisible, this.layers[0].visible);
    if (!Number.isInteger(classes) || classes < 2) throw new ConfigError('classes', `must be an integer >= 2, got ${classes}`);
    this.checkLabels(data, labels, classes);
    if (!this.output) this.initOutput(classes, c.seed);
    else if (this.output.nClasses !== classes) {
      throw new ConfigError('classes', `the output layer has ${this.output.nClasses} classes, asked for ${classes}`);
    }
    return new BackpropTrainer(this, c).fit(data, labels, onEpoch);
  }

  /** Adds (or replaces) the soft-max layer: W ~ N(0, 0.01^2), bias 0. */
  initOutput(classes: number, seed: number): SoftmaxLayer {
    if (!Number.isInteger(classes) || classes < 2) throw new ConfigError('classes', `must be an integer >= 2, got ${classes}`);
    const H = this.top.nHidden;
    const W = new Float32Array(H * classes);
    fillNormal(newRngState(seed), W, W.length, 0, 0.01);
    this.output = { nIn: H, nClasses: classes, W, bias: new Float32Array(classes) };
    return this.output;
  }

  /** Checks labels against the output layer; throws DataError naming the first bad row. */
  validateLabels(data: Matrix, labels: Uint8Array | Int32Array): void {
    if (!this.output) throw new ConfigError('output', 'the DBN has no output layer');
    this.checkLabels(data, labels, this.output.nClasses);
  }

  /** Class probabilities (rows, nClasses). */
  predictProba(data: Matrix): Matrix {
    return this.probaFromTop(this.transform(data));
  }

  /** Class probabilities from top-layer features (what `transform` returns), without another pass up the stack. */
  probaFromTop(top: Matrix): Matrix {
    const out = this.output;
    if (!out) throw new ConfigError('output', 'the DBN has no output layer: fine-tune it first');
    const p = new Float32Array(top.rows * out.nClasses);
    this.kernels.sgemm(false, false, top.rows, out.nClasses, out.nIn, 1, top.data, out.nIn, out.W, out.nClasses, 0, p, out.nClasses);
    softmaxRows(p, top.rows, out.nClasses, out.bias);
    return { data: p, rows: top.rows, cols: out.nClasses };
  }

  predict(data: Matrix): Int32Array {
    return argmaxRows(this.predictProba(data));
  }

  accuracy(data: Matrix, labels: ArrayLike<number>): number {
    const y = this.predict(data);
    let ok = 0;
    for (let r = 0; r < y.length; r++) if (y[r] === labels[r]) ok++;
    return ok / y.length;
  }
}

/** The index of each row's largest value (the first one on ties). */
export function argmaxRows(p: Matrix): Int32Array {
  const y = new Int32Array(p.rows);
  for (let r = 0; r < p.rows; r++) {
    let best = 0;
    for (let k = 1; k < p.cols; k++) if (p.data[r * p.cols + k] > p.data[r * p.cols + best]) best = k;
    y[r] = best;
  }
  return y;
}

/** Row-wise soft-max of z + bias in place, computed stably (max subtracted). */
export function softmaxRows(z: Float32Array, rows: number, cols: number, bias: Float32Array): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let m = -Infinity;
    for (let k = 0; k < cols; k++) {
      z[o + k] += bias[k];
      if (z[o + k] > m) m = z[o + k];
    }
    let s = 0;
    for (let k = 0; k < cols; k++) {
      const e = Math.exp(z[o + k] - m);
      z[o + k] = e;
      s += e;
    }
    for (let k = 0; k < cols; k++) z[o + k] /= s;
  }
}
