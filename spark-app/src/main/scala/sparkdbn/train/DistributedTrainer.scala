package sparkdbn.train

import scala.util.control.NonFatal

import org.apache.spark.sql.SparkSession
import org.slf4j.LoggerFactory

import sparkdbn.proto.BlockRule
import sparkdbn.sidecar.{SidecarConf, SidecarMemory}

/**
 * The training loop on the driver: layer by layer, then fine-tuning, each a topic of the ModelChannel, its
 * rounds scheduled here. Replicas run in the executors' sidecars (RoundJobs, SyncRounds); model arithmetic
 * (initialising a layer, merging updates, a topic's final model) runs in the driver's own sidecar
 * (DriverEngine), so every formula lives in the TypeScript engine; the rounds' rows are the RunLog's.
 *
 * Merging. The rule ('bmuf', block momentum, the default; 'sum'; 'average') and
 * its formulas are the engine's (ts/rbm/distributed.ts): the driver sends the
 * published version, the updates with their staleness and the topic's block
 * momentum, and keeps the momentum the merge answers (checkpointed with the
 * version, so --resume continues it). Under BMUF in Nesterov's form (the engine's
 * default above 2 partitions) the published version is a look-ahead; at a topic's
 * end the engine's centre of it is published as the topic's final model. Replicas keep their local momentum between rounds unless
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
  private val runLog = new RunLog(s.runId, progress)
  /** Mini-batches between syncs: the param, or DistributedTrainer.DefaultSyncEvery. */
  private val syncEvery: Int = s.syncEveryParam.getOrElse(DistributedTrainer.DefaultSyncEvery)
  private val group = s"spark-dbn-${s.runId}"
  /**
   * Local mode: the executors' sidecar is the driver's own, so a merged model (MergeRequest.publish_as) and the
   * replicas' updates (TrainRequest.hold_update) can stay in it. On a cluster no executor could use them.
   */
  private val localMode = sc.isLocal
  private val sizes = data.nInputs +: s.hidden
  private val engine = new DriverEngine(s, sizes, P, channel, checkpointed = checkpoint.isDefined, localMode, progress)
  private val jobs = new RoundJobs(sc, data, s, group, localMode)

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
      runLog.resume(st.rounds)
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
      TrainOutcome(s.runId, prev, pretrained, runLog.all, versions, channel.destroyed, resumed.map(st => s"${st.topic}@${st.number}"))
    } finally {
      channel.close()
    }
  }

  private def fingerprint: String =
    s"partitions=$P sizes=${sizes.mkString("-")} labelled=${data.labelled} mode=${s.mode} batch=${s.batchSize} seed=${s.seed}"

  // ---------------------------------------------------------------- one topic

  private def trainTopic(topic: String, layer: Int, prevSnapshot: Option[Array[Byte]], from: Option[CheckpointState]): Array[Byte] = {
    val epochs = if (layer >= 0) s.epochs else s.fineTuneEpochs
    // Every replica trains the same number of mini-batches an epoch (the mean partition's), so every round is
    // a whole block of P updates: counting each partition's own ceil(rows / batch) would leave the longest
    // alone for a last round whose one update the merge takes for a block (bench/README measures the loss).
    // A replica continues through its reshuffled rows, so one with a row more or less samples them as evenly.
    val trainedRows = (0 until P).map(p => data.rows(p) - s.heldOutRows).sum
    val common = math.max(1L, (trainedRows + P.toLong * s.batchSize - 1) / (P.toLong * s.batchSize)).toInt
    val prog = new TopicSchedule(topic, epochs, common, common.toLong * epochs, from.map(_.done.clone()).getOrElse(new Array[Long](P)))
    val t0 = System.nanoTime()
    from match {
      case Some(st) =>
        engine.resume(topic, st.momentum)
        channel.publish(topic, st.snapshot, Some(st.number))
      case None =>
        val base = prevSnapshot.get
        // Gaussian inputs: the model standardises them with the statistics Spark measured (one pass, TrainingData).
        val init = if (layer == 0) engine.initLayer(base, 0, data.means, 0, if (s.visible == "gaussian") data.stddevs else Array.emptyDoubleArray)
        else if (layer > 0) engine.initLayer(base, layer, layerInputMeans(topic, layer, base), 0)
        else engine.initLayer(base, -1, Array.emptyDoubleArray, data.numClasses)
        val pub = channel.publish(topic, init.getSnapshot.toByteArray)
        saveCheckpoint(topic, pub, prog, pub.snapshot.value, finished = epochs == 0)
    }
    val how = if (s.mode == "sync") if (roundsInOneStage) ", rounds in one stage" else ", a Spark job a round" else ""
    progress.line(f"$topic: ${epochs} epochs, ${prog.total * P} mini-batches over $P partitions (${s.mode}, syncEvery ${syncEvery}$how)")
    val rule = engine.topicRule(slotCount())
    if (s.mode == "sync") syncLoop(topic, rule, layer, prog) else asyncLoop(topic, rule, layer, prog)
    val (last, bytes) = engine.finish(topic, rule, layer, channel.latest(topic).get) match {
      case Some(centre) => (channel.publish(topic, centre), centre)
      case None => val l = channel.latest(topic).get; (l, l.snapshot.value)
    }
    saveCheckpoint(topic, last, prog, bytes, finished = true)
    progress.line(f"$topic: done at version ${last.number} in ${(System.nanoTime() - t0) / 1e9}%.1f s")
    bytes
  }

  /** Means of a layer's input (the layers below applied to the data), measured by the replicas' sidecars. */
  private def layerInputMeans(topic: String, layer: Int, base: Array[Byte]): Array[Double] =
    jobs.inputSums(topic, layer, s"${channel.id}/input-of-layer$layer", base, sizes(layer)).map(_ / data.totalRows)

  /**
   * A sidecar must hold one partition's rows and the upper layers' inputs derived from them (less, and
   * a round could never train, or would derive them again every round): said before any work, naming the
   * partition, what it needs, the budget and the confs. Above that, a cache too small for all of an
   * executor's partitions drops rows and their next round sends them again (the replicas stay in the
   * sidecar, so the result is the same): RunLog.merged says so.
   */
  private def checkCache(): Unit = {
    val conf = SidecarConf.fromSparkConf(sc.getConf)
    val perRow = 4L * data.nInputs + (if (data.labelled) 4 else 0)
    // Layer l > 0 of pre-training reads layer l-1's hidden probabilities, kept for the partition's later rounds.
    val derivedPerRow = 4L * sizes.slice(1, sizes.length - 1).sum
    val biggest = (0 until P).maxBy(data.rows)
    val rows = data.rows(biggest)
    val need = rows * (perRow + derivedPerRow)
    if (conf.cacheBytes < need) {
      val m = SidecarMemory.mib _
      val cache = conf.cacheBytesSet.fold(s"the row cache's share of ${SidecarConf.MemoryKey}=${m(conf.memory)} is ${m(conf.cacheBytes)}")(
        c => s"${SidecarConf.CacheBytesKey} is ${m(c)}")
      val more = conf.cacheBytesSet.fold(s"set ${SidecarConf.MemoryKey} to at least ${m(SidecarMemory.budgetFor(need, conf.trainWorkers))}")(
        _ => s"set ${SidecarConf.CacheBytesKey} to at least ${m(need)}")
      throw new IllegalArgumentException(s"partition $biggest needs ${m(need)} in its sidecar ($rows rows x ${data.nInputs} inputs" +
        s"${if (data.labelled) " and a label" else ""}${if (derivedPerRow > 0) s", and ${derivedPerRow / 4} derived inputs of the upper layers" else ""}" +
        s"), but $cache: $more, or use more partitions")
    }
  }

  private def mib(bytes: Long): Long = (bytes + (1L << 20) - 1) >> 20

  /**
   * Sync rounds in one barrier stage for the whole topic (RoundHub) when the partitions fit the task slots:
   * Spark's job per round (scheduling, task launch, the result's trip) was most of a round's fixed cost.
   * Otherwise, with dynamic allocation (barrier stages refuse it), when spark.dbn.roundsInOneStage is false,
   * or after the stage ended early, a job per round.
   */
  private lazy val roundsInOneStage: Boolean = {
    val on = sessionConf.roundsInOneStage
    val dynamic = sc.getConf.getBoolean("spark.dynamicAllocation.enabled", false)
    if (on && (P > slotCount() || dynamic)) {
      log.info(s"sync rounds: one Spark job each (${if (dynamic) "dynamic allocation" else s"$P partitions, ${slotCount()} task slots"}); " +
        "with no more partitions than task slots, a topic's rounds run in one stage and cost less")
    }
    on && P <= slotCount() && !dynamic
  }

  /** The spark.dbn.* confs, with the rounds' switches also settable in a running application (spark.conf.set). */
  private lazy val sessionConf: SidecarConf = {
    val conf = sc.getConf.clone()
    Seq(SidecarConf.RoundsInOneStageKey, SidecarConf.CombineUpdatesKey).foreach(key => spark.conf.getOption(key).foreach(conf.set(key, _)))
    SidecarConf.fromSparkConf(conf)
  }

  /**
   * Sync rounds in one stage off local mode combine their updates before the driver (ExecutorCombine): it
   * receives one update a round. Local mode's replicas hold theirs in the driver's own sidecar.
   */
  private def combineRule(rule: BlockRule): Option[BlockRule] = if (!localMode && sessionConf.combineUpdates) Some(rule) else None

  // ---------------------------------------------------------------- sync

  private def syncLoop(topic: String, rule: BlockRule, layer: Int, prog: TopicSchedule): Unit = {
    val source = new SyncRounds(topic, layer, jobs, s"spark-dbn-rounds-${channel.id}-$topic", roundsInOneStage, localMode, combineRule(rule))
    var done = false
    try {
      syncRounds(topic, rule, layer, prog, source)
      done = true
    } finally source.close(cancel = !done)
  }

  private def syncRounds(topic: String, rule: BlockRule, layer: Int, prog: TopicSchedule, source: SyncRounds): Unit = {
    var round = runLog.roundsOf(topic)
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
        val merged = try Some(engine.mergeAndPublish(topic, rule, pub, results.map(_ -> 0), prog.minEpoch - epochBefore, openNext,
          () => source.markStarted())) catch {
          case e: HeldUpdatesLost =>
            // The sidecar that held the updates is gone (local mode): the same round once more, from the same version.
            progress.line(s"$topic round $round: ${e.getMessage}; training the round again")
            // Replicas told to wait for this merge's version (openNext) wait in vain: the stage is given up.
            if (openNext.isDefined) source.abandon()
            results = source.run(pub, parts, batches, epochs0, s"$topic round $round again")
            Some(engine.mergeAndPublish(topic, rule, pub, results.map(_ -> 0), prog.minEpoch - epochBefore))
          case e: VersionLost =>
            // Merged, and lost with the driver's sidecar before its bytes were had: the round again, by a job, from `pub`.
            parts.foreach(p => prog.done(p) -= batches(p))
            engine.forget(topic)
            source.abandon()
            progress.line(s"$topic round $round: ${e.getMessage}; training the round again")
            None
        }
        merged.foreach { case Merged(next, bytes, mergeSeconds, publishSeconds, behindSeconds) =>
          source.published(next)
          val ms = results.map { r =>
            runLog.row(topic, layer, round, next.number, pub.number, r, 0, "merged", epochs0(r.partition), roundSeconds, mergeSeconds,
              publishSeconds)
          }
          runLog.merged(ms)
          saveCheckpoint(topic, next, prog, bytes, finished = false)
          // The round's details go to the log (scripts/bench train reads them); a person sees the topic's progress.
          log.info(f"$topic round $round -> version ${next.number}: ${RunLog.figure(ms)}, " +
            f"epoch ${prog.minEpoch}, round ${roundSeconds}%.2f s (training ${ms.map(_.trainSeconds).max}%.2f s), " +
            f"merge ${mergeSeconds}%.3f s, publish ${publishSeconds}%.3f s" +
            (if (behindSeconds > 0) f" (then ${behindSeconds}%.3f s fetching and broadcasting it while the next round trains)" else ""))
          progress.topic(prog.report(ms.map(_.samples).sum, RunLog.headline(ms)))
        }
      } finally channel.release(pub)
    }
  }

  // ---------------------------------------------------------------- async

  private def asyncLoop(topic: String, rule: BlockRule, layer: Int, prog: TopicSchedule): Unit =
    new AsyncRounds(topicRun(topic, rule, layer, prog), P, s.maxStaleness, () => slotCount(), () => sc.cancelJobGroup(group)).run()

  private def topicRun(topic: String, rule: BlockRule, layer: Int, prog: TopicSchedule): TopicRun =
    TopicRun(topic, layer, rule, prog, syncEvery, channel, jobs, engine, runLog, progress,
      (pub, bytes) => saveCheckpoint(topic, pub, prog, bytes, finished = false))

  private val taskCpus = math.max(1, sc.getConf.getInt("spark.task.cpus", 1))

  /** Rounds the cluster runs at once: sc.defaultParallelism / spark.task.cpus (see Slots). */
  private def slotCount(): Int = math.max(1, sc.defaultParallelism / taskCpus)

  private def saveCheckpoint(topic: String, pub: Publication, prog: TopicSchedule, snapshot: Array[Byte], finished: Boolean): Unit =
    checkpoint.foreach { c =>
      val t0 = System.nanoTime()
      c.save(CheckpointState(s.runId, fingerprint, topic, pub.number, prog.done.clone(), finished, snapshot,
        if (finished) Array.emptyByteArray else engine.momentum(topic), runLog.all))
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
