package sparkdbn.train

import sparkdbn.proto.{FineTuneConfig, RBMTrainConfig}

/** Everything the trainer needs besides the data. */
final case class TrainSettings(
    runId: String,
    hidden: Seq[Int],
    visible: String,
    /** The engine's options for pre-training and fine-tuning (no seed: the engine derives each replica's from `seed`). */
    rbmConfig: RBMTrainConfig,
    fineTuneConfig: FineTuneConfig,
    epochs: Int,
    fineTuneEpochs: Int,
    batchSize: Int,
    mode: String,
    /** None: DistributedTrainer.DefaultSyncEvery. */
    syncEveryParam: Option[Int],
    resetLocalMomentum: Boolean,
    maxStaleness: Int,
    /** How updates move the published model: "bmuf", "sum" or "average" (the engine owns the formulas). */
    mergeRule: String,
    /** BMUF's eta and zeta; None: the engine's defaults. */
    blockMomentum: Option[Double],
    blockLearningRate: Option[Double],
    /** BMUF in Nesterov's form; None: the engine's default. */
    nesterov: Option[Boolean],
    seed: Long,
    independent: Boolean,
    checkpointDir: Option[String],
    resume: Boolean,
    /** Each partition's last rows, kept out of training for the held-out free energy (0: none). */
    heldOutRows: Int,
    /** JSON recorded in every snapshot. */
    recordJson: String) {
  def topics(labelled: Boolean): Seq[String] = hidden.indices.map(l => s"layer$l") ++ (if (labelled) Seq("finetune") else Nil)
}

final case class TrainOutcome(
    runId: String,
    snapshot: Array[Byte],
    /** The model after pre-training, before fine-tuning (None when a resumed run started past it). */
    pretrained: Option[Array[Byte]],
    rounds: Seq[RoundMetrics],
    /** Versions of every topic, from its initial one to its final one (resumed runs: those before the stop too). */
    versionsPublished: Int,
    broadcastsDestroyed: Int,
    resumedFrom: Option[String],
    /** The executors' kernels, as they said before the first round (ExecutorCheck). */
    executors: Seq[ExecutorKernels] = Nil,
    /** The executors' sidecars after the last round: their peak memory (ExecutorCheck.peaksMb). */
    executorsAfter: Seq[ExecutorKernels] = Nil)
