// Writes proto/testdata/dbn-v2.avro (a small Gaussian model with input scaling, format 2) and
// rbm-784-64.avro: snapshots written by the TypeScript engine, committed so that the JVM tests read
// exactly what Node writes and the TS tests notice any change of the format's bytes.
// proto/testdata/dbn-v1.avro (a fine-tuned DBN, format 1) is no longer written: it is what the engine
// wrote before format 2, kept to test that such files still read.
// Run after `npm run build`: node scripts/gen-test-vectors.mjs
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scaledTestModel, wideTestModel } from '../out/test/ts/helpers/vectors.js';
import { encodeSnapshot } from '../out/ts/io/snapshot.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bytes = await encodeSnapshot(scaledTestModel(), { trainingConfig: { note: 'test vector' } });
writeFileSync(join(root, 'proto', 'testdata', 'dbn-v2.avro'), bytes);
console.log(`wrote proto/testdata/dbn-v2.avro (${bytes.length} bytes)`);
// Not rewritten when present: tests compare against its committed bytes' model, not its bytes.
const widePath = join(root, 'proto', 'testdata', 'rbm-784-64.avro');
if (!existsSync(widePath)) {
  const wide = await encodeSnapshot(wideTestModel());
  writeFileSync(widePath, wide);
  console.log(`wrote proto/testdata/rbm-784-64.avro (${wide.length} bytes)`);
}
