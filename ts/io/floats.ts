import { endianness } from 'node:os';

const LITTLE_ENDIAN = endianness() === 'LE';

/** float32 values as little-endian bytes, the layout of every float array in proto/ (a copy; one memcpy on LE hosts). */
export function floatsToBytes(a: Float32Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
  const b = Buffer.alloc(a.length * 4);
  for (let i = 0; i < a.length; i++) b.writeFloatLE(a[i], i * 4);
  return b;
}

/** Little-endian bytes (a multiple of 4) as float32 values (a copy, aligned). */
export function bytesToFloats(b: Uint8Array): Float32Array {
  const out = new Float32Array(b.length >> 2);
  if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(b.subarray(0, out.length * 4));
  else {
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  }
  return out;
}

/** float64 values as little-endian bytes (a copy). */
export function doublesToBytes(a: Float64Array): Buffer {
  const b = Buffer.alloc(a.length * 8);
  for (let i = 0; i < a.length; i++) b.writeDoubleLE(a[i], i * 8);
  return b;
}

/** Little-endian bytes (a multiple of 8) as float64 values (a copy). */
export function bytesToDoubles(b: Uint8Array): Float64Array {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out = new Float64Array(b.length >> 3);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat64(i * 8, true);
  return out;
}

/** The parts one after another in a new array from `make(total length)`. */
export function concatArrays<T extends Float32Array | Int32Array>(parts: T[], make: (n: number) => T): T {
  const out = make(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
