import { DBN, decodeSnapshot, type PlainDBN } from 'spark-dbn';
import { PayloadError } from '../io/errors.js';

/**
 * A copy of `dbn` whose parameters lie on one SharedArrayBuffer: a Train call posts the model to its
 * training worker without copying it (eight replicas of 784-500 cost 11-18 ms of structured clones on
 * the event loop before the merge that made the version could answer; shared, 3-4 ms). The workers
 * only read a published model (they train their own replicas, cloned or adopted from it).
 */
function sharedCopy(dbn: DBN): DBN {
  const p = dbn.toPlain();
  const arrays = [...p.layers.flatMap((l) => [l.W, l.vBias, l.hBias]), ...(p.output ? [p.output.W, p.output.bias] : [])];
  const memory = new SharedArrayBuffer(arrays.reduce((n, a) => n + a.byteLength, 0));
  let offset = 0;
  const copy = (a: Float32Array): Float32Array => {
    const c = new Float32Array(memory, offset, a.length);
    c.set(a);
    offset += a.byteLength;
    return c;
  };
  const s = p.inputScaling;
  const plain: PlainDBN = {
    layers: p.layers.map((l) => ({ ...l, W: copy(l.W), vBias: copy(l.vBias), hBias: copy(l.hBias), counters: { ...l.counters } })),
    output: p.output ? { ...p.output, W: copy(p.output.W), bias: copy(p.output.bias) } : null,
    fineTuneCounters: { ...p.fineTuneCounters },
    inputScaling: s ? { mean: s.mean.slice(), std: s.std.slice() } : null,
  };
  return DBN.fromPlain(plain, dbn.kernels);
}

/**
 * Model snapshots by version id, most recently used last; beyond `capacity`
 * the least recently used is dropped (a later call re-sends it). Each is kept
 * in shared memory (sharedCopy) and never changed.
 */
export class ModelCache {
  private readonly models = new Map<string, { dbn: DBN }>();
  /** Train calls waiting for a version a merge is about to hold (TrainRequest.await_model_ms). */
  private readonly awaited = new Map<string, ((dbn: DBN | undefined) => void)[]>();

  constructor(readonly capacity = 4) {}

  get(version: string): DBN | undefined {
    return this.entry(version)?.dbn;
  }

  private entry(version: string): { dbn: DBN } | undefined {
    const m = this.models.get(version);
    if (m) {
      this.models.delete(version);
      this.models.set(version, m);
    }
    return m;
  }

  has(version: string): boolean {
    return this.models.has(version);
  }

  /** Holds a copy of `dbn` (a merge's answer, or a decoded snapshot) as `version`; `dbn` stays the caller's. */
  hold(version: string, dbn: DBN): void {
    const kept = sharedCopy(dbn);
    this.models.delete(version);
    this.models.set(version, { dbn: kept });
    while (this.models.size > this.capacity) this.models.delete(this.models.keys().next().value!);
    const waiting = this.awaited.get(version);
    this.awaited.delete(version);
    waiting?.forEach((resolve) => resolve(kept));
  }

  /**
   * The model `version`, now or once it is held, within `ms`; undefined when it does not come in time,
   * or when `cancelled` fires first (the caller went away).
   */
  whenHeld(version: string, ms: number, cancelled?: (stop: () => void) => void): Promise<DBN | undefined> {
    const now = this.get(version);
    if (now || ms <= 0) return Promise.resolve(now);
    return new Promise((resolve) => {
      const done = (dbn: DBN | undefined) => {
        clearTimeout(timer);
        const list = this.awaited.get(version)?.filter((r) => r !== done) ?? [];
        if (list.length > 0) this.awaited.set(version, list);
        else this.awaited.delete(version);
        resolve(dbn);
      };
      const timer = setTimeout(() => done(undefined), ms);
      this.awaited.set(version, [...(this.awaited.get(version) ?? []), done]);
      cancelled?.(() => done(undefined));
    });
  }

  async put(version: string, snapshot: Uint8Array): Promise<DBN> {
    if (!version) throw new PayloadError('PutModel: version is empty');
    let dbn: DBN;
    try {
      dbn = await decodeSnapshot(snapshot);
    } catch (e) {
      throw new PayloadError(`PutModel ${version}: ${(e as Error).message}`);
    }
    this.hold(version, dbn);
    return this.get(version)!;
  }
}
