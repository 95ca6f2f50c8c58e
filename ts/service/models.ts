import { type DBN, decodeSnapshot } from 'spark-dbn';
import { PayloadError } from '../io/errors.js';

/**
 * Model snapshots by version id, most recently used last; beyond `capacity`
 * the least recently used is dropped (a later call re-sends it).
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

  /** Holds a model the sidecar made itself (a merge's answer) under `version`; the caller gives up `dbn`. */
  hold(version: string, dbn: DBN): void {
    this.models.delete(version);
    this.models.set(version, { dbn });
    while (this.models.size > this.capacity) this.models.delete(this.models.keys().next().value!);
    const waiting = this.awaited.get(version);
    this.awaited.delete(version);
    waiting?.forEach((resolve) => resolve(dbn));
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
    return dbn;
  }
}
