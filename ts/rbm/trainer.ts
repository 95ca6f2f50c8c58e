import { newRngState } from '../math/rng.js';
import { type EpochStats, type RBMTrainConfig, trainConfig } from './config.js';
import { type Matrix, shuffleOrder, validateData } from './data.js';
import { ConfigError } from './errors.js';
import type { RBM } from './rbm.js';
import { scheduleAt } from './schedule.js';


/**
 * Contrastive divergence for one RBM, holding what survives between calls:
 * momentum buffers, persistent chains, the sparsity estimates, the RNG and the
 * position in the shuffled data. Replicas of distributed training keep one
 * each and call `runBatches` a round at a time.
 */
export class RBMTrainer {
  readonly cfg: RBMTrainConfig;
  private readonly rng: Uint32Array;
  private readonly vW: Float32Array;
  /** The momentum vW is already scaled by (see step); never 0. */
  private vWScale = 1;
  private readonly vb: Float32Array;
  private readonly vc: Float32Array;
  private readonly q: Float32Array;
  private qInit = false;
  private readonly batch: Float32Array;
  private readonly h0: Float32Array;
  private readonly hs: Float32Array;
  private readonly v1: Float32Array;
  private readonly h1: Float32Array;
  private readonly chainsV: Float32Array | null;
  private readonly chainsH: Float32Array | null;
  private readonly nChains: number;
  private order: Uint32Array = new Uint32Array(0);
  private cursor = 0;

  constructor(readonly rbm: RBM, cfg: Partial<RBMTrainConfig> = {}) {
    this.cfg = trainConfig(cfg);
    const { nVisible: V, nHidden: H } = rbm;
    const B = this.cfg.batchSize;
    this.rng = newRngState(this.cfg.seed);
    this.vW = new Float32Array(V * H);
    this.vb = new Float32Array(V);
    this.vc = new Float32Array(H);
    this.q = new Float32Array(H);
    this.batch = new Float32Array(B * V);
    this.h0 = new Float32Array(B * H);
    this.nChains = this.cfg.persistent ? this.cfg.chains || B : B;
    this.hs = new Float32Array(this.nChains * H);
    this.v1 = new Float32Array(this.nChains * V);
    this.h1 = new Float32Array(this.nChains * H);
    this.chainsV = this.cfg.persistent ? new Float32Array(this.nChains * V) : null;
    this.chainsH = this.cfg.persistent ? new Float32Array(this.nChains * H) : null;
  }

  fit(data: Matrix, onEpoch?: (s: EpochStats) => void): EpochStats[] {
    const rbm = this.rbm;
    validateData(data, rbm.nVisible, rbm.visible);
    const stats: EpochStats[] = [];
    const perEpoch = Math.ceil(data.rows / this.cfg.batchSize);
    for (let e = 0; e < this.cfg.epochs; e++) {
      const t0 = performance.now();
      this.runBatchesUnchecked(data, perEpoch);
      rbm.counters.epochs++;
      const s = { epoch: rbm.counters.epochs, ...this.monitor(data), seconds: (performance.now() - t0) / 1000 };
      stats.push(s);
      onEpoch?.(s);
    }
    return stats;
  }

  /**
   * Reconstruction error and free energy on the first `monitorRows` rows; with `window`, on `window.rows`
   * of them from `window.offset` on, wrapping past the last monitor row to the first (a moving sample of
   * the monitor rows, for callers that measure often: every row is measured once as the window goes round).
   */
  monitor(data: Matrix, window?: { offset: number; rows: number }): { reconstructionError: number; freeEnergy: number } {
    const n = Math.min(this.cfg.monitorRows, data.rows);
    if (n === 0) return { reconstructionError: NaN, freeEnergy: NaN };
    const rows = window ? Math.max(1, Math.min(n, window.rows)) : n;
    const offset = window ? ((window.offset % n) + n) % n : 0;
    const slice = (from: number, count: number) => ({ data: data.data.subarray(from * data.cols, (from + count) * data.cols), rows: count, cols: data.cols });
    const first = Math.min(rows, n - offset);
    if (first === rows) {
      const m = slice(offset, rows);
      return { reconstructionError: this.rbm.reconstructionError(m), freeEnergy: this.rbm.meanFreeEnergy(m) };
    }
    const parts = [slice(offset, first), slice(0, rows - first)];
    let recon = 0;
    let free = 0;
    for (const m of parts) {
      recon += this.rbm.reconstructionError(m) * m.rows;
      free += this.rbm.meanFreeEnergy(m) * m.rows;
    }
    return { reconstructionError: recon / rows, freeEnergy: free / rows };
  }

  /** Runs `count` mini-batch updates, continuing through a shuffled order of the rows. */
  runBatches(data: Matrix, count: number, opts: { trusted?: boolean } = {}): void {
    // A replica calls this every round on the same rows: it checks them once and says so.
    if (!opts.trusted) validateData(data, this.rbm.nVisible, this.rbm.visible);
    this.runBatchesUnchecked(data, count);
  }

  private reshuffle(rows: number): void {
    if (this.order.length !== rows) this.order = new Uint32Array(rows);
    shuffleOrder(this.order, this.rng, this.rbm.kernels);
    this.cursor = 0;
  }

  private runBatchesUnchecked(data: Matrix, count: number): void {
    if (this.order.length !== data.rows) this.reshuffle(data.rows);
    for (let b = 0; b < count; b++) {
      if (this.cursor >= data.rows) {
        this.reshuffle(data.rows);
      }
      const n = Math.min(this.cfg.batchSize, data.rows - this.cursor);
      this.rbm.kernels.gatherRows(data.data, data.cols, this.order, this.cursor, n, this.batch);
      this.cursor += n;
      this.step(this.batch, n);
    }
  }

  /**
   * One CD-k / PCD-k update on v0 (n, V). The gradient goes straight into the
   * momentum buffers, which hold momentum * (the last update) when a step starts (decayAdd
   * scales them in the pass it makes anyway), so an update is
   *   vW = momentum * vW + lr * (v0' h0 / n - v1' h1 / m);  vW -= lr * decay * W;  W += vW
   * with five matrix products for k = 1:
   *   h0 = P(h|v0)   (n, H)  product 1       v1 = E[v|h]    (m, V)  product 3
   *   vW += v0' h0   (V, H)  product 2       h1 = P(h|v1)   (m, H)  product 4
   *                                          vW -= v1' h1   (V, H)  product 5
   */
  step(v0: Float32Array, n: number): void {
    const rbm = this.rbm;
    const k = rbm.kernels;
    const cfg = this.cfg;
    const lr = scheduleAt(cfg.learningRate, rbm.counters.epochs);
    const mom = scheduleAt(cfg.momentum, rbm.counters.epochs);
    // vW holds vWScale * (the last update): the last decayAdd scaled it by its own step's momentum,
    // expecting this step's to be the same; when the schedule has moved on, it is rescaled here
    // (once per change). Zero momentum never scales (the next step's momentum would need the
    // update back): its product overwrites vW instead (beta 0).
    if (mom !== 0 && this.vWScale !== mom) {
      const f = mom / this.vWScale;
      for (let i = 0; i < this.vW.length; i++) this.vW[i] *= f;
    }
    this.accumulate(v0, n, this.vW, this.vb, this.vc, lr, mom === 0 ? 0 : 1, mom);
    this.vWScale = mom === 0 ? 1 : mom;
    k.decayAdd(rbm.W, this.vW, rbm.W.length, lr * cfg.weightDecay, this.vWScale);
    k.decayAdd(rbm.vBias, this.vb, rbm.nVisible, 0, 1);
    k.decayAdd(rbm.hBias, this.vc, rbm.nHidden, 0, 1);
    rbm.counters.updates++;
    rbm.counters.samples += n;
  }

  /**
   * The CD-k / PCD-k estimate of the log-likelihood gradient for v0 (n, V),
   * with sparsity, before momentum and decay: (dW, db, dc). Advances the RNG
   * and the persistent chains as an update would, but changes no parameter.
   */
  gradient(v0: Matrix): { W: Float32Array; vBias: Float32Array; hBias: Float32Array } {
    validateData(v0, this.rbm.nVisible, this.rbm.visible);
    if (v0.rows > this.cfg.batchSize) throw new ConfigError('batchSize', `is ${this.cfg.batchSize}, the batch has ${v0.rows} rows`);
    const { nVisible: V, nHidden: H } = this.rbm;
    const g = { W: new Float32Array(V * H), vBias: new Float32Array(V), hBias: new Float32Array(H) };
    this.accumulate(v0.data, v0.rows, g.W, g.vBias, g.hBias, 1, 0, 0);
    return g;
  }

  /** tW = betaW * tW + alpha * dW, tb = betaB * tb + alpha * db (likewise tc), (dW, db, dc) the CD-k / PCD-k gradient on v0 (n, V). */
  private accumulate(v0: Float32Array, n: number, tW: Float32Array, tb: Float32Array, tc: Float32Array,
    alpha: number, betaW: number, betaB: number): void {
    const rbm = this.rbm;
    const k = rbm.kernels;
    const { nVisible: V, nHidden: H } = rbm;
    const cfg = this.cfg;

    rbm.hiddenProbsUnchecked(v0, n, this.h0);
    k.sgemm(true, false, V, H, n, alpha / n, v0, V, this.h0, H, betaW, tW, H);
    k.colSums(v0, n, V, tb, alpha / n, betaB);
    k.colSums(this.h0, n, H, tc, alpha / n, betaB);

    let m: number;
    if (this.chainsV && this.chainsH) {
      m = this.nChains;
      if (!this.chainsInitialised) this.initChains(v0, n);
      this.hs.set(this.chainsH);
    } else {
      m = n;
      k.bernoulli(this.h0, this.hs, n * H, this.rng);
    }
    const gaussian = rbm.visible === 'gaussian';
    for (let s = 0; s < cfg.k; s++) {
      rbm.visibleMeansUnchecked(this.hs, m, this.v1);
      // PCD chains and the inner steps of CD-k use sampled visible states;
      // the last CD step keeps the means unless sampleVisible.
      if (!gaussian && (this.chainsV || cfg.sampleVisible || s < cfg.k - 1)) k.bernoulli(this.v1, this.v1, m * V, this.rng);
      rbm.hiddenProbsUnchecked(this.v1, m, this.h1);
      if (s < cfg.k - 1 || this.chainsH) k.bernoulli(this.h1, this.hs, m * H, this.rng);
    }
    if (this.chainsV && this.chainsH) {
      this.chainsV.set(this.v1.subarray(0, m * V));
      this.chainsH.set(this.hs.subarray(0, m * H));
    }
    k.sgemm(true, false, V, H, m, -alpha / m, this.v1, V, this.h1, H, 1, tW, H);
    k.colSums(this.v1, m, V, tb, -alpha / m, 1);
    k.colSums(this.h1, m, H, tc, -alpha / m, 1);

    if (cfg.sparsityTarget > 0 && cfg.sparsityCost > 0) this.sparsity(v0, n, tW, tc, alpha);
  }

  private chainsInitialised = false;

  /** PCD chains start from the first batch's hidden samples (rows repeat when there are more chains). */
  private initChains(v0: Float32Array, n: number): void {
    const { nVisible: V, nHidden: H } = this.rbm;
    for (let c = 0; c < this.nChains; c++) {
      const r = c % n;
      this.chainsV!.set(v0.subarray(r * V, (r + 1) * V), c * V);
      this.chainsH!.set(this.h0.subarray(r * H, (r + 1) * H), c * H);
    }
    this.rbm.kernels.bernoulli(this.chainsH!, this.chainsH!, this.nChains * H, this.rng);
    this.chainsInitialised = true;
  }

  /**
   * Sparsity after Hinton's guide (section 11): a running estimate q of each
   * hidden unit's mean activation; the gradient of cost * cross-entropy(target, q)
   * moves the hidden bias and the weights from active inputs.
   */
  private sparsity(v0: Float32Array, n: number, tW: Float32Array, tc: Float32Array, alpha: number): void {
    const { nVisible: V, nHidden: H } = this.rbm;
    const cfg = this.cfg;
    const mean = new Float32Array(H);
    this.rbm.kernels.colSums(this.h0, n, H, mean, 1 / n, 0);
    const vMean = new Float32Array(V);
    this.rbm.kernels.colSums(v0, n, V, vMean, 1 / n, 0);
    for (let j = 0; j < H; j++) {
      this.q[j] = this.qInit ? cfg.sparsityDecay * this.q[j] + (1 - cfg.sparsityDecay) * mean[j] : mean[j];
    }
    this.qInit = true;
    for (let j = 0; j < H; j++) {
      const d = alpha * cfg.sparsityCost * (this.q[j] - cfg.sparsityTarget);
      tc[j] -= d;
      for (let i = 0; i < V; i++) tW[i * H + j] -= d * vMean[i];
    }
  }

  /** Momentum buffers are reset, e.g. when a replica adopts a newly published model. */
  resetMomentum(): void {
    this.vW.fill(0);
    this.vb.fill(0);
    this.vc.fill(0);
  }
}
