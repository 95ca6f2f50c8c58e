/**
 * The seeded random source shared by both kernel sets: xoshiro128** in 16
 * independent lanes (so the native loop vectorises), state as Uint32Array(64)
 * laid out s0[16] s1[16] s2[16] s3[16]. The same seed gives the same stream in
 * TypeScript and in C, so a seeded run is bit-identical on either path.
 */
export const LANES = 16;

/** splitmix32: spreads a seed over the state so that no lane is all zeros. */
export function newRngState(seed: number): Uint32Array {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
  const st = new Uint32Array(4 * LANES);
  let x = (seed >>> 0) ^ Math.floor(seed / 2 ** 32) * 0x9e3779b9;
  for (let i = 0; i < st.length; i++) {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    st[i] = (z ^ (z >>> 16)) >>> 0 || 1;
  }
  return st;
}

/** The reference generator; the native one in native/spark_dbn_native.c does the same. */
export function fillUniform(st: Uint32Array, out: Float32Array, n: number): void {
  const tmp = new Float32Array(LANES);
  for (let i = 0; i < n; i += LANES) {
    for (let l = 0; l < LANES; l++) {
      const s0 = st[l], s1 = st[LANES + l], s2 = st[2 * LANES + l], s3 = st[3 * LANES + l];
      const m5 = Math.imul(s1, 5) >>> 0;
      const r = Math.imul(((m5 << 7) | (m5 >>> 25)) >>> 0, 9) >>> 0;
      const t = (s1 << 9) >>> 0;
      const n2 = (s2 ^ s0) >>> 0;
      const n3 = (s3 ^ s1) >>> 0;
      const n1 = (s1 ^ n2) >>> 0;
      const n0 = (s0 ^ n3) >>> 0;
      st[l] = n0;
      st[LANES + l] = n1;
      st[2 * LANES + l] = (n2 ^ t) >>> 0;
      st[3 * LANES + l] = ((n3 << 11) | (n3 >>> 21)) >>> 0;
      tmp[l] = (r >>> 8) * (1 / 16777216);
    }
    const m = Math.min(LANES, n - i);
    for (let j = 0; j < m; j++) out[i + j] = tmp[j];
  }
}

/** Standard normals by Box-Muller over the uniform stream (used for initialisation only). */
export function fillNormal(st: Uint32Array, out: Float32Array, n: number, mean = 0, std = 1): void {
  const u = new Float32Array(n + (n & 1));
  fillUniform(st, u, u.length);
  for (let i = 0; i < n; i += 2) {
    // 1 - u keeps the log argument in (0, 1].
    const r = Math.sqrt(-2 * Math.log(1 - u[i]));
    const a = 2 * Math.PI * u[i + 1];
    out[i] = mean + std * r * Math.cos(a);
    if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(a);
  }
}

/** One step of the 16 lanes; a 32-bit key from lanes 0 and 1 (the native next_key does the same). */
export function nextKey(st: Uint32Array): number {
  const u = new Float32Array(LANES);
  fillUniform(st, u, LANES);
  return ((u[0] * 16777216) ^ ((u[1] * 16777216) << 8)) >>> 0;
}

/**
 * Value i of the counter-based stream `key`: uniform in [0, 1) with 24 bits, a
 * hash ("triple32", C. Wellons: full avalanche, a bijection) of key + i * golden
 * ratio. Any thread can make any value, so native sampling splits across threads
 * and the stream does not depend on how many there are.
 */
export function counterUniform(key: number, i: number): number {
  let x = (key + Math.imul(i >>> 0, 0x9e3779b9)) >>> 0;
  x = Math.imul(x ^ (x >>> 17), 0xed5ad4bb);
  x = Math.imul(x ^ (x >>> 11), 0xac4c1b51);
  x = Math.imul(x ^ (x >>> 15), 0x31848bab);
  x = (x ^ (x >>> 14)) >>> 0;
  return (x >>> 8) * (1 / 16777216);
}
