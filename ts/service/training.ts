import { status } from '@grpc/grpc-js';
import { Worker } from 'node:worker_threads';
import { checkOption, optionSpecs, type PlainDBN } from 'spark-dbn';
import { concatArrays } from '../io/floats.js';
import { SidecarError } from './errors.js';
import { runOfSession, type TrainJob, type RoundOutcome } from './replica.js';

type WorkerMessage =
  | { kind: 'data'; session: string; x: Float32Array; rows: number; cols: number; labels: Int32Array | null; heldOutRows: number }
  | { kind: 'drop'; session: string }
  | { kind: 'train'; job: TrainJob; model: PlainDBN };

export type WorkerRequest = WorkerMessage & { id: number };

export interface WorkerReply {
  id: number;
  error?: { code: status; details: string };
  outcome?: RoundOutcome;
}

/** How the sidecar trains. */
export interface TrainingConfig {
  /** Worker threads: rounds of different sessions run in parallel, one per worker (the executor's task slots). */
  workers: number;
  /** BLAS and element-wise threads of each worker. */
  threadsPerWorker: number;
  /** Memory budget of all cached sessions (rows and derived layer inputs), bytes. */
  cacheBytes: number;
  /** The V8 heap each worker may grow to, MiB; undefined: V8's own limit. */
  workerHeapMb?: number;
}

export function validateTrainingConfig(c: TrainingConfig): TrainingConfig {
  // The ranges of SidecarLaunch's fields (proto/sidecar.proto), under this API's names.
  const spec = optionSpecs('SidecarLaunch');
  checkOption('workers', spec.trainWorkers, c.workers);
  checkOption('threadsPerWorker', spec.workerThreads, c.threadsPerWorker);
  checkOption('cacheBytes', spec.cacheBytes, c.cacheBytes);
  if (c.workerHeapMb !== undefined) checkOption('workerHeapMb', spec.workerHeapMb, c.workerHeapMb);
  return c;
}

interface SessionEntry {
  worker: number;
  dataBytes: number;
  derivedBytes: number;
  /** Calls using it now: a busy session is never evicted. */
  busy: number;
  /** Cached and not trained on since: not evicted either, so the round that sent the rows can use them. */
  fresh: boolean;
}

/**
 * The sidecar's training side: worker threads that hold the sessions' rows and
 * replicas, a session -> worker map (a session stays on its worker, where its
 * replica lives), and the memory budget over all sessions, enforced by dropping
 * the least recently used idle sessions.
 */
export class TrainingPool {
  private readonly workers: (Worker | null)[];
  private readonly pending = new Map<number, { resolve: (r: WorkerReply) => void; reject: (e: Error) => void; worker: number }>();
  /** Least recently used first. */
  private readonly sessions = new Map<string, SessionEntry>();
  /** The worker of every session seen, evicted or not: rows sent again go where its replicas live. */
  private readonly home = new Map<string, number>();
  private nextId = 1;
  private closed = false;

  constructor(readonly config: TrainingConfig, private readonly log: (line: string) => void = () => {}) {
    validateTrainingConfig(config);
    this.workers = new Array<Worker | null>(config.workers).fill(null);
  }

  private bytesOf(session: string): number {
    const s = this.sessions.get(session);
    return s ? s.dataBytes + s.derivedBytes : 0;
  }

  get cachedBytes(): number {
    let n = 0;
    for (const s of this.sessions.values()) n += s.dataBytes + s.derivedBytes;
    return n;
  }

  /** Each started worker's V8 heap cap, MiB (undefined: V8's own). */
  workerHeapLimitsMb(): (number | undefined)[] {
    return this.workers.filter((w): w is Worker => w !== null).map((w) => w.resourceLimits?.maxOldGenerationSizeMb);
  }

  has(session: string): boolean {
    return this.sessions.has(session);
  }

  /**
   * Stores a session's rows, given as consecutive row-major parts of `cols`
   * values (replacing what it held); answers the sessions dropped to make room.
   */
  async cache(session: string, parts: Float32Array[], cols: number, labelParts: Int32Array[] | null, heldOutRows = 0):
    Promise<{ bytes: number; evicted: string[] }> {
    if (!session) throw new SidecarError(status.INVALID_ARGUMENT, 'CacheData: session is empty');
    const old = this.sessions.get(session);
    if (old && old.busy > 0) throw new SidecarError(status.ABORTED, `session ${session} is training; send its rows when the round ends`);
    // Room first: the budget holds while the new rows arrive, not only after.
    const incoming = parts.reduce((n, p) => n + p.byteLength, 0) + (labelParts ?? []).reduce((n, p) => n + p.byteLength, 0);
    const early = this.evict(incoming, session);
    // Shared memory: the one copy of the rows, which the worker reads in place.
    const x = concatArrays(parts, (n) => new Float32Array(new SharedArrayBuffer(n * 4)));
    const rows = x.length / cols;
    const labels = labelParts ? concatArrays(labelParts, (n) => new Int32Array(n)) : null;
    if (labels && labels.length !== rows) throw new SidecarError(status.INVALID_ARGUMENT, `${labels.length} labels for ${rows} rows`);
    // A session stays on its worker (its replicas live there, also after its rows were evicted); a new one
    // goes to the least loaded.
    const worker = old ? old.worker : this.home.get(session) ?? this.leastLoaded();
    // Homes of other runs' evicted sessions are done with.
    const run = runOfSession(session);
    for (const id of [...this.home.keys()]) if (!this.sessions.has(id) && runOfSession(id) !== run) this.home.delete(id);
    this.home.set(session, worker);
    this.sessions.delete(session);
    const entry: SessionEntry = { worker, dataBytes: x.byteLength + (labels?.byteLength ?? 0), derivedBytes: 0, busy: 1, fresh: true };
    this.sessions.set(session, entry);
    try {
      await this.call(worker, { kind: 'data', session, x, rows, cols, labels, heldOutRows });
    } catch (e) {
      this.forget(session);
      throw e;
    } finally {
      entry.busy--;
    }
    const evicted = [...early, ...this.evict()];
    return { bytes: entry.dataBytes + entry.derivedBytes, evicted };
  }

  private leastLoaded(): number {
    const load = new Array<number>(this.workers.length).fill(0);
    for (const s of this.sessions.values()) load[s.worker]++;
    return load.indexOf(Math.min(...load));
  }

  /** A round of `job` on the published `model` (cloned into the session's worker: the worker trusts it). */
  async train(job: TrainJob, model: PlainDBN): Promise<RoundOutcome> {
    const entry = this.sessions.get(job.session);
    if (!entry) throw new SidecarError(status.NOT_FOUND, `session ${job.session} is not cached in this sidecar: send CacheData`);
    this.sessions.delete(job.session);
    this.sessions.set(job.session, entry);
    entry.busy++;
    try {
      const r = await this.call(entry.worker, { kind: 'train', job, model });
      entry.derivedBytes = r.outcome!.derivedBytes;
      entry.fresh = false;
      return r.outcome!;
    } finally {
      entry.busy--;
      this.evict();
    }
  }

  /** Drops idle sessions, least recently used first, until the cache and `incoming` more bytes fit its budget. */
  /** Drops idle sessions, least recently used first, until `incoming` bytes fit beside the rest (`replacing` excluded). */
  private evict(incoming = 0, replacing?: string): string[] {
    const evicted: string[] = [];
    const held = () => this.cachedBytes - (replacing !== undefined ? this.bytesOf(replacing) : 0);
    for (const [id, s] of this.sessions) {
      if (held() + incoming <= this.config.cacheBytes) break;
      if (s.busy > 0 || s.fresh || id === replacing) continue;
      this.forget(id);
      evicted.push(id);
    }
    if (evicted.length > 0) {
      this.log(`spark-dbn sidecar: cache over ${this.config.cacheBytes} bytes, dropped the rows of sessions ${evicted.join(', ')} ` +
        '(their replicas stay; their next rounds send the rows again)');
    }
    return evicted;
  }

  private forget(session: string): void {
    const s = this.sessions.get(session);
    if (!s) return;
    this.sessions.delete(session);
    // Nothing to free in a worker that is gone.
    if (this.workers[s.worker]) this.call(s.worker, { kind: 'drop', session }).catch(() => {});
  }

  private worker(i: number): Worker {
    let w = this.workers[i];
    if (w) return w;
    // Bundled, this module is lib/node/sidecar.cjs and the worker sits beside it.
    const file = import.meta.url.endsWith('.cjs') ? './train-worker.cjs' : './train-worker.js';
    const heap = this.config.workerHeapMb;
    w = new Worker(new URL(file, import.meta.url), {
      workerData: { threads: this.config.threadsPerWorker },
      ...(heap === undefined ? {} : { resourceLimits: { maxOldGenerationSizeMb: heap } }),
    });
    w.unref();
    w.on('message', (r: WorkerReply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      p.resolve(r);
    });
    const lost = (why: string) => {
      if (this.workers[i] !== w) return;
      this.workers[i] = null;
      // Its sessions died with it: the next Train of each is a miss, and the task re-sends.
      for (const [id, s] of [...this.sessions]) if (s.worker === i) this.forget(id);
      for (const [id, h] of [...this.home]) if (h === i) this.home.delete(id);
      for (const [id, p] of [...this.pending]) {
        if (p.worker !== i) continue;
        this.pending.delete(id);
        p.reject(new SidecarError(status.INTERNAL, `training worker ${i} ${why}`));
      }
    };
    w.on('error', (e) => lost((e as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY'
      ? `ran out of its V8 heap (limit ${this.config.workerHeapMb} MiB, part of the sidecar's memory budget)`
      : `failed: ${e.message}`));
    w.on('exit', (code) => lost(`exited with code ${code}`));
    this.workers[i] = w;
    return w;
  }

  private call(worker: number, req: WorkerMessage): Promise<WorkerReply> {
    if (this.closed) return Promise.reject(new SidecarError(status.UNAVAILABLE, 'the sidecar is shutting down'));
    const id = this.nextId++;
    return new Promise<WorkerReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, worker });
      this.worker(worker).postMessage({ ...req, id });
    }).then((r) => {
      if (r.error) throw new SidecarError(r.error.code, r.error.details);
      return r;
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w?.terminate()));
  }
}

