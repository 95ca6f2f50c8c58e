// A training worker thread of the sidecar: holds sessions (a partition's rows
// and its replicas) and runs rounds, so the gRPC event loop stays free.
import { parentPort, workerData } from 'node:worker_threads';
import { setBlasThreads } from 'spark-dbn';
import { toStatus } from './errors.js';
import { ReplicaStore } from './replica.js';
import type { WorkerReply, WorkerRequest } from './training.js';

const store = new ReplicaStore();
// Per-thread (OpenMP) count: the BLAS calls of this thread use this many.
setBlasThreads((workerData as { threads: number }).threads);

// Errors cross the thread as the status the client will see.
parentPort!.on('message', (msg: WorkerRequest) => {
  const reply = (r: Omit<WorkerReply, 'id'>) => parentPort!.postMessage({ id: msg.id, ...r });
  try {
    switch (msg.kind) {
      case 'data':
        store.setData(msg.session, { data: msg.x, rows: msg.rows, cols: msg.cols }, msg.labels, msg.heldOutRows);
        reply({});
        break;
      case 'drop':
        store.dropRows(msg.session);
        reply({});
        break;
      case 'train':
        store.train(msg.job, msg.model).then((outcome) => {
          // A held update's delta moves to the main thread (1.6 MB for 784-500, not copied).
          const moved = outcome.held ? [outcome.held.delta.buffer as ArrayBuffer] : [];
          parentPort!.postMessage({ id: msg.id, outcome }, moved);
        }, (e: unknown) => reply({ error: toStatus(e) }));
        break;
    }
  } catch (e) {
    reply({ error: toStatus(e) });
  }
});
