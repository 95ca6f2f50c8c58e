import { hostname } from 'node:os';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import {
  type SidecarServer,
  type DescribeResponse,
  type InitLayerRequest,
  type TransformRequest,
  type TransformResponse,
  type CacheDataRequest,
  type CacheDataResponse,
  type TrainRequest,
  type TrainResponse,
  type GetModelRequest,
  type MergeRequest,
  type CombineRequest,
  type PutModelRequest,
  type PutModelResponse,
  type ReportRequest,
  type ReportResponse,
  type SnapshotResponse,
} from '../gen/sidecar.js';
import { argmaxRows, type DBN, decodeSnapshot, initLayer } from 'spark-dbn';
import { decodeFeatureBatch, decodeTrainingBatch, encodeResultBatch, type ResultColumns } from '../io/features.js';
import { bytesToFloats, floatsToBytes } from '../io/floats.js';
import { kernelsReason, loadKernels, nativeModule } from '../math/native.js';
import { renderReport } from '../report/report.js';
import type { SidecarConfig } from './config.js';
import { inPartition, SidecarError, toStatus, withRowError } from './errors.js';
import { snapshotOf } from './merge.js';
import { combineHandler, mergeHandler } from './merge-handlers.js';
import { ModelCache } from './models.js';
import { partLayer, type ReplicaTopic, replicaTopic } from './options.js';
import type { TrainingPool } from './training.js';
import { HeldUpdates, TopicStates } from './topics.js';

/**
 * The Sidecar service's handlers, one named function each (proto/sidecar.proto says what each call does).
 * Unary calls are async functions of the request; `sidecarHandlers` turns their answer or error into the
 * call's (errors: toStatus, a status code with details). Streams and Train handle their calls themselves.
 */

export const SIDECAR_VERSION = '0.1.0';

/** What the handlers share: the held model versions, the topics' merge state, held updates and the training pool. */
interface Shared {
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
function counted(s: Shared, batch: Uint8Array | undefined): Uint8Array {
  if (!batch) return new Uint8Array(0);
  if (batch.byteOffset % 8 !== 0) s.unalignedBatches++;
  return batch;
}

/**
 * This process's own peak resident set, bytes. Not getrusage's maxRSS: Linux carries into it the
 * resident set of the process image that exec replaced, which for a sidecar started by the JVM
 * (posix_spawn shares the JVM's memory until exec) is the JVM's: Describe reported 440-1040 MiB
 * for a sidecar whose own peak was 172 MiB. VmHWM counts only the memory of this image.
 */
export function peakRssBytes(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // Not Linux: the best the platform offers.
  }
  return process.resourceUsage().maxRSS * 1024;
}

/**
 * Train: one round of one replica from a held model version; with await_model_ms, from one a merge on
 * this sidecar is about to hold (the round starts as the merge ends). A caller that goes away stops the wait.
 */
function trainHandler(call: grpc.ServerUnaryCall<TrainRequest, TrainResponse>, callback: grpc.sendUnaryData<TrainResponse>,
  models: ModelCache, training: TrainingPool, heldUpdates: HeldUpdates): void {
  const r = call.request;
  let topic: ReplicaTopic;
  try {
    topic = replicaTopic(r); // a bad option is refused before any wait for the model
  } catch (e) {
    callback(toStatus(e));
    return;
  }
  const cancelled = (stop: () => void) => call.on('cancelled', stop);
  models.whenHeld(r.modelVersion, r.awaitModelMs, cancelled).then((model) => {
    if (!model) {
      const waited = r.awaitModelMs > 0 ? ` (waited ${r.awaitModelMs} ms for it)` : '';
      throw new SidecarError(status.FAILED_PRECONDITION, `model version ${r.modelVersion} is not loaded${waited}: send PutModel`);
    }
    return training.train({
      session: r.session, modelVersion: r.modelVersion, topic, batches: r.batches,
      epoch: r.epoch, inputSums: r.inputSums, independent: r.independent, resetMomentum: r.resetMomentum, task: r.task || 'train',
      holdUpdate: r.holdUpdate,
    }, model.toPlain());
  }).then(
    (o) => {
      // Held for a merge on this sidecar, or answered: a view of the worker's bytes, not a copy (1.6 MB for 784-500).
      const res: TrainResponse = {
        update: Buffer.from(o.update.buffer, o.update.byteOffset, o.update.byteLength),
        heldUpdate: o.held ? heldUpdates.hold(r.session, o.held) : '',
        rows: o.rows, inputSums: o.inputSums, warm: o.warm, figures: o.figures };
      callback(null, res);
    },
    (e) => callback(toStatus(e)),
  );
}

/** GetModel: the snapshot of a held version, as the merge that made it would have answered it. */
async function getModelHandler(r: GetModelRequest, models: ModelCache): Promise<SnapshotResponse> {
  const dbn = models.get(r.version);
  if (!dbn) throw new SidecarError(status.NOT_FOUND, `GetModel: version ${r.version} is not held here (a restarted sidecar?)`);
  return { snapshot: await snapshotOf(dbn, r.trainingConfig), sizes: dbn.sizes, momentum: Buffer.alloc(0), state: '' };
}

/** Chart.js's UMD build: beside the bundled sidecar (scripts/bundle.mjs puts it there), else from node_modules. */
let chartJs: string | undefined;
function chartJsSource(): string {
  if (chartJs === undefined) {
    const beside = new URL('./chart.umd.min.js', import.meta.url);
    chartJs = existsSync(beside) ? readFileSync(beside, 'utf8')
      : readFileSync(join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js'), 'utf8');
  }
  return chartJs;
}

/** Report: the run's page, drawn by the engine from the model and the figures the JVM read from the run's tables. */
async function reportHandler(r: ReportRequest): Promise<ReportResponse> {
  const dbn = await decodeSnapshot(r.snapshot);
  if (r.classes < 0 || (r.confusion.length > 0 && r.confusion.length !== r.classes * r.classes)) {
    throw new SidecarError(status.INVALID_ARGUMENT, `Report: confusion has ${r.confusion.length} counts for ${r.classes} classes`);
  }
  if (r.imageSide < 0) throw new SidecarError(status.INVALID_ARGUMENT, `Report: imageSide is ${r.imageSide}`);
  const html = renderReport({
    runId: r.runId, settings: r.settings, classes: r.classes, confusion: r.confusion.map(Number), imageSide: r.imageSide,
    mistakes: r.mistakes.map((m) => ({ pixels: Float32Array.from(m.pixels), label: m.label, prediction: m.prediction })),
    rounds: r.rounds.map((x) => ({ ...x, timestampMs: Number(x.timestampMs) })),
  }, dbn, chartJsSource());
  return { html: Buffer.from(html, 'utf8') };
}

/** CacheData: a partition's rows, streamed in batches, into the training pool's cache under the session. */
function cacheDataHandler(s: Shared, call: grpc.ServerReadableStream<CacheDataRequest, CacheDataResponse>,
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

/** InitLayer: a model with one more layer (or the soft-max layer), initialised by the engine. */
async function initLayerHandler(r: InitLayerRequest): Promise<SnapshotResponse> {
  const base = r.base.length > 0 ? await decodeSnapshot(r.base) : null;
  const visible = r.visible || 'bernoulli';
  if (visible !== 'bernoulli' && visible !== 'gaussian') {
    throw new SidecarError(status.INVALID_ARGUMENT, `visible must be 'bernoulli' or 'gaussian', got '${visible}'`);
  }
  if (r.rbmLayer === undefined && r.softmax === undefined) {
    throw new SidecarError(status.INVALID_ARGUMENT, 'InitLayer: the request adds neither an RBM layer nor the soft-max layer');
  }
  const dbn = initLayer({ base, sizes: r.sizes, layer: r.rbmLayer ?? -1, visible, inputMeans: r.inputMeans,
    inputStddevs: r.inputStddevs, classes: r.softmax?.classes ?? 0, seed: r.seed });
  return { snapshot: await snapshotOf(dbn, r.trainingConfig), sizes: dbn.sizes, momentum: Buffer.alloc(0), state: '' };
}

/** PutModel: a model version held for the Train and Transform calls that name it. */
async function putModelHandler(r: PutModelRequest, models: ModelCache): Promise<PutModelResponse> {
  const cached = models.has(r.version);
  const dbn = cached ? models.get(r.version)! : await models.put(r.version, r.snapshot);
  return { sizes: dbn.sizes, classes: dbn.output?.nClasses ?? 0, cached };
}

/** Transform: a stream of feature batches scored by a held model version, each answered as it comes. */
function transformHandler(s: Shared, call: grpc.ServerDuplexStream<TransformRequest, TransformResponse>): void {
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

/** Describe: this process, its kernels and what it has seen. */
async function describeHandler(s: Shared): Promise<DescribeResponse> {
  return {
    pid: process.pid,
    sidecarVersion: SIDECAR_VERSION,
    nodeVersion: process.version,
    executorId: s.config.executorId,
    uptimeSeconds: (Date.now() - s.startedAt) / 1000,
    kernels: loadKernels().name,
    threads: nativeModule()?.getThreads() ?? 1,
    maxRssBytes: peakRssBytes(),
    unalignedBatches: s.unalignedBatches,
    blasCore: nativeModule()?.coreName?.() ?? '',
    simd: nativeModule()?.simd?.() ?? '',
    kernelsReason: kernelsReason(),
    hostname: hostname(),
  };
}

/** A unary handler from an async function of the request: its answer, or its error as a status. */
function unary<Req, Res>(f: (r: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    f(call.request).then((res) => callback(null, res), (e) => callback(toStatus(e)));
  };
}

/** The service's handlers, sharing one set of held models and states. */
export function sidecarHandlers(config: SidecarConfig, startedAt: number, training: TrainingPool): SidecarServer {
  const s: Shared = { config, startedAt, training, models: new ModelCache(), topics: new TopicStates(), heldUpdates: new HeldUpdates(),
    unalignedBatches: 0 };
  return {
    cacheData: (call, callback) => cacheDataHandler(s, call, callback),
    train: (call, callback) => trainHandler(call, callback, s.models, s.training, s.heldUpdates),
    initLayer: unary(initLayerHandler),
    merge: unary((r: MergeRequest) => mergeHandler(r, s.topics, s.models, s.heldUpdates)),
    combine: unary((r: CombineRequest) => combineHandler(r, s.heldUpdates)),
    getModel: unary((r: GetModelRequest) => getModelHandler(r, s.models)),
    report: unary(reportHandler),
    putModel: unary((r: PutModelRequest) => putModelHandler(r, s.models)),
    transform: (call) => transformHandler(s, call),
    describe: unary(() => describeHandler(s)),
  };
}
