import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { columnMeans, ConfigError, DBN, decodeSnapshot, encodeSnapshot, fineTuneConfig, flatten, initLayer, type Matrix, RBM, trainConfig, weightedAverage } from 'spark-dbn';
import { encodeTrainingBatch } from '../../ts/io/features.js';
import { decodeUpdate, encodeUpdate } from '../../ts/io/update.js';
import { PayloadError } from '../../ts/io/errors.js';
import { newRngState, fillUniform } from '../../ts/math/rng.js';
import { mergeUpdates } from '../../ts/service/merge.js';
import { ReplicaStore, type TrainJob } from '../../ts/service/replica.js';
import type { ReplicaTopic } from '../../ts/service/options.js';
import { TrainingPool } from '../../ts/service/training.js';
import { SidecarError } from '../../ts/service/errors.js';
import {
  InitLayerRequest, MergeRequest, MergeRule, PutModelRequest, type SidecarClient, TrainRequest, type TrainResponse
} from '../../ts/gen/sidecar.js';
import { bytesToFloats } from '../../ts/io/floats.js';
import { md, spawnSidecar, type SpawnedSidecar } from './helpers/sidecar.js';

/** Noisy copies of a few binary prototypes: data an RBM can learn in a few epochs. */
function prototypes(rows: number, cols: number, seed: number, classes = 4): { x: Matrix; labels: Int32Array } {
  const rng = newRngState(seed);
  const protos = new Float32Array(classes * cols);
  fillUniform(rng, protos, protos.length);
  for (let i = 0; i < protos.length; i++) protos[i] = protos[i] < 0.5 ? 1 : 0;
  const noise = new Float32Array(rows * cols);
  fillUniform(rng, noise, noise.length);
  const x = new Float32Array(rows * cols);
  const labels = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    labels[r] = r % classes;
    for (let c = 0; c < cols; c++) {
      const p = protos[labels[r] * cols + c];
      x[r * cols + c] = noise[r * cols + c] < 0.1 ? 1 - p : p;
    }
  }
  return { x: { data: x, rows, cols }, labels };
}

const CFG = { batchSize: 20, learningRate: 0.1, momentum: 0.5, weightDecay: 0, seed: 5, monitorRows: 100 };

/** Pre-training layer `layer` with config `c` (checked as the Train handler checks it), as a TrainJob's topic. */
const pre = (c: object, layer = 0): ReplicaTopic => ({ kind: 'pretrain', layer, config: trainConfig(c) });

function job(over: Partial<TrainJob>): TrainJob {
  return { session: 's', modelVersion: 'v', topic: pre(CFG), batches: 10, epoch: 0,
    inputSums: false, independent: false, resetMomentum: false, task: 'test task', ...over };
}

describe('distributed training pieces (engine side)', function () {
  this.timeout(60000);

  it('encodes and decodes an update bit-exactly; a flipped byte is a PayloadError naming the CRC', () => {
    const delta = Float32Array.from([1.5, -2.25, 3e-7, 0]);
    const u = { baseVersion: 'abc', layer: 1, delta, replicas: 3, samples: 40, batches: 2, reconstructionError: 3.5, freeEnergy: -10,
      heldOutFreeEnergy: -9.5, loss: NaN, accuracy: NaN, seconds: 0.25 };
    const bytes = encodeUpdate(u);
    const back = decodeUpdate(bytes);
    expect(Array.from(back.delta)).to.deep.equal(Array.from(delta));
    expect(back.layer).to.equal(1);
    expect(back.samples).to.equal(40);
    expect(back.replicas).to.equal(3);
    expect(back.loss).to.be.NaN;
    expect(back.heldOutFreeEnergy).to.equal(-9.5);
    const bad = Buffer.from(bytes);
    bad[bad.indexOf(Buffer.from(delta.buffer)) + 5] ^= 0x40;
    expect(() => decodeUpdate(bad)).to.throw(PayloadError, /crc32 does not match delta/);
  });

  it('one partition trained through replica + merge equals one-process training (to 1e-5)', async () => {
    const { x } = prototypes(200, 24, 1);
    const single = RBM.create({ nVisible: 24, nHidden: 8, visible: 'bernoulli' }, { seed: 3 * 31, data: x });
    const stats = single.fit(x, { ...CFG, epochs: 3 });
    // The same model published as version 0, then 3 epochs of 10 batches, one round each.
    let model = initLayer({ base: null, sizes: [24, 8], layer: 0, visible: 'bernoulli', inputMeans: Array.from(columnMeans(x)),
      classes: 0, seed: 3 });
    expect(Array.from(flatten(model.layers[0]))).to.deep.equal(Array.from(flatten(RBM.create(
      { nVisible: 24, nHidden: 8, visible: 'bernoulli' }, { seed: 3 * 31, data: x }))));
    const store = new ReplicaStore();
    store.setData('p0', x, null);
    let recon = NaN;
    for (let e = 0; e < 3; e++) {
      const snap = await encodeSnapshot(model);
      const out = await store.train(job({ session: 'p0', modelVersion: `v${e}`, epoch: e }), (await decodeSnapshot(snap)).toPlain());
      expect(out.warm).to.equal(e > 0);
      recon = decodeUpdate(out.update).reconstructionError;
      model = mergeUpdates(await decodeSnapshot(snap), { updates: [{ bytes: out.update, staleness: 0 }],
        settings: { rule: 'sum', replicas: 1, mode: 'sync' }, momentum: new Float32Array(0), epochs: 1 }).dbn;
    }
    const a = flatten(model.layers[0]);
    const b = flatten(single);
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    expect(worst).to.be.lessThan(1e-5);
    expect(model.layers[0].counters.epochs).to.equal(3);
    expect(model.layers[0].counters.samples).to.equal(600);
    // The replica's monitor is the same figure fit reports.
    expect(recon).to.be.closeTo(stats[2].reconstructionError, 1e-3);
  });

  it('merging by the average rule is the samples-weighted average of the replicas', async () => {
    const { x } = prototypes(120, 16, 2);
    const base = initLayer({ base: null, sizes: [16, 6], layer: 0, visible: 'bernoulli', inputMeans: Array.from(columnMeans(x)),
      classes: 0, seed: 1 });
    const snap = await encodeSnapshot(base);
    const store = new ReplicaStore();
    const parts = [0, 1].map((p) => ({ data: x.data.subarray(p * 60 * 16, (p + 1) * 60 * 16), rows: 60, cols: 16 }));
    parts.forEach((m, p) => store.setData(`p${p}`, m, null));
    const outs = [];
    // 1 and 3 batches of 20 rows: weights 0.25 and 0.75.
    for (let p = 0; p < 2; p++) {
      outs.push(await store.train(job({ session: `p${p}`, modelVersion: 'v0', batches: [1, 3][p],
        topic: pre({ ...CFG, seed: 10 + p }) }), (await decodeSnapshot(snap)).toPlain()));
    }
    const replicas = outs.map((o) => {
      const d = decodeUpdate(o.update).delta;
      const r = flatten(base.layers[0]);
      for (let i = 0; i < r.length; i++) r[i] += d[i];
      return r;
    });
    const answer = mergeUpdates(await decodeSnapshot(snap), { updates: outs.map((o) => ({ bytes: o.update, staleness: 0 })),
      settings: { rule: 'average', replicas: 2, mode: 'sync' }, momentum: new Float32Array(0), epochs: 0 });
    // Averaging keeps no momentum: none is answered (the driver then has no centre to finish with).
    expect(answer.momentum.length).to.equal(0);
    const merged = answer.dbn;
    const expected = weightedAverage(replicas, [0.25, 0.75]);
    const got = flatten(merged.layers[0]);
    for (let i = 0; i < got.length; i++) expect(got[i]).to.be.closeTo(expected[i], 1e-6);
    expect(merged.layers[0].counters.samples).to.equal(80);
  });

  it('a round with resetMomentum starts from zero momentum: its first step is the plain gradient step', async () => {
    const { x } = prototypes(80, 16, 4);
    const base = initLayer({ base: null, sizes: [16, 6], layer: 0, visible: 'bernoulli', inputMeans: Array.from(columnMeans(x)),
      classes: 0, seed: 1 });
    const snap = await encodeSnapshot(base);
    const cfg = pre({ ...CFG, momentum: 0.9 });
    const deltaOf = async (reset: boolean) => {
      const store = new ReplicaStore();
      store.setData('p', x, null);
      // Round 1 builds up momentum; round 2 (same version) adopts the base again and runs one batch.
      await store.train(job({ session: 'p', modelVersion: 'v0', batches: 3, topic: cfg }), (await decodeSnapshot(snap)).toPlain());
      const out = await store.train(job({ session: 'p', modelVersion: 'v0', batches: 1, topic: cfg, resetMomentum: reset }), (await decodeSnapshot(snap)).toPlain());
      return decodeUpdate(out.update).delta;
    };
    const reset = await deltaOf(true);
    const kept = await deltaOf(false);
    let diff = 0;
    for (let i = 0; i < reset.length; i++) diff = Math.max(diff, Math.abs(reset[i] - kept[i]));
    // Momentum 0.9 carried over moves the replica much further than one plain step.
    expect(diff).to.be.greaterThan(1e-3);
    let normReset = 0;
    let normKept = 0;
    for (let i = 0; i < reset.length; i++) {
      normReset += reset[i] ** 2;
      normKept += kept[i] ** 2;
    }
    expect(normKept).to.be.greaterThan(normReset);
  });

  it('a layer above the first trains on the frozen layers\' probabilities; fine-tuning needs labels', async () => {
    const { x, labels } = prototypes(100, 20, 3);
    let dbn = initLayer({ base: null, sizes: [20, 10, 6], layer: 0, visible: 'bernoulli', inputMeans: Array.from(columnMeans(x)),
      classes: 0, seed: 1 });
    const store = new ReplicaStore();
    store.setData('p', x, null);
    const h1 = dbn.transform(x);
    dbn = initLayer({ base: dbn, sizes: [20, 10, 6], layer: 1, visible: 'bernoulli', inputMeans: Array.from(columnMeans(h1)),
      classes: 0, seed: 1 });
    const snap = await encodeSnapshot(dbn);
    const out = await store.train(job({ session: 'p', topic: pre(CFG, 1), batches: 0, inputSums: true }), (await decodeSnapshot(snap)).toPlain());
    const sums = columnMeans(h1).map((m) => m * 100);
    out.inputSums.forEach((s, j) => expect(s).to.be.closeTo(sums[j], 1e-3));
    expect(out.update.length).to.equal(0);
    expect(out.derivedBytes).to.equal(100 * 10 * 4);
    dbn.initOutput(4, 1);
    const ft = dbn.clone().toPlain();
    let err: unknown;
    await store.train(job({ session: 'p', topic: { kind: 'fineTune', config: fineTuneConfig({ batchSize: 10 }) }, modelVersion: 'ft' }), ft).catch((e) => (err = e));
    expect(String(err)).to.match(/test task: fine-tuning needs labels/);
    store.setData('q', x, labels);
    const u = decodeUpdate((await store.train(job({ session: 'q', topic: { kind: 'fineTune', config: fineTuneConfig({ batchSize: 10 }) }, modelVersion: 'ft' }), ft)).update);
    expect(u.layer).to.equal(-1);
    expect(u.delta.length).to.equal(flatten(dbn).length);
    expect(u.accuracy).to.be.within(0, 1);
  });

  it('a session holds out its last rows: training never uses them, and each round reports their mean free energy', async () => {
    const { x } = prototypes(100, 12, 5);
    // The held-out rows differ from the others: were they trained on, the update would differ.
    x.data.fill(1, 80 * 12);
    const model = new DBN([RBM.create({ nVisible: 12, nHidden: 6, visible: 'bernoulli' }, { seed: 4, data: x })]);
    const cfg = pre({ ...CFG, batchSize: 10, seed: 3 });
    const held = new ReplicaStore();
    held.setData('p', x, null, 20);
    const u = decodeUpdate((await held.train(job({ session: 'p', batches: 12, topic: cfg }), model.toPlain())).update);
    const plain = new ReplicaStore();
    plain.setData('p', { data: x.data.slice(0, 80 * 12), rows: 80, cols: 12 }, null);
    const v = decodeUpdate((await plain.train(job({ session: 'p', batches: 12, topic: cfg }), model.toPlain())).update);
    expect(Buffer.from(u.delta.buffer).equals(Buffer.from(v.delta.buffer))).to.equal(true);
    expect(v.heldOutFreeEnergy).to.be.NaN;
    // Naive reference, in double: F(v) = -b.v - sum_j log(1 + exp(c_j + sum_i v_i W_ij)) under the trained replica.
    const after = flatten(model.layers[0]).map((p, i) => p + u.delta[i]);
    const [V, H] = [12, 6];
    let sum = 0;
    for (let r = 80; r < 100; r++) {
      let f = 0;
      for (let i = 0; i < V; i++) f -= after[V * H + i] * x.data[r * V + i];
      for (let j = 0; j < H; j++) {
        let a = after[V * H + V + j];
        for (let i = 0; i < V; i++) a += x.data[r * V + i] * after[i * H + j];
        f -= Math.log1p(Math.exp(a));
      }
      sum += f;
    }
    expect(u.heldOutFreeEnergy).to.be.closeTo(sum / 20, 1e-3 * Math.abs(sum / 20));
    expect(u.heldOutFreeEnergy).to.not.be.closeTo(u.freeEnergy, 0.5);
    expect(() => held.setData('q', x, null, 100)).to.throw(/held-out rows: 100 of the partition's 100 rows leaves none to train on/);
  });

  it('bad rows are rejected at the first round, naming the task, row and column', async () => {
    const { x } = prototypes(30, 8, 4);
    x.data[17 * 8 + 3] = 1.5;
    const model = new DBN([RBM.create({ nVisible: 8, nHidden: 4, visible: 'bernoulli' }, { seed: 1 })]);
    const store = new ReplicaStore();
    store.setData('p', x, null);
    let err: unknown;
    await store.train(job({ session: 'p' }), model.toPlain()).catch((e) => (err = e));
    expect(String(err)).to.match(/test task: row 17, column 3: .*outside \[0, 1\]/);
  });
});

describe('training pool (worker threads)', function () {
  this.timeout(60000);
  let pool: TrainingPool;
  afterEach(async () => pool?.close());

  it('rounds of two sessions run in parallel workers and equal the same rounds run one after the other', async () => {
    const { x } = prototypes(400, 64, 7);
    const model = new DBN([RBM.create({ nVisible: 64, nHidden: 32, visible: 'bernoulli' }, { seed: 2, data: x })]);
    const snap = await encodeSnapshot(model);
    const run = async (parallel: boolean) => {
      pool = new TrainingPool({ workers: 2, threadsPerWorker: 1, cacheBytes: 1 << 30 });
      await pool.cache('a', [x.data], x.cols, null);
      await pool.cache('b', [x.data.slice().reverse()], x.cols, null);
      const plain = (await decodeSnapshot(snap)).toPlain();
      const go = (s: string) => pool.train(job({ session: s, batches: 40, topic: pre({ ...CFG, seed: s === 'a' ? 1 : 2 }) }), plain);
      const outs = parallel ? await Promise.all([go('a'), go('b')]) : [await go('a'), await go('b')];
      await pool.close();
      return outs.map((o) => Buffer.from(decodeUpdate(o.update).delta.buffer).toString('hex'));
    };
    expect(await run(true)).to.deep.equal(await run(false));
  });

  it('caps each worker\'s V8 heap at workerHeapMb (its resourceLimits); a cap below 16 MiB is refused', async () => {
    const { x } = prototypes(50, 16, 8);
    pool = new TrainingPool({ workers: 1, threadsPerWorker: 1, cacheBytes: 1 << 30, workerHeapMb: 48 });
    await pool.cache('a', [x.data], x.cols, null);
    expect(pool.workerHeapLimitsMb()).to.deep.equal([48]);
    await pool.close();
    pool = new TrainingPool({ workers: 1, threadsPerWorker: 1, cacheBytes: 1 << 30 });
    await pool.cache('a', [x.data], x.cols, null);
    expect(pool.workerHeapLimitsMb()[0]).to.not.equal(48);
    expect(() => new TrainingPool({ workers: 1, threadsPerWorker: 1, cacheBytes: 0, workerHeapMb: 8 }))
      .to.throw(ConfigError, 'workerHeapMb: must be an integer in [16, 1048576], got 8');
  });

  it('drops the least recently used idle session over budget; training it is then NOT_FOUND', async () => {
    const { x } = prototypes(100, 16, 8);
    const bytes = x.data.byteLength;
    pool = new TrainingPool({ workers: 1, threadsPerWorker: 1, cacheBytes: Math.floor(bytes * 2.5) });
    expect((await pool.cache('a', [x.data], x.cols, null)).evicted).to.deep.equal([]);
    await pool.cache('b', [x.data], x.cols, null);
    const snap = await encodeSnapshot(new DBN([RBM.create({ nVisible: 16, nHidden: 4, visible: 'bernoulli' }, { seed: 1 })]));
    await pool.train(job({ session: 'b', batches: 1 }), (await decodeSnapshot(snap)).toPlain());
    await pool.train(job({ session: 'a', batches: 1 }), (await decodeSnapshot(snap)).toPlain()); // a is now the most recently used
    expect((await pool.cache('c', [x.data.subarray(0, 800), x.data.subarray(800)], x.cols, null)).evicted).to.deep.equal(['b']);
    expect(pool.has('b')).to.equal(false);
    expect(pool.cachedBytes).to.be.at.most(bytes * 2.5);
    let err: unknown;
    await pool.train(job({ session: 'b' }), (await decodeSnapshot(snap)).toPlain()).catch((e) => (err = e));
    expect(err).to.be.instanceOf(SidecarError);
    expect((err as SidecarError).code).to.equal(grpc.status.NOT_FOUND);
  });

  it('makes room for a session\'s new rows from the others before they arrive, never dropping the session it replaces', async () => {
    const { x } = prototypes(100, 16, 8);
    const bytes = x.data.byteLength;
    pool = new TrainingPool({ workers: 1, threadsPerWorker: 1, cacheBytes: Math.floor(bytes * 2.5) });
    const snap = await encodeSnapshot(new DBN([RBM.create({ nVisible: 16, nHidden: 4, visible: 'bernoulli' }, { seed: 1 })]));
    for (const s of ['a', 'b']) await pool.cache(s, [x.data], x.cols, null);
    for (const s of ['a', 'b']) await pool.train(job({ session: s, batches: 1 }), (await decodeSnapshot(snap)).toPlain());
    // 'a', the least recently used, sends twice the rows: b + 2 a would exceed the budget, a's old rows go anyway.
    const twice = new Float32Array(2 * x.data.length);
    twice.set(x.data);
    twice.set(x.data, x.data.length);
    expect((await pool.cache('a', [twice], x.cols, null)).evicted).to.deep.equal(['b']);
    expect(pool.has('a')).to.equal(true);
    expect(pool.cachedBytes).to.equal(2 * bytes);
  });

  it('keeps rows sent and not yet trained on, and a session\'s replicas across the eviction of its rows: the same result as a cache that holds all', async () => {
    const { x } = prototypes(300, 16, 9);
    const model = new DBN([RBM.create({ nVisible: 16, nHidden: 6, visible: 'bernoulli' }, { seed: 3, data: x })]);
    const plain = async () => (await decodeSnapshot(await encodeSnapshot(model))).toPlain();
    // Rounds of 'a' with 'b' trained in between (a cache of one session evicts a's rows each time; 'a'
    // then sends them again, as a task does on NOT_FOUND), against the same rounds with room for both.
    const rounds = async (cacheBytes: number) => {
      pool = new TrainingPool({ workers: 1, threadsPerWorker: 1, cacheBytes });
      const deltas: string[] = [];
      let resent = 0;
      // Both sent before either trains, as two tasks of a round do: neither is dropped before its round.
      for (const s of ['a', 'b']) await pool.cache(s, [s === 'a' ? x.data : x.data.slice().reverse()], x.cols, null);
      expect(pool.has('a') && pool.has('b')).to.equal(true);
      for (let r = 0; r < 3; r++) {
        for (const s of ['a', 'b']) {
          if (!pool.has(s)) {
            const { evicted } = await pool.cache(s, [s === 'a' ? x.data : x.data.slice().reverse()], x.cols, null);
            // Rows just sent are not dropped before their round.
            expect(evicted).to.not.include(s);
            if (r > 0) resent++;
          }
          const o = await pool.train(job({ session: s, batches: 7, epoch: r }), await plain());
          if (s === 'a') deltas.push(Buffer.from(decodeUpdate(o.update).delta.buffer).toString('hex'));
        }
      }
      await pool.close();
      return { deltas, resent };
    };
    const roomy = await rounds(1 << 30);
    const tight = await rounds(x.data.byteLength + 1);
    expect(roomy.resent).to.equal(0);
    expect(tight.resent).to.equal(4);
    // Momentum and position in the shuffled rows carried over: bit-identical updates.
    expect(tight.deltas).to.deep.equal(roomy.deltas);
  });
});

describe('training over gRPC (real sidecar process)', function () {
  this.timeout(120000);
  let sc: SpawnedSidecar;
  before(async () => {
    sc = await spawnSidecar({ trainWorkers: 1 });
  });
  after(async () => sc?.stop());

  // Requests are completed with the contract's defaults as a real client's would be (the generated encoder
  // writes an absent string field as "undefined").
  const complete: Record<string, { fromPartial(o: object): object }> = {
    merge: MergeRequest, train: TrainRequest, putModel: PutModelRequest, initLayer: InitLayerRequest };
  const unary = <Req, Res>(client: SidecarClient, method: string, req: Req): Promise<Res> =>
    new Promise((resolve, reject) => {
      const full = complete[method] ? complete[method].fromPartial(req as object) : req;
      (client as unknown as Record<string, (r: unknown, m: grpc.Metadata, cb: (e: grpc.ServiceError | null, r: Res) => void) => void>)[method]
        .call(client, full, md(sc.secret), (e, r) => (e ? reject(e) : resolve(r)));
    });

  function cacheData(client: SidecarClient, session: string, x: Matrix, labels?: Int32Array): Promise<{ rows: number }> {
    return new Promise((resolve, reject) => {
      const call = client.cacheData(md(sc.secret), (e, r) => (e ? reject(e) : resolve(r!)));
      call.write({ align: new Uint8Array(0), start: { session, task: 'stage 1 partition 0', nInputs: x.cols, heldOutRows: 0 } });
      const half = Math.floor(x.rows / 2);
      for (const [from, to] of [[0, half], [half, x.rows]]) {
        const part = { data: x.data.subarray(from * x.cols, to * x.cols), rows: to - from, cols: x.cols };
        call.write({ align: new Uint8Array(0), batch: Buffer.from(encodeTrainingBatch(part, labels?.subarray(from, to))) });
      }
      call.end();
    });
  }

  it('caches rows, answers NOT_FOUND for an unknown session, trains a round, and answers health while it trains', async () => {
    const client = sc.client();
    const { x, labels } = prototypes(2000, 784, 9, 10);
    const init = await unary<object, { snapshot: Buffer; sizes: number[] }>(client, 'initLayer', {
      base: Buffer.alloc(0), sizes: [784, 500], rbmLayer: 0, visible: 'bernoulli', inputMeans: Array.from(columnMeans(x)),
      inputStddevs: [], seed: 4, trainingConfig: '{}' });
    expect(init.sizes).to.deep.equal([784, 500]);
    await unary(client, 'putModel', { version: 'v0', snapshot: init.snapshot });
    const req = { session: 'run/0', modelVersion: 'v0', pretrain: { layer: 0, config: { batchSize: 100 } }, runSeed: 1, partition: 0, batches: 300,
      epoch: 0, inputSums: false, independent: false, task: 'stage 2 partition 0' };
    const missing = await unary(client, 'train', req).catch((e: grpc.ServiceError) => e);
    expect((missing as grpc.ServiceError).code).to.equal(grpc.status.NOT_FOUND);
    expect((await cacheData(client, 'run/0', x, labels)).rows).to.equal(2000);

    const t0 = performance.now();
    const training = unary<object, TrainResponse>(client, 'train', req).then((r) => ({ r, at: performance.now() - t0 }));
    // Health answers promptly while the round runs in a worker thread.
    const latencies: number[] = [];
    let done = false;
    void training.then(() => (done = true));
    const health = sc.health();
    while (!done) {
      const s = performance.now();
      await new Promise<void>((resolve, reject) =>
        health.check({ service: '' }, md(sc.secret), (e) => (e ? reject(e) : resolve())));
      latencies.push(performance.now() - s);
      await new Promise((r) => setTimeout(r, 20));
    }
    const { r, at } = await training;
    const u = decodeUpdate(r.update);
    expect(u.batches).to.equal(300);
    expect(u.samples).to.equal(30000);
    // Long enough for the health checks to mean something; a main thread blocked by the training would
    // answer once, after about the whole round (a ratio, not a bound in ms that a slow machine breaks).
    expect(latencies.length).to.be.greaterThan(3);
    expect(Math.max(...latencies)).to.be.lessThan(at / 3);

    // Merging on the same sidecar, BMUF with P = 2 and one update (G = delta, eta 0.5; the momentum it answers is
    // delta). Classical (the default): the model moves by delta, and finishing leaves it there. Nesterov's form
    // (the contract's `nesterov`): the broadcast moves by 1.5 delta, and finishing gives the centre, base + delta.
    const rule = { rule: MergeRule.MERGE_RULE_BMUF, replicas: 2, async: false, inFlight: 0 };
    const before = flatten((await decodeSnapshot(init.snapshot)).layers[0]);
    for (const nesterov of [undefined, true]) {
      const merged = await unary<object, { snapshot: Buffer; momentum: Buffer }>(client, 'merge', {
        base: init.snapshot, updates: [{ update: r.update, held: '', staleness: 0 }], epochs: 1, trainingConfig: '{}',
        rule: { ...rule, nesterov }, momentum: Buffer.alloc(0), answerMomentum: true });
      const after = flatten((await decodeSnapshot(merged.snapshot)).layers[0]);
      const momentum = bytesToFloats(merged.momentum);
      for (const i of [0, 1000, before.length - 1]) {
        expect(after[i]).to.be.closeTo(before[i] + (nesterov ? 1.5 : 1) * u.delta[i], 1e-6);
        expect(momentum[i]).to.be.closeTo(u.delta[i], 1e-7);
      }
      const centre = await unary<object, { snapshot: Buffer; momentum: Buffer }>(client, 'merge', {
        base: merged.snapshot, updates: [], epochs: 0, trainingConfig: '{}', rule: { ...rule, nesterov }, momentum: merged.momentum,
        finish: { layer: 0 } });
      const final = flatten((await decodeSnapshot(centre.snapshot)).layers[0]);
      for (const i of [0, 1000, before.length - 1]) expect(final[i]).to.be.closeTo(before[i] + u.delta[i], 1e-6);
    }
    const bad = await unary<object, object>(client, 'merge', { base: init.snapshot, updates: [{ update: r.update, held: '', staleness: 0 }],
      epochs: 0, trainingConfig: '{}', rule: { ...rule, blockMomentum: 1.5 }, momentum: Buffer.alloc(0) })
      .then(() => null, (e: grpc.ServiceError) => e);
    expect(bad?.code).to.equal(grpc.status.INVALID_ARGUMENT);
    expect(bad?.details).to.match(/blockMomentum: must be in \[0, 1\), got 1.5/);

    // With a topic, the sidecar keeps the answer (model and momentum): a second merge that names it by its
    // state id and sends neither equals one that sends both, bit for bit; a state id it does not hold, or one
    // already used, is FAILED_PRECONDITION (the caller then sends the base).
    type Kept = { snapshot: Buffer; momentum: Buffer; state: string };
    const merge = (m: object) => unary<object, Kept>(client, 'merge', { updates: [{ update: r.update, held: '', staleness: 0 }], epochs: 1,
      trainingConfig: '{}', rule, base: Buffer.alloc(0), momentum: Buffer.alloc(0), topic: '', baseState: '',
      answerMomentum: true, publishAs: '', ...m });
    // Unasked, no momentum crosses; the kept state holds it all the same: merging from it equals merging from the bytes.
    const quiet = await merge({ base: init.snapshot, topic: 'layer0', answerMomentum: false });
    expect(quiet.momentum.length).to.equal(0);
    const fromQuiet = await merge({ topic: 'layer0', baseState: quiet.state });
    const first = await merge({ base: init.snapshot, topic: 'layer0' });
    expect(first.momentum.length).to.be.greaterThan(0);
    const fromFirst = await merge({ base: first.snapshot, momentum: first.momentum });
    expect(Buffer.compare(fromQuiet.snapshot, fromFirst.snapshot)).to.equal(0);
    expect(Buffer.compare(fromQuiet.momentum, fromFirst.momentum)).to.equal(0);
    // Asked to publish the answer as a version, the sidecar holds it for Train as PutModel would (local mode's
    // executors share this sidecar: no model crosses back); a round from it equals one from the sent snapshot.
    const held = await merge({ base: init.snapshot, publishAs: 'held@1', topic: 'layer0h' });
    // The topic's next merge moves its kept state in place: the held version must not move with it.
    await merge({ topic: 'layer0h', baseState: held.state });
    // Two fresh replicas (sessions of the same rows and seed), one from each.
    await cacheData(client, 'held/0', x, labels);
    await cacheData(client, 'sent/0', x, labels);
    const round = { ...req, batches: 2, runSeed: 3 };
    const fromHeld = decodeUpdate((await unary<object, TrainResponse>(client, 'train', { ...round, session: 'held/0', modelVersion: 'held@1' })).update);
    await unary(client, 'putModel', { version: 'sent@1', snapshot: held.snapshot });
    const fromSent = decodeUpdate((await unary<object, TrainResponse>(client, 'train', { ...round, session: 'sent/0', modelVersion: 'sent@1' })).update);
    expect(Array.from(fromHeld.delta)).to.deep.equal(Array.from(fromSent.delta));

    // A round asked to hold its update answers an id, not the bytes; a merge naming it equals one sending
    // the same update's bytes (two fresh replicas of the same rows and seed: the same update); an id
    // already taken is NOT_FOUND, and a merge refused for its base leaves the held update for the re-send.
    await cacheData(client, 'hold/0', x, labels);
    await cacheData(client, 'bytes/0', x, labels);
    const heldRound = await unary<object, TrainResponse & { heldUpdate: string }>(client, 'train',
      { ...round, session: 'hold/0', modelVersion: 'sent@1', holdUpdate: true });
    expect(heldRound.update.length).to.equal(0);
    expect(heldRound.heldUpdate).to.not.equal('');
    const bytesRound = await unary<object, TrainResponse>(client, 'train', { ...round, session: 'bytes/0', modelVersion: 'sent@1' });
    const byHeld = (extra: object) => merge({ base: held.snapshot, updates: [{ update: Buffer.alloc(0), held: heldRound.heldUpdate, staleness: 0 }], ...extra });
    const refused = await byHeld({ base: Buffer.alloc(0), topic: 'layer0h', baseState: 'nope' }).then(() => null, (e: grpc.ServiceError) => e);
    expect(refused?.code).to.equal(grpc.status.FAILED_PRECONDITION);
    const mergedHeld = await byHeld({});
    const mergedBytes = await merge({ base: held.snapshot, updates: [{ update: bytesRound.update, held: '', staleness: 0 }] });
    expect(Buffer.compare(mergedHeld.snapshot, mergedBytes.snapshot)).to.equal(0);
    const taken = await byHeld({}).then(() => null, (e: grpc.ServiceError) => e);
    expect(taken?.code).to.equal(grpc.status.NOT_FOUND);
    expect(taken?.details).to.match(/are not held here .*redo their round/);

    // Combine: the held updates of replicas 0 and 1 as one update counting both, and that one with replica 2's
    // held update (another executor's combined update joining this one's) as one counting three; merging it
    // equals merging the three replicas' own bytes (the same rounds trained again by fresh sessions), to float32
    // rounding of their means. A combine refused (an async rule) takes nothing; one done takes its ids.
    const three = [0, 1, 2].map((p) => ({ ...round, partition: p }));
    for (const p of [0, 1, 2]) for (const k of ['ch', 'cb']) await cacheData(client, `${k}/${p}`, x, labels);
    const heldIds = await Promise.all(three.map(async (q) => (await unary<object, TrainResponse & { heldUpdate: string }>(client, 'train',
      { ...q, session: `ch/${q.partition}`, modelVersion: 'sent@1', holdUpdate: true })).heldUpdate));
    const own = await Promise.all(three.map(async (q) => (await unary<object, TrainResponse>(client, 'train',
      { ...q, session: `cb/${q.partition}`, modelVersion: 'sent@1' })).update));
    const combine = (req: object) => unary<object, { update: Buffer; replicas: number }>(client, 'combine', { updates: [], ...req });
    // Refused before anything is taken: the same ids combine next.
    const asyncRule = await combine({ rule: { ...rule, async: true }, held: heldIds }).then(() => null, (e: grpc.ServiceError) => e);
    expect(asyncRule?.code).to.equal(grpc.status.INVALID_ARGUMENT);
    expect(asyncRule?.details).to.match(/async merges take each update as it arrives/);
    const pair = await combine({ rule, held: heldIds.slice(0, 2) });
    expect(pair.replicas).to.equal(2);
    const combined = await combine({ rule, held: heldIds.slice(2), updates: [pair.update] });
    const cu = decodeUpdate(combined.update);
    expect([combined.replicas, cu.replicas, cu.samples, cu.batches]).to.deep.equal([3, 3, 600, 6]);
    const viaCombined = await merge({ base: held.snapshot, updates: [{ update: combined.update, held: '', staleness: 0 }] });
    const viaAll = await merge({ base: held.snapshot, updates: own.map((update) => ({ update, held: '', staleness: 0 })) });
    const [wc, wb] = await Promise.all([viaCombined, viaAll].map(async (m) => flatten((await decodeSnapshot(m.snapshot)).layers[0])));
    const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, w, i) => Math.max(m, Math.abs(w - b[i])), 0);
    expect(maxDiff(wc, wb)).to.be.below(1e-6);
    expect(maxDiff(wc, before)).to.be.above(1e-3);
    const gone = await combine({ rule, held: heldIds }).then(() => null, (e: grpc.ServiceError) => e);
    expect(gone?.code).to.equal(grpc.status.NOT_FOUND);
    expect(gone?.details).to.match(/^Combine: updates .* are not held here/);

    // snapshot_later: the merge answers no snapshot and holds the version; GetModel answers the bytes the same
    // merge would have answered. A version not held is NOT_FOUND.
    const later = await merge({ base: held.snapshot, updates: [{ update: bytesRound.update, held: '', staleness: 0 }],
      publishAs: 'later@1', snapshotLater: true });
    expect(later.snapshot.length).to.equal(0);
    const fetched = await unary<object, Kept>(client, 'getModel', { version: 'later@1', trainingConfig: '{}' });
    expect(Buffer.compare(fetched.snapshot, mergedBytes.snapshot)).to.equal(0);
    const notHeld = await unary(client, 'getModel', { version: 'nope@1', trainingConfig: '{}' }).then(() => null, (e: grpc.ServiceError) => e);
    expect(notHeld?.code).to.equal(grpc.status.NOT_FOUND);

    // await_model_ms: a round sent before the merge that makes its version waits for it in the sidecar and
    // starts when the merge holds it (the same update as a round sent after); without the version in time,
    // FAILED_PRECONDITION saying how long it waited.
    await cacheData(client, 'early/0', x, labels);
    await cacheData(client, 'after/0', x, labels);
    // Still waiting 300 ms on, before the merge is sent; then trained from the merged version (the delta
    // of a round sent after it). Not "answered after the merge's answer": once the merge holds the version
    // the round may train and answer before the merge's own answer arrives.
    let settled = false;
    const early = unary<object, TrainResponse>(client, 'train', { ...round, session: 'early/0', modelVersion: 'wait@1', awaitModelMs: 20000 })
      .finally(() => { settled = true; });
    await new Promise((r) => setTimeout(r, 300));
    expect(settled).to.equal(false);
    await merge({ base: held.snapshot, updates: [{ update: bytesRound.update, held: '', staleness: 0 }], publishAs: 'wait@1' });
    const waited = await early;
    const afterRound = await unary<object, TrainResponse>(client, 'train', { ...round, session: 'after/0', modelVersion: 'wait@1' });
    expect(Array.from(decodeUpdate(waited.update).delta)).to.deep.equal(Array.from(decodeUpdate(afterRound.update).delta));
    const lateStart = Date.now();
    const late = await unary(client, 'train', { ...round, session: 'after/0', modelVersion: 'never@1', awaitModelMs: 200 })
      .then(() => null, (e: grpc.ServiceError) => e);
    expect(late?.code).to.equal(grpc.status.FAILED_PRECONDITION);
    expect(late?.details).to.match(/waited 200 ms/);
    // A bad option is refused at once, before any wait for the model (the 20 s wait would time the test out).
    const badOption = await unary(client, 'train', { ...round, pretrain: { layer: 0, config: { batchSize: 0 } }, session: 'after/0',
      modelVersion: 'never@2', awaitModelMs: 60000 }).then(() => null, (e: grpc.ServiceError) => e);
    expect(badOption?.code).to.equal(grpc.status.INVALID_ARGUMENT);
    expect(badOption?.details).to.match(/batchSize: must be an integer in \[1, 1048576\], got 0/);
    expect(Date.now() - lateStart).to.be.at.least(150);
    expect(first.state).to.not.equal('');
    const sent = await merge({ base: first.snapshot, momentum: first.momentum });
    const byState = await merge({ topic: 'layer0', baseState: first.state });
    expect(Buffer.compare(byState.snapshot, sent.snapshot)).to.equal(0);
    expect(Buffer.compare(byState.momentum, sent.momentum)).to.equal(0);
    expect(Buffer.compare(byState.momentum, first.momentum)).to.not.equal(0);
    for (const stale of [first.state, 'layer0#999', byState.state + 'x']) {
      const miss = await merge({ topic: 'layer0', baseState: stale }).then(() => null, (e: grpc.ServiceError) => e);
      expect(miss?.code, stale).to.equal(grpc.status.FAILED_PRECONDITION);
      expect(miss?.details).to.match(/send the base and its momentum/);
    }
    // Finishing from the kept state equals finishing from the bytes.
    const again = await merge({ base: first.snapshot, momentum: first.momentum, topic: 'layer0' });
    const finishKept = await merge({ updates: [], finish: { layer: 0 }, topic: 'layer0', baseState: again.state });
    const finishSent = await merge({ updates: [], finish: { layer: 0 }, base: again.snapshot, momentum: again.momentum });
    expect(Buffer.compare(finishKept.snapshot, finishSent.snapshot)).to.equal(0);
  });

  it('rejects a training batch with a bad label column, and keeps serving', async () => {
    const client = sc.client();
    const { x } = prototypes(10, 4, 1);
    const err = await new Promise<grpc.ServiceError>((resolve) => {
      const call = client.cacheData(md(sc.secret), (e) => resolve(e!));
      call.write({ align: new Uint8Array(0), start: { session: 'bad', task: 'stage 1 partition 9', nInputs: 4, heldOutRows: 0 } });
      call.write({ align: new Uint8Array(0), batch: Buffer.from(encodeTrainingBatch(x, new Int32Array(10))) });
      call.write({ align: new Uint8Array(0), batch: Buffer.from(encodeTrainingBatch(x)) });
      call.end();
    });
    expect(err.code).to.equal(grpc.status.INVALID_ARGUMENT);
    expect(err.details).to.match(/stage 1 partition 9: every batch must carry labels, or none/);
    expect((await cacheData(client, 'good', x)).rows).to.equal(10);
  });
});
