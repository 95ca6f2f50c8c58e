// Writes proto/testdata/dbn-v1.avro: a small fine-tuned DBN snapshot written by
// the TypeScript engine, committed so that the JVM tests read exactly what Node
// writes and the TS tests notice any change of the format's bytes.
// Run after `npm run build`: node scripts/gen-test-vectors.mjs
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testVectorModel, wideTestModel } from '../out/test/ts/helpers/vectors.js';
import { encodeSnapshot } from '../out/ts/io/snapshot.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bytes = await encodeSnapshot(testVectorModel(), { trainingConfig: { note: 'test vector' } });
writeFileSync(join(root, 'proto', 'testdata', 'dbn-v1.avro'), bytes);
console.log(`wrote proto/testdata/dbn-v1.avro (${bytes.length} bytes)`);
const wide = await encodeSnapshot(wideTestModel());
writeFileSync(join(root, 'proto', 'testdata', 'rbm-784-64.avro'), wide);
console.log(`wrote proto/testdata/rbm-784-64.avro (${wide.length} bytes)`);
