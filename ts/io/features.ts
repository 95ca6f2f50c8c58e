import {
  DataType, Field, FixedSizeList, Float32, Float64, Int32, makeData, RecordBatch, RecordBatchReader,
  RecordBatchStreamWriter, Schema, Struct,
} from 'apache-arrow';
import type { Matrix } from '../rbm/data.js';
import { PayloadError } from './errors.js';
import { concatArrays } from './floats.js';

/**
 * The data plane's batch format: one column, FixedSizeList<Float32>(n), rows
 * row-major. Decoding returns a view on the message's bytes when the batch
 * starts 8-byte aligned (senders see to it: proto/sidecar.proto, Alignment);
 * otherwise Arrow JS copies the batch's body once.
 */
export function decodeFeatureBatch(ipc: Uint8Array, nInputs: number, label: string): Matrix {
  return decodeBatch(ipc, nInputs, label, false).x;
}

/**
 * A training batch: the feature column as above and, for labelled data, a
 * second column `label` of Int32 class indices (never null).
 */
export function decodeTrainingBatch(ipc: Uint8Array, nInputs: number, label: string): { x: Matrix; labels: Int32Array | null } {
  return decodeBatch(ipc, nInputs, label, true);
}

function decodeBatch(ipc: Uint8Array, nInputs: number, label: string, labelsAllowed: boolean): { x: Matrix; labels: Int32Array | null } {
  let reader: RecordBatchReader;
  try {
    reader = RecordBatchReader.from(ipc);
    reader.open();
  } catch (e) {
    throw new PayloadError(`${label}: not an Arrow IPC stream: ${(e as Error).message}`);
  }
  const fields = reader.schema?.fields ?? [];
  const names = fields.map((f) => f.name).join(', ');
  const withLabels = labelsAllowed && fields.length === 2;
  if (fields.length !== 1 && !withLabels) {
    throw new PayloadError(`${label}: expected ${labelsAllowed ? 'one or two columns' : 'one column'}, got ${fields.length} (${names})`);
  }
  const t = fields[0].type;
  if (!DataType.isFixedSizeList(t) || !DataType.isFloat(t.children[0].type) || t.children[0].type.precision !== 1) {
    throw new PayloadError(`${label}: column '${fields[0].name}' is ${t}, expected FixedSizeList<Float32>`);
  }
  if (t.listSize !== nInputs) {
    throw new PayloadError(`${label}: vectors have ${t.listSize} values, the model takes ${nInputs}`);
  }
  if (withLabels) {
    const lt = fields[1].type;
    if (fields[1].name !== 'label' || !DataType.isInt(lt) || lt.bitWidth !== 32 || !lt.isSigned) {
      throw new PayloadError(`${label}: second column '${fields[1].name}' is ${lt}, expected 'label' Int32`);
    }
  }
  const parts: Float32Array[] = [];
  const labelParts: Int32Array[] = [];
  let rows = 0;
  try {
    for (const batch of reader) {
      const d = batch.data.children[0];
      checkNoNulls(d, rows, label, 'a null vector');
      const child = d.children[0];
      const values = child.values as Float32Array;
      const start = (child.offset + d.offset * nInputs);
      parts.push(values.subarray(start, start + d.length * nInputs));
      if (withLabels) {
        const l = batch.data.children[1];
        checkNoNulls(l, rows, label, 'a null label');
        labelParts.push((l.values as Int32Array).subarray(l.offset, l.offset + l.length));
      }
      rows += d.length;
    }
  } catch (e) {
    if (e instanceof PayloadError) throw e;
    throw new PayloadError(`${label}: malformed record batch: ${(e as Error).message}`);
  }
  const one = <T extends Float32Array | Int32Array>(p: T[], make: (n: number) => T): T => (p.length === 1 ? p[0] : concatArrays(p, make));
  const labels = withLabels ? one(labelParts, (n) => new Int32Array(n)) : null;
  return { x: { data: one(parts, (n) => new Float32Array(n)), rows, cols: nInputs }, labels };
}

function checkNoNulls(d: { nullCount: number; nullBitmap?: Uint8Array | null; length: number; offset: number }, before: number,
  label: string, what: string): void {
  if (d.nullCount <= 0) return;
  const bitmap = d.nullBitmap!;
  for (let r = 0; r < d.length; r++) {
    if ((bitmap[(d.offset + r) >> 3] & (1 << ((d.offset + r) & 7))) === 0) {
      throw new PayloadError(`${label}: row ${before + r} is ${what}`);
    }
  }
}


function vectorColumn(name: string, m: Matrix): { field: Field; data: ReturnType<typeof makeData> } {
  const type = new FixedSizeList(m.cols, new Field('element', new Float32(), false));
  const child = makeData({ type: new Float32(), length: m.data.length, data: m.data });
  return { field: new Field(name, type, false), data: makeData({ type, length: m.rows, nullCount: 0, child }) };
}

function doubleColumn(name: string, f: Float64Array): { field: Field; data: ReturnType<typeof makeData> } {
  return { field: new Field(name, new Float64(), false), data: makeData({ type: new Float64(), length: f.length, data: f }) };
}

/** What a result batch holds besides `features` (proto/sidecar.proto, TransformResponse). */
export interface ResultColumns {
  probabilities?: Matrix;
  prediction?: Int32Array;
  scores?: { freeEnergy: Float64Array; reconstructionError: Float64Array };
}

/** Encodes a result batch: `features`, and optionally `probability`, `prediction`, `free_energy` and `reconstruction_error`. */
export function encodeResultBatch(features: Matrix, more: ResultColumns = {}): Uint8Array {
  const cols = [vectorColumn('features', features)];
  if (more.probabilities) cols.push(vectorColumn('probability', more.probabilities));
  if (more.prediction) cols.push(doubleColumn('prediction', Float64Array.from(more.prediction)));
  if (more.scores) {
    cols.push(doubleColumn('free_energy', more.scores.freeEnergy));
    cols.push(doubleColumn('reconstruction_error', more.scores.reconstructionError));
  }
  const schema = new Schema(cols.map((c) => c.field));
  const struct = makeData({ type: new Struct(schema.fields), length: features.rows, nullCount: 0, children: cols.map((c) => c.data) });
  return RecordBatchStreamWriter.writeAll([new RecordBatch(schema, struct)]).toUint8Array(true);
}

/** Encodes a training batch as the JVM sends it: `features` and, if given, `label` Int32. */
export function encodeTrainingBatch(x: Matrix, labels?: Int32Array): Uint8Array {
  const cols = [vectorColumn('features', x)];
  if (labels) {
    cols.push({ field: new Field('label', new Int32(), false), data: makeData({ type: new Int32(), length: labels.length, data: labels }) });
  }
  const schema = new Schema(cols.map((c) => c.field));
  const struct = makeData({ type: new Struct(schema.fields), length: x.rows, nullCount: 0, children: cols.map((c) => c.data) });
  return RecordBatchStreamWriter.writeAll([new RecordBatch(schema, struct)]).toUint8Array(true);
}
