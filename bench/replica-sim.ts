// P replicas in one process, with the engine's own replica trainer and merge
// (ts/rbm/distributed.ts): what a barrier stage of P tasks computes, without Spark's time.
// Used by scaling-run.ts and scaleout-run.ts.
import {
  blockCentre, type BlockSettings, difference, flatten, type Matrix, mergeBlock, mergeWeights, RBM, RBMTrainer,
  type RBMTrainConfig, trainConfig, unflattenInto
} from 'spark-dbn';

interface Replica {
  rbm: RBM;
  trainer: RBMTrainer;
  done: number;
  data: Matrix;
  perEpoch: number;
}

export class Replicas {
  readonly published: Float32Array;
  readonly momentum: Float32Array;
  private readonly replicas: Replica[];
  /** Rounds merged so far. */
  rounds = 0;

  /** `model` is the common start; replica p trains on shards[p] with seed seed * 100 + p. */
  constructor(private readonly model: RBM, shards: Matrix[], cfg: Partial<RBMTrainConfig>, seed: number,
    private readonly resetMomentum = false) {
    this.published = flatten(model);
    this.momentum = new Float32Array(this.published.length);
    this.replicas = shards.map((data, p) => {
      const rbm = model.clone();
      return { rbm, trainer: new RBMTrainer(rbm, { ...cfg, seed: seed * 100 + p }), done: 0, data,
        perEpoch: Math.ceil(data.rows / trainConfig(cfg).batchSize) };
    });
  }

  /** Mini-batches replica p has trained. */
  done(p: number): number {
    return this.replicas[p].done;
  }

  /**
   * One round: each replica in `parts` starts from the published model, trains batches(p) mini-batches and
   * returns its delta; the deltas are merged with equal weights under `settings` (as the driver does).
   */
  round(parts: number[], batches: (p: number) => number, settings: BlockSettings): void {
    const base = this.published.slice();
    const deltas = parts.map((p) => this.trainFrom(p, base, batches(p)));
    const w = mergeWeights(settings, parts.map(() => ({ samples: 1, staleness: 0 })));
    mergeBlock(this.published, this.momentum, deltas, w, settings);
    this.rounds++;
  }

  /** Replica p starts from `base`, trains n mini-batches and returns its delta. */
  trainFrom(p: number, base: Float32Array, n: number): Float32Array {
    const r = this.replicas[p];
    unflattenInto(r.rbm, base);
    if (this.resetMomentum) r.trainer.resetMomentum();
    r.rbm.counters.epochs = Math.floor(r.done / r.perEpoch);
    r.trainer.runBatches(r.data, n, { trusted: true });
    r.done += n;
    return difference(flatten(r.rbm), base);
  }

  /** The model the topic would end with now (the centre under Nesterov's form), as a new RBM. */
  current(settings: BlockSettings): RBM {
    const p = this.published.slice();
    blockCentre(p, this.momentum, settings);
    const m = this.model.clone();
    unflattenInto(m, p);
    return m;
  }
}
