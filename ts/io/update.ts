import avro from 'avsc';
import { crc32 } from 'node:zlib';
import { schema } from '../gen/update-avsc.js';
import { PayloadError } from './errors.js';
import { bytesToFloats, floatsToBytes } from './floats.js';

/** The update format this code writes and the only one it reads. */
export const UPDATE_FORMAT_VERSION = 3;
const updateType = avro.Type.forSchema(schema as unknown as avro.Schema);

/** proto/update.avsc, with delta as float32 values. */
export interface ModelUpdate {
  baseVersion: string;
  /** The RBM layer trained, or -1 for fine-tuning (every parameter). */
  layer: number;
  delta: Float32Array;
  /** Replicas whose rounds it combines (1: one replica's). */
  replicas: number;
  samples: number;
  batches: number;
  reconstructionError: number;
  freeEnergy: number;
  /** Pre-training: mean free energy of the held-out rows; NaN when none. */
  heldOutFreeEnergy: number;
  loss: number;
  accuracy: number;
  seconds: number;
}

interface UpdateRecord extends Omit<ModelUpdate, 'delta'> {
  formatVersion: number;
  paramCount: number;
  delta: Buffer;
  crc32: number;
}

/** Avro binary encoding of one update (the schema is known to both sides: no container). */
export function encodeUpdate(u: ModelUpdate): Buffer {
  const delta = floatsToBytes(u.delta);
  const record: UpdateRecord = { ...u, formatVersion: UPDATE_FORMAT_VERSION, paramCount: u.delta.length, delta, crc32: crc32(delta) };
  return updateType.toBuffer(record);
}

/** Reads an update; a malformed, corrupt or foreign payload is a PayloadError saying which. */
export function decodeUpdate(bytes: Uint8Array, what = 'update'): ModelUpdate {
  let r: UpdateRecord;
  try {
    r = updateType.fromBuffer(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)) as UpdateRecord;
  } catch (e) {
    throw new PayloadError(`${what}: not a ModelUpdate record: ${(e as Error).message}`);
  }
  if (r.formatVersion !== UPDATE_FORMAT_VERSION) {
    throw new PayloadError(`${what}: formatVersion ${r.formatVersion} is not supported (this reader knows ${UPDATE_FORMAT_VERSION})`);
  }
  if (r.delta.length !== r.paramCount * 4) {
    throw new PayloadError(`${what}: delta has ${r.delta.length} bytes, paramCount ${r.paramCount} needs ${r.paramCount * 4}`);
  }
  if (crc32(r.delta) !== r.crc32) throw new PayloadError(`${what}: crc32 does not match delta: the payload is corrupt`);
  const { formatVersion: _f, paramCount: _p, crc32: _c, ...rest } = r;
  return { ...rest, delta: bytesToFloats(r.delta) };
}
