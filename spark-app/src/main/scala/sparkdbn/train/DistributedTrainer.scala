package sparkdbn.train

import java.util.concurrent.{Executors, TimeUnit}
import java.util.concurrent.atomic.AtomicReference

import scala.collection.mutable
import scala.concurrent.{Await, ExecutionContext, Future}
import scala.concurrent.duration.Duration
import scala.jdk.CollectionConverters._
import scala.util.chaining._
import scala.util.control.NonFatal

import com.google.protobuf.UnsafeByteOperations
import io.grpc.Status
import org.apache.spark.TaskContext
import org.apache.spark.sql.SparkSession
import org.slf4j.LoggerFactory

import sparkdbn.proto.{BlockRule, FineTuneConfig, GetModelRequest, InitLayerRequest, MergeRequest, MergeRule, RBMTrainConfig, ReplicaUpdate,
  SnapshotResponse, SoftmaxLayer}
import sparkdbn.sidecar.{SidecarCallException, SidecarClient, SidecarManager}

/** One replica's round as the driver saw it: one row of the rounds table. */
final case class RoundMetrics(
    runId: String,
    topic: String,
    layer: Int,
    round: Int,
    /** Version published by merging this update (-1 when rejected). */
    version: Int,
    /** Version the replica started from. */
    baseVersion: Int,
    partition: Int,
    staleness: Int,
    /** "merged" or "rejected" (too stale; redone). */
    status: String,
    epoch: Int,
    samples: Long,
    batches: Int,
    reconstructionError: Double,
    freeEnergy: Double,
    /** Mean free energy of the partition's held-out rows (NaN: none, or fine-tuning). */
    heldOutFreeEnergy: Double,
    loss: Double,
    accuracy: Double,
    /** Time the replica trained, in its sidecar. */
    trainSeconds: Double,
    /** Whole task, as the executor measured it (includes re-sending rows). */
    taskSeconds: Double,
    /** From job submission to the update's arrival on the driver. */
    roundSeconds: Double,
    mergeSeconds: Double,
    publishSeconds: Double,
    executor: String,
    /** The replica was still in its sidecar (false: started cold). */
    warm: Boolean,
    /** The task had to send its rows to the sidecar. */
    resent: Boolean,
    timestampMs: Long)

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
    /** None: chosen from the data (see DistributedTrainer.syncEvery). */
    syncEveryParam: Option[Int],
    resetLocalMomentum: Boolean,
    maxStaleness: Int,
    /** How updates move the published model: "bmuf", "sum" or "average" (the engine owns the formulas). */
    mergeRule: String,
    /** BMUF's eta and zeta; None: the engine's defaults. */
    blockMomentum: Option[Double],
    blockLearningRate: Option[Double],
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
    resumedFrom: Option[String])

/**
 * The training loop on the driver: layer by layer, then fine-tuning, each a
 * topic of the ModelChannel. Replicas run in the executors' sidecars; model
 * arithmetic (initialising a layer, merging updates) runs in the driver's own
 * sidecar, so every formula lives in the TypeScript engine.
 *
 * Merging. The rule ('bmuf', block momentum, the default; 'sum'; 'average') and
 * its formulas are the engine's (ts/rbm/distributed.ts): the driver sends the
 * published version, the updates with their staleness and the topic's block
 * momentum, and keeps the momentum the merge answers (checkpointed with the
 * version, so --resume continues it). Under BMUF the published version is a
 * look-ahead; at a topic's end the engine's centre of it is published as the
 * topic's final model. Replicas keep their local momentum between rounds unless
 * resetLocalMomentum.
 * Sync: each round is one block of every partition's update; async: each update
 * is merged as it arrives, weighted by its staleness t (versions published since
 * the one it started from). A partition submits its next round only when a task
 * slot is free (more partitions than slots would otherwise queue jobs whose
 * version ages while they wait), so t is normally below the number of slots.
 * Replicas restart from the newest version each round, so correctness needs no
 * replica state (unlike elastic averaging, whose replicas are long-lived and
 * lost with their sidecar), and an update older than maxStaleness is rejected
 * and its round redone.
 */
final class DistributedTrainer(spark: SparkSession, data: TrainingData, s: TrainSettings, progress: TrainProgress) {
  private val log = LoggerFactory.getLogger(getClass)
  private val sc = spark.sparkContext
  private val P = data.partitions
  private val channel = new ModelChannel(sc)
  private val checkpoint = s.checkpointDir.map(d => new Checkpoint(d, sc.hadoopConfiguration))
  private val rounds = mutable.ArrayBuffer.empty[RoundMetrics]
  /** Mini-batches between syncs: the param, or DistributedTrainer.DefaultSyncEvery. */
  private val syncEvery: Int = s.syncEveryParam.getOrElse(DistributedTrainer.DefaultSyncEvery)
  private val group = s"spark-dbn-${s.runId}"
  /**
   * Local mode: the executors' sidecar is the driver's own, so a merged model (MergeRequest.publish_as) and the
   * replicas' updates (TrainRequest.hold_update) can stay in it. On a cluster no executor could use them.
   */
  private val localMode = sc.isLocal
  private val sizes = data.nInputs +: s.hidden
  /**
   * Each topic's block momentum as last checkpointed (or read from the checkpoint on --resume). Without a
   * checkpoint the driver's sidecar alone keeps it, with the model (`kept`): no momentum crosses a round.
   */
  private val momenta = mutable.Map.empty[String, Array[Byte]]
  /** Topics merged under a rule that keeps momentum: their final model is the engine's centre (finish). */
  private val withMomentum = mutable.Set.empty[String]
  /** Per topic, the version of its last merge's answer and the id under which the driver's sidecar keeps it. */
  private val kept = mutable.Map.empty[String, (String, String)]

  def run(): TrainOutcome = {
    (0 until P).find(p => s.heldOutRows > 0 && data.rows(p) <= s.heldOutRows).foreach { p =>
      throw new IllegalArgumentException(s"heldOutRows ${s.heldOutRows}: partition $p has ${data.rows(p)} rows, which leaves none " +
        "to train on; hold out fewer rows or use fewer partitions")
    }
    checkCache()
    val topics = s.topics(data.labelled)
    val resumed = if (s.resume) checkpoint.flatMap(_.load()) else None
    resumed.foreach { st =>
      if (st.fingerprint != fingerprint) {
        throw new IllegalArgumentException(s"--resume: the checkpoint in ${s.checkpointDir.get} is of a different run " +
          s"(${st.fingerprint}); this one is $fingerprint")
      }
      rounds ++= st.rounds
      progress.line(s"resuming run ${s.runId} at ${st.topic}@${st.number} (${if (st.finished) "finished" else "in progress"})")
    }
    try {
      var prev: Array[Byte] = Array.emptyByteArray
      var pretrained: Option[Array[Byte]] = None
      val startAt = resumed.map(st => topics.indexOf(st.topic)).getOrElse(0)
      topics.zipWithIndex.foreach { case (topic, ti) =>
        if (ti < startAt) () // done before the checkpoint
        else {
          val layer = if (topic == "finetune") -1 else ti
          val fromCheckpoint = resumed.filter(_.topic == topic)
          prev = fromCheckpoint match {
            case Some(st) if st.finished => st.snapshot
            case Some(st) => trainTopic(topic, layer, None, Some(st))
            case None => trainTopic(topic, layer, Some(prev), None)
          }
          if (layer == s.hidden.size - 1) pretrained = Some(prev)
        }
      }
      val versions = topics.flatMap(channel.latest).map(_.number + 1).sum
      TrainOutcome(s.runId, prev, pretrained, rounds.toSeq, versions, channel.destroyed, resumed.map(st => s"${st.topic}@${st.number}"))
    } finally {
      channel.close()
    }
  }

  private def fingerprint: String =
    s"partitions=$P sizes=${sizes.mkString("-")} labelled=${data.labelled} mode=${s.mode} batch=${s.batchSize} seed=${s.seed}"

  // ---------------------------------------------------------------- driver-side model arithmetic

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

  private def initLayer(base: Array[Byte], layer: Int, means: Array[Double], classes: Int,
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
   * its merges used. Async: the task slots when the topic starts.
   */
  private def topicRule(): BlockRule = {
    val b = BlockRule.newBuilder().setRule(s.mergeRule match {
      case "bmuf" => MergeRule.MERGE_RULE_BMUF
      case "sum" => MergeRule.MERGE_RULE_SUM
      case "average" => MergeRule.MERGE_RULE_AVERAGE
      case other => throw new IllegalArgumentException(s"mergeRule must be bmuf, sum or average, got '$other'")
    }).setReplicas(P).setAsync(s.mode == "async").setInFlight(if (s.mode == "async") math.min(P, slotCount()) else 0)
    s.blockMomentum.foreach(b.setBlockMomentum)
    s.blockLearningRate.foreach(b.setBlockLearningRate)
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
        if (withMomentum(topic) && checkpoint.isEmpty && kept.contains(topic)) {
          // Only the lost sidecar held it (no checkpoint): the topic goes on, its momentum from zero.
          progress.line(s"$topic: the driver's sidecar was restarted and its block momentum is lost; training goes on " +
            "with the momentum from zero (a run with a checkpointDir keeps it)")
        }
        send(request.clone().setBase(UnsafeByteOperations.unsafeWrap(base.snapshot.value))
          .setMomentum(UnsafeByteOperations.unsafeWrap(momenta.getOrElse(topic, Array.emptyByteArray))))
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

  /** A merge's outcome: the version published, its bytes, and the seconds it took on the round's path and behind it. */
  private final case class Merged(next: Publication, snapshot: Array[Byte], mergeSeconds: Double, publishSeconds: Double,
      behindSeconds: Double)

  /**
   * The published version `base` of `topic` moved by the updates (with their staleness), published as the
   * topic's next version; the topic's momentum kept.
   *
   * `openNext` (local mode, rounds in one stage): called with the new version's id before the merge, to
   * open the next round from it: the replicas' Train calls wait in the driver's sidecar, and start as the
   * merge there holds the version (`started` then). The bytes are fetched and broadcast while they train
   * (behindSeconds), off the round's critical path. VersionLost when the sidecar lost them meanwhile.
   */
  private def mergeAndPublish(topic: String, rule: BlockRule, base: Publication, updates: Seq[(RoundResult, Int)],
      epochs: Int, openNext: Option[String => Unit] = None, started: () => Unit = () => ()): Merged = {
    val m0 = System.nanoTime()
    val upcoming = channel.upcoming(topic)
    // Only ever given in local mode (SyncRounds.opensEarly): there the driver's sidecar is the replicas'.
    val later = openNext.isDefined
    // In local mode the driver's sidecar holds the merged model as the version about to be published, and the
    // round's tasks train from it without its trip back (PutModel, 1.6 MB for 784-500).
    val b = MergeRequest.newBuilder().setEpochs(epochs).setTrainingConfig(s.recordJson).setRule(rule)
      .setAnswerMomentum(checkpoint.isDefined).setPublishAs(if (localMode) upcoming else "").setSnapshotLater(later)
    updates.foreach { case (r, t) =>
      val u = ReplicaUpdate.newBuilder().setStaleness(t)
      b.addUpdates(if (r.heldUpdate.nonEmpty) u.setHeld(r.heldUpdate) else u.setUpdate(UnsafeByteOperations.unsafeWrap(r.update)))
    }
    if (later) openNext.get(upcoming)
    val r = mergeCall("merging updates", topic, base, b)
    if (later) started()
    if (checkpoint.isDefined) momenta(topic) = r.getMomentum.toByteArray
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

  /** The topic's final model: the engine's centre of the published look-ahead (None when the rule keeps no momentum). */
  private def finish(topic: String, rule: BlockRule, layer: Int, base: Publication): Option[Array[Byte]] =
    try {
      if (!withMomentum(topic)) None
      else Some(mergeCall("finishing the topic", topic, base, MergeRequest.newBuilder().setTrainingConfig(s.recordJson).setRule(rule)
        .setFinish(TopicConfig.part(layer))).getSnapshot.toByteArray)
    } finally kept.remove(topic)

  // ---------------------------------------------------------------- one topic

  /** What a topic's replicas train, with the engine's options (each replica's seed is the engine's to derive). */
  private def topicConfig(layer: Int): TopicConfig =
    if (layer >= 0) TopicConfig.Pretrain(layer, s.rbmConfig) else TopicConfig.FineTuning(s.fineTuneConfig)

  /** A topic's mini-batches: every partition trains `perEpoch` an epoch, `total` in all (each). */
  private final class Progress(val topic: String, val epochs: Int, val perEpoch: Int, val total: Long,
      val done: Array[Long]) {
    private val startedNanos = System.nanoTime()
    private val doneAtStart = done.sum
    private var samples = 0L
    /** Records a merged round's rows; answers the topic's progress for the display. */
    def report(rows: Long, figure: String): TopicProgress = {
      samples += rows
      val elapsed = (System.nanoTime() - startedNanos) / 1e9
      // ETA from this session's pace (a resumed run's earlier batches took no time here).
      val doneHere = done.sum - doneAtStart
      val remaining = total * P - done.sum
      TopicProgress(topic, minEpoch, epochs, done.sum, total * P, samples / math.max(elapsed, 1e-9), figure, elapsed,
        if (doneHere > 0) elapsed * remaining / doneHere else Double.NaN)
    }
    def remaining(p: Int): Long = total - done(p)
    def epoch(p: Int): Int = (done(p) / perEpoch).toInt
    def minEpoch: Int = (0 until P).map(epoch).min
    def finished: Boolean = (0 until P).forall(p => remaining(p) <= 0)
  }

  private def trainTopic(topic: String, layer: Int, prevSnapshot: Option[Array[Byte]], from: Option[CheckpointState]): Array[Byte] = {
    val epochs = if (layer >= 0) s.epochs else s.fineTuneEpochs
    // Every replica trains the same number of mini-batches an epoch (the mean partition's), so every round is
    // a whole block of P updates. Partitions differ by a few rows (5,001 against 4,999), and counting each
    // one's own ceil(rows / batch) left the longest alone for a last round whose one update the merge took
    // for a block: 4 replicas of the e2e digits ended 5% worse than one process (3.676 against 3.494 with
    // equal counts; bench/README, session 9). A replica continues through its reshuffled rows, so one with
    // a row more or less than the mean samples its rows as evenly.
    val trainedRows = (0 until P).map(p => data.rows(p) - s.heldOutRows).sum
    val common = math.max(1L, (trainedRows + P.toLong * s.batchSize - 1) / (P.toLong * s.batchSize)).toInt
    val prog = new Progress(topic, epochs, common, common.toLong * epochs, from.map(_.done.clone()).getOrElse(new Array[Long](P)))
    val t0 = System.nanoTime()
    from match {
      case Some(st) =>
        if (st.momentum.nonEmpty) {
          momenta(topic) = st.momentum
          withMomentum += topic
        }
        channel.publish(topic, st.snapshot, Some(st.number))
      case None =>
        val base = prevSnapshot.get
        // Gaussian inputs: the model standardises them with the statistics Spark measured (one pass, TrainingData).
        val init = if (layer == 0) initLayer(base, 0, data.means, 0, if (s.visible == "gaussian") data.stddevs else Array.emptyDoubleArray)
        else if (layer > 0) initLayer(base, layer, layerInputMeans(topic, layer, base), 0)
        else initLayer(base, -1, Array.emptyDoubleArray, data.numClasses)
        val pub = channel.publish(topic, init.getSnapshot.toByteArray)
        saveCheckpoint(topic, pub, prog, pub.snapshot.value, finished = epochs == 0)
    }
    val how = if (s.mode == "sync") if (roundsInOneStage) ", rounds in one stage" else ", a Spark job a round" else ""
    progress.line(f"$topic: ${epochs} epochs, ${prog.total * P} mini-batches over $P partitions (${s.mode}, syncEvery ${syncEvery}$how)")
    val rule = topicRule()
    if (s.mode == "sync") syncLoop(topic, rule, layer, prog) else asyncLoop(topic, rule, layer, prog)
    val (last, bytes) = finish(topic, rule, layer, channel.latest(topic).get) match {
      case Some(centre) => (channel.publish(topic, centre), centre)
      case None => val l = channel.latest(topic).get; (l, l.snapshot.value)
    }
    momenta.remove(topic)
    withMomentum -= topic
    saveCheckpoint(topic, last, prog, bytes, finished = true)
    progress.line(f"$topic: done at version ${last.number} in ${(System.nanoTime() - t0) / 1e9}%.1f s")
    bytes
  }

  /** Means of a layer's input (the layers below applied to the data), measured by the replicas' sidecars. */
  private def layerInputMeans(topic: String, layer: Int, base: Array[Byte]): Array[Double] = {
    val version = s"${channel.id}/input-of-layer$layer"
    val bc = sc.broadcast(base)
    try {
      val spec = RoundSpec(s.runId, topicConfig(layer), s.seed, data.nInputs, s.independent, inputSums = true, resetMomentum = false,
      heldOutRows = s.heldOutRows)
      sc.setJobGroup(group, s"spark-dbn ${s.runId}: $topic: measuring the input of layer $layer", interruptOnCancel = false)
      val results = sc.runJob(data.chunks, (ctx: TaskContext, it: Iterator[Chunk]) =>
        ReplicaTask.run(spec, version, () => bc.value, 0, 0, it), 0 until P)
      val sums = new Array[Double](sizes(layer))
      results.foreach(r => r.inputSums.indices.foreach(j => sums(j) += r.inputSums(j)))
      sums.map(_ / data.totalRows)
    } finally bc.destroy()
  }

  /** A training round's request, the same for every partition. */
  private def roundSpec(layer: Int): RoundSpec =
    RoundSpec(s.runId, topicConfig(layer), s.seed, data.nInputs, s.independent, inputSums = false, resetMomentum = s.resetLocalMomentum,
      heldOutRows = s.heldOutRows, holdUpdate = localMode)

  private def runRound(topic: String, layer: Int, pub: Publication, parts: Seq[Int], batches: Int => Int, epoch: Int => Int,
      what: String): Seq[RoundResult] = {
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

  private def metrics(topic: String, layer: Int, round: Int, version: Int, pub: Publication, r: RoundResult,
      staleness: Int, status: String, epoch: Int, roundSeconds: Double, mergeSeconds: Double, publishSeconds: Double): RoundMetrics = {
    val u = r.figures
    RoundMetrics(s.runId, topic, layer, round, version, pub.number, r.partition, staleness, status, epoch, u.samples,
      u.batches, u.reconstructionError, u.freeEnergy, u.heldOutFreeEnergy, u.loss, u.accuracy, u.seconds, r.taskSeconds,
      roundSeconds, mergeSeconds, publishSeconds, r.executor, r.warm, r.resent, System.currentTimeMillis())
  }

  /**
   * A sidecar must hold at least one partition's rows for one round (less, and a round could never
   * train): said before any work, with the conf's name and the size needed. Above that, a cache too
   * small for all of an executor's partitions drops rows and their next round sends them again (the
   * replicas stay in the sidecar, so the result is the same): `resends` says so.
   */
  private def checkCache(): Unit = {
    val conf = sparkdbn.sidecar.SidecarConf.fromSparkConf(sc.getConf)
    val perRow = 4L * data.nInputs + (if (data.labelled) 4 else 0)
    val biggest = (0 until P).maxBy(data.rows)
    val need = data.rows(biggest) * perRow
    if (conf.cacheBytes < need) {
      throw new IllegalArgumentException(s"${sparkdbn.sidecar.SidecarConf.CacheBytesKey} is ${conf.cacheBytes} bytes, below " +
        s"what one partition's rows take in a sidecar (partition $biggest: ${data.rows(biggest)} rows x ${data.nInputs} inputs" +
        s"${if (data.labelled) " and a label" else ""} = $need bytes): set it to at least ${mib(need)}m, or use more partitions")
    }
  }

  private def mib(bytes: Long): Long = (bytes + (1L << 20) - 1) >> 20

  /** Partitions told of re-sending their rows (once a run each). */
  private val resendTold = mutable.Set.empty[Int]
  /** Partitions that have cached their rows in this run (the first send is not a re-send). */
  private val sentOnce = mutable.Set.empty[Int]

  /** A round whose rows were sent again, after the partition's first: the cache dropped them (or the sidecar restarted). */
  private def resends(ms: Seq[RoundMetrics]): Unit = resendTold.synchronized {
    ms.foreach { m =>
      if (m.resent && sentOnce.contains(m.partition) && resendTold.add(m.partition)) {
        progress.line(s"${m.topic}: partition ${m.partition} sent its rows again: its sidecar no longer held them " +
          s"(${sparkdbn.sidecar.SidecarConf.CacheBytesKey} below what an executor's partitions need, or a restarted sidecar); " +
          "training goes on, slower, with the same result")
      }
      sentOnce += m.partition
    }
  }

  /** The round's figures for the progress line, averaged over its replicas. */
  private def figure(ms: Seq[RoundMetrics]): String = {
    def mean(f: RoundMetrics => Double) = ms.map(f).sum / ms.size
    val of = if (ms.size > 1) s" (mean of ${ms.size})" else ""
    if (ms.head.layer >= 0) f"recon ${mean(_.reconstructionError)}%.3f, free energy ${mean(_.freeEnergy)}%.2f$of"
    else f"loss ${mean(_.loss)}%.4f, accuracy ${mean(_.accuracy) * 100}%.2f%%$of"
  }

  /** The round's figure for a person: the one number that says how training goes. */
  private def headline(ms: Seq[RoundMetrics]): String = {
    def mean(f: RoundMetrics => Double) = ms.map(f).sum / ms.size
    if (ms.head.layer >= 0) f"reconstruction error ${mean(_.reconstructionError)}%.3f"
    else f"training accuracy ${mean(_.accuracy) * 100}%.2f%%"
  }

  /**
   * Sync rounds in one barrier stage for the whole topic (RoundHub) when the partitions fit the task slots:
   * Spark's job per round (scheduling, task launch, the result's trip) was most of a round's fixed cost.
   * Otherwise, with dynamic allocation (barrier stages refuse it), when spark.dbn.roundsInOneStage is false,
   * or after the stage ended early, a job per round.
   */
  private lazy val roundsInOneStage: Boolean = {
    // Also settable in a running application (spark.conf.set), as a comparison or a way around the stage.
    val conf = sc.getConf.clone()
    val key = sparkdbn.sidecar.SidecarConf.RoundsInOneStageKey
    spark.conf.getOption(key).foreach(conf.set(key, _))
    val on = sparkdbn.sidecar.SidecarConf.fromSparkConf(conf).roundsInOneStage
    val dynamic = sc.getConf.getBoolean("spark.dynamicAllocation.enabled", false)
    if (on && (P > slotCount() || dynamic)) {
      log.info(s"sync rounds: one Spark job each (${if (dynamic) "dynamic allocation" else s"$P partitions, ${slotCount()} task slots"}); " +
        "with no more partitions than task slots, a topic's rounds run in one stage and cost less")
    }
    on && P <= slotCount() && !dynamic
  }

  /** How a sync topic's rounds reach the replicas: all in one barrier stage (RoundHub), or a Spark job each. */
  private final class SyncRounds(topic: String, layer: Int) {
    private var hub: Option[RoundHub] = None
    private var job: Option[org.apache.spark.FutureAction[Unit]] = None
    private var inStage = roundsInOneStage
    /** The version whose round `openEarly` opened, before its broadcast existed. */
    private var early: Option[String] = None
    /** When the latest round opened (its replicas were told to train). */
    var openedNanos: Long = System.nanoTime()

    /** The next round can open before its version is published (the stage runs; local mode: see mergeAndPublish). */
    def opensEarly: Boolean = localMode && inStage && job.isDefined

    /** Opens the round of `version`, which a merge in the driver's sidecar is about to hold: the replicas wait there for it. */
    def openEarly(version: String, parts: Seq[Int], batches: Array[Int], epochs: Array[Int]): Unit = {
      hub.get.open(version, None, parts.map(p => p -> batches(p)).toMap, p => epochs(p))
      early = Some(version)
    }

    /** The early-opened round's replicas can start: its version is held (the merge returned). */
    def markStarted(): Unit = openedNanos = System.nanoTime()

    /** The broadcast of an early-opened round's version, for the replicas that need its bytes. */
    def published(pub: Publication): Unit = if (early.contains(pub.version)) hub.foreach(_.publish(pub.version, pub.snapshot))

    /** Gives the stage up: the rounds go on with a job each. */
    def abandon(): Unit = {
      close(cancel = true)
      inStage = false
    }

    def run(pub: Publication, parts: Seq[Int], batches: Array[Int], epochs: Array[Int], what: String): Seq[RoundResult] = {
      val opened = early.contains(pub.version)
      early = None
      if (inStage) {
        try return viaStage(pub, parts, batches, epochs, opened) catch {
          case e: StageEnded =>
            // The round is trained again by a job, from the same version (nothing of it was merged).
            log.warn(s"$topic: the rounds' stage ended (${e.getMessage}); going on with one job per round")
            abandon()
        }
      }
      openedNanos = System.nanoTime()
      runRound(topic, layer, pub, parts, batches, epochs, what)
    }

    private def viaStage(pub: Publication, parts: Seq[Int], batches: Array[Int], epochs: Array[Int], opened: Boolean): Seq[RoundResult] = {
      val h = hub.getOrElse {
        val created = new RoundHub(sc, s"spark-dbn-rounds-${channel.id}-$topic")
        hub = Some(created)
        created
      }
      if (!opened) {
        h.open(pub.version, Some(pub.snapshot), parts.map(p => p -> batches(p)).toMap, p => epochs(p))
        openedNanos = System.nanoTime()
      }
      if (job.isEmpty) job = Some(submitStage(h.name))
      h.await(job.get)
    }

    private def submitStage(hubName: String): org.apache.spark.FutureAction[Unit] = {
      val spec = roundSpec(layer)
      // Interruptible: a stage given up is cancelled, and its tasks may be waiting for the hub.
      sc.setJobGroup(group, s"spark-dbn ${s.runId}: $topic rounds (one stage)", interruptOnCancel = true)
      val stage = RoundHub.stage(data.chunks, (ctx, chunks) =>
        RoundHub.replica(hubName, spec, ctx, chunks))
      sc.submitJob(stage, (it: Iterator[Int]) => it.size, 0 until P, (_: Int, _: Int) => (), ())
    }

    /** Stops the stage's replicas and waits for its end; `cancel`: also when they are mid-round (a failure). */
    def close(cancel: Boolean): Unit = {
      hub.foreach(_.stop(job, cancel))
      hub = None
      job = None
      early = None
    }
  }

  private def syncLoop(topic: String, rule: BlockRule, layer: Int, prog: Progress): Unit = {
    val source = new SyncRounds(topic, layer)
    var done = false
    try {
      syncRounds(topic, rule, layer, prog, source)
      done = true
    } finally source.close(cancel = !done)
  }

  private def syncRounds(topic: String, rule: BlockRule, layer: Int, prog: Progress, source: SyncRounds): Unit = {
    var round = rounds.count(_.topic == topic)
    while (!prog.finished) {
      round += 1
      val pub = channel.subscribe(topic)
      try {
        // Each partition's next mini-batches and epoch (every replica trains the same count an epoch).
        def plan(): (Seq[Int], Array[Int], Array[Int]) = ((0 until P).filter(p => prog.remaining(p) > 0),
          Array.tabulate(P)(p => math.min(syncEvery.toLong, prog.remaining(p)).toInt), Array.tabulate(P)(prog.epoch))
        val (parts, batches, epochs0) = plan()
        val epochBefore = prog.minEpoch
        var results = source.run(pub, parts, batches, epochs0, s"$topic round $round (from version ${pub.number})")
        val roundSeconds = (System.nanoTime() - source.openedNanos) / 1e9
        parts.foreach(p => prog.done(p) += batches(p))
        // The next round starts from the merged version as soon as it exists (rounds in one stage, local mode).
        val openNext = if (source.opensEarly && !prog.finished) Some { (version: String) =>
          val (np, nb, ne) = plan()
          source.openEarly(version, np, nb, ne)
        } else None
        val merged = try Some(mergeAndPublish(topic, rule, pub, results.map(_ -> 0), prog.minEpoch - epochBefore, openNext,
          () => source.markStarted())) catch {
          case e: HeldUpdatesLost =>
            // The sidecar that held the updates is gone (local mode): the same round once more, from the same version.
            progress.line(s"$topic round $round: ${e.getMessage}; training the round again")
            // Replicas told to wait for this merge's version (openNext) wait in vain: the stage is given up.
            if (openNext.isDefined) source.abandon()
            results = source.run(pub, parts, batches, epochs0, s"$topic round $round again")
            Some(mergeAndPublish(topic, rule, pub, results.map(_ -> 0), prog.minEpoch - epochBefore))
          case e: VersionLost =>
            // Merged, and lost with the driver's sidecar before its bytes were had: the round again, by a job, from `pub`.
            parts.foreach(p => prog.done(p) -= batches(p))
            kept.remove(topic)
            source.abandon()
            progress.line(s"$topic round $round: ${e.getMessage}; training the round again")
            None
        }
        merged.foreach { case Merged(next, bytes, mergeSeconds, publishSeconds, behindSeconds) =>
          source.published(next)
          val ms = results.map { r =>
            metrics(topic, layer, round, next.number, pub, r, 0, "merged", epochs0(r.partition), roundSeconds, mergeSeconds, publishSeconds)
          }
          rounds.synchronized(rounds ++= ms)
          resends(ms)
          saveCheckpoint(topic, next, prog, bytes, finished = false)
          // The round's details go to the log (scripts/bench train reads them); a person sees the topic's progress.
          log.info(f"$topic round $round -> version ${next.number}: ${figure(ms)}, " +
            f"epoch ${prog.minEpoch}, round ${roundSeconds}%.2f s (training ${ms.map(_.trainSeconds).max}%.2f s), " +
            f"merge ${mergeSeconds}%.3f s, publish ${publishSeconds}%.3f s" +
            (if (behindSeconds > 0) f" (then ${behindSeconds}%.3f s fetching and broadcasting it while the next round trains)" else ""))
          progress.topic(prog.report(ms.map(_.samples).sum, headline(ms)))
        }
      } finally channel.release(pub)
    }
  }

  private def asyncLoop(topic: String, rule: BlockRule, layer: Int, prog: Progress): Unit = {
    val pool = Executors.newFixedThreadPool(P, (r: Runnable) => {
      val t = new Thread(r, s"spark-dbn-async-$topic")
      t.setDaemon(true)
      t
    })
    implicit val ec: ExecutionContext = ExecutionContext.fromExecutor(pool)
    val failure = new AtomicReference[Throwable]()
    val lock = new Object
    var round = rounds.count(_.topic == topic)
    val slots = new Slots(() => slotCount())
    val futures = (0 until P).map { p =>
      Future {
        var own = 0 // this partition's rounds, for the Spark job descriptions
        while (prog.remaining(p) > 0 && failure.get() == null) {
          own += 1
          // A round's version is fixed when its job is submitted; a job that then waits for a free task
          // slot trains from a version that ages meanwhile. So a partition submits its next round only
          // when a slot is free, and subscribes then. Measured (4 partitions on local[2], the e2e quality
          // settings): staleness mostly 3 and 81.75-81.90% accuracy without; mostly 1 with.
          slots.acquire()
          try {
            // Another partition may have failed while this one waited: its cancel does not reach a job
            // submitted after it.
            Option(failure.get()).foreach(e => throw e)
            val pub = channel.subscribe(topic)
            try {
              val batches = math.min(syncEvery.toLong, prog.remaining(p)).toInt
              val started = System.nanoTime()
              val r = runRound(topic, layer, pub, Seq(p), _ => batches, prog.epoch, s"$topic partition $p round $own (from version ${pub.number})").head
              val roundSeconds = (System.nanoTime() - started) / 1e9
              lock.synchronized {
                round += 1
                val latest = channel.latest(topic).get
                val staleness = latest.number - pub.number
                if (staleness > s.maxStaleness) {
                  rounds.synchronized(rounds += metrics(topic, layer, round, -1, pub, r, staleness, "rejected", prog.epoch(p),
                    roundSeconds, 0, 0))
                  progress.line(s"$topic partition $p: update from version ${pub.number} is $staleness versions old " +
                    s"(maxStaleness ${s.maxStaleness}): rejected, redoing the round")
                } else {
                  val epochBefore = prog.minEpoch
                  val epoch = prog.epoch(p)
                  prog.done(p) += batches
                  val merge = try Some(mergeAndPublish(topic, rule, latest, Seq(r -> staleness), prog.minEpoch - epochBefore)) catch {
                    case e: HeldUpdatesLost =>
                      // The sidecar that held the update is gone (local mode): the loop trains the round again.
                      prog.done(p) -= batches
                      progress.line(s"$topic partition $p: ${e.getMessage}; training the round again")
                      None
                  }
                  merge.foreach { case Merged(next, merged, mergeSeconds, publishSeconds, _) =>
                    val m = metrics(topic, layer, round, next.number, pub, r, staleness, "merged", epoch, roundSeconds, mergeSeconds,
                      publishSeconds)
                    rounds.synchronized(rounds += m)
                    resends(Seq(m))
                    saveCheckpoint(topic, next, prog, merged, finished = false)
                    log.info(f"$topic partition $p -> version ${next.number}: ${figure(Seq(m))}, staleness $staleness, " +
                      f"epoch $epoch, ${m.batches} batches in ${m.trainSeconds}%.2f s (round ${roundSeconds}%.2f s), " +
                      f"merge ${mergeSeconds}%.3f s, publish ${publishSeconds}%.3f s, executor ${m.executor}")
                    progress.topic(prog.report(m.samples, headline(Seq(m))))
                  }
                }
              }
            } catch {
              case NonFatal(e) =>
                // The first failure stops every partition's loop and cancels their running jobs.
                failure.compareAndSet(null, e)
                sc.cancelJobGroup(group)
                throw e
            } finally channel.release(pub)
          } finally slots.release()
        }
      }
    }
    try {
      futures.foreach(f => Await.ready(f, Duration.Inf))
    } finally pool.shutdown()
    Option(failure.get()).foreach(e => throw e)
  }

  private val taskCpus = math.max(1, sc.getConf.getInt("spark.task.cpus", 1))

  /** Rounds the cluster runs at once: sc.defaultParallelism / spark.task.cpus (see Slots). */
  private def slotCount(): Int = math.max(1, sc.defaultParallelism / taskCpus)

  /**
   * Counts the rounds running against the cluster's task slots, re-read at each acquire as executors
   * come and go: sc.defaultParallelism / spark.task.cpus, i.e. the executors' cores, unless
   * spark.default.parallelism is set (then that many rounds may queue, as before this gate).
   */
  private final class Slots(capacity: () => Int) {
    private var busy = 0
    def acquire(): Unit = synchronized {
      while (busy >= capacity()) wait(50)
      busy += 1
    }
    def release(): Unit = synchronized {
      busy -= 1
      notifyAll()
    }
  }

  private def saveCheckpoint(topic: String, pub: Publication, prog: Progress, snapshot: Array[Byte], finished: Boolean): Unit =
    checkpoint.foreach { c =>
      val t0 = System.nanoTime()
      c.save(CheckpointState(s.runId, fingerprint, topic, pub.number, prog.done.clone(), finished, snapshot,
        if (finished) Array.emptyByteArray else momenta.getOrElse(topic, Array.emptyByteArray), rounds.synchronized(rounds.toList)))
      log.debug(f"checkpoint of $topic@${pub.number} in ${(System.nanoTime() - t0) / 1e6}%.1f ms")
    }
}

object DistributedTrainer {
  /**
   * syncEvery when unset. Block momentum needs blocks long enough that it does not act in series with the
   * replicas' own momentum, which rings (bench/README, "two momenta in series": a linear model of the two is
   * unstable for blocks up to 8 mini-batches at P = 2 and 16 at P = 4 or 8 under eta = 1 - 1/P, and best near
   * 32; on the full MNIST at P = 2, in one process with the engine's merge, H = 8 lost 9 nats against 64 and 32
   * beat 64 by 2.2-4.1 nats in each of three seeds; over Spark, scripts/bench train, 32 and 64 were the same within
   * the seeds' spread); longer blocks cost quality too (128: 2-4 nats worse than 64). It was CNTK's H P^2 rule
   * clamped to [1, 64], which gave small data blocks of a few mini-batches (scikit-learn's digits at P = 2:
   * reconstruction error 5.73 at H = 3 against 4.78 at 32; one process 3.77).
   */
  val DefaultSyncEvery = 32
}

/** The updates a merge was to take from the driver's sidecar are not there (it was restarted): redo their round. */
final class HeldUpdatesLost(message: String) extends RuntimeException(message)

/** A merged version's bytes could not be had from the driver's sidecar (it was restarted): redo its round. */
final class VersionLost(message: String) extends RuntimeException(message)
