package sparkdbn.train

import scala.collection.mutable
import scala.concurrent.duration._
import scala.reflect.ClassTag
import scala.util.control.NonFatal

import org.apache.spark.{FutureAction, Partition, SparkContext, TaskContext}
import org.apache.spark.broadcast.Broadcast
import org.apache.spark.rdd.RDD
import org.apache.spark.sparkdbn.DriverRpc

import sparkdbn.io.JavaBytes
import sparkdbn.proto.BlockRule

/**
 * What a replica is to train next: a round of `batches` mini-batches from a published version. `snapshot`
 * is None when the round opened before the version existed (local mode, where the replicas train from the
 * version the driver's sidecar holds, and the version is being merged there: their Train calls wait for
 * it); a replica that needs the bytes asks the hub (Fetch). `combine`: the round's updates are combined
 * before the driver (ExecutorCombine).
 */
final case class RoundOrder(seq: Int, version: String, snapshot: Option[Broadcast[Array[Byte]]], batches: Int, epoch: Int,
    combine: Option[CombinePlan] = None)

/** Task -> hub. */
private[train] sealed trait HubRequest extends Serializable
/** A task starting (or a retried one): answered with its partition's current order. */
private[train] final case class Join(partition: Int) extends HubRequest
/** A round's result: answered, once the driver has merged the round, with the next order. */
private[train] final case class Arrive(partition: Int, seq: Int, result: RoundResult) extends HubRequest
/** A task's round failed: the driver gives the stage up. Answered at once. */
private[train] final case class Failed(partition: Int, message: String) extends HubRequest
/** A version's broadcast, for a replica whose order came before it: answered once it is published. */
private[train] final case class Fetch(version: String) extends HubRequest
/**
 * An executor's combining replica (ExecutorCombine), for the updates other executors left it in their block
 * managers: answered once `parts` have arrived in round `seq` (an order: go on; none: the round is over).
 */
private[train] final case class AwaitArrivals(partition: Int, seq: Int, parts: Set[Int]) extends HubRequest

/**
 * Hub -> task: the next order, or stop (the topic is done or the driver gave the stage up); to a Fetch,
 * the version's broadcast (None: the stage was given up).
 */
private[train] final case class HubAnswer(order: Option[RoundOrder], snapshot: Option[Broadcast[Array[Byte]]] = None)
  extends Serializable

/** The stage's tasks are gone or one failed: the driver carries on with a job per round. */
final class StageEnded(message: String) extends RuntimeException(message)

/**
 * Sync rounds without a Spark job per round. One barrier stage runs every round of a topic: each task is
 * one partition's replica, trains a round in its sidecar, tells the driver's hub, and waits for the next
 * order; the driver merges as soon as every replica of the round has arrived, publishes the version as a
 * broadcast (the pub/sub channel is unchanged) and answers each waiting task with it. A job per round
 * cost ~10 ms of Spark scheduling and task launch on this machine (an empty two-task runJob in local[2]),
 * more with the task's result; here a round costs one small RPC a replica.
 *
 * A barrier stage needs all its tasks running at once: used when the partitions fit the task slots (and
 * without dynamic allocation); otherwise, and when a task fails or the stage ends early, the trainer
 * goes on with a job per round from the latest published version (ReplicaTask's recovery applies there).
 * The driver is the source of truth: a task (also a retried one) joins by asking for its current order.
 */
private[train] final class RoundHub(sc: SparkContext, val name: String) {
  private val log = org.slf4j.LoggerFactory.getLogger(getClass)
  private var orders = Map.empty[Int, RoundOrder]
  private var stopped = false
  private var failure: Option[String] = None
  private val arrived = mutable.Map.empty[Int, RoundResult]
  private val waiting = mutable.Map.empty[Int, DriverRpc.Reply]
  private var seq = 0
  /** Broadcasts of versions published after their round opened, and the Fetches waiting for them. */
  private val published = mutable.Map.empty[String, Broadcast[Array[Byte]]]
  private val fetching = mutable.Map.empty[String, List[DriverRpc.Reply]]
  /** AwaitArrivals of the open round not answered yet: the partitions awaited, the asker's partition, its reply. */
  private val awaiting = mutable.ListBuffer.empty[(Set[Int], Int, DriverRpc.Reply)]

  private val unserve = DriverRpc.serve(sc, name)(receive)

  private def receive(bytes: Array[Byte], reply: DriverRpc.Reply): Unit = {
    val req = try JavaBytes.decode[HubRequest](bytes) catch { case NonFatal(e) => reply.fail(e); return }
    synchronized {
      req match {
        case Join(p) =>
          arrived.remove(p)
          waiting.remove(p)
          answer(reply, orders.get(p).filterNot(_ => stopped))
        case Arrive(p, s, r) =>
          if (stopped || !orders.get(p).exists(_.seq == s)) answer(reply, None)
          else {
            arrived(p) = r
            waiting(p) = reply
            val done = awaiting.filter(_._1.subsetOf(arrived.keySet))
            awaiting --= done
            done.foreach { case (_, q, rep) => answer(rep, orders.get(q)) }
          }
        case AwaitArrivals(p, s, parts) =>
          if (stopped || !orders.get(p).exists(_.seq == s)) answer(reply, None)
          else if (parts.subsetOf(arrived.keySet)) answer(reply, orders.get(p))
          else awaiting += ((parts, p, reply))
        case Failed(p, message) =>
          if (failure.isEmpty) failure = Some(s"partition $p: $message")
          answer(reply, None)
        case Fetch(version) =>
          published.get(version) match {
            case Some(bc) if !stopped => send(reply, HubAnswer(None, Some(bc)))
            // The open round's version, still being merged or fetched: answered when published.
            case None if !stopped && orders.values.exists(_.version == version) =>
              fetching(version) = reply :: fetching.getOrElse(version, Nil)
            // Stopped, or a version no round trains from now (a round reopened from an older one): none will come.
            case _ => answer(reply, None)
          }
      }
      notifyAll()
    }
  }

  private def send(reply: DriverRpc.Reply, a: HubAnswer): Unit = reply(JavaBytes.encode(a))
  private def answer(reply: DriverRpc.Reply, order: Option[RoundOrder]): Unit = send(reply, HubAnswer(order))

  /**
   * Opens a round: answers the replicas waiting since the last with their orders (and those not in it: stop).
   * `snapshot` None: the version is published later (`publish`), and until then a replica that needs its bytes waits.
   */
  def open(version: String, snapshot: Option[Broadcast[Array[Byte]]], batches: Map[Int, Int], epochs: Int => Int,
      combine: Option[BlockRule] = None): Unit = synchronized {
    seq += 1
    published.clear()
    snapshot.foreach(published(version) = _)
    val plan = combine.map(CombinePlan(_, batches.keySet))
    orders = batches.map { case (p, b) => p -> RoundOrder(seq, version, snapshot, b, epochs(p), plan) }
    // Replicas waiting for another version's bytes will not get them (see Fetch).
    fetching.filter(_._1 != version).values.flatten.foreach(answer(_, None))
    fetching.filterInPlace((v, _) => v == version)
    arrived.clear()
    awaiting.foreach { case (_, _, rep) => answer(rep, None) }
    awaiting.clear()
    val answers = waiting.toList
    waiting.clear()
    answers.foreach { case (p, reply) => answer(reply, orders.get(p)) }
  }

  /** The broadcast of a version whose round opened before it (answers the replicas that asked for it). */
  def publish(version: String, snapshot: Broadcast[Array[Byte]]): Unit = {
    val replies = synchronized {
      published(version) = snapshot
      fetching.remove(version).getOrElse(Nil)
    }
    replies.foreach(send(_, HubAnswer(None, Some(snapshot))))
  }

  /** Waits for every replica of the open round; throws StageEnded when a task failed or the stage ended. */
  def await(job: FutureAction[_]): Seq[RoundResult] = synchronized {
    while (arrived.size < orders.size) {
      failure.foreach(m => throw new StageEnded(m))
      if (job.isCompleted) {
        throw new StageEnded(job.value.flatMap(_.failed.toOption).map(e => s"the stage ended: ${e.getMessage}")
          .getOrElse("the stage ended before its rounds"))
      }
      wait(100)
    }
    orders.keys.toSeq.sorted.map(arrived)
  }

  /**
   * Stops every replica (answered now, or at its next request) and stops serving once the stage is over.
   * `cancel`: the stage is given up (its tasks may be waiting in their sidecar for a version that will not come).
   */
  def stop(job: Option[FutureAction[_]], cancel: Boolean): Unit = {
    val answers = synchronized {
      stopped = true
      val w = waiting.values.toList ++ fetching.values.flatten ++ awaiting.map(_._3)
      waiting.clear()
      fetching.clear()
      awaiting.clear()
      w
    }
    answers.foreach(reply => answer(reply, None))
    job.foreach { j =>
      // Tasks still training end their round and get "stop"; a stage given up is cancelled as well.
      if (cancel || synchronized(failure.isDefined)) j.cancel()
      try scala.concurrent.Await.ready(j, 2.minutes) catch {
        case NonFatal(e) => log.warn(s"round hub $name: the stage did not end within 2 minutes (${e.getMessage})")
      }
    }
    unserve()
  }
}

private[train] object RoundHub {
  /** The replica's side: rounds as the hub orders them, until it says stop. */
  def replica(hubName: String, spec: RoundSpec, ctx: TaskContext, chunks: () => Iterator[Chunk]): Unit = {
    val p = ctx.partitionId()
    // An answer waits for the slowest replica's round and the merge: as long as a round may take.
    val ask = DriverRpc.connect(hubName, 6.hours)
    def call(r: HubRequest): HubAnswer = JavaBytes.decode[HubAnswer](ask(JavaBytes.encode(r)))
    def request(r: HubRequest): Option[RoundOrder] = call(r).order
    // Only when the sidecar lacks the version (a restarted one): local mode trains from the version it holds.
    def bytes(o: RoundOrder): Array[Byte] = o.snapshot.orElse(call(Fetch(o.version)).snapshot).map(_.value).getOrElse {
      throw new StageEnded(s"version ${o.version} was not published (the driver gave the rounds' stage up)")
    }
    // Another executor fetches a block this one left it while the round is open: dropped once the next order comes.
    var left: Option[String] = None
    def dropLeft(): Unit = { left.foreach(ExecutorCombine.drop); left = None }
    var order = request(Join(p))
    try while (order.isDefined) {
      val o = order.get
      // The round's updates are combined before the driver (ExecutorCombine): each replica holds its own.
      val layout = o.combine.flatMap(ExecutorCombine.layout(ctx, _))
      val r = try {
        // No bytes yet: the merge that makes the version runs in this (local mode: the driver's) sidecar now, and
        // the Train call waits for it there. A minute is ample for any merge; past it the replica asks for the
        // bytes as a restarted sidecar would.
        val own = ReplicaTask.run(if (layout.isDefined) spec.copy(holdUpdate = true) else spec, o.version, () => bytes(o), o.batches,
          o.epoch, Iterator.empty ++ chunks(), if (o.snapshot.isEmpty) 60000 else 0)
        layout.fold(own) { l =>
          val awaitArrivals = (parts: Set[Int]) => request(AwaitArrivals(p, o.seq, parts)).isDefined
          val (result, block) = ExecutorCombine.combine(hubName, o.seq, l, own, o.combine.get.rule, ctx, awaitArrivals)
          left = block
          result
        }
      } catch {
        case NonFatal(e) =>
          try request(Failed(p, String.valueOf(e.getMessage))) catch { case NonFatal(_) => () }
          throw e
      }
      order = request(Arrive(p, o.seq, r))
      dropLeft()
    } finally dropLeft()
  }

  /**
   * One task per partition of `chunks`, each running `body` with a way to read its partition's rows again
   * (a replica may need to send them to a restarted sidecar in any round; the rows are cached by Spark).
   */
  def stage(chunks: RDD[Chunk], body: (TaskContext, () => Iterator[Chunk]) => Unit): RDD[Int] =
    new PartitionLoopRDD(chunks, body).barrier().mapPartitions(identity)
}

private final class PartitionLoopRDD(parent: RDD[Chunk], body: (TaskContext, () => Iterator[Chunk]) => Unit)
    extends RDD[Int](parent)(ClassTag.Int) {
  override protected def getPartitions: Array[Partition] = firstParent[Chunk].partitions
  override def compute(split: Partition, ctx: TaskContext): Iterator[Int] = {
    body(ctx, () => firstParent[Chunk].iterator(split, ctx))
    Iterator.empty
  }
}
