// One measurement of `scripts/bench rbm`, run in its own process so that its
// peak memory is its own. Prints one JSON line.
//   node out/bench/rbm-run.js fast|ts|roofline <data.f32> [rows]
import { readFileSync } from 'node:fs';
import { type Matrix, RBM, RBMTrainer } from 'spark-dbn';
import { loadKernels, nativeModule } from '../ts/math/native.js';
import { referenceKernels } from '../ts/math/reference.js';

const [mode, file, rowsArg] = process.argv.slice(2);
const V = 784;
const H = 500;
const B = 256;
const rssBefore = process.memoryUsage().rss;
const buf = readFileSync(file);
const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
const rows = Math.min(Number(rowsArg ?? all.length / V), all.length / V);
const data: Matrix = { data: all.subarray(0, rows * V), rows, cols: V };

if (mode === 'roofline') {
  // The five products of CD-1 alone, same shapes, same BLAS: the bound on samples/s.
  const k = loadKernels();
  const v = data.data.subarray(0, B * V);
  const W = new Float32Array(V * H).fill(0.01);
  const h = new Float32Array(B * H);
  const v1 = new Float32Array(B * V);
  const gW = new Float32Array(V * H);
  const batches = Math.ceil(rows / B);
  const run = () => {
    for (let b = 0; b < batches; b++) {
      k.sgemm(false, false, B, H, V, 1, v, V, W, H, 0, h, H);
      k.sgemm(true, false, V, H, B, 1, v, V, h, H, 0, gW, H);
      k.sgemm(false, true, B, V, H, 1, h, H, W, H, 0, v1, V);
      k.sgemm(false, false, B, H, V, 1, v1, V, W, H, 0, h, H);
      k.sgemm(true, false, V, H, B, -1, v1, V, h, H, 1, gW, H);
    }
  };
  run(); // warm-up: thread pool and caches
  const t0 = performance.now();
  run();
  const s = (performance.now() - t0) / 1000;
  const flops = batches * 5 * 2 * B * V * H;
  console.log(JSON.stringify({ mode, rows: batches * B, seconds: s, samplesPerS: (batches * B) / s, gflops: flops / s / 1e9,
    blas: nativeModule()?.config() ?? 'ts', threads: nativeModule()?.getThreads() ?? 1 }));
} else {
  const kernels = mode === 'ts' ? referenceKernels : loadKernels();
  if (mode === 'fast' && kernels.name === 'ts') throw new Error('native kernels did not load: run scripts/build-native.sh');
  const rbm = RBM.create({ nVisible: V, nHidden: H, visible: 'bernoulli' }, { seed: 1, kernels });
  const trainer = new RBMTrainer(rbm, { batchSize: B, k: 1, learningRate: 0.01, seed: 1, monitorRows: 0 });
  // Warm-up on a few batches (thread pool, page faults of the buffers), then one timed epoch.
  trainer.runBatches({ ...data, data: data.data.subarray(0, 4 * B * V), rows: 4 * B }, 4);
  const t0 = performance.now();
  trainer.runBatches(data, Math.ceil(rows / B));
  const s = (performance.now() - t0) / 1000;
  const modelBytes = (rbm.W.length + rbm.vBias.length + rbm.hBias.length) * 4;
  console.log(JSON.stringify({ mode, kernels: kernels.name, rows, seconds: s, samplesPerS: rows / s,
    peakRssBytes: process.resourceUsage().maxRSS * 1024, rssBeforeDataBytes: rssBefore, dataBytes: rows * V * 4, modelBytes }));
}
