import avro from 'avsc';
import { createHash } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { schema } from '../gen/model-avsc.js';
import { bytesToDoubles, bytesToFloats, doublesToBytes, floatsToBytes } from './floats.js';
import { DBN, type InputScaling, type SoftmaxLayer } from '../rbm/dbn.js';
import { SnapshotError } from '../rbm/errors.js';
import { RBM } from '../rbm/rbm.js';

/** The snapshot formats: 1, and 2 = 1 + inputScaling (written only for a model that has one, so older readers refuse it). */
export const FORMAT_VERSION = 1;
export const FORMAT_VERSION_SCALED = 2;
export const SCHEMA_NAME = 'sparkdbn.avro.DbnSnapshot';
const snapshotType = avro.Type.forSchema(schema as unknown as avro.Schema);

interface LayerRecord {
  nVisible: number;
  nHidden: number;
  visibleUnits: 'BERNOULLI' | 'GAUSSIAN';
  weights: Buffer;
  visibleBias: Buffer;
  hiddenBias: Buffer;
  epochs: number;
  updates: number;
  samples: number;
}

interface SnapshotRecord {
  formatVersion: number;
  layers: LayerRecord[];
  output: { nIn: number; nClasses: number; weights: Buffer; bias: Buffer } | null;
  inputScaling: { mean: Buffer; std: Buffer } | null;
  fineTuneEpochs: number;
  fineTuneUpdates: number;
  trainingConfig: string;
  crc32: number;
}

/** Little-endian bytes as float32 values; `what` names the field in errors. */
function floatsOf(b: Buffer, n: number, what: string): Float32Array {
  if (b.length !== n * 4) throw new SnapshotError(`${what} has ${b.length} bytes, expected ${n * 4} (${n} float32)`);
  return bytesToFloats(b);
}

function payloadCrc(layers: LayerRecord[], output: SnapshotRecord['output'], scaling: SnapshotRecord['inputScaling']): number {
  let c = 0;
  for (const l of layers) for (const b of [l.weights, l.visibleBias, l.hiddenBias]) c = crc32(b, c);
  if (output) for (const b of [output.weights, output.bias]) c = crc32(b, c);
  if (scaling) for (const b of [scaling.mean, scaling.std]) c = crc32(b, c);
  return c;
}

/** The record for a model; an RBM is a one-layer DBN without output. */
function toRecord(model: DBN | RBM, trainingConfig: unknown): SnapshotRecord {
  const dbn = model instanceof DBN ? model : new DBN([model]);
  const layers: LayerRecord[] = dbn.layers.map((l) => ({
    nVisible: l.nVisible,
    nHidden: l.nHidden,
    visibleUnits: l.visible === 'gaussian' ? 'GAUSSIAN' : 'BERNOULLI',
    weights: floatsToBytes(l.W),
    visibleBias: floatsToBytes(l.vBias),
    hiddenBias: floatsToBytes(l.hBias),
    epochs: l.counters.epochs,
    updates: l.counters.updates,
    samples: l.counters.samples,
  }));
  const o = dbn.output;
  const output = o ? { nIn: o.nIn, nClasses: o.nClasses, weights: floatsToBytes(o.W), bias: floatsToBytes(o.bias) } : null;
  const s = dbn.inputScaling;
  const inputScaling = s ? { mean: doublesToBytes(s.mean), std: doublesToBytes(s.std) } : null;
  return {
    formatVersion: s ? FORMAT_VERSION_SCALED : FORMAT_VERSION,
    layers,
    output,
    inputScaling,
    fineTuneEpochs: dbn.fineTuneCounters.epochs,
    fineTuneUpdates: dbn.fineTuneCounters.updates,
    trainingConfig: JSON.stringify(trainingConfig ?? {}),
    crc32: payloadCrc(layers, output, inputScaling),
  };
}

/**
 * The model as an Avro object container file (one record, null codec). The
 * sync marker is derived from the content, so equal models give equal bytes.
 */
export function encodeSnapshot(model: DBN | RBM, opts: { trainingConfig?: unknown } = {}): Promise<Buffer> {
  const record = toRecord(model, opts.trainingConfig);
  const body = snapshotType.toBuffer(record);
  const syncMarker = createHash('sha256').update(body).digest().subarray(0, 16);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const enc = new avro.streams.BlockEncoder(snapshotType, { codec: 'null', syncMarker });
    enc.on('data', (c: Buffer) => chunks.push(c));
    enc.on('error', reject);
    enc.on('end', () => resolve(Buffer.concat(chunks)));
    enc.end(record);
  });
}

/** Reads a snapshot; every check failure is a SnapshotError that says what is wrong. */
export function decodeSnapshot(bytes: Uint8Array): Promise<DBN> {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 4 || buf.subarray(0, 4).toString('latin1') !== 'Obj\x01') {
    return Promise.reject(new SnapshotError('not an Avro object container file (bad magic bytes)'));
  }
  return new Promise<SnapshotRecord[]>((resolve, reject) => {
    const records: SnapshotRecord[] = [];
    let writerName = '';
    const dec = new avro.streams.BlockDecoder({ noDecode: false });
    dec.on('metadata', (type: avro.Type) => {
      writerName = type.name ?? '';
      if (writerName !== SCHEMA_NAME) {
        dec.destroy(new SnapshotError(`written with schema '${writerName}', expected '${SCHEMA_NAME}'`));
      }
    });
    dec.on('data', (r: SnapshotRecord) => records.push(r));
    dec.on('error', (e: Error) =>
      reject(e instanceof SnapshotError ? e : new SnapshotError(`corrupt or truncated Avro container: ${e.message}`)));
    dec.on('end', () => resolve(records));
    dec.end(buf);
  }).then((records) => {
    if (records.length !== 1) throw new SnapshotError(`the file holds ${records.length} records; a snapshot has exactly one`);
    return fromRecord(records[0]);
  });
}

function fromRecord(r: SnapshotRecord): DBN {
  if (r.formatVersion !== FORMAT_VERSION && r.formatVersion !== FORMAT_VERSION_SCALED) {
    throw new SnapshotError(`formatVersion ${r.formatVersion} is not supported (this reader knows ${FORMAT_VERSION} and ${FORMAT_VERSION_SCALED})`);
  }
  if ((r.formatVersion === FORMAT_VERSION_SCALED) !== (r.inputScaling != null)) {
    throw new SnapshotError(`formatVersion ${r.formatVersion} ${r.inputScaling ? 'cannot hold' : 'needs'} inputScaling`);
  }
  if (r.layers.length === 0) throw new SnapshotError('layers: the snapshot has no layer');
  if (payloadCrc(r.layers, r.output, r.inputScaling) !== r.crc32) {
    throw new SnapshotError('crc32 does not match the weights: the file is corrupt');
  }
  const layers = r.layers.map((l, i) => {
    const what = `layers[${i}]`;
    if (!(l.nVisible > 0 && l.nHidden > 0)) throw new SnapshotError(`${what}: shape ${l.nVisible}x${l.nHidden} is not positive`);
    if (i > 0 && l.nVisible !== r.layers[i - 1].nHidden) {
      throw new SnapshotError(`${what}.nVisible is ${l.nVisible}, layers[${i - 1}].nHidden is ${r.layers[i - 1].nHidden}`);
    }
    const rbm = new RBM(
      { nVisible: l.nVisible, nHidden: l.nHidden, visible: l.visibleUnits === 'GAUSSIAN' ? 'gaussian' : 'bernoulli' },
      {
        W: floatsOf(l.weights, l.nVisible * l.nHidden, `${what}.weights`),
        vBias: floatsOf(l.visibleBias, l.nVisible, `${what}.visibleBias`),
        hBias: floatsOf(l.hiddenBias, l.nHidden, `${what}.hiddenBias`),
      },
    );
    Object.assign(rbm.counters, { epochs: l.epochs, updates: l.updates, samples: l.samples });
    return rbm;
  });
  let output: SoftmaxLayer | null = null;
  if (r.output) {
    const o = r.output;
    const top = layers[layers.length - 1].nHidden;
    if (o.nIn !== top) throw new SnapshotError(`output.nIn is ${o.nIn}, the top layer has ${top} hidden units`);
    if (!(o.nClasses >= 2)) throw new SnapshotError(`output.nClasses is ${o.nClasses}, needs at least 2`);
    output = { nIn: o.nIn, nClasses: o.nClasses, W: floatsOf(o.weights, o.nIn * o.nClasses, 'output.weights'),
      bias: floatsOf(o.bias, o.nClasses, 'output.bias') };
  }
  let dbn: DBN;
  try {
    dbn = new DBN(layers, output);
  } catch (e) {
    throw new SnapshotError(`inconsistent model: ${(e as Error).message}`);
  }
  Object.assign(dbn.fineTuneCounters, { epochs: r.fineTuneEpochs, updates: r.fineTuneUpdates });
  if (r.inputScaling) {
    const V = layers[0].nVisible;
    const doubles = (b: Buffer, what: string) => {
      if (b.length !== V * 8) throw new SnapshotError(`inputScaling.${what} has ${b.length} bytes, expected ${V * 8} (${V} float64)`);
      return bytesToDoubles(b);
    };
    const scaling: InputScaling = { mean: doubles(r.inputScaling.mean, 'mean'), std: doubles(r.inputScaling.std, 'std') };
    try {
      dbn.setInputScaling(scaling);
    } catch (e) {
      throw new SnapshotError(`inconsistent model: ${(e as Error).message}`);
    }
  }
  return dbn;
}

/** A one-layer snapshot without output, as an RBM. */
export async function decodeRbmSnapshot(bytes: Uint8Array): Promise<RBM> {
  const dbn = await decodeSnapshot(bytes);
  if (dbn.layers.length !== 1 || dbn.output) {
    throw new SnapshotError(`the snapshot holds a ${dbn.layers.length}-layer DBN${dbn.output ? ' with an output layer' : ''}, not one RBM`);
  }
  return dbn.layers[0];
}

/** Writes atomically (temporary file, then rename), so a reader never sees half a snapshot. */
export async function saveSnapshot(model: DBN | RBM, path: string, opts: { trainingConfig?: unknown } = {}): Promise<void> {
  const bytes = await encodeSnapshot(model, opts);
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, bytes);
  await rename(tmp, path);
}

export async function loadSnapshot(path: string): Promise<DBN> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new SnapshotError(`cannot read ${path}: ${(e as Error).message}`);
  }
  return decodeSnapshot(bytes);
}
