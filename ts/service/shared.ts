import type * as grpc from '@grpc/grpc-js';
import type { SidecarConfig } from './config.js';
import { toStatus } from './errors.js';
import type { ModelCache } from './models.js';
import type { HeldUpdates, TopicStates } from './topics.js';
import type { TrainingPool } from './training.js';

// What every handler of the Sidecar service takes first (each is a named function of (Shared, request) for a
// unary call, of (Shared, call[, callback]) for a stream or Train), and how a unary one becomes grpc-js's.

/** What the handlers share: the held model versions, the topics' merge state, held updates and the training pool. */
export interface Shared {
  config: SidecarConfig;
  startedAt: number;
  training: TrainingPool;
  models: ModelCache;
  topics: TopicStates;
  heldUpdates: HeldUpdates;
  /** Batches whose body was not 8-byte aligned (proto/sidecar.proto's Alignment: Arrow JS copies those). */
  unalignedBatches: number;
}

/** A batch's bytes, counted when unaligned. */
export function counted(s: Shared, batch: Uint8Array | undefined): Uint8Array {
  if (!batch) return new Uint8Array(0);
  if (batch.byteOffset % 8 !== 0) s.unalignedBatches++;
  return batch;
}

/** A unary call's handler from an async function of the shared state and the request: its answer, or its error as a status. */
export function unary<Req, Res>(s: Shared, f: (s: Shared, r: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    f(s, call.request).then((res) => callback(null, res), (e) => callback(toStatus(e)));
  };
}

