import { expect } from 'chai';
import { type Kernels } from 'spark-dbn';
import { nativeModule, loadKernels } from '../../ts/math/native.js';
import { referenceKernels as ref } from '../../ts/math/reference.js';
import { fillUniform, newRngState } from '../../ts/math/rng.js';

const fast: Kernels = loadKernels();

function randn(n: number, seed: number, scale = 1): Float32Array {
  const st = newRngState(seed);
  const u = new Float32Array(n);
  fillUniform(st, u, n);
  return u.map((x) => (x * 2 - 1) * scale);
}

/** |a - b| <= atol + rtol * |b|, element-wise, with NaN only where NaN is expected. */
function expectClose(a: Float32Array, b: Float32Array, atol: number, rtol: number, what: string): void {
  expect(a.length).to.equal(b.length);
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(b[i]) || Number.isNaN(a[i])) {
      expect(Number.isNaN(a[i]), `${what}[${i}]: fast ${a[i]} vs reference ${b[i]}`).to.equal(Number.isNaN(b[i]));
      continue;
    }
    if (!Number.isFinite(b[i])) {
      expect(a[i], `${what}[${i}]`).to.equal(b[i]);
      continue;
    }
    const tol = atol + rtol * Math.abs(b[i]);
    if (!(Math.abs(a[i] - b[i]) <= tol)) {
      expect.fail(`${what}[${i}]: fast ${a[i]} vs reference ${b[i]} (tolerance ${tol})`);
    }
  }
}

describe('math kernels: fast path against the TypeScript reference', function () {
  before(function () {
    if (fast.name === 'ts') {
      // The fast path must exist where setup ran; CI builds it. Say so loudly instead of passing quietly.
      throw new Error('native kernels did not load: run scripts/build-native.sh (needs libopenblas-dev)');
    }
  });

  const shapes: [number, number, number][] = [[1, 1, 1], [1, 7, 3], [7, 13, 5], [33, 65, 17], [64, 100, 784], [3, 1, 9], [300, 1, 784]];
  for (const [M, N, K] of shapes) {
    for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
      it(`sgemm ${M}x${N}x${K} transA=${ta} transB=${tb}, alpha and beta, padded leading dimensions`, () => {
        const lda = (ta ? M : K) + 3;
        const ldb = (tb ? K : N) + 1;
        const ldc = N + 2;
        const A = randn((ta ? K : M) * lda, 1);
        const B = randn((tb ? N : K) * ldb, 2);
        const C0 = randn(M * ldc, 3);
        const c1 = C0.slice();
        const c2 = C0.slice();
        fast.sgemm(ta, tb, M, N, K, 0.7, A, lda, B, ldb, 0.3, c1, ldc);
        ref.sgemm(ta, tb, M, N, K, 0.7, A, lda, B, ldb, 0.3, c2, ldc);
        // float32 accumulation over K terms of size <= 1: K * 2^-24 * 4 bounds the error.
        expectClose(c1, c2, K * 2.4e-7 + 1e-6, 1e-6, 'C');
      });
    }
  }

  it('sgemm propagates NaN and infinity like BLAS, also through a zero', () => {
    const A = new Float32Array([1, 0, 2, 3, NaN, 1]); // (2, 3)
    const B = new Float32Array([1, 2, Infinity, 4, 5, 6]); // (3, 2)
    const c1 = new Float32Array(4);
    const c2 = new Float32Array(4);
    fast.sgemm(false, false, 2, 2, 3, 1, A, 3, B, 2, 0, c1, 2);
    ref.sgemm(false, false, 2, 2, 3, 1, A, 3, B, 2, 0, c2, 2);
    expect(Array.from(c2).map(Number.isNaN)).to.deep.equal([true, false, true, true]);
    expectClose(c1, c2, 1e-6, 1e-6, 'C');
  });

  it('sigmoidBias matches over the whole float range, keeps NaN, saturates at infinities', () => {
    const xs = [-1e30, -1000, -104, -88.7, -87.5, -30, -5, -1e-8, 0, 1e-8, 0.5, 5, 17, 30, 88.7, 1000, NaN, Infinity, -Infinity];
    const lin = randn(997, 9, 40);
    const X = new Float32Array([...xs, ...lin]);
    const cols = 8;
    const rows = Math.floor(X.length / cols);
    const bias = randn(cols, 4, 3);
    const a = X.slice(0, rows * cols);
    const b = a.slice();
    fast.sigmoidBias(a, rows, cols, bias);
    ref.sigmoidBias(b, rows, cols, bias);
    // Absolute 2e-7 near 0 and 1; relative 2e-6 where sigmoid is tiny (its tail is exp(x)).
    expectClose(a, b, 2e-7, 2e-6, 'sigmoid');
    const n1 = X.slice(0, 19);
    const n2 = n1.slice();
    fast.sigmoidBias(n1, 1, 19, null);
    ref.sigmoidBias(n2, 1, 19, null);
    expectClose(n1, n2, 1.2e-38, 2e-6, 'sigmoid (no bias)');
    expect(Number.isNaN(n1[16])).to.equal(true);
    expect(n1[17]).to.equal(1);
    expect(n1[18]).to.be.within(0, 1.2e-38);
  });

  for (const n of [1, 15, 16, 17, 1000, 4099]) {
    it(`the random stream is bit-identical in C and TypeScript (n=${n}, three draws)`, () => {
      const s1 = newRngState(123);
      const s2 = newRngState(123);
      for (let draw = 0; draw < 3; draw++) {
        const a = new Float32Array(n);
        const b = new Float32Array(n);
        fast.uniform(s1, a, n);
        ref.uniform(s2, b, n);
        expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).to.equal(true);
      }
      expect(Array.from(s1)).to.deep.equal(Array.from(s2));
    });
  }

  it('uniforms lie in [0, 1) with mean 1/2 and variance 1/12', () => {
    const u = new Float32Array(200_000);
    fast.uniform(newRngState(5), u, u.length);
    let s = 0;
    let s2 = 0;
    for (const x of u) {
      expect(x >= 0 && x < 1).to.equal(true);
      s += x;
      s2 += x * x;
    }
    const mean = s / u.length;
    // Standard error of the mean is sqrt(1/12/n) = 6.5e-4; allow 5 of them.
    expect(mean).to.be.closeTo(0.5, 0.0033);
    expect(s2 / u.length - mean * mean).to.be.closeTo(1 / 12, 0.002);
  });

  it('bernoulli samples identically on both paths, in place too, and keeps NaN', () => {
    const P = randn(3001, 7).map((x) => Math.abs(x));
    P[5] = NaN;
    P[6] = 0;
    P[7] = 1;
    const a = new Float32Array(P.length);
    const b = P.slice();
    fast.bernoulli(P, a, P.length, newRngState(77));
    ref.bernoulli(b, b, b.length, newRngState(77));
    expectClose(a, b, 0, 0, 'sample');
    expect(Number.isNaN(a[5])).to.equal(true);
    expect(a[6]).to.equal(0);
    expect(a[7]).to.equal(1);
  });

  it('bernoulli over 65,536 values and more (split across threads) samples identically to TypeScript, at rate p, pairs uncorrelated', () => {
    const n = 300_001;
    const P = new Float32Array(n).fill(0.3);
    const a = new Float32Array(n);
    const b = new Float32Array(n);
    const s1 = newRngState(9);
    const s2 = newRngState(9);
    for (let draw = 0; draw < 2; draw++) {
      fast.bernoulli(P, a, n, s1);
      ref.bernoulli(P, b, n, s2);
      expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer)), `draw ${draw}`).to.equal(true);
    }
    expect(Array.from(s1)).to.deep.equal(Array.from(s2));
    let ones = 0;
    let both = 0;
    for (let i = 0; i < n; i++) {
      ones += a[i];
      if (i > 0) both += a[i] * a[i - 1];
    }
    // Standard error of the rate: sqrt(0.3 * 0.7 / n) = 8.4e-4; of the neighbour pairs' rate (0.09): 5.2e-4. Five of each.
    expect(ones / n).to.be.closeTo(0.3, 0.0042);
    expect(both / (n - 1)).to.be.closeTo(0.09, 0.0026);
    // A new draw is a new key: the two draws differ.
    const c = new Float32Array(n);
    fast.bernoulli(P, c, n, s1);
    expect(Buffer.from(a.buffer).equals(Buffer.from(c.buffer))).to.equal(false);
  });

  it('colSums (split across threads) and firstOutside over 65,536 values and more match the reference', () => {
    const rows = 301;
    const cols = 509; // not a multiple of 16: the last thread's columns end mid-block
    const X = randn(rows * cols, 31).map((x) => Math.abs(x) / 4);
    const o1 = randn(cols, 32);
    const o2 = o1.slice();
    fast.colSums(X, rows, cols, o1, 0.5, 0.9);
    ref.colSums(X, rows, cols, o2, 0.5, 0.9);
    expectClose(o1, o2, 1e-5, 1e-6, 'colSums');
    const n = X.length;
    for (const at of [[n - 1], [n / 2 + 10], [17, n - 3], [n / 2 - 1, n / 2 + 1], []]) {
      const Y = X.map((x) => Math.min(x, 1));
      for (const i of at) Y[Math.floor(i)] = NaN;
      const want = at.length ? Math.floor(Math.min(...at)) : -1;
      expect(fast.firstOutside(Y, n, 0, 1), `bad at ${at}`).to.equal(want);
      expect(ref.firstOutside(Y, n, 0, 1)).to.equal(want);
    }
  });

  it('gatherRows copies the indexed rows like the reference, small and large, and refuses an index past the end', () => {
    for (const [rows, cols, n] of [[10, 3, 4], [1000, 784, 256]]) {
      const X = randn(rows * cols, 41);
      const idx = Uint32Array.from({ length: rows }, (_, i) => (i * 7919 + 3) % rows);
      const a = new Float32Array(n * cols);
      const b = new Float32Array(n * cols);
      fast.gatherRows(X, cols, idx, 5, n, a);
      ref.gatherRows(X, cols, idx, 5, n, b);
      expectClose(a, b, 0, 0, 'rows');
      expect(Array.from(a.subarray(0, cols))).to.deep.equal(Array.from(X.subarray(idx[5] * cols, (idx[5] + 1) * cols)));
    }
    const bad = Uint32Array.from([0, 10]);
    expect(() => fast.gatherRows(new Float32Array(30), 3, bad, 0, 2, new Float32Array(6))).to.throw(RangeError, /index 10 is beyond the 10 rows/);
    expect(() => ref.gatherRows(new Float32Array(30), 3, bad, 0, 2, new Float32Array(6))).to.throw(RangeError, /index 10 is beyond the 10 rows/);
  });

  it('colSums, addBias and momentumStep match', () => {
    const rows = 37;
    const cols = 29;
    const X = randn(rows * cols, 11);
    const o1 = randn(cols, 12);
    const o2 = o1.slice();
    fast.colSums(X, rows, cols, o1, -0.5, 0.25);
    ref.colSums(X, rows, cols, o2, -0.5, 0.25);
    expectClose(o1, o2, 1e-5, 1e-6, 'colSums');
    const b = randn(cols, 13);
    const x1 = X.slice();
    const x2 = X.slice();
    fast.addBias(x1, rows, cols, b);
    ref.addBias(x2, rows, cols, b);
    expectClose(x1, x2, 0, 0, 'addBias');
    const W1 = randn(1000, 14);
    const V1 = randn(1000, 15);
    const G = randn(1000, 16);
    const W2 = W1.slice();
    const V2 = V1.slice();
    fast.momentumStep(W1, V1, G, 1000, 0.05, 0.9, 2e-4);
    ref.momentumStep(W2, V2, G, 1000, 0.05, 0.9, 2e-4);
    expectClose(W1, W2, 1e-7, 1e-6, 'W');
    expectClose(V1, V2, 1e-7, 1e-6, 'V');
  });

  it('decayAdd and firstOutside match, firstOutside finding NaN, infinities and range edges', () => {
    const W1 = randn(3000, 21);
    const V1 = randn(3000, 22);
    const W2 = W1.slice();
    const V2 = V1.slice();
    fast.decayAdd(W1, V1, 3000, 3e-4, 0.9);
    ref.decayAdd(W2, V2, 3000, 3e-4, 0.9);
    expectClose(W1, W2, 1e-7, 1e-6, 'W');
    expectClose(V1, V2, 1e-7, 1e-6, 'V');
    const X = randn(10000, 23).map((x) => Math.abs(x));
    for (const [at, bad, lo, hi] of [[9999, NaN, 0, 1], [4096, 1.0000001, 0, 1], [0, -1e-30, 0, 1], [5000, Infinity, -3.4e38, 3.4e38],
      [1, -Infinity, -3.4e38, 3.4e38], [-1, 0, 0, 1]] as const) {
      const Y = X.slice();
      if (at >= 0) Y[at] = bad;
      expect(fast.firstOutside(Y, Y.length, lo, hi), `bad ${bad} at ${at}`).to.equal(at);
      expect(ref.firstOutside(Y, Y.length, lo, hi)).to.equal(at);
    }
    // Only the first n are looked at.
    const Z = X.slice();
    Z[7000] = NaN;
    expect(fast.firstOutside(Z, 7000, 0, 1)).to.equal(-1);
  });

  it('blockMerge gives the reference bits for 1, 2, 3 and 8 updates, with and without block momentum, and touches only n', () => {
    // Bit for bit, not within a tolerance: the driver's merge must not depend on which kernels loaded
    // (a model is the same whether the native module did). n is no multiple of the C loop's block of
    // 512, and 150,001 x 8 values split across threads.
    for (const [n, P] of [[1, 1], [1000, 2], [5000, 3], [150001, 8]] as const) {
      const deltas = Array.from({ length: P }, (_, i) => randn(n + 7, 100 + i, 1e-2));
      const weights = Float64Array.from(deltas, (_, i) => (i + 1) / (3 * P));
      for (const [momentum, nesterov] of [[true, false], [true, true], [false, false]]) {
        const W1 = randn(n + 7, 30);
        const D1 = randn(n + 7, 31, 1e-3);
        const W2 = W1.slice();
        const D2 = D1.slice();
        for (let r = 0; r < 3; r++) {
          fast.blockMerge(W1, momentum ? D1 : null, deltas, weights, n, 0.75, 1.25, nesterov);
          ref.blockMerge(W2, momentum ? D2 : null, deltas, weights, n, 0.75, 1.25, nesterov);
        }
        const what = `n ${n}, ${P} updates, momentum ${momentum}, nesterov ${nesterov}`;
        expect(Buffer.from(W1.buffer).equals(Buffer.from(W2.buffer)), `W: ${what}`).to.equal(true);
        expect(Buffer.from(D1.buffer).equals(Buffer.from(D2.buffer)), `D: ${what}`).to.equal(true);
        expect(Array.from(W1.subarray(n)), `W past n: ${what}`).to.deep.equal(Array.from(randn(n + 7, 30).subarray(n)));
      }
    }
    // The kernel against its definition at one parameter: G = 0.25 * 2 + 0.5 * -4 = -1.5;
    // d = 0.5 * 0.1 + 2 * G = -2.95; Nesterov: W = 1 + 2 * G + 0.5 * d = -3.475; classical: W = 1 + d = -1.95.
    for (const nesterov of [true, false]) {
      const W = Float32Array.of(1);
      const D = Float32Array.of(0.1);
      fast.blockMerge(W, D, [Float32Array.of(2), Float32Array.of(-4)], Float64Array.of(0.25, 0.5), 1, 0.5, 2, nesterov);
      const d = 0.5 * Math.fround(0.1) - 3;
      expect(D[0]).to.equal(Math.fround(d));
      expect(W[0]).to.equal(Math.fround(nesterov ? 1 + (-3 + 0.5 * d) : 1 + d));
    }
  });

  it('the native module refuses wrong shapes with a RangeError instead of writing out of bounds', () => {
    const small = new Float32Array(3);
    expect(() => fast.sgemm(false, false, 2, 2, 2, 1, small, 2, small, 2, 0, small, 2)).to.throw(RangeError, /A has 3 elements/);
    expect(() => fast.sigmoidBias(small, 2, 2, null)).to.throw(RangeError);
    expect(() => fast.uniform(new Uint32Array(3), small, 3)).to.throw(RangeError, /Uint32Array\(64\)/);
    expect(() => fast.bernoulli(small, small, 4, newRngState(1))).to.throw(RangeError);
    expect(() => (fast.colSums as Function)(small, 1, 3, [1, 2, 3], 1, 0)).to.throw(RangeError, /Float32Array/);
    expect(() => fast.blockMerge(small, null, [small, new Float32Array(2)], Float64Array.of(1, 1), 3, 0, 1, false)).to.throw(RangeError, /delta 1 has 2/);
    expect(() => fast.blockMerge(small, null, [small], Float64Array.of(1, 1), 3, 0, 1, false)).to.throw(RangeError, /1 deltas, 2 weights/);
    expect(() => fast.blockMerge(small, new Float32Array(1), [small], Float64Array.of(1), 3, 0, 1, false)).to.throw(RangeError, /D has 1/);
    expect(() => (fast.blockMerge as Function)(small, null, [small], [1], 3, 0, 1, false)).to.throw(RangeError, /Float64Array/);
  });

  it('reports its BLAS, the kernels chosen for this CPU, and its thread count', () => {
    const m = nativeModule()!;
    expect(m.config()).to.match(/OpenBLAS .*DYNAMIC_ARCH/);
    expect(m.simd!()).to.be.oneOf(['avx512f', 'avx2', 'baseline']);
    expect(m.coreName!()).to.match(/^\w+$/);
    // Set by portable.test.ts, which runs this file on an emulated older CPU: what that CPU must get.
    const want = process.env.SPARK_DBN_TEST_EXPECT_CPU;
    if (want) expect(`${m.simd!()}/${m.coreName!()}`).to.equal(want);
    // The count is the process's: restored, whatever it was, so that later tests run as they would alone.
    const before = m.getThreads();
    try {
      m.setThreads(1);
      expect(m.getThreads()).to.equal(1);
    } finally {
      m.setThreads(before);
    }
  });
});
