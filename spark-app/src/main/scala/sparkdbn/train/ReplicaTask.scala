package sparkdbn.train

import scala.jdk.CollectionConverters._

import io.grpc.Status
import org.apache.spark.{SparkEnv, TaskContext}

import sparkdbn.io.FeatureArrow
import sparkdbn.proto.{CacheDataRequest, CacheDataResponse, CacheStart, FineTune, FineTuneConfig, PretrainLayer, RBMTrainConfig, TrainRequest,
  TrainResponse, TrainedPart, WholeNetwork}
import sparkdbn.sidecar.{Alignment, SidecarCallException, SidecarClient, SidecarManager, TaskId}

/** What a topic's replicas train, with the engine's options: the contract's TrainRequest.topic, typed. */
sealed trait TopicConfig extends Serializable {
  /** Sets the request's topic. */
  def applyTo(b: TrainRequest.Builder): TrainRequest.Builder
}

object TopicConfig {
  /** Pre-training RBM layer `layer` (0 is the bottom one). */
  final case class Pretrain(layer: Int, config: RBMTrainConfig) extends TopicConfig {
    def applyTo(b: TrainRequest.Builder): TrainRequest.Builder =
      b.setPretrain(PretrainLayer.newBuilder().setLayer(layer).setConfig(config))
  }

  /** Fine-tuning the whole stack. */
  final case class FineTuning(config: FineTuneConfig) extends TopicConfig {
    def applyTo(b: TrainRequest.Builder): TrainRequest.Builder = b.setFineTune(FineTune.newBuilder().setConfig(config))
  }

  /** The contract's name of the part a topic trains: RBM layer `layer`, or (-1, the runs table's) the whole network. */
  def part(layer: Int): TrainedPart =
    if (layer >= 0) TrainedPart.newBuilder().setLayer(layer).build()
    else TrainedPart.newBuilder().setWholeNetwork(WholeNetwork.getDefaultInstance).build()
}

/** What the driver asks of one partition's replica in one round. */
final case class RoundSpec(
    runId: String,
    topic: TopicConfig,
    /** The run's seed: the engine derives each replica's from it, the topic and the partition. */
    runSeed: Long,
    nInputs: Int,
    independent: Boolean,
    inputSums: Boolean,
    /** The replica starts the round with zero local momentum. */
    resetMomentum: Boolean,
    /** The partition's last rows the sidecar keeps out of training (held-out free energy). */
    heldOutRows: Int,
    /**
     * The replica's sidecar keeps its update for the merge (TrainRequest.hold_update): the driver says so in local
     * mode, where the executors' sidecar is its own.
     */
    holdUpdate: Boolean = false) {
  def session(partition: Int): String = s"$runId/$partition"
}

/** How a replica's round went (NaN: the figure does not apply to the round). */
final case class RoundFigures(
    samples: Long,
    batches: Int,
    reconstructionError: Double,
    freeEnergy: Double,
    heldOutFreeEnergy: Double,
    loss: Double,
    accuracy: Double,
    /** Time the replica trained, in its sidecar. */
    seconds: Double)

/** What a replica sends back: its update (proto/update.avsc), its figures, and where and how it ran. */
final case class RoundResult(
    partition: Int,
    update: Array[Byte],
    /** Instead of `update`'s bytes: the id under which the sidecar that trained it holds it (local mode). */
    heldUpdate: String,
    figures: RoundFigures,
    inputSums: Array[Double],
    rows: Long,
    warm: Boolean,
    resent: Boolean,
    executor: String,
    taskSeconds: Double,
    /** Replicas whose updates `update` holds: 1, its own; more, combined on its executor; 0, its update went in another's. */
    replicas: Int = 1)

/** The executor side of a round: runs inside a Spark task, talks to this executor's sidecar. */
object ReplicaTask {
  private val log = org.slf4j.LoggerFactory.getLogger(getClass)

  /**
   * One round in this executor's sidecar. `awaitModelMs` > 0: the version is on its way into the sidecar
   * (a merge there is about to hold it, local mode): the Train call waits for it instead of sending it.
   */
  def run(spec: RoundSpec, version: String, snapshot: () => Array[Byte], batches: Int, epoch: Int,
      chunks: Iterator[Chunk], awaitModelMs: Int = 0): RoundResult = {
    val t0 = System.nanoTime()
    val ctx = TaskContext.get()
    val p = ctx.partitionId()
    val task = TaskId.of(ctx).label
    val client = SidecarManager.client()
    val req = spec.topic.applyTo(TrainRequest.newBuilder()).setSession(spec.session(p)).setModelVersion(version)
      .setRunSeed(spec.runSeed).setPartition(p).setBatches(batches).setEpoch(epoch).setInputSums(spec.inputSums)
      .setIndependent(spec.independent).setResetMomentum(spec.resetMomentum).setTask(task).setHoldUpdate(spec.holdUpdate).setAwaitModelMs(awaitModelMs).build()
    var resent = false
    // awaitModelMs > 0: the version is not sent first; the client sends it if the sidecar asks.
    def train(): TrainResponse = client.withModel(version, snapshot, sendFirst = awaitModelMs == 0)(client.train(req))

    val resp = try {
      try train() catch {
        case e: SidecarCallException if e.code == Status.Code.NOT_FOUND =>
          // The sidecar does not hold this partition's rows (new process, or evicted): send them, once.
          cacheData(client, spec.session(p), spec.nInputs, chunks, task, spec.heldOutRows)
          resent = true
          train()
      }
    } catch {
      case e: SidecarCallException if e.isBadInput =>
        throw new IllegalArgumentException(s"DBN training rejected the input: ${e.description}")
    }
    val f = resp.getFigures
    def some(has: Boolean, v: Double) = if (has) v else Double.NaN
    val figures = RoundFigures(f.getSamples, f.getBatches, some(f.hasReconstructionError, f.getReconstructionError),
      some(f.hasFreeEnergy, f.getFreeEnergy), some(f.hasHeldOutFreeEnergy, f.getHeldOutFreeEnergy), some(f.hasLoss, f.getLoss),
      some(f.hasAccuracy, f.getAccuracy), f.getSeconds)
    RoundResult(p, resp.getUpdate.toByteArray, resp.getHeldUpdate, figures, resp.getInputSumsList.asScala.map(_.doubleValue()).toArray, resp.getRows,
      resp.getWarm, resent, SparkEnv.get.executorId, (System.nanoTime() - t0) / 1e9)
  }

  /** Streams a partition's chunks to the sidecar's session cache. */
  def cacheData(client: SidecarClient, session: String, n: Int, chunks: Iterator[Chunk], task: String, heldOutRows: Int = 0): CacheDataResponse = {
    val t0 = System.nanoTime()
    var encodeNanos = 0L
    var rows = 0L
    val start = CacheDataRequest.newBuilder().setStart(CacheStart.newBuilder().setSession(session).setTask(task).setNInputs(n)
      .setHeldOutRows(heldOutRows)).build()
    var encoder: FeatureArrow.Encoder = null
    val batches = chunks.map { c =>
      val e0 = System.nanoTime()
      if (encoder == null) encoder = new FeatureArrow.Encoder(n, c.labels != null, TrainingData.chunkRows(n))
      val bytes = encoder.encode(c.values, c.rows, c.labels)
      rows += c.rows
      val req = CacheDataRequest.newBuilder().setAlign(Alignment.pad(bytes.size)).setBatch(bytes).build()
      encodeNanos += System.nanoTime() - e0
      req
    }
    val r = try client.cacheData(Iterator(start) ++ batches)
    finally if (encoder != null) encoder.close()
    log.info(f"$task: sent $rows rows (${rows * n * 4 / 1e6}%.0f MB) to the sidecar in ${(System.nanoTime() - t0) / 1e9}%.2f s " +
      f"(encoding ${encodeNanos / 1e9}%.2f s)")
    r
  }
}
