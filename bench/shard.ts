// How the one-process simulations (scaling-run.ts, pipeline-run.ts) deal rows to P replicas.
import type { Matrix } from 'spark-dbn';

/** Row r to replica r mod P: every shard gets every digit, whether the rows are ordered by digit or not. */
export function shard(m: Matrix, p: number, P: number): Matrix {
  const rows = Math.ceil((m.rows - p) / P);
  const out = new Float32Array(rows * m.cols);
  for (let i = 0; i < rows; i++) out.set(m.data.subarray((p + i * P) * m.cols, (p + i * P + 1) * m.cols), i * m.cols);
  return { data: out, rows, cols: m.cols };
}

/** The labels of `shard`'s rows, in its order. */
export function shardLabels(y: ArrayLike<number>, p: number, P: number): Int32Array {
  const out = new Int32Array(Math.ceil((y.length - p) / P));
  for (let i = 0; i < out.length; i++) out[i] = y[p + i * P];
  return out;
}
