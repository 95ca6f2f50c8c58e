import { fillNormal, fillUniform, newRngState } from '../math/rng.js';
import { type Matrix, validateData } from './data.js';
import { ConfigError, EngineError } from './errors.js';
import { type RBM, softplus } from './rbm.js';

/** Enumeration beyond 2^24 configurations would take minutes: use AIS. */
export const MAX_ENUMERATION_BITS = 24;

function logSumExpAdd(acc: { max: number; sum: number }, x: number): void {
  if (x <= acc.max) {
    acc.sum += Math.exp(x - acc.max);
  } else {
    acc.sum = acc.sum * Math.exp(acc.max - x) + 1;
    acc.max = x;
  }
}

/**
 * Visits all 2^bits binary states in Gray-code order: `visit` sees each state,
 * `flip(i, sign)` is told which bit changed before the next (sign +1: 0 -> 1).
 */
function grayWalk(bits: number, flip: (i: number, sign: number) => void, visit: () => void): void {
  const state = new Uint8Array(bits);
  visit();
  for (let g = 1; g < 2 ** bits; g++) {
    const i = 31 - Math.clz32(g & -g);
    const sign = state[i] ? -1 : 1;
    state[i] ^= 1;
    flip(i, sign);
    visit();
  }
}

/**
 * Exact log Z by enumeration, in double. Sums over the smaller layer with a
 * Gray code, so each configuration costs one column update:
 *   over h (any visible type): log Z = logsumexp_h [c.h + sum_i softplus(b_i + (Wh)_i)]   (Bernoulli)
 *                              log Z = V/2 log 2pi + logsumexp_h [c.h + b.Wh + |Wh|^2 / 2] (Gaussian)
 *   over v (Bernoulli only):   log Z = logsumexp_v [b.v + sum_j softplus(c_j + (vW)_j)]
 */
export function exactLogZ(rbm: RBM): number {
  const { nVisible: V, nHidden: H, W } = rbm;
  const overVisible = rbm.visible === 'bernoulli' && V < H;
  const bits = overVisible ? V : H;
  if (bits > MAX_ENUMERATION_BITS) {
    throw new EngineError(`exact log Z needs 2^${bits} terms; the limit is 2^${MAX_ENUMERATION_BITS}: use AIS`);
  }
  const acc = { max: -Infinity, sum: 0 };
  if (overVisible) {
    // pre = c + vW over the H hidden units; flipping v_i adds or removes row i of W.
    const pre = Float64Array.from(rbm.hBias);
    let lin = 0;
    grayWalk(V, (i, s) => {
      lin += s * rbm.vBias[i];
      for (let j = 0; j < H; j++) pre[j] += s * W[i * H + j];
    }, () => {
      let t = lin;
      for (let j = 0; j < H; j++) t += softplus(pre[j]);
      logSumExpAdd(acc, t);
    });
    return acc.max + Math.log(acc.sum);
  }
  // u = Wh over the V visible units; flipping h_j adds or removes column j of W.
  const u = new Float64Array(V);
  let lin = 0;
  const gaussian = rbm.visible === 'gaussian';
  grayWalk(H, (j, s) => {
    lin += s * rbm.hBias[j];
    for (let i = 0; i < V; i++) u[i] += s * W[i * H + j];
  }, () => {
    let t = lin;
    if (gaussian) {
      for (let i = 0; i < V; i++) t += rbm.vBias[i] * u[i] + 0.5 * u[i] * u[i];
    } else {
      for (let i = 0; i < V; i++) t += softplus(rbm.vBias[i] + u[i]);
    }
    logSumExpAdd(acc, t);
  });
  return acc.max + Math.log(acc.sum) + (gaussian ? (V / 2) * Math.log(2 * Math.PI) : 0);
}

/** Mean log-likelihood of the rows, mean(-F(v)) - log Z, with log Z exact or given (from AIS). */
export function logLikelihood(rbm: RBM, data: Matrix, logZ = exactLogZ(rbm)): number {
  return -rbm.meanFreeEnergy(data) - logZ;
}

/**
 * The exact gradient of the mean log-likelihood of `data` (Bernoulli visible,
 * by enumerating v): E_data[v P(h|v)'] - E_model[v P(h|v)'], likewise for biases.
 */
export function exactGradient(rbm: RBM, data: Matrix): { W: Float64Array; vBias: Float64Array; hBias: Float64Array } {
  const { nVisible: V, nHidden: H, W } = rbm;
  if (rbm.visible !== 'bernoulli') throw new EngineError('exactGradient enumerates visible states: Bernoulli units only');
  if (V > 20) throw new EngineError(`exactGradient enumerates 2^${V} visible states; the limit is 2^20`);
  validateData(data, V, 'bernoulli');
  const gW = new Float64Array(V * H);
  const gb = new Float64Array(V);
  const gc = new Float64Array(H);
  const ph = new Float64Array(H);
  const condH = (v: ArrayLike<number>) => {
    for (let j = 0; j < H; j++) {
      let a = rbm.hBias[j];
      for (let i = 0; i < V; i++) a += v[i] * W[i * H + j];
      ph[j] = 1 / (1 + Math.exp(-a));
    }
  };
  const accumulate = (v: ArrayLike<number>, w: number) => {
    condH(v);
    for (let i = 0; i < V; i++) {
      if (v[i] === 0) continue;
      gb[i] += w * v[i];
      for (let j = 0; j < H; j++) gW[i * H + j] += w * v[i] * ph[j];
    }
    for (let j = 0; j < H; j++) gc[j] += w * ph[j];
  };
  for (let r = 0; r < data.rows; r++) accumulate(data.data.subarray(r * V, (r + 1) * V), 1 / data.rows);
  // Model expectation: p(v) = exp(-F(v)) / Z over all 2^V states.
  const logZ = exactLogZ(rbm);
  const v = new Float64Array(V);
  for (let s = 0; s < 2 ** V; s++) {
    for (let i = 0; i < V; i++) v[i] = (s >>> i) & 1;
    let negF = 0;
    for (let i = 0; i < V; i++) negF += rbm.vBias[i] * v[i];
    for (let j = 0; j < H; j++) {
      let a = rbm.hBias[j];
      for (let i = 0; i < V; i++) a += v[i] * W[i * H + j];
      negF += softplus(a);
    }
    accumulate(v, -Math.exp(negF - logZ));
  }
  return { W: gW, vBias: gb, hBias: gc };
}

/**
 * Pseudo-log-likelihood per row, sum_i log P(v_i | v_-i) = sum_i log sigmoid(F(v~i) - F(v))
 * (v~i: v with bit i flipped), averaged over rows. Binary data and Bernoulli units.
 * With `bits` < V, a random subset of that many bits per row, scaled by V / bits.
 */
export function pseudoLogLikelihood(rbm: RBM, data: Matrix, opts: { bits?: number; seed?: number } = {}): number {
  const { nVisible: V, nHidden: H, W } = rbm;
  if (rbm.visible !== 'bernoulli') throw new EngineError('pseudo-log-likelihood is defined here for Bernoulli units');
  validateData(data, V, 'bernoulli');
  const bits = opts.bits ?? V;
  if (!Number.isInteger(bits) || bits < 1 || bits > V) throw new ConfigError('bits', `must be an integer in [1, ${V}], got ${bits}`);
  const pre = new Float32Array(data.rows * H);
  rbm.kernels.sgemm(false, false, data.rows, H, V, 1, data.data, V, W, H, 0, pre, H);
  const rng = newRngState(opts.seed ?? 1);
  const u = new Float32Array(V);
  const idx = new Uint32Array(V);
  let total = 0;
  for (let r = 0; r < data.rows; r++) {
    const o = r * V;
    for (let i = 0; i < V; i++) {
      if (data.data[o + i] !== 0 && data.data[o + i] !== 1) {
        throw new EngineError(`pseudo-log-likelihood needs binary data: row ${r}, column ${i} is ${data.data[o + i]}`);
      }
    }
    const a = pre.subarray(r * H, (r + 1) * H);
    let base = 0;
    for (let j = 0; j < H; j++) base += softplus(a[j] + rbm.hBias[j]);
    // Pick bits (a partial Fisher-Yates) or take them all.
    for (let i = 0; i < V; i++) idx[i] = i;
    if (bits < V) {
      fillUniform(rng, u, bits);
      for (let t = 0; t < bits; t++) {
        const j = t + Math.min(V - t - 1, Math.floor(u[t] * (V - t)));
        const x = idx[t];
        idx[t] = idx[j];
        idx[j] = x;
      }
    }
    let s = 0;
    for (let t = 0; t < bits; t++) {
      const i = idx[t];
      const sign = data.data[o + i] === 1 ? -1 : 1;
      // F(v~) - F(v) = -(sign * b_i) - sum_j [softplus(a_j + c_j + sign W_ij) - softplus(a_j + c_j)]
      let flipped = 0;
      for (let j = 0; j < H; j++) flipped += softplus(a[j] + rbm.hBias[j] + sign * W[i * H + j]);
      const dF = -sign * rbm.vBias[i] - (flipped - base);
      s += -softplus(-dF); // log sigmoid(dF)
    }
    total += (s * V) / bits;
  }
  return total / data.rows;
}

/** How AIS runs. */
export interface AISConfig {
  /** Independent annealing runs (importance samples). */
  runs: number;
  /** Intermediate distributions; spaced 1:4:10 over beta in [0, .5], [.5, .9], [.9, 1] as in Salakhutdinov & Murray (2008). */
  temperatures: number;
  /** Seed of the sampler. */
  seed: number;
  /** Visible biases of the base-rate model; default: from `data` marginals, else the model's own. */
  baseVisibleBias?: Float32Array;
  /** Data whose marginals set the base-rate model (Bernoulli: log p/(1-p); Gaussian: means). */
  data?: Matrix;
}

export interface AISResult {
  /** The estimate of log Z: log Z_A + log mean(w). */
  logZ: number;
  /** Standard error of the estimate (delta method on mean(w)). */
  stdErr: number;
  /** log Z of the base-rate model. */
  logZBase: number;
  /** Per-run log importance weights. */
  logWeights: Float64Array;
  runs: number;
  temperatures: number;
}

export function aisBetas(temperatures: number): Float64Array {
  if (!Number.isInteger(temperatures) || temperatures < 3) {
    throw new ConfigError('temperatures', `must be an integer >= 3, got ${temperatures}`);
  }
  const n1 = Math.max(1, Math.round(temperatures / 15));
  const n2 = Math.max(1, Math.round((4 * temperatures) / 15));
  const n3 = Math.max(1, temperatures - n1 - n2);
  const b = new Float64Array(n1 + n2 + n3 + 1);
  let k = 0;
  for (let i = 0; i < n1; i++) b[k++] = (0.5 * i) / n1;
  for (let i = 0; i < n2; i++) b[k++] = 0.5 + (0.4 * i) / n2;
  for (let i = 0; i < n3; i++) b[k++] = 0.9 + (0.1 * i) / n3;
  b[k] = 1;
  return b;
}

/**
 * Annealed importance sampling of log Z (Neal 2001; Salakhutdinov & Murray 2008).
 * Anneals from a base-rate model A (visible biases bA, no weights, hidden units
 * free: log Z_A = sum_i softplus(bA_i) + H log 2 for Bernoulli units) to the RBM B through
 *   log p*_beta(v) = (1 - beta) bA.v + beta b.v + sum_j softplus(beta (c_j + (vW)_j))
 * (Gaussian: -(1 - beta)|v - bA|^2 / 2 - beta |v - b|^2 / 2 in place of the linear terms),
 * one Gibbs transition per temperature, all runs at once as matrix products.
 */
export function ais(rbm: RBM, cfg: Partial<AISConfig> = {}): AISResult {
  const runs = cfg.runs ?? 100;
  const seed = cfg.seed ?? 1;
  if (!Number.isInteger(runs) || runs < 2) throw new ConfigError('runs', `must be an integer >= 2, got ${runs}`);
  const betas = aisBetas(cfg.temperatures ?? 10000);
  const { nVisible: V, nHidden: H, W, kernels: k } = rbm;
  const gaussian = rbm.visible === 'gaussian';
  const bA = new Float64Array(V);
  if (cfg.baseVisibleBias) {
    if (cfg.baseVisibleBias.length !== V) throw new ConfigError('baseVisibleBias', `needs ${V} values`);
    bA.set(cfg.baseVisibleBias);
  } else if (cfg.data) {
    validateData(cfg.data, V, rbm.visible, 'AIS data');
    const { data, rows } = cfg.data;
    for (let r = 0; r < rows; r++) for (let i = 0; i < V; i++) bA[i] += data[r * V + i];
    for (let i = 0; i < V; i++) {
      const p = bA[i] / rows;
      const q = Math.min(1 - 1e-3, Math.max(1e-3, p));
      bA[i] = gaussian ? p : Math.log(q / (1 - q));
    }
  } else {
    bA.set(rbm.vBias);
  }
  let logZBase = H * Math.LN2;
  for (let i = 0; i < V; i++) logZBase += gaussian ? 0.5 * Math.log(2 * Math.PI) : softplus(bA[i]);

  const rng = newRngState(seed);
  const v = new Float32Array(runs * V);
  const h = new Float32Array(runs * H);
  const pre = new Float32Array(runs * H);
  const noise = gaussian ? new Float32Array(runs * V) : null;
  const mixBias = new Float32Array(V);
  const logw = new Float64Array(runs);
  // Exact sample of the base model.
  if (gaussian) {
    fillNormal(rng, v, v.length);
    for (let r = 0; r < runs; r++) for (let i = 0; i < V; i++) v[r * V + i] += bA[i];
  } else {
    for (let r = 0; r < runs; r++) for (let i = 0; i < V; i++) v[r * V + i] = 1 / (1 + Math.exp(-bA[i]));
    k.bernoulli(v, v, v.length, rng);
  }
  for (let t = 1; t < betas.length; t++) {
    const b0 = betas[t - 1];
    const b1 = betas[t];
    // pre = c + vW: (runs, H), shared by both temperatures and the transition.
    k.sgemm(false, false, runs, H, V, 1, v, V, W, H, 0, pre, H);
    for (let r = 0; r < runs; r++) {
      let d = 0;
      const o = r * V;
      if (gaussian) {
        for (let i = 0; i < V; i++) {
          const x = v[o + i];
          const dA = x - bA[i];
          const dB = x - rbm.vBias[i];
          d += -0.5 * (b1 - b0) * (dB * dB - dA * dA);
        }
      } else {
        for (let i = 0; i < V; i++) d += (b1 - b0) * (rbm.vBias[i] - bA[i]) * v[o + i];
      }
      const p = r * H;
      for (let j = 0; j < H; j++) {
        const a = pre[p + j] + rbm.hBias[j];
        d += softplus(b1 * a) - softplus(b0 * a);
      }
      logw[r] += d;
    }
    if (t === betas.length - 1) break;
    // Gibbs transition that leaves p_{b1} invariant: h ~ P(h | v), then v ~ P(v | h).
    for (let r = 0; r < runs; r++) {
      const p = r * H;
      for (let j = 0; j < H; j++) h[p + j] = b1 * (pre[p + j] + rbm.hBias[j]);
    }
    k.sigmoidBias(h, runs, H, null);
    k.bernoulli(h, h, h.length, rng);
    // v mean: (1 - b1) bA + b1 (b + W h)
    k.sgemm(false, true, runs, V, H, b1, h, H, W, H, 0, v, V);
    for (let i = 0; i < V; i++) mixBias[i] = (1 - b1) * bA[i] + b1 * rbm.vBias[i];
    if (gaussian) {
      k.addBias(v, runs, V, mixBias);
      fillNormal(rng, noise!, noise!.length);
      for (let i = 0; i < v.length; i++) v[i] += noise![i];
    } else {
      k.sigmoidBias(v, runs, V, mixBias);
      k.bernoulli(v, v, v.length, rng);
    }
  }
  // log mean w and its standard error, computed with the max factored out.
  let max = -Infinity;
  for (const x of logw) max = Math.max(max, x);
  let s = 0;
  let s2 = 0;
  for (const x of logw) {
    const w = Math.exp(x - max);
    s += w;
    s2 += w * w;
  }
  const mean = s / runs;
  const variance = Math.max(0, s2 / runs - mean * mean) * (runs / (runs - 1));
  return {
    logZ: logZBase + max + Math.log(mean),
    stdErr: Math.sqrt(variance / runs) / mean,
    logZBase,
    logWeights: logw,
    runs,
    temperatures: betas.length - 1,
  };
}
