package sparkdbn.train

import scala.collection.mutable

import sparkdbn.sidecar.SidecarConf

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
    timestampMs: Long,
    /** Bytes of the update the driver received from this replica's task (0: held in the driver's sidecar, or combined in another's). */
    updateBytes: Long = 0,
    /** Replicas' updates in the one its task sent: 1 its own, more when combined on its executor, 0 when it went in another's. */
    updatesCombined: Int = 1)

/**
 * A run's rounds as the driver saw them (the rounds table, and what a checkpoint keeps of them), and what a
 * person is told of them: the round's figure, and once per partition that it had to send its rows again.
 * Thread-safe: async partitions record their rounds as they merge.
 */
final class RunLog(runId: String, progress: TrainProgress) {
  private val rounds = mutable.ArrayBuffer.empty[RoundMetrics]
  /** Partitions told of re-sending their rows (once a run each). */
  private val resendTold = mutable.Set.empty[Int]
  /** Partitions that have cached their rows in this run (the first send is not a re-send). */
  private val sentOnce = mutable.Set.empty[Int]

  /** The rounds of the run a checkpoint resumes. */
  def resume(earlier: Seq[RoundMetrics]): Unit = synchronized(rounds ++= earlier)

  def all: List[RoundMetrics] = synchronized(rounds.toList)

  /** Rounds of `topic` so far (a resumed topic numbers its rounds on). */
  def roundsOf(topic: String): Int = synchronized(rounds.count(_.topic == topic))

  /** One replica's round as a row: `base` is the version it started from, `version` the one its merge published (-1: none). */
  def row(topic: String, layer: Int, round: Int, version: Int, base: Int, r: RoundResult, staleness: Int, status: String,
      epoch: Int, roundSeconds: Double, mergeSeconds: Double, publishSeconds: Double): RoundMetrics = {
    val u = r.figures
    RoundMetrics(runId, topic, layer, round, version, base, r.partition, staleness, status, epoch, u.samples,
      u.batches, u.reconstructionError, u.freeEnergy, u.heldOutFreeEnergy, u.loss, u.accuracy, u.seconds, r.taskSeconds,
      roundSeconds, mergeSeconds, publishSeconds, r.executor, r.warm, r.resent, System.currentTimeMillis(), r.update.length.toLong,
      r.replicas)
  }

  /** Merged rounds: kept, and a partition whose rows were sent again after its first round is said once. */
  def merged(ms: Seq[RoundMetrics]): Unit = synchronized {
    rounds ++= ms
    ms.foreach { m =>
      if (m.resent && sentOnce.contains(m.partition) && resendTold.add(m.partition)) {
        progress.line(s"${m.topic}: partition ${m.partition} sent its rows again: its sidecar no longer held them " +
          s"(${SidecarConf.CacheBytesKey} below what an executor's partitions need, or a restarted sidecar); " +
          "training goes on, slower, with the same result")
      }
      sentOnce += m.partition
    }
  }

  /** A rejected round (too stale; redone): kept as a row, nothing said of its rows. */
  def rejected(m: RoundMetrics): Unit = synchronized(rounds += m)
}

object RunLog {
  /** The round's figures for the log line, averaged over its replicas. */
  def figure(ms: Seq[RoundMetrics]): String = {
    def mean(f: RoundMetrics => Double) = ms.map(f).sum / ms.size
    val of = if (ms.size > 1) s" (mean of ${ms.size})" else ""
    if (ms.head.layer >= 0) f"recon ${mean(_.reconstructionError)}%.3f, free energy ${mean(_.freeEnergy)}%.2f$of"
    else f"loss ${mean(_.loss)}%.4f, accuracy ${mean(_.accuracy) * 100}%.2f%%$of"
  }

  /** The round's figure for a person: the one number that says how training goes. */
  def headline(ms: Seq[RoundMetrics]): String = {
    def mean(f: RoundMetrics => Double) = ms.map(f).sum / ms.size
    if (ms.head.layer >= 0) f"reconstruction error ${mean(_.reconstructionError)}%.3f"
    else f"training accuracy ${mean(_.accuracy) * 100}%.2f%%"
  }
}
