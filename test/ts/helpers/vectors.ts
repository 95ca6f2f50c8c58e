import { DBN } from '../../../ts/rbm/dbn.js';

/**
 * The model of proto/testdata/dbn-v1.avro: 4-3-2 Bernoulli DBN with a 3-class
 * output, every parameter a simple function of its index, so the JVM test can
 * state the expected values without any shared code.
 *   layer l, W[i] = (l + 1) * (i - 5) / 8, vBias[i] = -i / 4, hBias[j] = j / 2
 *   output W[i] = (i % 5) - 2, bias[k] = k
 */
export function testVectorModel(): DBN {
  const dbn = DBN.create([4, 3, 2], { seed: 1 });
  dbn.layers.forEach((l, n) => {
    l.W.forEach((_, i) => (l.W[i] = ((n + 1) * (i - 5)) / 8));
    l.vBias.forEach((_, i) => (l.vBias[i] = -i / 4));
    l.hBias.forEach((_, j) => (l.hBias[j] = j / 2));
    Object.assign(l.counters, { epochs: n + 1, updates: 10 * (n + 1), samples: 100 * (n + 1) });
  });
  dbn.output = {
    nIn: 2,
    nClasses: 3,
    W: Float32Array.from({ length: 6 }, (_, i) => (i % 5) - 2),
    bias: Float32Array.from([0, 1, 2]),
  };
  Object.assign(dbn.fineTuneCounters, { epochs: 4, updates: 40 });
  return dbn;
}

/** proto/testdata/rbm-784-64.avro: a seeded 784-64 RBM for the JVM's wide-input tests. */
export function wideTestModel(): DBN {
  return DBN.create([784, 64], { seed: 784 });
}

/**
 * proto/testdata/dbn-v2.avro (format 2): a 3-2 Gaussian RBM with input scaling, values from their index:
 *   W[i] = (i - 2) / 4, vBias[i] = i / 8, hBias[j] = -j, scaling mean[i] = 100 i - 1.5, std[i] = 2^-i
 */
export function scaledTestModel(): DBN {
  const dbn = DBN.create([3, 2], { visible: 'gaussian', seed: 1 });
  const l = dbn.layers[0];
  l.W.forEach((_, i) => (l.W[i] = (i - 2) / 4));
  l.vBias.forEach((_, i) => (l.vBias[i] = i / 8));
  l.hBias.forEach((_, j) => (l.hBias[j] = -j));
  dbn.setInputScaling({ mean: Float64Array.from([0, 1, 2], (i) => 100 * i - 1.5), std: Float64Array.from([0, 1, 2], (i) => 2 ** -i) });
  return dbn;
}
