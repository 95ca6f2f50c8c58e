import { DataType, RecordBatchReader, type Data, type Schema } from 'apache-arrow';
import { PayloadError } from './errors.js';

/** Running totals over every record batch of one ingest call. */
export interface ColumnTotals {
  name: string;
  sum: number;
  count: number;
}

export interface IngestTotals {
  rows: number;
  batches: number;
  chunks: number;
  columns: ColumnTotals[];
}

function isSummable(t: DataType): boolean {
  return DataType.isInt(t) || DataType.isFloat(t);
}

/** Adds the valid values of one numeric Data chunk (Int or Float, any width). */
function sumNumeric(data: Data, acc: ColumnTotals): void {
  // values is the typed array over the buffer; offset/length select this chunk.
  const values = data.values as ArrayLike<number | bigint>;
  const stride = data.stride;
  const start = data.offset * stride;
  const end = start + data.length * stride;
  const nulls = data.nullCount > 0 ? data.nullBitmap : undefined;
  let s = 0;
  let n = 0;
  for (let i = start; i < end; i++) {
    if (nulls) {
      const row = Math.floor(i / stride);
      if ((nulls[row >> 3] & (1 << (row & 7))) === 0) continue;
    }
    s += Number(values[i]);
    n++;
  }
  acc.sum += s;
  acc.count += n;
}

function sumColumn(data: Data, acc: ColumnTotals): void {
  if (DataType.isFixedSizeList(data.type)) {
    // A list-of-numbers column: its child holds listSize values per row.
    const child = data.children[0];
    if (data.nullCount > 0) {
      throw new PayloadError(`column '${acc.name}': null vectors are not supported`);
    }
    sumNumeric(child.slice(data.offset * data.type.listSize, data.length * data.type.listSize), acc);
  } else {
    sumNumeric(data, acc);
  }
}

function summableFields(schema: Schema): number[] {
  const idx: number[] = [];
  schema.fields.forEach((f, i) => {
    const t = f.type;
    if (isSummable(t) || (DataType.isFixedSizeList(t) && isSummable(t.children[0].type))) idx.push(i);
  });
  return idx;
}

/**
 * Decodes Arrow IPC streams one chunk at a time and keeps per-column totals.
 * Every chunk must carry the same schema as the first.
 */
export class ArrowIngest {
  private schema: Schema | undefined;
  private fields: number[] = [];
  readonly totals: IngestTotals = { rows: 0, batches: 0, chunks: 0, columns: [] };

  add(ipc: Uint8Array, label: string): void {
    const chunk = this.totals.chunks;
    if (ipc.byteLength === 0) throw new PayloadError(`${label}: chunk ${chunk} carries no bytes`);
    let reader: RecordBatchReader;
    try {
      reader = RecordBatchReader.from(ipc);
      reader.open();
    } catch (e) {
      throw new PayloadError(`${label}: chunk ${chunk} is not an Arrow IPC stream: ${(e as Error).message}`);
    }
    if (!reader.schema) throw new PayloadError(`${label}: chunk ${chunk} has no Arrow schema`);
    this.checkSchema(reader.schema, label, chunk);
    try {
      for (const batch of reader) {
        for (let k = 0; k < this.fields.length; k++) {
          sumColumn(batch.data.children[this.fields[k]], this.totals.columns[k]);
        }
        this.totals.rows += batch.numRows;
        this.totals.batches++;
      }
    } catch (e) {
      if (e instanceof PayloadError) throw e;
      throw new PayloadError(`${label}: chunk ${chunk} holds a malformed record batch: ${(e as Error).message}`);
    }
    this.totals.chunks++;
  }

  private checkSchema(schema: Schema, label: string, chunk: number): void {
    if (this.schema === undefined) {
      this.schema = schema;
      this.fields = summableFields(schema);
      this.totals.columns = this.fields.map((i) => ({ name: schema.fields[i].name, sum: 0, count: 0 }));
      return;
    }
    const a = this.schema.fields.map((f) => `${f.name}:${f.type}`).join(', ');
    const b = schema.fields.map((f) => `${f.name}:${f.type}`).join(', ');
    if (a !== b) throw new PayloadError(`${label}: chunk ${chunk} has schema [${b}], the call started with [${a}]`);
  }
}
