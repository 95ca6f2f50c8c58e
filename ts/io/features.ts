import {
  DataType, Field, FixedSizeList, Float32, Float64, makeData, RecordBatch, RecordBatchReader,
  RecordBatchStreamWriter, Schema, Struct,
} from 'apache-arrow';
import type { Matrix } from '../rbm/data.js';
import { PayloadError } from './errors.js';

/**
 * The data plane's batch format: one column, FixedSizeList<Float32>(n), rows
 * row-major. Decoding returns a view on the message's bytes when they are
 * 4-byte aligned (Arrow JS needs that for a Float32Array), else one copy.
 */
export function decodeFeatureBatch(ipc: Uint8Array, nInputs: number, label: string): Matrix {
  let reader: RecordBatchReader;
  try {
    reader = RecordBatchReader.from(ipc);
    reader.open();
  } catch (e) {
    throw new PayloadError(`${label}: not an Arrow IPC stream: ${(e as Error).message}`);
  }
  const fields = reader.schema?.fields ?? [];
  if (fields.length !== 1) {
    throw new PayloadError(`${label}: expected one column, got ${fields.length} (${fields.map((f) => f.name).join(', ')})`);
  }
  const t = fields[0].type;
  if (!DataType.isFixedSizeList(t) || !DataType.isFloat(t.children[0].type) || t.children[0].type.precision !== 1) {
    throw new PayloadError(`${label}: column '${fields[0].name}' is ${t}, expected FixedSizeList<Float32>`);
  }
  if (t.listSize !== nInputs) {
    throw new PayloadError(`${label}: vectors have ${t.listSize} values, the model takes ${nInputs}`);
  }
  const parts: Float32Array[] = [];
  let rows = 0;
  try {
    for (const batch of reader) {
      const d = batch.data.children[0];
      if (d.nullCount > 0) {
        const bitmap = d.nullBitmap!;
        for (let r = 0; r < d.length; r++) {
          if ((bitmap[(d.offset + r) >> 3] & (1 << ((d.offset + r) & 7))) === 0) {
            throw new PayloadError(`${label}: row ${rows + r} is a null vector`);
          }
        }
      }
      const child = d.children[0];
      const values = child.values as Float32Array;
      const start = (child.offset + d.offset * nInputs);
      parts.push(values.subarray(start, start + d.length * nInputs));
      rows += d.length;
    }
  } catch (e) {
    if (e instanceof PayloadError) throw e;
    throw new PayloadError(`${label}: malformed record batch: ${(e as Error).message}`);
  }
  if (parts.length === 1) return { data: parts[0], rows, cols: nInputs };
  const data = new Float32Array(rows * nInputs);
  let o = 0;
  for (const p of parts) {
    data.set(p, o);
    o += p.length;
  }
  return { data, rows, cols: nInputs };
}

function vectorColumn(name: string, m: Matrix): { field: Field; data: ReturnType<typeof makeData> } {
  const type = new FixedSizeList(m.cols, new Field('element', new Float32(), false));
  const child = makeData({ type: new Float32(), length: m.data.length, data: m.data });
  return { field: new Field(name, type, false), data: makeData({ type, length: m.rows, nullCount: 0, child }) };
}

/** Encodes a result batch: `features`, and optionally `probability` and `prediction`. */
export function encodeResultBatch(features: Matrix, probabilities?: Matrix, prediction?: Int32Array): Uint8Array {
  const cols = [vectorColumn('features', features)];
  if (probabilities) cols.push(vectorColumn('probability', probabilities));
  if (prediction) {
    const f = Float64Array.from(prediction);
    cols.push({ field: new Field('prediction', new Float64(), false), data: makeData({ type: new Float64(), length: f.length, data: f }) });
  }
  const schema = new Schema(cols.map((c) => c.field));
  const struct = makeData({ type: new Struct(schema.fields), length: features.rows, nullCount: 0, children: cols.map((c) => c.data) });
  return RecordBatchStreamWriter.writeAll([new RecordBatch(schema, struct)]).toUint8Array(true);
}
