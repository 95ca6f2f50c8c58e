import { timingSafeEqual } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import {
  SidecarService,
  type SidecarServer,
  type ArrowChunk,
  type DescribeResponse,
  type IngestSummary,
  type TransformRequest,
} from '../gen/sidecar.js';
import { decodeFeatureBatch, encodeResultBatch } from '../io/features.js';
import { argmaxRows, type DBN } from '../rbm/dbn.js';
import { DataError } from '../rbm/errors.js';
import { ModelCache } from './models.js';
import { SidecarError } from './errors.js';
import { ArrowIngest } from '../io/arrow.js';
import { loadKernels, nativeModule } from '../math/native.js';
import { type SidecarConfig, validateSidecarConfig } from './config.js';
import { toStatus } from './errors.js';

export const SECRET_METADATA = 'x-dbn-secret';
export const SIDECAR_VERSION = '0.1.0';

/** Rejects every call, health checks included, whose secret does not match. */
function authInterceptor(secret: string): grpc.ServerInterceptor {
  const expected = Buffer.from(secret);
  return (_method, call) =>
    new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, mdNext) => {
            const got = metadata.get(SECRET_METADATA)[0];
            const gotBuf = Buffer.from(typeof got === 'string' ? got : '');
            // Constant-time compare so the secret cannot be probed byte by byte.
            const ok = gotBuf.length === expected.length && timingSafeEqual(gotBuf, expected);
            if (ok) mdNext(metadata);
            else call.sendStatus({ code: grpc.status.UNAUTHENTICATED, details: `missing or wrong ${SECRET_METADATA}` });
          },
        });
      },
    });
}

export interface RunningSidecar {
  server: grpc.Server;
  port: number;
  health: HealthImplementation;
  stop(graceMs?: number): Promise<void>;
}

function sidecarHandlers(config: SidecarConfig, startedAt: number): SidecarServer {
  const models = new ModelCache();
  return {
    putModel: (call, callback) => {
      const { version, snapshot } = call.request;
      const cached = models.has(version);
      const got = cached ? Promise.resolve(models.get(version)!) : models.put(version, snapshot);
      got.then(
        (dbn) => callback(null, { sizes: dbn.sizes, classes: dbn.output?.nClasses ?? 0, cached }),
        (e) => callback(toStatus(e)),
      );
    },
    transform: (call) => {
      let model: DBN | undefined;
      let probabilities = false;
      let task = 'transform';
      let rows = 0;
      let failed = false;
      const fail = (e: unknown) => {
        if (failed) return;
        failed = true;
        call.emit('error', toStatus(e));
      };
      call.on('data', (req: TransformRequest) => {
        if (failed) return;
        try {
          if (req.start) {
            task = req.start.task || task;
            model = models.get(req.start.modelVersion);
            if (!model) {
              throw new SidecarError(status.FAILED_PRECONDITION, `model version ${req.start.modelVersion} is not loaded: send PutModel`);
            }
            probabilities = req.start.probabilities;
            if (probabilities && !model.output) {
              throw new SidecarError(status.FAILED_PRECONDITION, `model version ${req.start.modelVersion} has no output layer: it was not fine-tuned`);
            }
            return;
          }
          if (!model) throw new SidecarError(status.FAILED_PRECONDITION, `${task}: the first message must be 'start'`);
          const label = `${task}, rows ${rows}..`;
          const x = decodeFeatureBatch(req.batch ?? new Uint8Array(0), model.sizes[0], label);
          let features;
          try {
            features = model.transform(x);
          } catch (e) {
            // Row numbers within the partition, not within this batch.
            if (e instanceof DataError && e.row >= 0) {
              const row = rows + e.row;
              throw new DataError(`${task}: row ${row}, column ${e.column}: ${e.reason}`, row, e.column, e.reason);
            }
            throw e;
          }
          let out: Uint8Array;
          if (probabilities) {
            const p = model.probaFromTop(features);
            out = encodeResultBatch(features, p, argmaxRows(p));
          } else {
            out = encodeResultBatch(features);
          }
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
    },
    describe: (_call, callback) => {
      const res: DescribeResponse = {
        pid: process.pid,
        sidecarVersion: SIDECAR_VERSION,
        nodeVersion: process.version,
        executorId: config.executorId,
        uptimeSeconds: (Date.now() - startedAt) / 1000,
        kernels: loadKernels().name,
        threads: nativeModule()?.getThreads() ?? 1,
        maxRssBytes: process.resourceUsage().maxRSS * 1024,
      };
      callback(null, res);
    },
    ingestArrow: (call, callback) => {
      const ingest = new ArrowIngest();
      let failed = false;
      call.on('data', (chunk: ArrowChunk) => {
        if (failed) return;
        try {
          ingest.add(chunk.ipcStream, chunk.task || 'ingest');
        } catch (e) {
          failed = true;
          callback(toStatus(e));
        }
      });
      call.on('end', () => {
        if (failed) return;
        const t = ingest.totals;
        const res: IngestSummary = {
          rows: t.rows,
          batches: t.batches,
          chunks: t.chunks,
          columns: t.columns,
          pid: process.pid,
        };
        callback(null, res);
      });
      call.on('error', () => {
        // The client went away; nothing to answer.
        failed = true;
      });
    },
  };
}

/** Starts the gRPC server; resolves once it is bound and SERVING. */
export async function startSidecar(config: SidecarConfig): Promise<RunningSidecar> {
  validateSidecarConfig(config);
  const server = new grpc.Server({
    interceptors: [authInterceptor(config.secret)],
    'grpc.max_receive_message_length': config.maxReceiveMessageBytes,
  });
  const health = new HealthImplementation({ '': 'NOT_SERVING', 'sparkdbn.v1.Sidecar': 'NOT_SERVING' });
  health.addToServer(server);
  server.addService(SidecarService, sidecarHandlers(config, Date.now()));
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${config.host}:${config.port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    );
  });
  health.setStatus('', 'SERVING');
  health.setStatus('sparkdbn.v1.Sidecar', 'SERVING');
  return {
    server,
    port,
    health,
    stop: (graceMs = 2000) =>
      new Promise<void>((resolve) => {
        health.setStatus('', 'NOT_SERVING');
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
