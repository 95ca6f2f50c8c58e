import { status } from '@grpc/grpc-js';

/**
 * An error that maps to one gRPC status code. Handlers throw these; the
 * service layer turns them into `{ code, details }` for the client, so the
 * JVM side sees a status with a readable message and never a stack trace.
 */
export class SidecarError extends Error {
  constructor(readonly code: status, message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The payload cannot be decoded or does not fit the call (Arrow, schema). */
export class BadPayloadError extends SidecarError {
  constructor(message: string) {
    super(status.INVALID_ARGUMENT, message);
  }
}

/** Converts any thrown value into a gRPC status object for a callback. */
export function toStatus(err: unknown): { code: status; details: string } {
  if (err instanceof SidecarError) return { code: err.code, details: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { code: status.INTERNAL, details: `internal error: ${message}` };
}
