// Writes the model of `scripts/bench ingest`: a 784 -> 1 RBM, so that what is
// measured is moving the data, not computing on it.
import { DBN, saveSnapshot } from 'spark-dbn';

await saveSnapshot(DBN.create([784, 1], { seed: 1 }), process.argv[2]);
