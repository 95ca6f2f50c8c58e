package sparkdbn.train

import java.util.concurrent.Executors
import java.util.concurrent.atomic.AtomicReference

import scala.concurrent.{Await, ExecutionContext, Future}
import scala.concurrent.duration.Duration
import scala.util.control.NonFatal

import org.slf4j.LoggerFactory

import sparkdbn.proto.BlockRule

/** What a topic's rounds use of the trainer that runs them. */
private[train] final case class TopicRun(topic: String, layer: Int, rule: BlockRule, prog: TopicSchedule, syncEvery: Int,
    channel: ModelChannel, jobs: RoundJobs, engine: DriverEngine, runLog: RunLog, progress: TrainProgress,
    /** Saves the topic's version (not finished) when the run is checkpointed. */
    checkpoint: (Publication, Array[Byte]) => Unit)

/**
 * A topic's async rounds. Each partition loops on its own: when a task slot is free it trains a round as a
 * Spark job from the newest version, and its update is merged as it arrives, weighted by its staleness (the
 * versions published since the one it started from), or rejected when older than maxStaleness and trained
 * again. The first failure stops every partition's loop and cancels their jobs (`cancelAll`).
 *
 * @param slots      rounds the cluster runs at once, re-read at each round as executors come and go
 */
private[train] final class AsyncRounds(t: TopicRun, partitions: Int, maxStaleness: Int, slots: () => Int, cancelAll: () => Unit) {
  private val log = LoggerFactory.getLogger(getClass)
  private val failure = new AtomicReference[Throwable]()
  private val gate = new Slots(slots)
  /** The topic's rounds so far (numbered on from a resumed run's); guarded by `this`. */
  private var round = t.runLog.roundsOf(t.topic)

  /** Every partition's rounds until the topic's mini-batches are done, or the first failure (thrown). */
  def run(): Unit = {
    val pool = Executors.newFixedThreadPool(partitions, (r: Runnable) => {
      val th = new Thread(r, s"spark-dbn-async-${t.topic}")
      th.setDaemon(true)
      th
    })
    implicit val ec: ExecutionContext = ExecutionContext.fromExecutor(pool)
    val loops = (0 until partitions).map(p => Future(partitionLoop(p)))
    try loops.foreach(f => Await.ready(f, Duration.Inf))
    finally pool.shutdown()
    Option(failure.get()).foreach(e => throw e)
  }

  private def partitionLoop(p: Int): Unit = {
    var own = 0 // this partition's rounds, for the Spark job descriptions
    while (t.prog.remaining(p) > 0 && failure.get() == null) {
      own += 1
      // A round's version is fixed when its job is submitted; a job that then waits for a free task slot trains
      // from a version that ages meanwhile. So a partition submits its next round only when a slot is free, and
      // subscribes then. Measured (4 partitions on local[2], the e2e quality settings): staleness mostly 3 and
      // 81.75-81.90% accuracy without; mostly 1 with.
      gate.acquire()
      try oneRound(p, own) finally gate.release()
    }
  }

  private def oneRound(p: Int, own: Int): Unit = {
    // Another partition may have failed while this one waited: its cancel does not reach a job submitted after it.
    Option(failure.get()).foreach(e => throw e)
    val pub = t.channel.subscribe(t.topic)
    try {
      val batches = math.min(t.syncEvery.toLong, t.prog.remaining(p)).toInt
      val started = System.nanoTime()
      val r = t.jobs.runRound(t.layer, pub, Seq(p), _ => batches, t.prog.epoch, s"${t.topic} partition $p round $own (from version ${pub.number})").head
      arrived(p, pub, r, batches, (System.nanoTime() - started) / 1e9)
    } catch {
      case NonFatal(e) =>
        // The first failure stops every partition's loop and cancels their running jobs.
        failure.compareAndSet(null, e)
        cancelAll()
        throw e
    } finally t.channel.release(pub)
  }

  /** A round's update on the driver: merged into the newest version, or rejected as too stale. One at a time. */
  private def arrived(p: Int, pub: Publication, r: RoundResult, batches: Int, roundSeconds: Double): Unit = synchronized {
    round += 1
    val latest = t.channel.latest(t.topic).get
    val staleness = latest.number - pub.number
    if (staleness > maxStaleness) {
      t.runLog.rejected(t.runLog.row(t.topic, t.layer, round, -1, pub.number, r, staleness, "rejected", t.prog.epoch(p), roundSeconds, 0, 0))
      t.progress.line(s"${t.topic} partition $p: update from version ${pub.number} is $staleness versions old " +
        s"(maxStaleness $maxStaleness): rejected, redoing the round")
    } else merge(p, pub, latest, r, batches, staleness, roundSeconds)
  }

  private def merge(p: Int, pub: Publication, latest: Publication, r: RoundResult, batches: Int, staleness: Int, roundSeconds: Double): Unit = {
    val epochBefore = t.prog.minEpoch
    val epoch = t.prog.epoch(p)
    t.prog.done(p) += batches
    val merged = try Some(t.engine.mergeAndPublish(t.topic, t.rule, latest, Seq(r -> staleness), t.prog.minEpoch - epochBefore)) catch {
      case e: HeldUpdatesLost =>
        // The sidecar that held the update is gone (local mode): the loop trains the round again.
        t.prog.done(p) -= batches
        t.progress.line(s"${t.topic} partition $p: ${e.getMessage}; training the round again")
        None
    }
    merged.foreach { case Merged(next, bytes, mergeSeconds, publishSeconds, _) =>
      val m = t.runLog.row(t.topic, t.layer, round, next.number, pub.number, r, staleness, "merged", epoch, roundSeconds,
        mergeSeconds, publishSeconds)
      t.runLog.merged(Seq(m))
      t.checkpoint(next, bytes)
      log.info(f"${t.topic} partition $p -> version ${next.number}: ${RunLog.figure(Seq(m))}, staleness $staleness, " +
        f"epoch $epoch, ${m.batches} batches in ${m.trainSeconds}%.2f s (round $roundSeconds%.2f s), " +
        f"merge $mergeSeconds%.3f s, publish $publishSeconds%.3f s, executor ${m.executor}")
      t.progress.topic(t.prog.report(m.samples, RunLog.headline(Seq(m))))
    }
  }

  /**
   * Counts the rounds running against the cluster's task slots, re-read at each acquire as executors come and
   * go: sc.defaultParallelism / spark.task.cpus, i.e. the executors' cores, unless spark.default.parallelism
   * is set (then that many rounds may queue, as before this gate).
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
}
