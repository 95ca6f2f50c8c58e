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
    executorsAfter: Seq[ExecutorKernels] = Nil) {
  private def merged = rounds.filter(_.status == "merged")

  /**
   * The mean of `g` over the last epoch of the merged rounds `f` selects: each round measures a window of its
   * partition's monitor rows that goes round them once an epoch, so one round's figure is a small sample and the
   * last epoch's rounds are all of it. None when there are none.
   */
  private def lastEpochMean(f: RoundMetrics => Boolean, g: RoundMetrics => Double): Option[Double] = {
    val rs = merged.filter(f)
    if (rs.isEmpty) None else {
      val tail = rs.filter(_.epoch == rs.map(_.epoch).max)
      Some(tail.map(g).sum / tail.size)
    }
  }

  /** The first layer's reconstruction error in its last epoch (None: nothing was pre-trained). */
  def finalReconstructionError: Option[Double] = lastEpochMean(_.layer == 0, _.reconstructionError)
  /** Fine-tuning's training accuracy in its last epoch (None: not fine-tuned). */
  def finalTrainAccuracy: Option[Double] = lastEpochMean(_.layer == -1, _.accuracy)
  /** Sync rounds (or async arrivals) of every topic. */
  def roundCount: Int = rounds.map(r => (r.topic, r.round)).distinct.size
}
