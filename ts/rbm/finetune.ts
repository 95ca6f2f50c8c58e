import { newRngState } from '../math/rng.js';
import { type Matrix, shuffleOrder } from './data.js';
import { type DBN, softmaxRows } from './dbn.js';
import { defaultsOf, withDefaults } from './options.js';
import { type Schedule, scheduleAt } from './schedule.js';

/** Supervised fine-tuning of the whole stack. */
export interface FineTuneConfig {
  /** Passes over the labelled data. */
  epochs: number;
  /** Rows per mini-batch. */
  batchSize: number;
  /** Step size, constant or by epoch. */
  learningRate: Schedule;
  /** Momentum, constant or by epoch. */
  momentum: Schedule;
  /** L2 penalty on weights. */
  weightDecay: number;
  /** Seed of the shuffling and of the output layer's initial weights. */
  seed: number;
}

/** Every option at its default (proto/engine.proto's FineTuneConfig owns the defaults and ranges). */
export const defaultFineTuneConfig: FineTuneConfig = Object.freeze(defaultsOf<FineTuneConfig>('FineTuneConfig'));

/** Fills defaults and checks every field against its range; throws ConfigError naming the first bad one. */
export function fineTuneConfig(c: Partial<FineTuneConfig> = {}): FineTuneConfig {
  return withDefaults<FineTuneConfig>('FineTuneConfig', c, 'a fine-tuning option');
}

export interface FineTuneStats {
  epoch: number;
  /** Mean cross-entropy over the epoch's mini-batches. */
  loss: number;
  /** Accuracy on the training data, measured during the epoch. */
  accuracy: number;
  seconds: number;
}
/** What a run of fine-tuning mini-batches measured. */
export interface BackpropRound {
  /** Summed cross-entropy over the rows trained. */
  lossSum: number;
  correct: number;
  samples: number;
}

/**
 * Back-propagation through the stack (recognition weights W, hidden biases)
 * and the soft-max layer. Holds what survives between calls (momentum, RNG,
 * position in the shuffled rows), so replicas of distributed fine-tuning call
 * `runBatches` a round at a time.
 */
export class BackpropTrainer {
  private readonly acts: Float32Array[];
  private readonly deltas: Float32Array[];
  private readonly gW: Float32Array[];
  private readonly gc: Float32Array[];
  private readonly vW: Float32Array[];
  private readonly vc: Float32Array[];
  private readonly probs: Float32Array;
  private readonly dOut: Float32Array;
  private readonly rng: Uint32Array;

  constructor(readonly dbn: DBN, readonly cfg: FineTuneConfig) {
    const B = cfg.batchSize;
    const sizes = dbn.sizes;
    const out = dbn.output!;
    // acts[l]: (B, sizes[l]); acts[0] is the batch.
    this.acts = sizes.map((n) => new Float32Array(B * n));
    this.deltas = sizes.slice(1).map((n) => new Float32Array(B * n));
    this.gW = [...dbn.layers.map((l) => new Float32Array(l.W.length)), new Float32Array(out.W.length)];
    this.gc = [...dbn.layers.map((l) => new Float32Array(l.nHidden)), new Float32Array(out.nClasses)];
    this.vW = this.gW.map((g) => new Float32Array(g.length));
    this.vc = this.gc.map((g) => new Float32Array(g.length));
    this.probs = new Float32Array(B * out.nClasses);
    this.dOut = new Float32Array(B * out.nClasses);
    this.rng = newRngState(cfg.seed + 7);
    this.labelBatch = new Int32Array(B);
  }

  private order: Uint32Array = new Uint32Array(0);
  private cursor = 0;
  private readonly labelBatch: Int32Array;

  /** Fine-tunes on raw input (scaled here by the model's scaling, once). */
  fit(raw: Matrix, labels: ArrayLike<number>, onEpoch?: (s: FineTuneStats) => void): FineTuneStats[] {
    const data = this.dbn.scaleInput(raw);
    const stats: FineTuneStats[] = [];
    const perEpoch = Math.ceil(data.rows / this.cfg.batchSize);
    for (let e = 0; e < this.cfg.epochs; e++) {
      const t0 = performance.now();
      const r = this.runBatches(data, labels, perEpoch);
      this.dbn.fineTuneCounters.epochs++;
      const s = { epoch: this.dbn.fineTuneCounters.epochs, loss: r.lossSum / r.samples, accuracy: r.correct / r.samples,
        seconds: (performance.now() - t0) / 1000 };
      stats.push(s);
      onEpoch?.(s);
    }
    return stats;
  }

  /**
   * Runs `count` mini-batch updates, continuing through a shuffled order of the
   * rows (reshuffled whenever it is used up), at the schedules' values for the
   * DBN's current fine-tuning epoch. Data (already scaled: DBN.scaleInput) and labels are trusted: check them first.
   */
  runBatches(data: Matrix, labels: ArrayLike<number>, count: number): BackpropRound {
    const epoch = this.dbn.fineTuneCounters.epochs;
    const lr = scheduleAt(this.cfg.learningRate, epoch);
    const mom = scheduleAt(this.cfg.momentum, epoch);
    const r: BackpropRound = { lossSum: 0, correct: 0, samples: 0 };
    if (this.order.length !== data.rows) {
      this.order = new Uint32Array(data.rows);
      this.cursor = data.rows;
    }
    for (let b = 0; b < count; b++) {
      if (this.cursor >= data.rows) {
        shuffleOrder(this.order, this.rng, this.dbn.kernels);
        this.cursor = 0;
      }
      const n = Math.min(this.cfg.batchSize, data.rows - this.cursor);
      this.dbn.kernels.gatherRows(data.data, data.cols, this.order, this.cursor, n, this.acts[0]);
      for (let i = 0; i < n; i++) this.labelBatch[i] = labels[this.order[this.cursor + i]];
      this.cursor += n;
      const [l, c] = this.step(n, this.labelBatch, lr, mom);
      r.lossSum += l;
      r.correct += c;
      r.samples += n;
    }
    return r;
  }

  /** Momentum buffers to zero, e.g. when a replica starts a block from a newly published model. */
  resetMomentum(): void {
    for (const v of [...this.vW, ...this.vc]) v.fill(0);
  }

  /** One mini-batch: forward, cross-entropy, backward, momentum update. Returns (summed loss, correct). */
  private step(n: number, y: Int32Array, lr: number, mom: number): [number, number] {
    const { dbn, acts, deltas } = this;
    const k = dbn.kernels;
    const L = dbn.layers.length;
    const out = dbn.output!;
    const C = out.nClasses;
    // Forward: acts[l + 1] (n, H_l) = sigmoid(acts[l] W_l + c_l).
    for (let l = 0; l < L; l++) dbn.layers[l].hiddenProbsUnchecked(acts[l], n, acts[l + 1]);
    const top = acts[L];
    const H = out.nIn;
    k.sgemm(false, false, n, C, H, 1, top, H, out.W, C, 0, this.probs, C);
    softmaxRows(this.probs, n, C, out.bias);
    // dOut (n, C) = (p - onehot(y)) / n: the gradient of the mean cross-entropy.
    let loss = 0;
    let correct = 0;
    for (let r = 0; r < n; r++) {
      const o = r * C;
      let best = 0;
      for (let c = 0; c < C; c++) {
        this.dOut[o + c] = this.probs[o + c] / n;
        if (this.probs[o + c] > this.probs[o + best]) best = c;
      }
      this.dOut[o + y[r]] -= 1 / n;
      loss -= Math.log(Math.max(this.probs[o + y[r]], 1e-30));
      if (best === y[r]) correct++;
    }
    // Output layer: gW = -top' dOut (descent direction), gb = -colsum(dOut).
    k.sgemm(true, false, H, C, n, -1, top, H, this.dOut, C, 0, this.gW[L], C);
    k.colSums(this.dOut, n, C, this.gc[L], -1, 0);
    // delta_top (n, H) = (dOut W_out') * a (1 - a)
    k.sgemm(false, true, n, H, C, 1, this.dOut, C, out.W, C, 0, deltas[L - 1], H);
    sigmoidDeriv(deltas[L - 1], top, n * H);
    for (let l = L - 1; l >= 0; l--) {
      const layer = dbn.layers[l];
      const V = layer.nVisible;
      const Hl = layer.nHidden;
      k.sgemm(true, false, V, Hl, n, -1, acts[l], V, deltas[l], Hl, 0, this.gW[l], Hl);
      k.colSums(deltas[l], n, Hl, this.gc[l], -1, 0);
      if (l > 0) {
        // delta_{l-1} (n, V) = (delta_l W_l') * a_l (1 - a_l)
        k.sgemm(false, true, n, V, Hl, 1, deltas[l], Hl, layer.W, Hl, 0, deltas[l - 1], V);
        sigmoidDeriv(deltas[l - 1], acts[l], n * V);
      }
    }
    const wd = this.cfg.weightDecay;
    for (let l = 0; l < L; l++) {
      const layer = dbn.layers[l];
      k.momentumStep(layer.W, this.vW[l], this.gW[l], layer.W.length, lr, mom, wd);
      k.momentumStep(layer.hBias, this.vc[l], this.gc[l], layer.nHidden, lr, mom, 0);
    }
    k.momentumStep(out.W, this.vW[L], this.gW[L], out.W.length, lr, mom, wd);
    k.momentumStep(out.bias, this.vc[L], this.gc[L], C, lr, mom, 0);
    dbn.fineTuneCounters.updates++;
    dbn.fineTuneCounters.samples += n;
    return [loss, correct];
  }
}

/** d *= a (1 - a): the sigmoid's derivative at activations a. */
function sigmoidDeriv(d: Float32Array, a: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) d[i] *= a[i] * (1 - a[i]);
}
