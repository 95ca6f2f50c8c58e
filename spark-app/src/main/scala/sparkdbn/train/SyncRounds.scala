package sparkdbn.train

import org.apache.spark.FutureAction
import org.slf4j.LoggerFactory

import sparkdbn.proto.BlockRule

/**
 * How a sync topic's rounds reach the replicas: all in one barrier stage (RoundHub), or a Spark job each.
 * The stage is given up for a job a round when it ends early (StageEnded); that round is trained again by
 * a job, from the same version.
 *
 * @param inStage   start with the rounds in one stage (DistributedTrainer.roundsInOneStage)
 * @param localMode the driver's sidecar is the replicas': a round can open before its version is published
 * @param combine   in the stage, the replicas of an executor combine their updates under this rule (ExecutorCombine)
 */
private[train] final class SyncRounds(topic: String, layer: Int, jobs: RoundJobs, hubName: String, private var inStage: Boolean,
    localMode: Boolean, combine: Option[BlockRule]) {
  private val log = LoggerFactory.getLogger(getClass)
  private var hub: Option[RoundHub] = None
  private var job: Option[FutureAction[Unit]] = None
  /** The version whose round `openEarly` opened, before its broadcast existed. */
  private var early: Option[String] = None
  /** When the latest round opened (its replicas were told to train). */
  var openedNanos: Long = System.nanoTime()

  /** The next round can open before its version is published (the stage runs; local mode: see DriverEngine.mergeAndPublish). */
  def opensEarly: Boolean = localMode && inStage && job.isDefined

  /** Opens the round of `version`, which a merge in the driver's sidecar is about to hold: the replicas wait there for it. */
  def openEarly(version: String, parts: Seq[Int], batches: Array[Int], epochs: Array[Int]): Unit = {
    hub.get.open(version, None, parts.map(p => p -> batches(p)).toMap, p => epochs(p), combine)
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
    jobs.runRound(layer, pub, parts, batches, epochs, what)
  }

  private def viaStage(pub: Publication, parts: Seq[Int], batches: Array[Int], epochs: Array[Int], opened: Boolean): Seq[RoundResult] = {
    val h = hub.getOrElse {
      val created = new RoundHub(jobs.sc, hubName)
      hub = Some(created)
      created
    }
    if (!opened) {
      h.open(pub.version, Some(pub.snapshot), parts.map(p => p -> batches(p)).toMap, p => epochs(p), combine)
      openedNanos = System.nanoTime()
    }
    if (job.isEmpty) job = Some(jobs.submitStage(topic, layer, h.name))
    h.await(job.get)
  }

  /** Stops the stage's replicas and waits for its end; `cancel`: also when they are mid-round (a failure). */
  def close(cancel: Boolean): Unit = {
    hub.foreach(_.stop(job, cancel))
    hub = None
    job = None
    early = None
  }
}
