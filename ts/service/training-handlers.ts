import type * as grpc from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import type { CacheDataRequest, CacheDataResponse, TrainRequest, TrainResponse } from '../gen/sidecar.js';
import { decodeTrainingBatch } from '../io/features.js';
import { SidecarError, toStatus } from './errors.js';
import { type ReplicaTopic, replicaTopic } from './options.js';
import { counted, type Shared } from './shared.js';

// The calls of a replica's rounds: CacheData (its rows) and Train (a round).

/** CacheData: a partition's rows, streamed in batches, into the training pool's cache under the session. */
export function cacheDataHandler(s: Shared, call: grpc.ServerReadableStream<CacheDataRequest, CacheDataResponse>,
  callback: grpc.sendUnaryData<CacheDataResponse>): void {
  let session = '';
  let task = 'cache';
  let nInputs = 0;
  let heldOutRows = 0;
  // Views on the requests' bytes (grpc-js gives every message a buffer of its own):
  // the pool copies them once, into memory its worker shares.
  const parts: Float32Array[] = [];
  const labelParts: Int32Array[] = [];
  let rows = 0;
  let labelled: boolean | undefined;
  let failed = false;
  const fail = (e: unknown) => {
    if (failed) return;
    failed = true;
    callback(toStatus(e));
  };
  call.on('data', (req: CacheDataRequest) => {
    if (failed) return;
    try {
      if (req.start) {
        session = req.start.session;
        task = req.start.task || task;
        nInputs = req.start.nInputs;
        heldOutRows = req.start.heldOutRows;
        if (!session) throw new SidecarError(status.INVALID_ARGUMENT, `${task}: CacheData: session is empty`);
        if (!(nInputs > 0)) throw new SidecarError(status.INVALID_ARGUMENT, `${task}: CacheData: nInputs must be positive, got ${nInputs}`);
        return;
      }
      if (!session) throw new SidecarError(status.FAILED_PRECONDITION, `${task}: the first message must be 'start'`);
      const b = decodeTrainingBatch(counted(s, req.batch), nInputs, `${task}, rows ${rows}..`);
      if (labelled !== undefined && labelled !== (b.labels !== null)) {
        throw new SidecarError(status.INVALID_ARGUMENT, `${task}: every batch must carry labels, or none`);
      }
      labelled = b.labels !== null;
      parts.push(b.x.data);
      if (b.labels) labelParts.push(b.labels);
      rows += b.x.rows;
    } catch (e) {
      fail(e);
    }
  });
  call.on('end', () => {
    if (failed) return;
    if (!session) return fail(new SidecarError(status.INVALID_ARGUMENT, 'CacheData: no start message'));
    s.training.cache(session, parts, nInputs, labelled ? labelParts : null, heldOutRows).then(
      (r) => callback(null, { rows, bytes: r.bytes, evicted: r.evicted }),
      (e) => fail(e),
    );
  });
  call.on('error', () => {
    failed = true;
  });
}

/**
 * Train: one round of one replica from a held model version; with await_model_ms, from one a merge on
 * this sidecar is about to hold (the round starts as the merge ends). A caller that goes away stops the wait.
 */
export function trainHandler(s: Shared, call: grpc.ServerUnaryCall<TrainRequest, TrainResponse>,
  callback: grpc.sendUnaryData<TrainResponse>): void {
  const r = call.request;
  let topic: ReplicaTopic;
  try {
    topic = replicaTopic(r); // a bad option is refused before any wait for the model
  } catch (e) {
    callback(toStatus(e));
    return;
  }
  const cancelled = (stop: () => void) => call.on('cancelled', stop);
  s.models.whenHeld(r.modelVersion, r.awaitModelMs, cancelled).then((model) => {
    if (!model) {
      const waited = r.awaitModelMs > 0 ? ` (waited ${r.awaitModelMs} ms for it)` : '';
      throw new SidecarError(status.FAILED_PRECONDITION, `model version ${r.modelVersion} is not loaded${waited}: send PutModel`);
    }
    return s.training.train({
      session: r.session, modelVersion: r.modelVersion, topic, batches: r.batches,
      epoch: r.epoch, inputSums: r.inputSums, independent: r.independent, resetMomentum: r.resetMomentum, task: r.task || 'train',
      holdUpdate: r.holdUpdate,
    }, model.toPlain());
  }).then(
    (o) => {
      // Held for a merge on this sidecar, or answered: a view of the worker's bytes, not a copy (1.6 MB for 784-500).
      const res: TrainResponse = {
        update: Buffer.from(o.update.buffer, o.update.byteOffset, o.update.byteLength),
        heldUpdate: o.held ? s.heldUpdates.hold(r.session, o.held) : '',
        rows: o.rows, inputSums: o.inputSums, warm: o.warm, figures: o.figures };
      callback(null, res);
    },
    (e) => callback(toStatus(e)),
  );
}
