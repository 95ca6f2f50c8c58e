package sparkdbn.train

import java.util.concurrent.TimeUnit

import scala.collection.mutable
import scala.jdk.CollectionConverters._
import scala.util.chaining._
import scala.util.control.NonFatal

import com.google.protobuf.UnsafeByteOperations
import io.grpc.Status
import org.slf4j.LoggerFactory

import sparkdbn.proto.{BlockRule, GetModelRequest, InitLayerRequest, MergeRequest, MergeRule, ReplicaUpdate, SnapshotResponse,
  SoftmaxLayer}
import sparkdbn.sidecar.{SidecarCallException, SidecarClient, SidecarManager}

/** A merge's outcome: the version published, its bytes, and the seconds it took on the round's path and behind it. */
final case class Merged(next: Publication, snapshot: Array[Byte], mergeSeconds: Double, publishSeconds: Double,
    behindSeconds: Double)

/**
 * The engine's model arithmetic on the driver, in the driver's own sidecar: a layer's initial model, the merge
 * of replicas' updates into the published version (and its publication on the channel), a topic's final model.
 * Every formula is the engine's (ts/rbm/distributed.ts); this class sends the rule, the updates and their
 * staleness, and keeps what a topic's merges carry from one to the next: its block momentum (as last answered,
 * when runs are checkpointed) and the id under which the driver's sidecar holds its last merged model.
 *
 * @param checkpointed the run is checkpointed: merges answer their momentum, so that a checkpoint keeps it
 * @param localMode    the executors' sidecar is the driver's own: merged models and held updates stay in it
 */
final class DriverEngine(s: TrainSettings, sizes: Seq[Int], P: Int, channel: ModelChannel, checkpointed: Boolean,
    localMode: Boolean, progress: TrainProgress) {
  private val log = LoggerFactory.getLogger(getClass)
  /**
   * Each topic's block momentum as last checkpointed (or read from the checkpoint on --resume). Without a
   * checkpoint the driver's sidecar alone keeps it, with the model (`kept`): no momentum crosses a round.
   */
  private val momenta = mutable.Map.empty[String, Array[Byte]]
  /** Topics merged under a rule that keeps momentum: their final model is the engine's centre (finish). */
  private val withMomentum = mutable.Set.empty[String]
  /** Per topic, the version of its last merge's answer and the id under which the driver's sidecar keeps it. */
  private val kept = mutable.Map.empty[String, (String, String)]

  /** A resumed topic's block momentum, as its checkpoint kept it (empty: none). */
  def resume(topic: String, momentum: Array[Byte]): Unit = if (momentum.nonEmpty) {
    momenta(topic) = momentum
    withMomentum += topic
  }

  /** The topic's block momentum for a checkpoint (empty: none, or the run is not checkpointed). */
  def momentum(topic: String): Array[Byte] = momenta.getOrElse(topic, Array.emptyByteArray)

  /** The driver's sidecar no longer holds the topic's last merged model (it was lost with the process). */
  def forget(topic: String): Unit = kept.remove(topic)

  /**
   * A call to the driver's sidecar through its client (deadline, status and process state are the client's); the
   * calls are pure, so one that failed because the process died is retried once with a new one.
   */
  private def driverCall[T](what: String)(f: SidecarClient => T): T = {
    def attempt(retry: Boolean): T = {
      val sidecar = SidecarManager.get()
      try f(sidecar.client) catch {
        case e: HeldUpdatesLost => throw e
        case e: SidecarCallException if e.isBadInput => throw new IllegalArgumentException(s"$what: ${e.description}")
        case e: SidecarCallException if retry && sidecar.process.waitFor(2, TimeUnit.SECONDS) =>
          log.warn(s"$what: the driver's sidecar died (${e.getMessage}); retrying with a new one")
          attempt(retry = false)
      }
    }
    attempt(retry = true)
  }

  /** `base` with layer `layer` added (-1: a soft-max layer of `classes`), initialised from the input's statistics. */
  def initLayer(base: Array[Byte], layer: Int, means: Array[Double], classes: Int,
      stddevs: Array[Double] = Array.emptyDoubleArray): SnapshotResponse =
    driverCall(s"initialising layer $layer") { client =>
      client.initLayer(InitLayerRequest.newBuilder()
        .setBase(UnsafeByteOperations.unsafeWrap(base)).addAllSizes(sizes.map(Integer.valueOf).asJava)
        .setVisible(s.visible).addAllInputMeans(means.map(java.lang.Double.valueOf).toSeq.asJava)
        .addAllInputStddevs(stddevs.map(java.lang.Double.valueOf).toSeq.asJava)
        .setSeed(s.seed).setTrainingConfig(s.recordJson)
        .pipe(b => if (layer >= 0) b.setRbmLayer(layer) else b.setSoftmax(SoftmaxLayer.newBuilder().setClasses(classes)))
        .build())
    }

  /**
   * The merge rule of one topic, the same for all its merges and its finish: the engine's default block
   * momentum depends on the rounds in flight (async), and the centre it finishes with must use the eta
   * its merges used. `inFlight`: async, the task slots when the topic starts.
   */
  def topicRule(inFlight: Int): BlockRule = {
    val b = BlockRule.newBuilder().setRule(s.mergeRule match {
      case "bmuf" => MergeRule.MERGE_RULE_BMUF
      case "sum" => MergeRule.MERGE_RULE_SUM
      case "average" => MergeRule.MERGE_RULE_AVERAGE
      case other => throw new IllegalArgumentException(s"mergeRule must be bmuf, sum or average, got '$other'")
    }).setReplicas(P).setAsync(s.mode == "async").setInFlight(if (s.mode == "async") math.min(P, inFlight) else 0)
    s.blockMomentum.foreach(b.setBlockMomentum)
    s.blockLearningRate.foreach(b.setBlockLearningRate)
    s.nesterov.foreach(b.setNesterov)
    b.build()
  }

  /**
   * A Merge call on the driver's sidecar with `base` as its base. The sidecar keeps the answer of each
   * topic's last merge (model and momentum, under an id), so when `base` is that answer only the
   * updates cross; when the sidecar no longer holds it (a new process), the base and momentum are sent.
   */
  private def mergeCall(what: String, topic: String, base: Publication, request: MergeRequest.Builder): SnapshotResponse =
    driverCall(what) { client =>
      def send(r: MergeRequest.Builder) =
        try client.merge(r.setTopic(topic).build()) catch {
          case e: SidecarCallException if e.code == Status.Code.NOT_FOUND => throw new HeldUpdatesLost(e.description)
        }
      def full() = {
        if (withMomentum(topic) && !checkpointed && kept.contains(topic)) {
          // Only the lost sidecar held it (no checkpoint): the topic goes on, its momentum from zero.
          progress.line(s"$topic: the driver's sidecar was restarted and its block momentum is lost; training goes on " +
            "with the momentum from zero (a run with a checkpointDir keeps it)")
        }
        send(request.clone().setBase(UnsafeByteOperations.unsafeWrap(base.snapshot.value))
          .setMomentum(UnsafeByteOperations.unsafeWrap(momentum(topic))))
      }
      val answer = kept.get(topic).filter(_._1 == base.version) match {
        case Some((_, id)) =>
          try send(request.clone().setBaseState(id)) catch {
            case e: SidecarCallException if e.code == Status.Code.FAILED_PRECONDITION => full()
          }
        case None => full()
      }
      kept.remove(topic)
      answer
    }

  /**
   * The published version `base` of `topic` moved by the updates (with their staleness), published as the
   * topic's next version; the topic's momentum kept.
   *
   * `openNext` (local mode, rounds in one stage): called with the new version's id before the merge, to
   * open the next round from it: the replicas' Train calls wait in the driver's sidecar, and start as the
   * merge there holds the version (`started` then). The bytes are fetched and broadcast while they train
   * (behindSeconds), off the round's critical path. VersionLost when the sidecar lost them meanwhile.
   */
  def mergeAndPublish(topic: String, rule: BlockRule, base: Publication, updates: Seq[(RoundResult, Int)],
      epochs: Int, openNext: Option[String => Unit] = None, started: () => Unit = () => ()): Merged = {
    val m0 = System.nanoTime()
    val upcoming = channel.upcoming(topic)
    // Only ever given in local mode (SyncRounds.opensEarly): there the driver's sidecar is the replicas'.
    val later = openNext.isDefined
    // In local mode the driver's sidecar holds the merged model as the version about to be published, and the
    // round's tasks train from it without its trip back (PutModel, 1.6 MB for 784-500).
    val b = MergeRequest.newBuilder().setEpochs(epochs).setTrainingConfig(s.recordJson).setRule(rule)
      .setAnswerMomentum(checkpointed).setPublishAs(if (localMode) upcoming else "").setSnapshotLater(later)
    // A replica whose update went into its executor's combined one (ExecutorCombine) brings only its figures.
    updates.filter(_._1.replicas > 0).foreach { case (r, t) =>
      val u = ReplicaUpdate.newBuilder().setStaleness(t)
      b.addUpdates(if (r.heldUpdate.nonEmpty) u.setHeld(r.heldUpdate) else u.setUpdate(UnsafeByteOperations.unsafeWrap(r.update)))
    }
    if (later) openNext.get(upcoming)
    val r = mergeCall("merging updates", topic, base, b)
    if (later) started()
    if (checkpointed) momenta(topic) = r.getMomentum.toByteArray
    if (rule.getRule == MergeRule.MERGE_RULE_BMUF) withMomentum += topic
    val p0 = System.nanoTime()
    val merged = if (later) fetchHeld(upcoming) else r.getSnapshot.toByteArray
    val next = channel.publish(topic, merged)
    if (!r.getState.isEmpty) kept(topic) = (next.version, r.getState)
    val publishing = (System.nanoTime() - p0) / 1e9
    // Later: the replicas were training meanwhile, so none of the publishing was on the round's path.
    if (later) Merged(next, merged, (p0 - m0) / 1e9, 0, publishing) else Merged(next, merged, (p0 - m0) / 1e9, publishing, 0)
  }

  /** The bytes of a merged version the driver's sidecar holds (MergeRequest.snapshot_later). */
  private def fetchHeld(version: String): Array[Byte] =
    try {
      SidecarManager.client().getModel(GetModelRequest.newBuilder().setVersion(version).setTrainingConfig(s.recordJson).build()).getSnapshot.toByteArray
    } catch {
      case NonFatal(e) => throw new VersionLost(s"the merged version $version was lost with the driver's sidecar (${e.getMessage})")
    }

  /**
   * The topic's final model: the engine's (under BMUF in Nesterov's form, the centre of the published look-ahead;
   * None when the rule keeps no momentum). The topic's momentum is forgotten with it.
   */
  def finish(topic: String, rule: BlockRule, layer: Int, base: Publication): Option[Array[Byte]] =
    try {
      if (!withMomentum(topic)) None
      else Some(mergeCall("finishing the topic", topic, base, MergeRequest.newBuilder().setTrainingConfig(s.recordJson).setRule(rule)
        .setFinish(TopicConfig.part(layer))).getSnapshot.toByteArray)
    } finally {
      kept.remove(topic)
      momenta.remove(topic)
      withMomentum -= topic
    }
}

/** The updates a merge was to take from the driver's sidecar are not there (it was restarted): redo their round. */
final class HeldUpdatesLost(message: String) extends RuntimeException(message)

/** A merged version's bytes could not be had from the driver's sidecar (it was restarted): redo its round. */
final class VersionLost(message: String) extends RuntimeException(message)
