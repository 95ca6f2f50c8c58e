import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { RecordBatchReader } from 'apache-arrow';
import { DBN, encodeSnapshot } from 'spark-dbn';
import { encodeResultBatch } from '../../ts/io/features.js';
import { RowError, TransformRequest, type DescribeResponse, type TransformResponse, type SidecarClient } from '../../ts/gen/sidecar.js';
import { fillUniform, newRngState } from '../../ts/math/rng.js';
import { md, spawnSidecar, type SpawnedSidecar } from './helpers/sidecar.js';
import { ROW_ERROR_TRAILER } from '../../ts/service/errors.js';

/** A FixedSizeList<Float32>(cols) batch as the JVM sends it (the result encoder writes the same layout). */
function featureBatch(data: Float32Array, rows: number, cols: number): Buffer {
  const b = encodeResultBatch({ data, rows, cols });
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function readColumns(ipc: Uint8Array): Record<string, Float32Array | Float64Array> {
  const reader = RecordBatchReader.from(ipc);
  const out: Record<string, Float32Array | Float64Array> = {};
  for (const batch of reader) {
    batch.schema.fields.forEach((f, i) => {
      const d = batch.data.children[i];
      // Buffers are padded to 8 bytes: take exactly length values from the offset.
      const c = d.children.length ? d.children[0] : d;
      out[f.name] = (c.values as Float32Array | Float64Array).subarray(c.offset, c.offset + c.length);
    });
  }
  return out;
}

function transform(client: SidecarClient, secret: string, version: string, batches: Buffer[], probabilities = false,
  pads: number[] = [], scores = false): Promise<TransformResponse[]> {
  return new Promise((resolve, reject) => {
    const call = client.transform(md(secret));
    const got: TransformResponse[] = [];
    call.on('data', (r: TransformResponse) => got.push(r));
    call.on('error', reject);
    call.on('end', () => resolve(got));
    call.write({ align: new Uint8Array(0), start: { modelVersion: version, task: 'stage 1 partition 3', probabilities, scores } });
    batches.forEach((b, i) => call.write({ align: new Uint8Array(pads[i] ?? 0), batch: b }));
    call.end();
  });
}

describe('sidecar Transform (real process, real gRPC)', function () {
  this.timeout(30000);
  let sc: SpawnedSidecar;
  let model: DBN;
  before(async () => {
    sc = await spawnSidecar();
    model = DBN.create([12, 7, 5], { seed: 3 });
    model.output = { nIn: 5, nClasses: 3, W: Float32Array.from({ length: 15 }, (_, i) => Math.sin(i)), bias: new Float32Array(3) };
    const snapshot = await encodeSnapshot(model);
    const put = (v: string) => new Promise<{ cached: boolean; sizes: number[]; classes: number }>((res, rej) =>
      sc.client().putModel({ version: v, snapshot }, md(sc.secret), (e, r) => (e ? rej(e) : res(r!))));
    const first = await put('v1');
    expect(first).to.deep.include({ cached: false, classes: 3 });
    expect(first.sizes).to.deep.equal([12, 7, 5]);
    expect((await put('v1')).cached).to.equal(true);
  });
  after(async () => sc?.stop());

  it('answers every batch, in order, with what the engine computes in process', async () => {
    const rows = [300, 1, 77];
    const inputs = rows.map((n, i) => {
      const d = new Float32Array(n * 12);
      fillUniform(newRngState(i + 1), d, d.length);
      return d;
    });
    const res = await transform(sc.client(), sc.secret, 'v1', inputs.map((d, i) => featureBatch(d, rows[i], 12)), true);
    expect(res.map((r) => r.rows)).to.deep.equal(rows);
    res.forEach((r, i) => {
      const cols = readColumns(r.batch);
      const x = { data: inputs[i], rows: rows[i], cols: 12 };
      const want = model.transform(x);
      expect(Array.from(cols.features)).to.deep.equal(Array.from(want.data));
      expect(Array.from(cols.probability)).to.deep.equal(Array.from(model.probaFromTop(want).data));
      expect(Array.from(cols.prediction)).to.deep.equal(Array.from(model.predict(x)));
    });
  });

  it('answers the anomaly scores of a standardising Gaussian model as the engine computes them in process', async () => {
    const g = DBN.create([4, 3], { visible: 'gaussian', seed: 2 });
    fillUniform(newRngState(5), g.layers[0].W, 12);
    g.setInputScaling({ mean: Float64Array.from([100, -3, 0, 7]), std: Float64Array.from([50, 0.1, 1, 2]) });
    const snapshot = await encodeSnapshot(g);
    await new Promise((res, rej) => sc.client().putModel({ version: 'g1', snapshot }, md(sc.secret), (e, r) => (e ? rej(e) : res(r))));
    const x = Float32Array.from({ length: 40 }, (_, i) => [100, -3, 0, 7][i % 4] + Math.sin(i) * [50, 0.1, 1, 2][i % 4]);
    const [res] = await transform(sc.client(), sc.secret, 'g1', [featureBatch(x, 10, 4)], false, [], true);
    const cols = readColumns(res.batch);
    const want = g.scores({ data: x, rows: 10, cols: 4 });
    expect(Array.from(cols.free_energy)).to.deep.equal(Array.from(want.freeEnergy));
    expect(Array.from(cols.reconstruction_error)).to.deep.equal(Array.from(want.reconstructionError));
    expect(Array.from(cols.features)).to.deep.equal(Array.from(g.transform({ data: x, rows: 10, cols: 4 }).data));
    expect(cols).to.not.have.property('probability');
  });

  it('asks for the model when it does not hold the version (FAILED_PRECONDITION)', async () => {
    const err = await transform(sc.client(), sc.secret, 'nope', []).then(() => null, (e: grpc.ServiceError) => e);
    expect(err?.code).to.equal(grpc.status.FAILED_PRECONDITION);
    expect(err?.details).to.match(/model version nope is not loaded/);
  });

  it('names the partition row of a NaN and of a value outside [0, 1], and keeps serving', async () => {
    const a = new Float32Array(10 * 12).fill(0.5);
    const b = new Float32Array(10 * 12).fill(0.5);
    b[4 * 12 + 7] = NaN;
    const err = await transform(sc.client(), sc.secret, 'v1', [featureBatch(a, 10, 12), featureBatch(b, 10, 12)])
      .then(() => null, (e: grpc.ServiceError) => e);
    expect(err?.code).to.equal(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).to.equal('stage 1 partition 3: row 14, column 7: value is NaN');
    // The same, typed, in the trailer the JVM reads (proto RowError): the partition's row, the input, the reason.
    const trailer = err?.metadata.get(ROW_ERROR_TRAILER) ?? [];
    expect(trailer.length).to.equal(1);
    expect(RowError.decode(trailer[0] as Buffer)).to.deep.equal({ row: 14, column: 7, reason: 'value is NaN' });
    b[4 * 12 + 7] = 1.5;
    const err2 = await transform(sc.client(), sc.secret, 'v1', [featureBatch(b, 10, 12)]).then(() => null, (e: grpc.ServiceError) => e);
    expect(err2?.details).to.match(/row 4, column 7: value is 1.5, outside \[0, 1\]/);
    expect(RowError.decode(err2!.metadata.get(ROW_ERROR_TRAILER)[0] as Buffer).row).to.equal(4);
    const ok = await transform(sc.client(), sc.secret, 'v1', [featureBatch(a, 10, 12)]);
    expect(ok[0].rows).to.equal(10);
  });

  it('refuses vectors of the wrong width and non-Arrow bytes with INVALID_ARGUMENT', async () => {
    const err = await transform(sc.client(), sc.secret, 'v1', [featureBatch(new Float32Array(22), 2, 11)])
      .then(() => null, (e: grpc.ServiceError) => e);
    expect(err?.code).to.equal(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).to.match(/vectors have 11 values, the model takes 12/);
    const err2 = await transform(sc.client(), sc.secret, 'v1', [Buffer.from('garbage!')]).then(() => null, (e: grpc.ServiceError) => e);
    expect(err2?.code).to.equal(grpc.status.INVALID_ARGUMENT);
    // Not about one row: no RowError.
    expect(err2?.metadata.get(ROW_ERROR_TRAILER)).to.deep.equal([]);
    const err3 = await new Promise<grpc.ServiceError | null>((res) =>
      sc.client().putModel({ version: 'bad', snapshot: Buffer.from('not avro') }, md(sc.secret), (e) => res(e)));
    expect(err3?.code).to.equal(grpc.status.INVALID_ARGUMENT);
    expect(err3?.details).to.match(/PutModel bad: not an Avro object container file/);
  });

  it('reads a batch that starts 8-byte aligned in its gRPC frame in place, and counts one that does not (proto Alignment)', async () => {
    const rows = 2000;
    const b = featureBatch(new Float32Array(rows * 12).fill(0.25), rows, 12);
    // Where the batch starts in its frame (a 5-byte gRPC prefix, then the message) for k bytes of `align`.
    const offset = (k: number) => 5 + TransformRequest.encode({ align: new Uint8Array(k), batch: b }).finish().length - b.length;
    const ks = Array.from({ length: 11 }, (_, k) => k);
    const aligned = ks.find((k) => offset(k) % 8 === 0)!;
    const unaligned = ks.find((k) => offset(k) % 8 !== 0)!;
    const describe = () => new Promise<DescribeResponse>((res, rej) =>
      sc.client().describe({}, md(sc.secret), (e, r) => (e ? rej(e) : res(r!))));
    const before = (await describe()).unalignedBatches;
    const ok = await transform(sc.client(), sc.secret, 'v1', [b, b], false, [aligned, aligned]);
    expect(ok.map((r) => r.rows)).to.deep.equal([rows, rows]);
    expect((await describe()).unalignedBatches).to.equal(before);
    const slow = await transform(sc.client(), sc.secret, 'v1', [b], false, [unaligned]);
    expect(slow[0].rows).to.equal(rows);
    expect((await describe()).unalignedBatches).to.equal(before + 1);
  });
});
