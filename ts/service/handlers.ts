import type { SidecarServer } from '../gen/sidecar.js';
import type { SidecarConfig } from './config.js';
import { describeHandler } from './describe-handler.js';
import { combineHandler, mergeHandler } from './merge-handlers.js';
import { getModelHandler, initLayerHandler, putModelHandler } from './model-handlers.js';
import { ModelCache } from './models.js';
import { reportHandler } from './report-handler.js';
import { type Shared, unary } from './shared.js';
import { HeldUpdates, TopicStates } from './topics.js';
import { cacheDataHandler, trainHandler } from './training-handlers.js';
import type { TrainingPool } from './training.js';
import { transformHandler } from './transform-handler.js';

/**
 * The Sidecar service: one named handler a call (proto/sidecar.proto says what each does), grouped in
 * modules by the calls' purpose, each taking the shared state first. Errors become a status code with
 * details (errors.ts toStatus).
 */
export function sidecarHandlers(config: SidecarConfig, startedAt: number, training: TrainingPool): SidecarServer {
  const s: Shared = { config, startedAt, training, models: new ModelCache(), topics: new TopicStates(), heldUpdates: new HeldUpdates(),
    unalignedBatches: 0 };
  return {
    describe: unary(s, describeHandler),
    putModel: unary(s, putModelHandler),
    getModel: unary(s, getModelHandler),
    initLayer: unary(s, initLayerHandler),
    merge: unary(s, mergeHandler),
    combine: unary(s, combineHandler),
    report: unary(s, reportHandler),
    cacheData: (call, callback) => cacheDataHandler(s, call, callback),
    train: (call, callback) => trainHandler(s, call, callback),
    transform: (call) => transformHandler(s, call),
  };
}
