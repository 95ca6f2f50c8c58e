import { status } from '@grpc/grpc-js';
import { SidecarError, inPartition } from './errors.js';
import type { RoundFigures } from '../gen/sidecar.js';
import {
  adoptPublished, BackpropTrainer, columnMeans, columnSums, DataError, DBN, type FineTuneConfig, type Matrix,
  type PlainDBN, RBM, type RBMTrainConfig, RBMTrainer, replicaDelta
} from 'spark-dbn';
import type { ReplicaTopic } from './options.js';
import { encodeUpdate, type ModelUpdate } from '../io/update.js';

/** One round of one replica, as the Train call asks for it. */
export interface TrainJob {
  session: string;
  modelVersion: string;
  /** What the replica trains, with its checked config (ts/service/options.ts). */
  topic: ReplicaTopic;
  batches: number;
  epoch: number;
  inputSums: boolean;
  independent: boolean;
  /** Start the round with zero local momentum (a BMUF block starts afresh). */
  resetMomentum: boolean;
  task: string;
  /**
   * The update stays in this sidecar for a merge here (TrainRequest.hold_update): answered decoded
   * (`held`), never encoded, so its delta is neither written as Avro nor read back.
   */
  holdUpdate?: boolean;
}

export interface RoundOutcome {
  /** proto/update.avsc bytes; empty when no batch ran, or when the update is `held`. */
  update: Uint8Array;
  /** With TrainJob.holdUpdate: the update itself (its delta's buffer is moved, not copied, to the main thread). */
  held?: ModelUpdate;
  rows: number;
  inputSums: number[];
  /** The replica already existed (its momentum, chains and position carried over). */
  warm: boolean;
  /** Bytes of derived data (upper layers' inputs) the session holds now. */
  derivedBytes: number;
  /** The round's figures (undefined when no batch ran). */
  figures?: RoundFigures;
}

interface RbmReplica {
  /** The config it was made with, as JSON: checked configs have one key order, so equal ones match. */
  config: string;
  rbm: RBM;
  trainer: RBMTrainer;
  /** Where the next round's monitor window starts (RBMTrainer.monitor). */
  monitorAt: number;
}

interface FineTuneReplica {
  config: string;
  dbn: DBN;
  trainer: BackpropTrainer;
}

/**
 * A partition's replicas between rounds (local parameters, momentum, chains, position in the shuffled
 * rows): kept apart from its rows, so that rows dropped from the cache and sent again continue the same
 * replicas, and a cache too small for the data never changes the result.
 */
export interface ReplicaState {
  readonly rbms: Map<number, RbmReplica>;
  fineTune: FineTuneReplica | null;
}

/** A partition's rows and what training keeps about them between rounds. */
export class Session {
  /** Input of layer l > 0: layer l-1's hidden probabilities of the rows, computed once. */
  readonly inputs = new Map<number, Matrix>();
  readonly state: ReplicaState;
  /** Rows checked against the unit type: 0 the training rows, -1 the held-out rows. */
  private readonly checked = new Set<number>();

  /** The rows training uses: all but the held-out ones. */
  readonly x: Matrix;
  readonly labels: Int32Array | null;
  /** The partition's last rows, kept out of training to measure held-out free energy (null: none). */
  readonly heldOut: Matrix | null;
  /** Input of layer l > 0 for the held-out rows, as `inputs`. */
  private readonly heldOutInputs = new Map<number, Matrix>();

  constructor(rows: Matrix, labels: Int32Array | null, heldOutRows = 0, state: ReplicaState = { rbms: new Map(), fineTune: null }) {
    this.state = state;
    if (!Number.isInteger(heldOutRows) || heldOutRows < 0 || (heldOutRows > 0 && heldOutRows >= rows.rows)) {
      throw new DataError(`held-out rows: ${heldOutRows} of the partition's ${rows.rows} rows leaves none to train on ` +
        '(hold out fewer, or use fewer partitions)');
    }
    const n = rows.rows - heldOutRows;
    // Views, not copies: the rows stay in the memory the pool shares with this worker.
    this.x = heldOutRows === 0 ? rows : { data: rows.data.subarray(0, n * rows.cols), rows: n, cols: rows.cols };
    this.heldOut = heldOutRows === 0 ? null : { data: rows.data.subarray(n * rows.cols), rows: heldOutRows, cols: rows.cols };
    this.labels = labels && heldOutRows > 0 ? labels.subarray(0, n) : labels;
  }

  get derivedBytes(): number {
    let n = 0;
    for (const m of [...this.inputs.values(), ...this.heldOutInputs.values()]) n += m.data.byteLength;
    return n;
  }

  /** The held-out rows as input of layer `layer` (null when none are held out). */
  heldOutInput(dbn: DBN, layer: number, task: string): Matrix | null {
    return this.heldOut ? this.layerInput(dbn, layer, task, this.heldOut, this.heldOutInputs) : null;
  }

  /** The input of layer `layer` under the (frozen) layers below it in `dbn`. */
  input(dbn: DBN, layer: number, task: string): Matrix {
    return this.layerInput(dbn, layer, task, this.x, this.inputs);
  }

  /**
   * Layer 0's input is the rows as the model scales them (checked once; the rows themselves when the
   * model has no input scaling, a copy kept under 0 when it has: one run keeps one scaling); layer l's,
   * layer l-1's hidden probabilities of that, computed once.
   */
  private layerInput(dbn: DBN, layer: number, task: string, rows: Matrix, kept: Map<number, Matrix>): Matrix {
    let m = kept.get(layer);
    if (m) return m;
    if (layer === 0) {
      const key = rows === this.x ? 0 : -1;
      if (!dbn.inputScaling && this.checked.has(key)) return rows;
      try {
        m = dbn.scaleInput(rows);
      } catch (e) {
        throw inPartition(e, task);
      }
      this.checked.add(key);
      if (m !== rows) kept.set(0, m);
      return m;
    }
    m = dbn.transformScaled(this.layerInput(dbn, 0, task, rows, kept), layer);
    kept.set(layer, m);
    return m;
  }
}

/** The run part of a session id: the JVM names sessions "<run>/<partition>" (RoundSpec.session). */
export function runOfSession(session: string): string {
  return session.slice(0, session.lastIndexOf('/') + 1);
}

/**
 * The replicas of one worker thread: sessions by id (the published model comes with each round).
 * Everything here runs off the sidecar's event loop.
 */
export class ReplicaStore {
  readonly sessions = new Map<string, Session>();
  /** Replica state by session, rows or not (see ReplicaState). */
  private readonly states = new Map<string, ReplicaState>();

  setData(session: string, x: Matrix, labels: Int32Array | null, heldOutRows = 0): void {
    // States of other runs whose rows are gone are done with.
    const run = runOfSession(session);
    for (const id of [...this.states.keys()]) if (!this.sessions.has(id) && runOfSession(id) !== run) this.states.delete(id);
    let state = this.states.get(session);
    if (!state) this.states.set(session, (state = { rbms: new Map(), fineTune: null }));
    this.sessions.set(session, new Session(x, labels, heldOutRows, state));
  }

  /** Frees a session's rows and derived inputs; its replicas stay, for the rows sent again. */
  dropRows(session: string): void {
    this.sessions.delete(session);
  }

  /** A round of `job` from the published `model` (the sidecar's main thread decoded and checked it). */
  async train(job: TrainJob, model: PlainDBN): Promise<RoundOutcome> {
    const session = this.sessions.get(job.session);
    if (!session) throw new SidecarError(status.NOT_FOUND, `session ${job.session} is not cached in this sidecar: send CacheData`);
    const base = DBN.fromPlain(model);
    const t0 = performance.now();
    const t = job.topic;
    const out = t.kind === 'pretrain' ? this.pretrain(session, base, job, t.layer, t.config) : this.fineTune(session, base, job, t.config);
    const u = out.update;
    if (u) u.seconds = (performance.now() - t0) / 1000;
    // NaN is the update's "does not apply"; the typed figures leave such a figure out.
    const some = (x: number) => (Number.isNaN(x) ? undefined : x);
    const hold = u !== null && job.holdUpdate === true;
    return {
      update: u && !hold ? encodeUpdate(u) : new Uint8Array(0),
      held: hold ? u : undefined,
      figures: u ? { samples: u.samples, batches: u.batches, reconstructionError: some(u.reconstructionError),
        freeEnergy: some(u.freeEnergy), heldOutFreeEnergy: some(u.heldOutFreeEnergy), loss: some(u.loss), accuracy: some(u.accuracy),
        seconds: u.seconds } : undefined,
      rows: session.x.rows,
      inputSums: out.inputSums,
      warm: out.warm,
      derivedBytes: session.derivedBytes,
    };
  }

  private pretrain(session: Session, base: DBN, job: TrainJob, L: number, cfg: RBMTrainConfig):
      { update: ModelUpdate | null; inputSums: number[]; warm: boolean } {
    // Measuring the input of the next layer needs only the layers below it.
    const measureOnly = job.batches === 0 && L === base.layers.length;
    if (L > base.layers.length || (L === base.layers.length && !measureOnly)) {
      throw new DataError(`${job.task}: layer ${L} is not in model version ${job.modelVersion} (${base.layers.length} layers)`);
    }
    const input = session.input(base, L, job.task);
    const inputSums = job.inputSums ? Array.from(columnSums(input)) : [];
    if (measureOnly) return { update: null, inputSums, warm: false };
    const published = base.layers[L];
    const config = JSON.stringify(cfg);
    let replica = session.state.rbms.get(L);
    const warm = replica !== undefined && replica.config === config;
    if (!replica || !warm) {
      const rbm = job.independent
        ? RBM.create(published.shape, { seed: cfg.seed, means: columnMeans(input) })
        : published.clone();
      replica = { config, rbm, trainer: new RBMTrainer(rbm, cfg), monitorAt: 0 };
      session.state.rbms.set(L, replica);
    } else if (!job.independent) {
      // Adopt the published model; momentum, chains and position carry over.
      adoptPublished(replica.rbm, published);
    }
    if (job.batches === 0) return { update: null, inputSums, warm };
    if (job.resetMomentum) replica.trainer.resetMomentum();
    replica.rbm.counters.epochs = job.epoch;
    const before = replica.rbm.counters.samples;
    replica.trainer.runBatches(input, job.batches, { trusted: true });
    // The round measures its share of the monitor rows (as many as it trains of an epoch's rows, at least one) in
    // a window that moves on each round: over an epoch every monitor row is measured about once, as the engine
    // alone measures them once an epoch (all of them every round cost about six mini-batches' work: bench/README).
    const monitored = Math.min(cfg.monitorRows, input.rows);
    const share = Math.ceil((monitored * job.batches * cfg.batchSize) / input.rows);
    const mon = replica.trainer.monitor(input, { offset: replica.monitorAt, rows: share });
    replica.monitorAt = monitored > 0 ? (replica.monitorAt + Math.min(share, monitored)) % monitored : 0;
    const heldOut = session.heldOutInput(base, L, job.task);
    return {
      update: {
        baseVersion: job.modelVersion,
        layer: L,
        delta: replicaDelta(replica.rbm, published),
        replicas: 1,
        samples: replica.rbm.counters.samples - before,
        batches: job.batches,
        reconstructionError: mon.reconstructionError,
        freeEnergy: mon.freeEnergy,
        heldOutFreeEnergy: heldOut ? replica.rbm.meanFreeEnergy(heldOut) : NaN,
        loss: NaN,
        accuracy: NaN,
        seconds: 0,
      },
      inputSums,
      warm,
    };
  }

  private fineTune(session: Session, base: DBN, job: TrainJob, cfg: FineTuneConfig):
      { update: ModelUpdate | null; inputSums: number[]; warm: boolean } {
    if (!base.output) throw new DataError(`${job.task}: model version ${job.modelVersion} has no soft-max layer to fine-tune`);
    if (!session.labels) throw new DataError(`${job.task}: fine-tuning needs labels; the session's rows have none`);
    const x = session.input(base, 0, job.task);
    const config = JSON.stringify(cfg);
    let replica = session.state.fineTune;
    const warm = replica !== null && replica.config === config;
    if (!replica || !warm) {
      base.validateLabels(x, session.labels);
      const dbn = base.clone();
      replica = { config, dbn, trainer: new BackpropTrainer(dbn, cfg) };
      session.state.fineTune = replica;
    } else if (!job.independent) {
      adoptPublished(replica.dbn, base);
    }
    if (job.batches === 0) return { update: null, inputSums: [], warm };
    if (job.resetMomentum) replica.trainer.resetMomentum();
    replica.dbn.fineTuneCounters.epochs = job.epoch;
    const r = replica.trainer.runBatches(x, session.labels, job.batches);
    return {
      update: {
        baseVersion: job.modelVersion,
        layer: -1,
        delta: replicaDelta(replica.dbn, base),
        replicas: 1,
        samples: r.samples,
        batches: job.batches,
        reconstructionError: NaN,
        freeEnergy: NaN,
        heldOutFreeEnergy: NaN,
        loss: r.lossSum / r.samples,
        accuracy: r.correct / r.samples,
        seconds: 0,
      },
      inputSums: [],
      warm,
    };
  }
}

