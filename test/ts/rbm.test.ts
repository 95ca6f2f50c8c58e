import { expect } from 'chai';
import {
  ais, ConfigError, DataError, downsample, EngineError, exactGradient, exactLogZ, loadKernels, logLikelihood, type Matrix,
  mnistSplit, pseudoLogLikelihood, RBM, RBMTrainer, softplus, type VisibleUnits
} from 'spark-dbn';
import { newRngState, fillNormal, fillUniform } from '../../ts/math/rng.js';
import { referenceKernels } from '../../ts/math/reference.js';

/** An RBM with N(0, std^2) weights and biases, for closed-form checks. */
function randomRBM(V: number, H: number, visible: VisibleUnits, seed: number, std = 1): RBM {
  const r = new RBM({ nVisible: V, nHidden: H, visible });
  const st = newRngState(seed);
  fillNormal(st, r.W, r.W.length, 0, std);
  fillNormal(st, r.vBias, V, 0, std);
  fillNormal(st, r.hBias, H, 0, std);
  return r;
}

function binaryRows(rows: number, V: number, seed: number): Matrix {
  const d = new Float32Array(rows * V);
  fillUniform(newRngState(seed), d, d.length);
  return { data: d.map((x) => (x < 0.4 ? 1 : 0)), rows, cols: V };
}

/** log sum_{v,h} exp(-E(v, h)) by the plain double sum over every joint state. */
function bruteLogZ(r: RBM): number {
  const { nVisible: V, nHidden: H } = r;
  const terms: number[] = [];
  for (let sv = 0; sv < 2 ** V; sv++) {
    for (let sh = 0; sh < 2 ** H; sh++) {
      let negE = 0;
      for (let i = 0; i < V; i++) if ((sv >> i) & 1) negE += r.vBias[i];
      for (let j = 0; j < H; j++) if ((sh >> j) & 1) negE += r.hBias[j];
      for (let i = 0; i < V; i++) for (let j = 0; j < H; j++) if ((sv >> i) & 1 && (sh >> j) & 1) negE += r.W[i * H + j];
      terms.push(negE);
    }
  }
  const m = Math.max(...terms);
  return m + Math.log(terms.reduce((s, t) => s + Math.exp(t - m), 0));
}

describe('RBM: exact partition function and likelihood', function () {
  this.timeout(30000);

  for (const [V, H] of [[5, 4], [4, 7], [8, 8], [1, 1]]) {
    it(`log Z by enumeration equals the brute-force double sum (V=${V}, H=${H}), to 1e-10`, () => {
      const r = randomRBM(V, H, 'bernoulli', V * 10 + H);
      expect(exactLogZ(r)).to.be.closeTo(bruteLogZ(r), 1e-10 * Math.max(1, Math.abs(bruteLogZ(r))));
    });
  }

  it('Gaussian visible units: log Z equals a numerical integral over v (V=1, H=3), to 1e-7', () => {
    const r = randomRBM(1, 3, 'gaussian', 3, 0.8);
    // Z = sum_h integral exp(-(v - b)^2 / 2 + c.h + v W h) dv by the trapezoid rule on [-30, 30].
    let z = 0;
    const step = 1e-3;
    for (let v = -30; v <= 30; v += step) {
      let inner = 0;
      for (let sh = 0; sh < 8; sh++) {
        let e = -0.5 * (v - r.vBias[0]) ** 2;
        for (let j = 0; j < 3; j++) if ((sh >> j) & 1) e += r.hBias[j] + v * r.W[j];
        inner += Math.exp(e);
      }
      z += inner * step;
    }
    expect(exactLogZ(r)).to.be.closeTo(Math.log(z), 1e-7);
  });

  it('probabilities sum to one: sum over all v of exp(-F(v) - log Z) = 1', () => {
    const r = randomRBM(6, 5, 'bernoulli', 8);
    const all: number[] = [];
    for (let s = 0; s < 64; s++) for (let i = 0; i < 6; i++) all.push((s >> i) & 1);
    const f = r.freeEnergy({ data: Float32Array.from(all), rows: 64, cols: 6 });
    const lz = exactLogZ(r);
    const total = f.reduce((s, x) => s + Math.exp(-x - lz), 0);
    // Free energies use float32 products: 1e-5 relative.
    expect(total).to.be.closeTo(1, 1e-5);
  });

  it('the exact gradient equals finite differences of the exact log-likelihood', () => {
    const r = randomRBM(6, 4, 'bernoulli', 21, 0.7);
    const data = binaryRows(25, 6, 5);
    const g = exactGradient(r, data);
    const eps = 1e-3;
    const numeric = (arr: Float32Array, i: number) => {
      const x = arr[i];
      arr[i] = x + eps;
      const up = logLikelihood(r, data);
      arr[i] = x - eps;
      const down = logLikelihood(r, data);
      arr[i] = x;
      return (up - down) / (2 * eps);
    };
    // Central differences: O(eps^2) truncation plus float32 rounding of the parameters: 2e-4 absolute.
    for (const i of [0, 5, 11, 23]) expect(g.W[i]).to.be.closeTo(numeric(r.W, i), 2e-4);
    for (const i of [0, 3, 5]) expect(g.vBias[i]).to.be.closeTo(numeric(r.vBias, i), 2e-4);
    for (const i of [0, 2]) expect(g.hBias[i]).to.be.closeTo(numeric(r.hBias, i), 2e-4);
  });

  it('the CD-k gradient approaches the exact gradient as k grows', () => {
    const r = randomRBM(6, 5, 'bernoulli', 33, 1.2);
    const base = binaryRows(40, 6, 9);
    // 40 distinct rows, each repeated 6000 times: sampling noise ~ 0.5 / sqrt(240000) = 0.001 per entry,
    // ~0.005 over the 30 weights. CD-k's bias shrinks fast with k on this model: measured over seeds
    // 4-7, k = 1: 0.125-0.131, k = 2: 0.016-0.020, k = 5 and k = 100: 0.002-0.004, i.e. noise. So the
    // test compares k = 1, 2 and 100 (k = 5 against 100 would compare noise with noise).
    const rows = 240000;
    const data = new Float32Array(rows * 6);
    for (let i = 0; i < rows; i++) data.set(base.data.subarray((i % 40) * 6, (i % 40 + 1) * 6), i * 6);
    const exact = exactGradient(r, base);
    const err = (k: number) => {
      const t = new RBMTrainer(r, { batchSize: rows, k, seed: 4, sampleVisible: true });
      const g = t.gradient({ data, rows, cols: 6 });
      let s = 0;
      for (let i = 0; i < g.W.length; i++) s += (g.W[i] - exact.W[i]) ** 2;
      return Math.sqrt(s);
    };
    const e1 = err(1);
    const e2 = err(2);
    const e100 = err(100);
    expect(e1).to.be.greaterThan(2 * e2);
    expect(e2).to.be.greaterThan(2 * e100);
    expect(e100).to.be.lessThan(0.02);
  });
});

describe('RBM: AIS estimate of log Z on digit models with exact answers', function () {
  this.timeout(120000);
  const split = mnistSplit({ binarise: true });
  const train = downsample(split.train.images);

  for (const H of [16, 20]) {
    it(`is within 0.2 nats with 1,000 temperatures and within 0.1 with 10,000 (H=${H})`, () => {
      const r = RBM.create({ nVisible: 196, nHidden: H, visible: 'bernoulli' }, { seed: H, data: train });
      r.fit(train, { epochs: 3, batchSize: 50, learningRate: 0.1, seed: H, monitorRows: 0 });
      const exact = exactLogZ(r);
      const coarse = ais(r, { runs: 100, temperatures: 1000, seed: 1, data: train });
      const fine = ais(r, { runs: 100, temperatures: 10000, seed: 2, data: train });
      expect(Math.abs(coarse.logZ - exact), `coarse ${coarse.logZ} vs ${exact}`).to.be.lessThan(0.2);
      expect(Math.abs(fine.logZ - exact), `fine ${fine.logZ} vs ${exact}`).to.be.lessThan(0.1);
      expect(fine.stdErr).to.be.greaterThan(0).and.lessThan(0.1);
      // The estimate must differ from the base model's: the model did learn.
      expect(Math.abs(exact - fine.logZBase)).to.be.greaterThan(1);
    });
  }

  it('for Gaussian visible units too (V=8, H=12), within 0.1 nats', () => {
    const r = randomRBM(8, 12, 'gaussian', 77, 0.3);
    const exact = exactLogZ(r);
    const est = ais(r, { runs: 200, temperatures: 3000, seed: 3 });
    expect(Math.abs(est.logZ - exact), `${est.logZ} vs ${exact}`).to.be.lessThan(0.1);
  });
});

describe('RBM: training, inference and sampling', function () {
  this.timeout(60000);
  const split = mnistSplit({ binarise: true });
  const small = downsample(split.train.images);

  for (const [m0, m1] of [[0, 0.9], [0.5, 0.9], [0.5, 0]]) {
    it(`momentum follows its schedule across a change (${m0} -> ${m1}): the second step adds ${m1} x the first update`, () => {
      // Two trainers, same seed and data, so the same gradients; the first step starts from zero
      // velocity in both. With momentum m1 for the second step, W2 differs from a momentum-free
      // trainer's W2 by exactly m1 * (W1 - W0).
      const x = { data: small.data.subarray(0, 40 * 196), rows: 40, cols: 196 };
      const make = (mom: [number, number][]) => {
        const r = RBM.create({ nVisible: 196, nHidden: 30, visible: 'bernoulli' }, { seed: 5, data: small });
        return { r, t: new RBMTrainer(r, { batchSize: 40, k: 1, learningRate: 0.1, momentum: mom, weightDecay: 1e-3, seed: 9 }) };
      };
      const a = make([[0, m0], [1, m1]]);
      const b = make([[0, 0]]);
      const W0 = a.r.W.slice();
      a.t.runBatches(x, 1);
      b.t.runBatches(x, 1);
      const W1 = a.r.W.slice();
      expect(Array.from(b.r.W)).to.deep.equal(Array.from(W1));
      a.r.counters.epochs = 1;
      b.r.counters.epochs = 1;
      a.t.runBatches(x, 1);
      b.t.runBatches(x, 1);
      let worst = 0;
      for (let i = 0; i < W0.length; i++) {
        const want = m1 * (W1[i] - W0[i]);
        worst = Math.max(worst, Math.abs(a.r.W[i] - b.r.W[i] - want));
      }
      // float32 rounding of W (|W| < 0.1) and of the velocity: well under 1e-7.
      expect(worst).to.be.lessThan(1e-7);
    });
  }

  it('follows Hinton\'s initialisation: W ~ N(0, 0.01^2), visible biases log(p / (1 - p))', () => {
    const r = RBM.create({ nVisible: 196, nHidden: 300, visible: 'bernoulli' }, { seed: 1, data: small });
    let s = 0;
    let s2 = 0;
    for (const w of r.W) {
      s += w;
      s2 += w * w;
    }
    expect(s / r.W.length).to.be.closeTo(0, 1e-3);
    expect(Math.sqrt(s2 / r.W.length)).to.be.closeTo(0.01, 5e-4);
    let on = 0;
    for (let i = 0; i < small.rows; i++) on += small.data[i * 196 + 100];
    const p = Math.min(1 - 1e-3, Math.max(1e-3, on / small.rows));
    expect(r.vBias[100]).to.be.closeTo(Math.log(p / (1 - p)), 1e-5);
    expect(Array.from(r.hBias).every((x) => x === 0)).to.equal(true);
  });

  it('CD-1 lowers the reconstruction error and raises the pseudo-log-likelihood', () => {
    const r = RBM.create({ nVisible: 196, nHidden: 64, visible: 'bernoulli' }, { seed: 2, data: small });
    const before = r.reconstructionError(small);
    const pllBefore = pseudoLogLikelihood(r, { ...small, data: small.data.subarray(0, 200 * 196), rows: 200 });
    const stats = r.fit(small, { epochs: 4, batchSize: 50, seed: 2 });
    expect(stats.map((s) => s.epoch)).to.deep.equal([1, 2, 3, 4]);
    expect(stats[3].reconstructionError).to.be.lessThan(stats[0].reconstructionError);
    expect(r.reconstructionError(small)).to.be.lessThan(before * 0.6);
    const pllAfter = pseudoLogLikelihood(r, { ...small, data: small.data.subarray(0, 200 * 196), rows: 200 });
    expect(pllAfter).to.be.greaterThan(pllBefore + 10);
    expect(r.counters).to.deep.equal({ epochs: 4, updates: 4 * Math.ceil(small.rows / 50), samples: 4 * small.rows });
  });

  it('a monitor window measures its rows, wrapping past the last monitor row; windows going round once equal the whole monitor', () => {
    const r = RBM.create({ nVisible: 196, nHidden: 32, visible: 'bernoulli' }, { seed: 4, data: small });
    const t = new RBMTrainer(r, { monitorRows: 300, batchSize: 50, seed: 1 });
    const rows = (from: number, n: number) => ({ data: small.data.subarray(from * 196, (from + n) * 196), rows: n, cols: 196 });
    // Naive reference: the figures of each row on its own, averaged.
    const perRow = (from: number, n: number) => Array.from({ length: n }, (_, i) => rows(from + i, 1));
    const mean = (ms: Matrix[], f: (m: Matrix) => number) => ms.reduce((a, m) => a + f(m), 0) / ms.length;
    const wrapped = t.monitor(small, { offset: 250, rows: 100 }); // rows 250..299, then 0..49
    const ref = [...perRow(250, 50), ...perRow(0, 50)];
    expect(wrapped.reconstructionError).to.be.closeTo(mean(ref, (m) => r.reconstructionError(m)), 1e-4);
    expect(wrapped.freeEnergy).to.be.closeTo(mean(ref, (m) => r.meanFreeEnergy(m)), 1e-4);
    // Windows of 70 rows from 0 on, going round the 300 monitor rows once (the last one 20 rows), weighted by rows.
    let at = 0;
    let recon = 0;
    let free = 0;
    for (const n of [70, 70, 70, 70, 20]) {
      const m = t.monitor(small, { offset: at, rows: n });
      recon += m.reconstructionError * n;
      free += m.freeEnergy * n;
      at = (at + n) % 300;
    }
    const whole = t.monitor(small);
    expect(recon / 300).to.be.closeTo(whole.reconstructionError, 1e-4);
    expect(free / 300).to.be.closeTo(whole.freeEnergy, 1e-3);
    // Without a window: the first monitorRows rows, as before.
    expect(whole.reconstructionError).to.equal(r.reconstructionError(rows(0, 300)));
  });

  it('PCD with its own chain count raises the exact log-likelihood (H=16)', () => {
    // PCD follows the likelihood, not the reconstruction error: judge it by the exact value.
    const r = RBM.create({ nVisible: 196, nHidden: 16, visible: 'bernoulli' }, { seed: 3, data: small });
    const before = logLikelihood(r, small);
    r.fit(small, { epochs: 3, batchSize: 40, persistent: true, chains: 100, k: 1, learningRate: 0.05, seed: 3 });
    const after = logLikelihood(r, small);
    // Gains 6.5-9.0 nats over seeds 1-5 (CD-1 9.4-9.6; the figure moves with the machine's BLAS kernels);
    // chains that never advance lose 30-60.
    expect(after).to.be.greaterThan(before + 4);
  });

  it('a sparsity target pulls the mean hidden activation towards it', () => {
    const mk = () => RBM.create({ nVisible: 196, nHidden: 64, visible: 'bernoulli' }, { seed: 4, data: small });
    const meanAct = (r: RBM) => r.transform(small).reduce((s, x) => s + x, 0) / (small.rows * 64);
    const plain = mk();
    plain.fit(small, { epochs: 2, batchSize: 50, seed: 4 });
    const sparse = mk();
    sparse.fit(small, { epochs: 2, batchSize: 50, seed: 4, sparsityTarget: 0.05, sparsityCost: 0.5 });
    expect(Math.abs(meanAct(sparse) - 0.05)).to.be.lessThan(Math.abs(meanAct(plain) - 0.05));
  });

  it('Gaussian visible units learn standardised real-valued data', () => {
    // Two clusters in 10 dimensions, standardised per column.
    const rows = 2000;
    const V = 10;
    const d = new Float32Array(rows * V);
    fillNormal(newRngState(5), d, d.length, 0, 0.3);
    for (let r = 0; r < rows; r++) for (let i = 0; i < V; i++) d[r * V + i] += (r % 2 ? 1 : -1) * (i < 5 ? 1 : -1);
    const m: Matrix = { data: d, rows, cols: V };
    const rbm = RBM.create({ nVisible: V, nHidden: 8, visible: 'gaussian' }, { seed: 5, data: m });
    const before = rbm.reconstructionError(m);
    rbm.fit(m, { epochs: 10, batchSize: 50, learningRate: 0.01, seed: 5 });
    expect(rbm.reconstructionError(m)).to.be.lessThan(before * 0.5);
    // Its exact likelihood beats the base model's (independent unit Gaussians at the means).
    const ll = logLikelihood(rbm, m);
    expect(Number.isFinite(ll)).to.equal(true);
  });

  it('the same seed and data give a bit-identical model; another seed does not', () => {
    const run = (seed: number) => {
      const r = RBM.create({ nVisible: 196, nHidden: 32, visible: 'bernoulli' }, { seed, data: small });
      r.fit(small, { epochs: 1, batchSize: 64, seed, persistent: seed % 2 === 0 });
      return Buffer.concat([Buffer.from(r.W.buffer), Buffer.from(r.vBias.buffer), Buffer.from(r.hBias.buffer)]);
    };
    expect(run(7).equals(run(7))).to.equal(true);
    expect(run(8).equals(run(8))).to.equal(true);
    expect(run(7).equals(run(9))).to.equal(false);
  });

  it('the fast path and the TypeScript kernels train to the same model within float32 tolerance', function () {
    // Without the native module both sides would be the TypeScript kernels: nothing compared (kernels.test.ts alike).
    if (loadKernels().name === 'ts') this.skip();
    const rows = { ...small, data: small.data.subarray(0, 600 * 196), rows: 600 };
    const a = RBM.create({ nVisible: 196, nHidden: 24, visible: 'bernoulli' }, { seed: 6, data: rows });
    expect(a.kernels.name).to.not.equal(referenceKernels.name);
    const b = new RBM(a.shape, { W: a.W.slice(), vBias: a.vBias.slice(), hBias: a.hBias.slice() }, referenceKernels);
    a.fit(rows, { epochs: 1, batchSize: 50, seed: 6 });
    b.fit(rows, { epochs: 1, batchSize: 50, seed: 6 });
    // Same random streams; only rounding differs, and a sample flips only when u lands within ~1e-7 of p.
    let maxDiff = 0;
    for (let i = 0; i < a.W.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a.W[i] - b.W[i]));
    expect(maxDiff).to.be.lessThan(1e-4);
  });

  it('sampling (daydreaming) yields binary states from noise and stays near the data from data', () => {
    const r = RBM.create({ nVisible: 196, nHidden: 64, visible: 'bernoulli' }, { seed: 8, data: small });
    r.fit(small, { epochs: 3, batchSize: 50, seed: 8 });
    const s = r.sample({ chains: 50, steps: 200, seed: 1 });
    expect(s.rows).to.equal(50);
    expect(s.data.every((x) => x >= 0 && x <= 1)).to.equal(true);
    const one = r.sample({ chains: 10, steps: 1, seed: 1, init: small });
    expect(one.rows).to.equal(10);
  });
});

describe('RBM: bad input and extreme parameters', function () {
  const rbm = () => new RBM({ nVisible: 4, nHidden: 3, visible: 'bernoulli' });

  it('names the row and column of a NaN, an infinity or a Bernoulli value outside [0, 1]', () => {
    const check = (bad: number, re: RegExp) => {
      const d = new Float32Array(12).fill(0.5);
      d[6] = bad;
      try {
        rbm().hiddenProbs({ data: d, rows: 3, cols: 4 });
        expect.fail('no error');
      } catch (e) {
        expect(e).to.be.instanceOf(DataError);
        expect((e as DataError).row).to.equal(1);
        expect((e as DataError).column).to.equal(2);
        expect((e as Error).message).to.match(re);
      }
    };
    check(NaN, /row 1, column 2: value is NaN/);
    check(Infinity, /row 1, column 2: value is Infinity/);
    check(1.5, /row 1, column 2: value is 1.5, outside \[0, 1\]/);
    check(-0.1, /outside \[0, 1\]/);
  });

  it('rejects wrong widths, empty data and bad configs with typed errors', () => {
    expect(() => rbm().hiddenProbs({ data: new Float32Array(10), rows: 2, cols: 5 })).to.throw(DataError, /5 columns, the model has 4/);
    expect(() => rbm().hiddenProbs({ data: new Float32Array(0), rows: 0, cols: 4 })).to.throw(DataError, /empty/);
    expect(() => rbm().fit({ data: new Float32Array(8), rows: 2, cols: 4 }, { batchSize: 0 })).to.throw(ConfigError, /batchSize/);
    expect(() => rbm().fit({ data: new Float32Array(8), rows: 2, cols: 4 }, { momentum: [[1, 0.5]] })).to.throw(ConfigError, /momentum/);
    expect(() => rbm().fit({ data: new Float32Array(8), rows: 2, cols: 4 }, { learningRate: -1 })).to.throw(ConfigError, /learningRate/);
    expect(() => rbm().fit({ data: new Float32Array(8), rows: 2, cols: 4 }, { lernRate: 1 } as never)).to.throw(ConfigError, /lernRate/);
    expect(() => new RBM({ nVisible: 0, nHidden: 3, visible: 'bernoulli' })).to.throw(ConfigError, /nVisible/);
    expect(() => new RBM({ nVisible: 2, nHidden: 3, visible: 'poisson' as never })).to.throw(ConfigError, /visible/);
    expect(() => exactLogZ(new RBM({ nVisible: 30, nHidden: 30, visible: 'bernoulli' }))).to.throw(EngineError, /use AIS/);
  });

  it('stays finite with weights of +-50: free energy, log Z, probabilities and a training step', () => {
    const r = randomRBM(8, 6, 'bernoulli', 99, 1);
    for (let i = 0; i < r.W.length; i++) r.W[i] = i % 2 ? 50 : -50;
    r.vBias.fill(50);
    r.hBias.fill(-50);
    const data = binaryRows(20, 8, 1);
    expect(Array.from(r.freeEnergy(data)).every(Number.isFinite)).to.equal(true);
    const lz = exactLogZ(r);
    expect(Number.isFinite(lz)).to.equal(true);
    expect(lz).to.be.closeTo(bruteLogZ(r), 1e-9 * Math.abs(lz));
    expect(Array.from(r.hiddenProbs(data)).every((p) => p >= 0 && p <= 1)).to.equal(true);
    r.fit(data, { epochs: 1, batchSize: 5, seed: 1 });
    expect(Array.from(r.W).every(Number.isFinite)).to.equal(true);
    expect(softplus(1000)).to.equal(1000);
    expect(softplus(-1000)).to.equal(0);
  });
});
