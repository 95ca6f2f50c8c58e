package sparkdbn.train

import org.apache.spark.{FutureAction, SparkContext, TaskContext}

/**
 * How a topic's rounds reach the executors: a Spark job for one round of some partitions, or one barrier
 * stage (RoundHub) for all of a topic's rounds. Every task runs ReplicaTask in its executor's sidecar; what
 * it trains is the same for every partition of a topic (its RoundSpec).
 *
 * @param group     the run's Spark job group (a failure cancels it)
 * @param localMode the executors' sidecar is the driver's own: updates stay in it for the merge (hold_update)
 */
final class RoundJobs(val sc: SparkContext, data: TrainingData, s: TrainSettings, group: String, localMode: Boolean) {
  private val P = data.partitions

  /** What a topic's replicas train, with the engine's options (each replica's seed is the engine's to derive). */
  private def topicConfig(layer: Int): TopicConfig =
    if (layer >= 0) TopicConfig.Pretrain(layer, s.rbmConfig) else TopicConfig.FineTuning(s.fineTuneConfig)

  /** A training round's request, the same for every partition. */
  def roundSpec(layer: Int): RoundSpec =
    RoundSpec(s.runId, topicConfig(layer), s.seed, data.nInputs, s.independent, inputSums = false, resetMomentum = s.resetLocalMomentum,
      heldOutRows = s.heldOutRows, holdUpdate = localMode)

  /** One round of partitions `parts` from `pub` as a Spark job: partition p trains `batches(p)` mini-batches in epoch `epoch(p)`. */
  def runRound(layer: Int, pub: Publication, parts: Seq[Int], batches: Int => Int, epoch: Int => Int, what: String): Seq[RoundResult] = {
    val spec = roundSpec(layer)
    val bs = (0 until P).map(batches).toArray
    val es = (0 until P).map(epoch).toArray
    val (version, bc) = (pub.version, pub.snapshot)
    sc.setJobGroup(group, s"spark-dbn ${s.runId}: $what", interruptOnCancel = false)
    sc.runJob(data.chunks, (ctx: TaskContext, it: Iterator[Chunk]) => {
      val p = ctx.partitionId()
      ReplicaTask.run(spec, version, () => bc.value, bs(p), es(p), it)
    }, parts).toSeq
  }

  /**
   * The sums over every partition's rows of layer `layer`'s input (the layers below in `base`, published as
   * `version`, applied to the data), measured by the replicas' sidecars: a job that trains nothing.
   */
  def inputSums(topic: String, layer: Int, version: String, base: Array[Byte], width: Int): Array[Double] = {
    val bc = sc.broadcast(base)
    try {
      val spec = RoundSpec(s.runId, topicConfig(layer), s.seed, data.nInputs, s.independent, inputSums = true, resetMomentum = false,
        heldOutRows = s.heldOutRows)
      sc.setJobGroup(group, s"spark-dbn ${s.runId}: $topic: measuring the input of layer $layer", interruptOnCancel = false)
      val results = sc.runJob(data.chunks, (ctx: TaskContext, it: Iterator[Chunk]) =>
        ReplicaTask.run(spec, version, () => bc.value, 0, 0, it), 0 until P)
      val sums = new Array[Double](width)
      results.foreach(r => r.inputSums.indices.foreach(j => sums(j) += r.inputSums(j)))
      sums
    } finally bc.destroy()
  }

  /** The barrier stage of a topic's rounds: its replicas take their rounds from the hub `hubName` until it stops them. */
  def submitStage(topic: String, layer: Int, hubName: String): FutureAction[Unit] = {
    val spec = roundSpec(layer)
    // Interruptible: a stage given up is cancelled, and its tasks may be waiting for the hub.
    sc.setJobGroup(group, s"spark-dbn ${s.runId}: $topic rounds (one stage)", interruptOnCancel = true)
    val stage = RoundHub.stage(data.chunks, (ctx, chunks) =>
      RoundHub.replica(hubName, spec, ctx, chunks))
    sc.submitJob(stage, (it: Iterator[Int]) => it.size, 0 until P, (_: Int, _: Int) => (), ())
  }
}
