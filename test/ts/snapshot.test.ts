import { expect } from 'chai';
import avro from 'avsc';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  applyUpdate, DBN, decodeRbmSnapshot, decodeSnapshot, difference, encodeSnapshot, flatten, loadSnapshot, paramCount,
  RBM, saveSnapshot, SnapshotError, unflattenInto, weightedAverage
} from 'spark-dbn';
import { fillNormal, newRngState } from '../../ts/math/rng.js';
import { schema } from '../../ts/gen/model-avsc.js';

function randomDBN(seed: number, withOutput = true): DBN {
  const dbn = DBN.create([12, 7, 5], { seed, visible: 'gaussian' });
  const st = newRngState(seed);
  for (const l of dbn.layers) {
    fillNormal(st, l.vBias, l.vBias.length);
    fillNormal(st, l.hBias, l.hBias.length);
    Object.assign(l.counters, { epochs: 3, updates: 120, samples: 4000 });
  }
  if (withOutput) {
    const W = new Float32Array(5 * 3);
    fillNormal(st, W, W.length);
    dbn.output = { nIn: 5, nClasses: 3, W, bias: Float32Array.from([0.1, -0.2, Math.fround(1 / 3)]) };
    Object.assign(dbn.fineTuneCounters, { epochs: 2, updates: 80 });
  }
  // Awkward values must survive too.
  dbn.layers[0].W[0] = -0;
  dbn.layers[0].W[1] = 1e-45;
  dbn.layers[0].W[2] = 3.4028234663852886e38;
  return dbn;
}

const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('model snapshots (Avro, proto/model.avsc)', () => {
  it('round-trips a DBN with its output layer and counters bit-exactly', async () => {
    const dbn = randomDBN(1);
    const back = await decodeSnapshot(await encodeSnapshot(dbn, { trainingConfig: { epochs: 3 } }));
    expect(back.sizes).to.deep.equal([12, 7, 5]);
    expect(back.layers[0].visible).to.equal('gaussian');
    back.layers.forEach((l, i) => {
      expect(bytes(l.W).equals(bytes(dbn.layers[i].W))).to.equal(true);
      expect(bytes(l.vBias).equals(bytes(dbn.layers[i].vBias))).to.equal(true);
      expect(bytes(l.hBias).equals(bytes(dbn.layers[i].hBias))).to.equal(true);
      expect(l.counters).to.deep.equal(dbn.layers[i].counters);
    });
    expect(Object.is(back.layers[0].W[0], -0)).to.equal(true);
    expect(bytes(back.output!.W).equals(bytes(dbn.output!.W))).to.equal(true);
    expect(bytes(back.output!.bias).equals(bytes(dbn.output!.bias))).to.equal(true);
    expect(back.fineTuneCounters).to.deep.equal(dbn.fineTuneCounters);
  });

  it('crosses a thread boundary as plain data: fromPlain(structuredClone(toPlain)) equals the model, and a wrong shape is refused', async () => {
    const dbn = randomDBN(2);
    const back = DBN.fromPlain(structuredClone(dbn.toPlain()));
    expect(back.sizes).to.deep.equal([12, 7, 5]);
    expect(back.layers[0].visible).to.equal('gaussian');
    expect(bytes(flatten(back)).equals(bytes(flatten(dbn)))).to.equal(true);
    back.layers.forEach((l, i) => expect(l.counters).to.deep.equal(dbn.layers[i].counters));
    expect(back.output!.nClasses).to.equal(3);
    expect(back.fineTuneCounters).to.deep.equal(dbn.fineTuneCounters);
    const bad = dbn.toPlain();
    bad.layers[1] = { ...bad.layers[1], nVisible: 8, W: new Float32Array(8 * 5), vBias: new Float32Array(8) };
    expect(() => DBN.fromPlain(bad)).to.throw(/layer 1 has 8 visible units, layer 0 has 7 hidden/);
  });

  it('round-trips a single RBM, and equal models give equal bytes', async () => {
    const rbm = RBM.create({ nVisible: 9, nHidden: 4, visible: 'bernoulli' }, { seed: 3 });
    const a = await encodeSnapshot(rbm);
    const b = await encodeSnapshot(rbm.clone());
    expect(a.equals(b)).to.equal(true);
    const back = await decodeRbmSnapshot(a);
    expect(bytes(back.W).equals(bytes(rbm.W))).to.equal(true);
    await decodeRbmSnapshot(await encodeSnapshot(randomDBN(2))).then(
      () => expect.fail('a DBN is not an RBM'),
      (e) => expect(e).to.be.instanceOf(SnapshotError).with.property('message').match(/2-layer DBN with an output layer/),
    );
  });

  it('saves atomically and loads from a file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'snap-'));
    const path = join(dir, 'model.avro');
    await saveSnapshot(randomDBN(4), path);
    const back = await loadSnapshot(path);
    expect(back.sizes).to.deep.equal([12, 7, 5]);
    await loadSnapshot(join(dir, 'missing.avro')).then(
      () => expect.fail('loaded a missing file'),
      (e) => expect((e as Error).message).to.match(/cannot read .*missing\.avro/),
    );
  });

  const rejects = async (buf: Uint8Array, re: RegExp) => {
    const err = await decodeSnapshot(buf).then(() => null, (e: Error) => e);
    expect(err, 'no error').to.be.instanceOf(SnapshotError);
    expect(err!.message).to.match(re);
  };

  it('rejects a flipped byte in the weights (checksum), a truncated file and a non-Avro file', async () => {
    const good = await encodeSnapshot(randomDBN(5));
    const w = randomDBN(5).layers[0].W;
    // Find the first layer's weight bytes in the file and flip one bit in the middle.
    const at = good.indexOf(bytes(w).subarray(16, 48));
    expect(at).to.be.greaterThan(0);
    const flipped = Buffer.from(good);
    flipped[at + 5] ^= 0x10;
    await rejects(flipped, /crc32 does not match the weights: the file is corrupt/);
    await rejects(good.subarray(0, good.length - 30), /corrupt or truncated|holds 0 records/);
    await rejects(Buffer.from('PAR1 not avro at all'), /not an Avro object container file/);
  });

  const writeRaw = (type: avro.Type, records: unknown[]) =>
    new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const enc = new avro.streams.BlockEncoder(type);
      enc.on('data', (c: Buffer) => chunks.push(c)).on('error', reject).on('end', () => resolve(Buffer.concat(chunks)));
      for (const r of records) enc.write(r);
      enc.end();
    });
  const type = avro.Type.forSchema(schema as unknown as avro.Schema);
  const decodeRecord = async (buf: Buffer) => new Promise<Record<string, unknown>>((resolve) => {
    const dec = new avro.streams.BlockDecoder();
    dec.on('data', resolve);
    dec.end(buf);
  });

  it('rejects another schema, an unknown format version, a wrong shape and two records, saying which', async () => {
    const other = avro.Type.forSchema({ type: 'record', name: 'Other', fields: [{ name: 'x', type: 'int' }] });
    await rejects(await writeRaw(other, [{ x: 1 }]), /written with schema 'Other', expected 'sparkdbn.avro.DbnSnapshot'/);
    const rec = await decodeRecord(await encodeSnapshot(randomDBN(6)));
    await rejects(await writeRaw(type, [{ ...rec, formatVersion: 3 }]), /formatVersion 3 is not supported/);
    // Version 2 is version 1 plus the input scaling: one without the other is refused.
    await rejects(await writeRaw(type, [{ ...rec, formatVersion: 2 }]), /formatVersion 2 needs inputScaling/);
    await rejects(await writeRaw(type, [rec, rec]), /holds 2 records/);
    const layers = (rec.layers as Record<string, unknown>[]).map((l) => ({ ...l }));
    layers[1].nVisible = 8;
    await rejects(await writeRaw(type, [{ ...rec, layers }]), /layers\[1\]\.nVisible is 8, layers\[0\]\.nHidden is 7/);
    const short = (rec.layers as Record<string, unknown>[]).map((l) => ({ ...l }));
    short[0].nHidden = 6;
    short[1].nVisible = 6;
    await rejects(await writeRaw(type, [{ ...rec, layers: short }]), /layers\[0\]\.weights has 336 bytes, expected 288/);
  });
});

describe('parameter averaging helpers', () => {
  it('flatten and unflatten round-trip in the documented order', () => {
    const dbn = randomDBN(7);
    const flat = flatten(dbn);
    expect(flat.length).to.equal(paramCount(dbn));
    expect(flat.length).to.equal(12 * 7 + 12 + 7 + 7 * 5 + 7 + 5 + 5 * 3 + 3);
    expect(flat[12 * 7]).to.equal(dbn.layers[0].vBias[0]);
    const other = randomDBN(8);
    unflattenInto(other, flat);
    expect(bytes(flatten(other)).equals(bytes(flat))).to.equal(true);
    expect(() => unflattenInto(other, flat.subarray(1))).to.throw(`has ${flat.length - 1} values, the model has ${flat.length}`);
  });

  it('weightedAverage equals the naive weighted mean; difference and applyUpdate invert each other', () => {
    const xs = [1, 2, 3].map((s) => {
      const a = new Float32Array(50);
      fillNormal(newRngState(s), a, 50);
      return a;
    });
    const w = [100, 300, 50];
    const avg = weightedAverage(xs, w);
    for (let i = 0; i < 50; i++) {
      const naive = (xs[0][i] * 100 + xs[1][i] * 300 + xs[2][i] * 50) / 450;
      expect(avg[i]).to.be.closeTo(naive, 1e-6);
    }
    const d = difference(xs[1], xs[0]);
    const back = applyUpdate(xs[0].slice(), d);
    for (let i = 0; i < 50; i++) expect(back[i]).to.be.closeTo(xs[1][i], 1e-6);
    expect(() => weightedAverage(xs, [1, 2])).to.throw(/2 weights for 3 replicas/);
    expect(() => weightedAverage(xs, [0, 0, 0])).to.throw(/sum to zero/);
    expect(() => weightedAverage([xs[0], new Float32Array(3)], [1, 1])).to.throw(/replica 1 has 3 values/);
  });
});

describe('the committed test vectors proto/testdata/dbn-v1.avro and dbn-v2.avro', () => {
  it('reads a format 1 file written before format 2 existed as the documented model', async () => {
    const { readFileSync } = await import('node:fs');
    const { testVectorModel } = await import('./helpers/vectors.js');
    const file = readFileSync(join(process.cwd(), 'proto', 'testdata', 'dbn-v1.avro'));
    const model = await decodeSnapshot(file);
    expect(bytes(flatten(model)).equals(bytes(flatten(testVectorModel())))).to.equal(true);
    expect(model.inputScaling).to.equal(null);
  });

  it('decodes format 2 to the documented model with its scaling, and re-encodes to the same bytes', async () => {
    const { readFileSync } = await import('node:fs');
    const { scaledTestModel } = await import('./helpers/vectors.js');
    const file = readFileSync(join(process.cwd(), 'proto', 'testdata', 'dbn-v2.avro'));
    const model = await decodeSnapshot(file);
    const want = scaledTestModel();
    expect(bytes(flatten(model)).equals(bytes(flatten(want)))).to.equal(true);
    expect(model.inputScaling).to.deep.equal(want.inputScaling);
    // A change in these bytes is a format change: bump the format version and regenerate (scripts/gen-test-vectors.mjs).
    const again = await encodeSnapshot(want, { trainingConfig: { note: 'test vector' } });
    expect(again.equals(file)).to.equal(true);
  });
});
