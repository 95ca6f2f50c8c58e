import { expect } from 'chai';
import avro from 'avsc';
import { DBN, decodeSnapshot, encodeSnapshot, initLayer, type InputScaling, type Matrix } from 'spark-dbn';
import { fillNormal, newRngState } from '../../ts/math/rng.js';

/** rows x V normal values with column i of mean 10 i and deviation i + 1: raw columns of very different scales. */
function rawData(rows: number, V: number, seed: number): Matrix {
  const data = new Float32Array(rows * V);
  fillNormal(newRngState(seed), data, data.length, 0, 1);
  for (let r = 0; r < rows; r++) for (let i = 0; i < V; i++) data[r * V + i] = 10 * i + (i + 1) * data[r * V + i];
  return { data, rows, cols: V };
}

/** A Gaussian DBN with non-trivial weights and the given scaling. */
function gaussianModel(V: number, H: number, scaling: InputScaling | null): DBN {
  const dbn = DBN.create([V, H, 3], { visible: 'gaussian', seed: 5 });
  const l0 = dbn.layers[0];
  fillNormal(newRngState(9), l0.W, l0.W.length, 0, 0.3);
  fillNormal(newRngState(10), l0.vBias, V, 0, 0.5);
  fillNormal(newRngState(11), l0.hBias, H, 0, 0.5);
  dbn.setInputScaling(scaling);
  return dbn;
}

/** The formatVersion field of a snapshot's one record. */
function formatVersionOf(b: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const d = new avro.streams.BlockDecoder();
    d.on('data', (r: { formatVersion: number }) => resolve(r.formatVersion));
    d.on('error', reject);
    d.end(b);
  });
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const softplus = (x: number) => Math.log1p(Math.exp(x));

/**
 * Naive reference in double, from the definitions: x = (v - mean) / std;
 * F(x) = |x - b|^2 / 2 - sum_j softplus(c_j + (xW)_j); reconstruction x~ = W sigmoid(c + xW) + b, error |x - x~|^2.
 */
function naiveScores(dbn: DBN, raw: Matrix): { fe: number[]; re: number[] } {
  const l = dbn.layers[0];
  const { nVisible: V, nHidden: H } = l;
  const s = dbn.inputScaling!;
  const fe: number[] = [];
  const re: number[] = [];
  for (let r = 0; r < raw.rows; r++) {
    const x = Array.from({ length: V }, (_, i) => (raw.data[r * V + i] - s.mean[i]) / s.std[i]);
    const pre = Array.from({ length: H }, (_, j) => l.hBias[j] + x.reduce((a, xi, i) => a + xi * l.W[i * H + j], 0));
    let f = 0;
    for (let i = 0; i < V; i++) f += 0.5 * (x[i] - l.vBias[i]) ** 2;
    for (let j = 0; j < H; j++) f -= softplus(pre[j]);
    fe.push(f);
    const h = pre.map(sigmoid);
    let e = 0;
    for (let i = 0; i < V; i++) {
      const rec = l.vBias[i] + h.reduce((a, hj, j) => a + hj * l.W[i * H + j], 0);
      e += (x[i] - rec) ** 2;
    }
    re.push(e);
  }
  return { fe, re };
}

describe('input scaling and anomaly scores (DBN.inputScaling, DBN.scores)', () => {
  const V = 6;
  const H = 4;
  const raw = rawData(50, V, 1);
  const scaling: InputScaling = { mean: Float64Array.from({ length: V }, (_, i) => 10 * i), std: Float64Array.from({ length: V }, (_, i) => i + 1) };

  it('scales raw input by (x - mean) / std before the first layer, in transform as in scaleInput', () => {
    const dbn = gaussianModel(V, H, scaling);
    const x = dbn.scaleInput(raw);
    for (let k = 0; k < raw.data.length; k++) {
      const i = k % V;
      expect(x.data[k]).to.be.closeTo((raw.data[k] - 10 * i) / (i + 1), 1e-5);
    }
    expect(Array.from(dbn.transform(raw).data)).to.deep.equal(Array.from(dbn.transformScaled(x).data));
    const unscaled = gaussianModel(V, H, null);
    expect(unscaled.scaleInput(raw)).to.equal(raw);
  });

  it('scores each row with the free energy and reconstruction error of the naive reference (float32 tolerance: 1e-4 relative)', () => {
    const dbn = gaussianModel(V, H, scaling);
    const got = dbn.scores(raw);
    const want = naiveScores(dbn, raw);
    const close = (a: number, b: number) => expect(a).to.be.closeTo(b, 1e-4 * Math.max(1, Math.abs(b)));
    want.fe.forEach((f, r) => close(got.freeEnergy[r], f));
    want.re.forEach((e, r) => close(got.reconstructionError[r], e));
    // The per-row errors are what the mean monitored in training averages.
    const mean = want.re.reduce((a, b) => a + b, 0) / want.re.length;
    close(dbn.layers[0].reconstructionError(dbn.scaleInput(raw)), mean);
  });

  it('keeps the scaling through a snapshot (format 2) and a worker crossing; a model without one stays format 1', async () => {
    const dbn = gaussianModel(V, H, scaling);
    const bytes = await encodeSnapshot(dbn);
    expect(await formatVersionOf(bytes)).to.equal(2);
    const back = await decodeSnapshot(bytes);
    expect(Array.from(back.inputScaling!.mean)).to.deep.equal(Array.from(scaling.mean));
    expect(Array.from(back.inputScaling!.std)).to.deep.equal(Array.from(scaling.std));
    expect(Array.from(back.scores(raw).freeEnergy)).to.deep.equal(Array.from(dbn.scores(raw).freeEnergy));
    expect(DBN.fromPlain(dbn.toPlain()).inputScaling).to.deep.equal(dbn.inputScaling);
    expect(dbn.clone().inputScaling).to.deep.equal(dbn.inputScaling);
    const plain = await encodeSnapshot(gaussianModel(V, H, null));
    expect(await formatVersionOf(plain)).to.equal(1);
    expect((await decodeSnapshot(plain)).inputScaling).to.equal(null);
  });

  it('refuses a constant input, a NaN mean and Bernoulli units, naming the input', () => {
    const dbn = gaussianModel(V, H, null);
    const std = scaling.std.slice();
    std[3] = 0;
    expect(() => dbn.setInputScaling({ mean: scaling.mean, std })).to.throw(/input 3: standard deviation is 0 \(a constant input\)/);
    const mean = scaling.mean.slice();
    mean[2] = NaN;
    expect(() => dbn.setInputScaling({ mean, std: scaling.std })).to.throw(/input 2: mean is NaN/);
    const bern = DBN.create([V, H], { seed: 1 });
    expect(() => bern.setInputScaling(scaling)).to.throw(/needs Gaussian visible units/);
  });

  it('InitLayer with deviations gives a standardising first layer whose visible biases start at the scaled means (0); upper layers keep it', () => {
    const means = Array.from(scaling.mean);
    const dbn = initLayer({ base: null, sizes: [V, H, 3], layer: 0, visible: 'gaussian', inputMeans: means,
      inputStddevs: Array.from(scaling.std), classes: 0, seed: 1 });
    expect(Array.from(dbn.inputScaling!.std)).to.deep.equal(Array.from(scaling.std));
    expect(Array.from(dbn.layers[0].vBias)).to.deep.equal(new Array(V).fill(0));
    const two = initLayer({ base: dbn, sizes: [V, H, 3], layer: 1, visible: 'gaussian', inputMeans: [0.5, 0.5, 0.5, 0.5],
      inputStddevs: [], classes: 0, seed: 1 });
    expect(two.inputScaling).to.equal(dbn.inputScaling);
    const none = initLayer({ base: null, sizes: [V, H], layer: 0, visible: 'gaussian', inputMeans: means, classes: 0, seed: 1 });
    expect(none.inputScaling).to.equal(null);
    expect(Array.from(none.layers[0].vBias)).to.deep.equal(means);
  });
});
