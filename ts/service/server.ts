import { timingSafeEqual } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import {
  SidecarService,
  type SidecarServer,
  type ArrowChunk,
  type DescribeResponse,
  type IngestSummary,
} from '../gen/sidecar.js';
import { ArrowIngest } from '../io/arrow.js';
import { loadKernels } from '../math/native.js';
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
  return {
    describe: (_call, callback) => {
      const res: DescribeResponse = {
        pid: process.pid,
        sidecarVersion: SIDECAR_VERSION,
        nodeVersion: process.version,
        executorId: config.executorId,
        uptimeSeconds: (Date.now() - startedAt) / 1000,
        kernels: loadKernels().name,
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
