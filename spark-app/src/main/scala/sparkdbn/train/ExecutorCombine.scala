package sparkdbn.train

import java.util.concurrent.ConcurrentHashMap

import scala.jdk.CollectionConverters._

import org.apache.spark.{BarrierTaskContext, TaskContext, TaskKilledException}
import org.apache.spark.sparkdbn.ExecutorBlocks

import sparkdbn.proto.{BlockRule, CombineRequest}
import sparkdbn.sidecar.SidecarManager

/** A round's updates are combined before the driver: the topic's merge rule and the round's partitions. */
final case class CombinePlan(rule: BlockRule, parts: Set[Int])

/**
 * Where a replica stands in its round's combining: `group`, the round's partitions on its executor (the first
 * of them, the executor's leader, combines them); `leaders`, every executor's leader in order (a tree of them,
 * ExecutorCombine.FanIn wide, combines the executors' updates towards the first, which alone sends one to the driver).
 */
final case class CombineLayout(group: Seq[Int], leaders: IndexedSeq[Int]) {
  def leads(p: Int): Boolean = group.headOption.contains(p)
  private def index(p: Int): Int = leaders.indexOf(p)
  /** The leaders whose combined updates leader `p` takes into its own. */
  def children(p: Int): Seq[Int] = {
    val i = index(p)
    (i * ExecutorCombine.FanIn + 1 to i * ExecutorCombine.FanIn + ExecutorCombine.FanIn).filter(_ < leaders.size).map(leaders)
  }
  /** The leader that takes leader `p`'s combined update; None for the root, which sends to the driver. */
  def parent(p: Int): Option[Int] = {
    val i = index(p)
    if (i <= 0) None else Some(leaders((i - 1) / ExecutorCombine.FanIn))
  }
}

/**
 * Combining a sync round's updates before the driver, so that it receives one update a round, not one a
 * replica. The replicas of the round's stage that share an executor (and so its sidecar) hold their updates
 * there; the executor's leader asks the sidecar to combine them (Combine) with the combined updates of the
 * executors below it in the tree, which left them in their block managers (ExecutorBlocks); it leaves the
 * result for its parent, or, the root, sends it to the driver. The others send only their figures. The model
 * is the same up to float rounding (ts/rbm/distributed.ts combineUpdates).
 */
private[train] object ExecutorCombine {
  /**
   * The tree's fan-in: a leader combines up to this many other executors' updates with its own. Each level costs
   * a Combine and the fetches of its children's updates (about what the driver's merge of as many costs); at 8,
   * 512 executors are three levels deep.
   */
  val FanIn = 8

  /** Held updates of replicas whose executor's leader has not collected them yet, by hub, round and partition. */
  private val offered = new ConcurrentHashMap[(String, Int, Int), RoundResult]()

  /**
   * This task's place in the round's combining, from the executor addresses of a barrier stage's tasks; None
   * outside a barrier stage, or when the round has one partition (there is nothing to combine).
   */
  def layout(ctx: TaskContext, plan: CombinePlan): Option[CombineLayout] = ctx match {
    case b: BarrierTaskContext if plan.parts.size > 1 && plan.parts.contains(ctx.partitionId()) =>
      val infos = b.getTaskInfos()
      val parts = plan.parts.toSeq.filter(_ < infos.length).sorted
      val byExecutor = parts.groupBy(q => infos(q).address)
      val leaders = byExecutor.values.map(_.min).toIndexedSeq.sorted
      Some(CombineLayout(byExecutor(infos(ctx.partitionId()).address).sorted, leaders))
    case _ => None
  }

  private def blockName(hub: String, seq: Int, p: Int): String = s"$hub-round$seq-from$p"

  /** Drops a block this executor left for another (after the round). */
  def drop(block: String): Unit = ExecutorBlocks.remove(block)

  /**
   * This replica's part in its round's combining, with `own` its result (its update held in the sidecar): what
   * it sends the driver, and the block it left for its parent leader (to drop once the round is over).
   * `awaitArrivals` waits on the driver's hub until the given partitions have arrived (false: the round is over).
   */
  def combine(hub: String, seq: Int, l: CombineLayout, own: RoundResult, rule: BlockRule, ctx: TaskContext,
      awaitArrivals: Set[Int] => Boolean): (RoundResult, Option[String]) = {
    val p = own.partition
    val figuresOnly = own.copy(update = Array.emptyByteArray, heldUpdate = "", replicas = 0)
    if (!l.leads(p)) {
      offered.put((hub, seq, p), own)
      offered.synchronized(offered.notifyAll())
      return (figuresOnly, None)
    }
    val members = l.group.filter(_ != p).map(q => collect(hub, seq, q, ctx))
    // A leader killed before it collected leaves its members' entries: drop this hub's older rounds.
    offered.keySet().asScala.filter(k => k._1 == hub && k._2 < seq).foreach(offered.remove)
    val children = l.children(p)
    if (children.nonEmpty && !awaitArrivals(children.toSet)) {
      throw new StageEnded(s"round $seq ended before the updates of partitions ${children.mkString(", ")} were combined")
    }
    val below = children.map { c =>
      ExecutorBlocks.fetch(blockName(hub, seq, c)).getOrElse {
        throw new IllegalStateException(s"the combined update of round $seq from partition $c's executor is in no block manager")
      }
    }
    val request = CombineRequest.newBuilder().setRule(rule).addAllHeld((own +: members).map(_.heldUpdate).asJava)
    below.foreach(b => request.addUpdates(com.google.protobuf.UnsafeByteOperations.unsafeWrap(b)))
    val combined = SidecarManager.client().combine(request.build())
    l.parent(p) match {
      case None => (own.copy(update = combined.getUpdate.toByteArray, heldUpdate = "", replicas = combined.getReplicas), None)
      case Some(_) =>
        val block = blockName(hub, seq, p)
        ExecutorBlocks.put(block, combined.getUpdate.toByteArray)
        (figuresOnly, Some(block))
    }
  }

  /** A member's result, once it has offered it (it trains meanwhile; a task killed stops the wait). */
  private def collect(hub: String, seq: Int, q: Int, ctx: TaskContext): RoundResult = {
    val key = (hub, seq, q)
    offered.synchronized {
      while (!offered.containsKey(key)) {
        if (ctx.isInterrupted()) throw new TaskKilledException("the round's stage was given up")
        offered.wait(200)
      }
    }
    offered.remove(key)
  }
}
