// The engine's side of `scripts/bench train`, one JSON line per call:
//   node out/bench/train-engine.js engine <epochs> <batch> [seed] [lr]   train CD-1 784->500 on the full MNIST in one process
//     (initial weights from seed x 31, as Spark's `train --seed` draws them; sampling and order from seed; learning
//     rate 0.05 as DBN's default unless given: the test log-likelihood after 10 epochs moves ~1 nat per 0.002 of it)
//   node out/bench/train-engine.js evaluate <model.avro>     the quality of a model the Spark run saved
// Quality as users measure it: reconstruction error on the 60,000 training digits, and the test
// log-likelihood of the 10,000 test digits (thresholded at 0.5) under the RBM, log Z by AIS
// (100 runs, 10,000 temperatures; its standard error is reported).
import { ais, columnMeans, layerSeed, loadFullMnist, loadSnapshot, logLikelihood, type Matrix, RBM, RBMTrainer } from 'spark-dbn';

const [mode, ...args] = process.argv.slice(2);

function quality(rbm: RBM, train: Matrix, test: Matrix) {
  const t0 = performance.now();
  const binary: Matrix = { ...test, data: test.data.map((v) => (v > 0.5 ? 1 : 0)) };
  const z = ais(rbm, { runs: 100, temperatures: 10000, data: train, seed: 1 });
  return { reconstructionError: rbm.reconstructionError(train), testLogLikelihood: logLikelihood(rbm, binary, z.logZ),
    logZStdErr: z.stdErr, evaluateSeconds: (performance.now() - t0) / 1000 };
}

if (mode === 'engine') {
  const [epochs, batch, seed = 1, lr = 0.05] = args.map(Number);
  const t0 = performance.now();
  // The rows' first trip: read from the IDX files, as Spark's run reads its Parquet.
  const { train, test } = loadFullMnist();
  // The settings the Spark run gets from DBN's defaults: lr 0.05, momentum 0.5 then 0.9 from epoch 5, decay 2e-4.
  const rbm = RBM.create({ nVisible: 784, nHidden: 500, visible: 'bernoulli' }, { seed: layerSeed(seed, 0), means: columnMeans(train.images) });
  new RBMTrainer(rbm, { epochs, batchSize: batch, learningRate: lr, momentum: [[0, 0.5], [5, 0.9]], weightDecay: 2e-4, seed,
    monitorRows: 0 }).fit(train.images);
  const seconds = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ seconds, samples: epochs * train.images.rows, ...quality(rbm, train.images, test.images) }));
} else if (mode === 'evaluate') {
  const dbn = await loadSnapshot(args[0]);
  const { train, test } = loadFullMnist();
  console.log(JSON.stringify(quality(dbn.layers[0], train.images, test.images)));
} else {
  console.error('usage: train-engine.js engine <epochs> <batch> [seed] [lr] | evaluate <model.avro>');
  process.exit(2);
}
