import { Metadata, status } from '@grpc/grpc-js';
import { RowError } from '../gen/sidecar.js';
import { ConfigError, DataError, SnapshotError } from 'spark-dbn';
import { PayloadError } from '../io/errors.js';
import { contract } from '../gen/contract.js';

/** An error that maps to one gRPC status code, for conditions only the service knows. */
export class SidecarError extends Error {
  constructor(readonly code: status, message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * Converts any thrown value into `{ code, details }` for a callback: the
 * client sees a status with a readable message, never a stack trace. Bad input
 * of any kind is INVALID_ARGUMENT; anything unexpected is INTERNAL.
 */
export function toStatus(err: unknown): { code: status; details: string } {
  if (err instanceof SidecarError) return { code: err.code, details: err.message };
  if (err instanceof PayloadError || err instanceof DataError || err instanceof SnapshotError || err instanceof ConfigError) {
    return { code: status.INVALID_ARGUMENT, details: err.message };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: status.INTERNAL, details: `internal error: ${message}` };
}

/**
 * A DataError about row r of a batch, reworded for the task that sent it: the
 * row counted from the start of the partition (`rowOffset` rows before the
 * batch), the task named. Anything else is returned as it is.
 */
export function inPartition(e: unknown, task: string, rowOffset = 0): unknown {
  if (!(e instanceof DataError) || e.row < 0) return e;
  const row = rowOffset + e.row;
  return new DataError(`${task}: row ${row}, column ${e.column}: ${e.reason}`, row, e.column, e.reason);
}

/** The trailer that carries a RowError (proto/sidecar.proto, Transform); `-bin`: gRPC's binary metadata. */
export const ROW_ERROR_TRAILER = contract.rowErrorTrailer;

/**
 * A status for a call that ends on `err`, with the bad row as a typed RowError in its trailer when
 * err is a DataError about one row of the partition: the caller names the row and column in its
 * own terms (the JVM: the column's name, and the input file's row) instead of parsing our message.
 */
export function withRowError(s: { code: status; details: string }, err: unknown): { code: status; details: string; metadata?: Metadata } {
  if (!(err instanceof DataError) || err.row < 0) return s;
  const metadata = new Metadata();
  metadata.set(ROW_ERROR_TRAILER, Buffer.from(RowError.encode({ row: err.row, column: err.column, reason: err.reason }).finish()));
  return { ...s, metadata };
}
