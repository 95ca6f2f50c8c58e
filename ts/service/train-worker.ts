// A training worker thread of the sidecar: holds sessions (a partition's rows
// and its replicas) and runs rounds, so the gRPC event loop stays free.
import { parentPort, workerData } from 'node:worker_threads';
import { setBlasThreads } from '../math/native.js';
import { ReplicaStore, SessionMissing } from './replica.js';
import type { WorkerReply, WorkerRequest } from './training.js';

const store = new ReplicaStore();
// Per-thread (OpenMP) count: the BLAS calls of this thread use this many.
setBlasThreads((workerData as { threads: number }).threads);

function errorInfo(e: unknown): WorkerReply['error'] {
  const err = e instanceof Error ? e : new Error(String(e));
  return { name: err instanceof SessionMissing ? 'SessionMissing' : err.name, message: err.message,
    field: (err as { field?: string }).field };
}

parentPort!.on('message', (msg: WorkerRequest) => {
  const reply = (r: Omit<WorkerReply, 'id'>) => parentPort!.postMessage({ id: msg.id, ...r });
  try {
    switch (msg.kind) {
      case 'data':
        store.setData(msg.session, { data: msg.x, rows: msg.rows, cols: msg.cols }, msg.labels);
        reply({});
        break;
      case 'drop':
        store.drop(msg.session);
        reply({});
        break;
      case 'train':
        store.train(msg.job, msg.snapshot).then((outcome) => reply({ outcome }), (e: unknown) => reply({ error: errorInfo(e) }));
        break;
    }
  } catch (e) {
    reply({ error: errorInfo(e) });
  }
});
