// temporary experiment: engine-only DBN codes for MNIST search
import { writeFileSync } from 'node:fs';
import { DBN, loadFullMnist } from 'spark-dbn';
const [layersArg, epochsArg, out] = process.argv.slice(2);
const layers = layersArg.split(',').map(Number);
const { train, test } = loadFullMnist();
const dbn = DBN.create([784, ...layers], { seed: 31, data: train.images });
const t0 = performance.now();
dbn.pretrain(train.images, { epochs: Number(epochsArg), batchSize: 100, learningRate: 0.05, momentum: [[0, 0.5], [5, 0.9]],
  weightDecay: 2e-4, seed: 1, monitorRows: 0 }, (l, e) => process.stderr.write(`${((performance.now() - t0) / 1000).toFixed(0)} s layer ${l} epoch ${e.epoch} recon ${e.reconstructionError.toFixed(3)}\n`));
for (const [name, m] of [['train', train.images], ['test', test.images]]) {
  let x = m;
  for (let l = 0; l < dbn.layers.length; l++) {
    const h = dbn.layers[l].hiddenProbs(x);
    x = { data: h, rows: x.rows, cols: dbn.layers[l].nHidden };
    writeFileSync(`${out}/${name}-l${l}.f32`, Buffer.from(h.buffer, h.byteOffset, h.byteLength));
    process.stderr.write(`${name} layer ${l}: ${x.rows} x ${x.cols}\n`);
  }
}
