// Writes the data of `scripts/bench rbm`: 60,000 binarised MNIST-like rows
// (the package's 10,000 digits, tiled) as raw float32, row-major.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { mnistSplit } from 'spark-dbn';

const [out, rowsArg] = process.argv.slice(2);
const rows = Number(rowsArg ?? 60000);
const s = mnistSplit({ trainFraction: 1, binarise: true }).train.images;
const data = new Float32Array(rows * 784);
for (let r = 0; r < rows; r++) data.set(s.data.subarray((r % s.rows) * 784, (r % s.rows + 1) * 784), r * 784);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, data);
