import type * as grpc from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import { argmaxRows, type DBN } from 'spark-dbn';
import type { TransformRequest, TransformResponse } from '../gen/sidecar.js';
import { decodeFeatureBatch, encodeResultBatch, type ResultColumns } from '../io/features.js';
import { inPartition, SidecarError, toStatus, withRowError } from './errors.js';
import { counted, type Shared } from './shared.js';

/** Transform: a stream of feature batches scored by a held model version, each answered as it comes. */
export function transformHandler(s: Shared, call: grpc.ServerDuplexStream<TransformRequest, TransformResponse>): void {
  let model: DBN | undefined;
  let probabilities = false;
  let scores = false;
  let task = 'transform';
  let rows = 0;
  let failed = false;
  const fail = (e: unknown) => {
    if (failed) return;
    failed = true;
    call.emit('error', withRowError(toStatus(e), e));
  };
  call.on('data', (req: TransformRequest) => {
    if (failed) return;
    try {
      if (req.start) {
        task = req.start.task || task;
        model = s.models.get(req.start.modelVersion);
        if (!model) {
          throw new SidecarError(status.FAILED_PRECONDITION, `model version ${req.start.modelVersion} is not loaded: send PutModel`);
        }
        probabilities = req.start.probabilities;
        scores = req.start.scores;
        if (probabilities && !model.output) {
          throw new SidecarError(status.FAILED_PRECONDITION, `model version ${req.start.modelVersion} has no output layer: it was not fine-tuned`);
        }
        return;
      }
      if (!model) throw new SidecarError(status.FAILED_PRECONDITION, `${task}: the first message must be 'start'`);
      const label = `${task}, rows ${rows}..`;
      const x = decodeFeatureBatch(counted(s, req.batch), model.sizes[0], label);
      let scaled;
      try {
        scaled = model.scaleInput(x);
      } catch (e) {
        // Row numbers within the partition, not within this batch.
        throw inPartition(e, task, rows);
      }
      const features = model.transformScaled(scaled);
      const more: ResultColumns = {};
      if (probabilities) {
        more.probabilities = model.probaFromTop(features);
        more.prediction = argmaxRows(more.probabilities);
      }
      if (scores) more.scores = model.scoresScaled(scaled);
      const out = encodeResultBatch(features, more);
      rows += x.rows;
      call.write({ batch: Buffer.from(out.buffer, out.byteOffset, out.byteLength), rows: x.rows });
    } catch (e) {
      fail(e);
    }
  });
  call.on('end', () => {
    if (!failed) call.end();
  });
  call.on('error', () => {
    failed = true;
  });
}
