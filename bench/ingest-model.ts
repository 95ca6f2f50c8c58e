// Writes the model of `scripts/bench ingest`: a 784 -> 1 RBM, so that what is
// measured is moving the data, not computing on it.
import { saveSnapshot } from '../ts/io/snapshot.js';
import { DBN } from '../ts/rbm/dbn.js';

await saveSnapshot(DBN.create([784, 1], { seed: 1 }), process.argv[2]);
