import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { SidecarService } from '../gen/sidecar.js';
import { authInterceptor } from './auth.js';
import { type SidecarConfig, validateSidecarConfig } from './config.js';
import { sidecarHandlers } from './handlers.js';
import { TrainingPool } from './training.js';
import { RECEIVE_WINDOW_BYTES, raiseReceiveWindow } from './window.js';

export interface RunningSidecar {
  server: grpc.Server;
  training: TrainingPool;
  port: number;
  health: HealthImplementation;
  stop(graceMs?: number): Promise<void>;
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
  if (!raiseReceiveWindow(server, RECEIVE_WINDOW_BYTES)) {
    process.stderr.write('spark-dbn sidecar: this grpc-js has no hook for the HTTP/2 receive window; using its 64 KiB default\n');
  }
  const training = new TrainingPool(
    { workers: config.trainWorkers, threadsPerWorker: config.workerThreads, cacheBytes: config.cacheBytes,
      workerHeapMb: config.workerHeapMb },
    (line) => process.stderr.write(line + '\n'));
  server.addService(SidecarService, sidecarHandlers(config, Date.now(), training));
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${config.host}:${config.port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    );
  });
  health.setStatus('', 'SERVING');
  health.setStatus('sparkdbn.v1.Sidecar', 'SERVING');
  return {
    server,
    training,
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
      }).then(() => training.close()),
  };
}
