import { expect } from 'chai';
import { blockCentre, blockRule, type BlockSettings, type BlockUpdate, combineUpdates, ConfigError, DBN, mergeBlock, mergeInto,
  mergeWeights } from 'spark-dbn';
import { fillUniform, newRngState } from '../../ts/math/rng.js';

function randomVector(n: number, seed: number, scale = 1): Float32Array {
  const v = new Float32Array(n);
  fillUniform(newRngState(seed), v, n);
  for (let i = 0; i < n; i++) v[i] = (v[i] - 0.5) * scale;
  return v;
}

/**
 * BMUF as Chen & Huo write it, in double, keeping the centre W and the
 * broadcast Wg apart: G = sum w_i delta_i; D = eta D + zeta G; W = W + D; Wg = W + eta D.
 */
function naiveBmuf(w0: Float64Array, blocks: { deltas: Float32Array[]; weights: number[] }[], eta: number, zeta: number) {
  const n = w0.length;
  const W = Float64Array.from(w0);
  const Wg = Float64Array.from(w0);
  const D = new Float64Array(n);
  for (const b of blocks) {
    for (let j = 0; j < n; j++) {
      let g = 0;
      b.deltas.forEach((d, i) => { g += b.weights[i] * d[j]; });
      D[j] = eta * D[j] + zeta * g;
      W[j] += D[j];
      Wg[j] = W[j] + eta * D[j];
    }
  }
  return { W, Wg, D };
}

describe('merge rules (ts/rbm/distributed.ts)', () => {
  const n = 257;

  // P = 2 runs mergeBlock's own two-update loop, with unequal weights (a weight swapped or repeated shows).
  for (const [P, weightsOf, nesterov] of [[4, null, true], [2, () => [0.7, 0.3], true], [4, null, false], [2, () => [0.7, 0.3], false]] as
    [number, (() => number[]) | null, boolean][]) {
    const form = nesterov ? 'Nesterov\'s form (broadcast the look-ahead)' : 'the classical form (broadcast the model)';
    it(`BMUF of ${P} updates over 6 blocks, ${form}, equals the naive two-vector recursion: broadcast, model and momentum (to 1e-5)`, () => {
      const w0 = randomVector(n, P);
      const s: BlockSettings = { rule: 'bmuf', replicas: P, mode: 'sync', blockLearningRate: 1.3, nesterov };
      const blocks = Array.from({ length: 6 }, (_, b) => {
        const deltas = Array.from({ length: P }, (_, p) => randomVector(n, 100 * P + b * 10 + p, 0.1));
        return { deltas, weights: weightsOf ? weightsOf() : mergeWeights(s, deltas.map(() => ({ samples: 50, staleness: 0 }))) };
      });
      const published = w0.slice();
      const momentum = new Float32Array(n);
      for (const b of blocks) mergeBlock(published, momentum, b.deltas, b.weights, s);
      const ref = naiveBmuf(Float64Array.from(w0), blocks, 1 - 1 / P, 1.3);
      for (let j = 0; j < n; j++) {
        expect(published[j]).to.be.closeTo(nesterov ? ref.Wg[j] : ref.W[j], 1e-5);
        expect(momentum[j]).to.be.closeTo(ref.D[j], 1e-5);
      }
      blockCentre(published, momentum, s);
      for (let j = 0; j < n; j++) expect(published[j]).to.be.closeTo(ref.W[j], 1e-5);
    });
  }

  it('closed forms, classical block momentum (the default at P = 2): the model moves by D, the broadcast is the model', () => {
    const w0 = randomVector(n, 4);
    const g = [randomVector(n, 41, 0.2), randomVector(n, 42, 0.2)];
    const s: BlockSettings = { rule: 'bmuf', replicas: 2, mode: 'sync' };
    // The default form: classical at P = 2, Nesterov's with more replicas (async alike).
    expect(blockRule(s).nesterov).to.equal(false);
    expect(blockRule({ ...s, replicas: 3 }).nesterov).to.equal(true);
    expect(blockRule({ ...s, replicas: 8, mode: 'async', inFlight: 2 }).nesterov).to.equal(true);
    expect(blockRule({ ...s, replicas: 8, nesterov: false }).nesterov).to.equal(false);
    const published = w0.slice();
    const momentum = new Float32Array(n);
    // The same two deltas twice: G = their mean; D1 = G, W1 = w0 + G; D2 = eta G + G, W2 = W1 + D2 (eta = 1/2).
    for (let b = 0; b < 2; b++) mergeBlock(published, momentum, g, [0.5, 0.5], s);
    for (let j = 0; j < n; j++) {
      const G = (g[0][j] + g[1][j]) / 2;
      expect(momentum[j]).to.be.closeTo(1.5 * G, 1e-6);
      expect(published[j]).to.be.closeTo(w0[j] + G + 1.5 * G, 1e-5);
    }
    const before = Array.from(published);
    blockCentre(published, momentum, s);
    expect(Array.from(published)).to.deep.equal(before);
  });

  it('closed forms: Nesterov\'s BMUF with zeta 1 from zero momentum lands the centre on the replicas\' mean; eta 0 is averaging', () => {
    const w0 = randomVector(n, 2);
    const deltas = [0, 1, 2].map((p) => randomVector(n, 20 + p, 0.2));
    const s: BlockSettings = { rule: 'bmuf', replicas: 3, mode: 'sync', nesterov: true };
    const published = w0.slice();
    const momentum = new Float32Array(n);
    mergeBlock(published, momentum, deltas, mergeWeights(s, deltas.map(() => ({ samples: 1, staleness: 0 }))), s);
    // D = G = mean delta; Wg = w0 + G + (2/3) G; the centre w0 + G is the mean of the replicas.
    for (let j = 0; j < n; j++) {
      const mean = (deltas[0][j] + deltas[1][j] + deltas[2][j]) / 3;
      expect(momentum[j]).to.be.closeTo(mean, 1e-6);
      expect(published[j]).to.be.closeTo(w0[j] + mean * (1 + 2 / 3), 1e-5);
    }
    blockCentre(published, momentum, s);
    for (let j = 0; j < n; j++) expect(published[j]).to.be.closeTo(w0[j] + (deltas[0][j] + deltas[1][j] + deltas[2][j]) / 3, 1e-5);
    const avg: BlockSettings = { rule: 'bmuf', replicas: 3, mode: 'sync', blockMomentum: 0 };
    const p2 = w0.slice();
    const m2 = new Float32Array(n);
    mergeBlock(p2, m2, deltas, [1 / 3, 1 / 3, 1 / 3], avg);
    mergeBlock(p2, m2, deltas, [1 / 3, 1 / 3, 1 / 3], avg);
    for (let j = 0; j < n; j++) expect(p2[j]).to.be.closeTo(w0[j] + 2 * (deltas[0][j] + deltas[1][j] + deltas[2][j]) / 3, 1e-5);
  });

  it('mergeInto moves each parameter array as mergeBlock moves the flat parameters, bit for bit (2 and 3 updates)', () => {
    for (const P of [2, 3]) {
      const model = DBN.create([7, 5, 3], { seed: 5 });
      const layer = 1;
      const part = model.layers[layer];
      const count = part.W.length + part.vBias.length + part.hBias.length;
      const flat = Float32Array.from([...part.W, ...part.vBias, ...part.hBias]);
      const s: BlockSettings = { rule: 'bmuf', replicas: P, mode: 'sync' };
      const updates = Array.from({ length: P }, (_, p) => ({ layer, delta: randomVector(count, 300 + p, 0.1), samples: 10 + p,
        batches: 1, staleness: 0 }));
      let m: Float32Array = new Float32Array(0);
      const mFlat = new Float32Array(count);
      for (let b = 0; b < 2; b++) {
        m = mergeInto(model, updates, s, m, 0);
        mergeBlock(flat, mFlat, updates.map((u) => u.delta), mergeWeights(s, updates), s);
      }
      expect(Array.from([...part.W, ...part.vBias, ...part.hBias])).to.deep.equal(Array.from(flat));
      expect(Array.from(m)).to.deep.equal(Array.from(mFlat));
      // A delta of the wrong length is refused before any array moves.
      const before = Array.from(part.W);
      expect(() => mergeInto(model, [{ ...updates[0], delta: new Float32Array(count + 1) }], s, m, 0)).to.throw(ConfigError, new RegExp(`update 0 has ${count + 1} values, the trained part has ${count}`));
      expect(Array.from(part.W)).to.deep.equal(before);
    }
  });

  it('combined updates: the naive weighted mean, and merging any grouping of them equals merging them all (every rule, 1e-6)', () => {
    const model0 = DBN.create([7, 5, 3], { seed: 6 });
    const layer = 0;
    const count = 7 * 5 + 7 + 5;
    const updates: BlockUpdate[] = Array.from({ length: 5 }, (_, p) => ({ layer, delta: randomVector(count, 400 + p, 0.1),
      samples: 10 + 7 * p, batches: 2, staleness: 0 }));
    const groupings = [[[0, 1, 2], [3, 4]], [[0], [1, 2, 3, 4]], [[0, 1, 2, 3, 4]]];
    for (const rule of ['bmuf', 'sum', 'average'] as const) {
      const s: BlockSettings = { rule, replicas: 5, mode: 'sync' };
      // The mean a combine must give, in double: by replicas under bmuf and sum, by samples under average.
      const c = updates.slice(1, 4);
      const weight = (u: BlockUpdate) => (rule === 'average' ? u.samples : 1);
      const total = c.reduce((a, u) => a + weight(u), 0);
      const combined = combineUpdates(s, c);
      for (let j = 0; j < count; j++) {
        expect(combined.delta[j]).to.be.closeTo(c.reduce((a, u) => a + weight(u) * u.delta[j], 0) / total, 1e-7);
      }
      expect([combined.replicas, combined.samples, combined.batches]).to.deep.equal([3, c.reduce((a, u) => a + u.samples, 0), 6]);
      // Two blocks in a row, so that block momentum carries the first into the second.
      const reference = model0.clone();
      let m: Float32Array = new Float32Array(0);
      for (let b = 0; b < 2; b++) m = mergeInto(reference, updates, s, m, 0);
      const want = Float32Array.from([...reference.layers[0].W, ...reference.layers[0].hBias]);
      for (const groups of groupings) {
        const model = model0.clone();
        let mg: Float32Array = new Float32Array(0);
        const parts = groups.map((g) => combineUpdates(s, g.map((i) => updates[i])));
        for (let b = 0; b < 2; b++) mg = mergeInto(model, parts, s, mg, 0);
        const got = Float32Array.from([...model.layers[0].W, ...model.layers[0].hBias]);
        for (let j = 0; j < got.length; j++) expect(got[j], `${rule} ${JSON.stringify(groups)} [${j}]`).to.be.closeTo(want[j], 1e-6);
        for (let j = 0; j < m.length; j++) expect(mg[j]).to.be.closeTo(m[j], 1e-6);
        expect(model.layers[0].counters.samples).to.equal(reference.layers[0].counters.samples);
      }
    }
    const sync: BlockSettings = { rule: 'bmuf', replicas: 5, mode: 'sync' };
    expect(() => combineUpdates({ ...sync, mode: 'async' }, updates)).to.throw(ConfigError, /async merges take each update as it arrives/);
    expect(() => combineUpdates(sync, [updates[0], { ...updates[1], layer: 1 }])).to.throw(ConfigError, /update 1 is for layer 1/);
    expect(() => combineUpdates(sync, [updates[0], { ...updates[1], staleness: 2 }])).to.throw(ConfigError, /update 1 has staleness 2/);
    expect(() => combineUpdates(sync, [])).to.throw(ConfigError, /nothing to combine/);
    expect(() => mergeWeights({ ...sync, mode: 'async' }, [{ samples: 1, staleness: 0, replicas: 2 }])).to.throw(ConfigError, /combines 2 replicas/);
  });

  it('sum and average add G to the broadcast and leave the momentum alone', () => {
    const w0 = randomVector(n, 3);
    const deltas = [randomVector(n, 31, 0.1), randomVector(n, 32, 0.1)];
    for (const rule of ['sum', 'average'] as const) {
      const s: BlockSettings = { rule, replicas: 2, mode: 'sync' };
      const w = mergeWeights(s, [{ samples: 30, staleness: 0 }, { samples: 10, staleness: 0 }]);
      expect(w).to.deep.equal(rule === 'sum' ? [1, 1] : [0.75, 0.25]);
      const published = w0.slice();
      const momentum = randomVector(n, 33);
      const before = momentum.slice();
      mergeBlock(published, momentum, deltas, w, s);
      for (let j = 0; j < n; j++) expect(published[j]).to.be.closeTo(w0[j] + w[0] * deltas[0][j] + w[1] * deltas[1][j], 1e-6);
      expect(Array.from(momentum)).to.deep.equal(Array.from(before));
      // They need none: an empty momentum is accepted (no 1.6 MB of zeros a merge).
      const p2 = w0.slice();
      mergeBlock(p2, new Float32Array(0), deltas, w, s);
      expect(Array.from(p2)).to.deep.equal(Array.from(published));
    }
  });

  it('weights: sync and async, by staleness, for every rule', () => {
    const u = (staleness: number, samples = 10) => ({ samples, staleness });
    expect(mergeWeights({ rule: 'bmuf', replicas: 4, mode: 'sync' }, [u(0), u(0), u(0), u(0)])).to.deep.equal([0.25, 0.25, 0.25, 0.25]);
    // A last round with fewer partitions: the mean of those that ran.
    expect(mergeWeights({ rule: 'bmuf', replicas: 4, mode: 'sync' }, [u(0), u(0)])).to.deep.equal([0.5, 0.5]);
    const async = (rule: 'bmuf' | 'sum' | 'average', t: number) => mergeWeights({ rule, replicas: 4, mode: 'async', inFlight: 2 }, [u(t)])[0];
    expect([0, 3, 4, 7].map((t) => async('bmuf', t))).to.deep.equal([0.25, 0.25, 0.2, 0.125]);
    expect([0, 3, 4, 7].map((t) => async('average', t))).to.deep.equal([0.25, 0.25, 0.2, 0.125]);
    expect([0, 3, 4, 7].map((t) => async('sum', t))).to.deep.equal([1, 1, 0.8, 0.5]);
  });

  it('defaults: eta 1 - 1/P in sync, (1 - 1/P)^max(1, C - 1) async up to 4 replicas, 0 (averaging) above; zeta 1; each value checked by name', () => {
    expect(blockRule({ rule: 'bmuf', replicas: 4, mode: 'sync' }).eta).to.equal(0.75);
    expect(blockRule({ rule: 'bmuf', replicas: 4, mode: 'async', inFlight: 2 }).eta).to.equal(0.75);
    expect(blockRule({ rule: 'bmuf', replicas: 4, mode: 'async', inFlight: 1 }).eta).to.equal(0.75);
    expect(blockRule({ rule: 'bmuf', replicas: 4, mode: 'async', inFlight: 3 }).eta).to.be.closeTo(0.75 ** 2, 1e-12);
    expect(blockRule({ rule: 'bmuf', replicas: 4, mode: 'async' }).eta).to.be.closeTo(0.75 ** 3, 1e-12);
    expect(blockRule({ rule: 'bmuf', replicas: 2, mode: 'sync' }).eta).to.equal(0.5);
    expect(blockRule({ rule: 'bmuf', replicas: 1, mode: 'sync' }).eta).to.equal(0);
    for (const replicas of [5, 8, 16, 64]) {
      expect(blockRule({ rule: 'bmuf', replicas, mode: 'sync' }).eta).to.equal(0);
      expect(blockRule({ rule: 'bmuf', replicas, mode: 'async', inFlight: 2 }).eta).to.equal(0);
    }
    expect(blockRule({ rule: 'bmuf', replicas: 8, mode: 'sync', blockMomentum: 0.875 }).eta).to.equal(0.875);
    expect(blockRule({ rule: 'bmuf', replicas: 3, mode: 'sync' }).zeta).to.equal(1);
    expect(blockRule({ rule: 'sum', replicas: 3, mode: 'sync' })).to.include({ eta: 0, zeta: 1 });
    const bad: [BlockSettings, RegExp][] = [
      [{ rule: 'bmuf', replicas: 2, mode: 'sync', blockMomentum: 1 }, /blockMomentum: must be in \[0, 1\), got 1/],
      [{ rule: 'bmuf', replicas: 2, mode: 'sync', blockLearningRate: 0 }, /blockLearningRate: must be in \(0, 100\], got 0/],
      [{ rule: 'sum', replicas: 2, mode: 'sync', blockMomentum: 0.5 }, /^blockMomentum: applies to the 'bmuf' rule only, not 'sum'/],
      [{ rule: 'average', replicas: 2, mode: 'sync', nesterov: false }, /^nesterov: applies to the 'bmuf' rule only, not 'average'/],
      [{ rule: 'bmuf', replicas: 0, mode: 'sync' }, /replicas: must be an integer >= 1, got 0/],
      [{ rule: 'bmuf', replicas: 2, mode: 'async', inFlight: 3 }, /inFlight: must be an integer in \[1, 2\], got 3/],
      [{ rule: 'nope' as 'sum', replicas: 2, mode: 'sync' }, /rule: must be 'bmuf', 'sum' or 'average', got 'nope'/],
    ];
    for (const [s, msg] of bad) expect(() => blockRule(s)).to.throw(ConfigError, msg);
    const s: BlockSettings = { rule: 'bmuf', replicas: 2, mode: 'sync' };
    expect(() => mergeBlock(new Float32Array(3), new Float32Array(2), [new Float32Array(3)], [1], s)).to.throw(ConfigError, /momentum: has 2 values/);
    expect(() => mergeBlock(new Float32Array(3), new Float32Array(3), [new Float32Array(4)], [1], s)).to.throw(ConfigError, /update 0 has 4 values/);
    expect(() => mergeBlock(new Float32Array(3), new Float32Array(3), [new Float32Array(3)], [NaN], s)).to.throw(ConfigError, /weight 0 is NaN/);
  });
});
