package sparkdbn.train

import java.util.concurrent.ConcurrentHashMap

import scala.jdk.CollectionConverters._

import org.apache.spark.{BarrierTaskContext, TaskContext, TaskKilledException}

import sparkdbn.proto.{BlockRule, CombineRequest}
import sparkdbn.sidecar.SidecarManager

/** A round's updates are combined on their executor: the topic's merge rule and the round's partitions. */
final case class CombinePlan(rule: BlockRule, parts: Set[Int])

/**
 * Combining a sync round's updates where they were trained: the replicas of a round's stage that share an
 * executor (and so its sidecar) hold their updates there; the lowest partition of them asks the sidecar for
 * one update of them all (Combine) and sends it to the driver, the others only their figures. The driver
 * then receives one update an executor a round instead of one a replica, with the model the same up to
 * float rounding (ts/rbm/distributed.ts combineUpdates). Executor-side: the replicas meet in this JVM.
 */
private[train] object ExecutorCombine {
  /** Held updates of replicas whose executor's leader has not collected them yet, by hub, round and partition. */
  private val offered = new ConcurrentHashMap[(String, Int, Int), RoundResult]()

  /**
   * The round's partitions on this task's executor, in order (the first leads): a barrier stage's tasks know
   * each other's executor addresses. Just this task when it runs outside a barrier stage.
   */
  def group(ctx: TaskContext, plan: CombinePlan): Seq[Int] = ctx match {
    case b: BarrierTaskContext =>
      val infos = b.getTaskInfos()
      val mine = infos(ctx.partitionId()).address
      plan.parts.toSeq.filter(q => q < infos.length && infos(q).address == mine).sorted
    case _ => Seq(ctx.partitionId())
  }

  /** A member's held update, for its executor's leader; what the member sends the driver instead: its figures. */
  def offer(hub: String, seq: Int, own: RoundResult): RoundResult = {
    offered.put((hub, seq, own.partition), own)
    offered.synchronized(offered.notifyAll())
    own.copy(update = Array.emptyByteArray, heldUpdate = "", replicas = 0)
  }

  /**
   * The leader's update: its own and its members' (waited for as long as they train; a member that fails
   * makes the driver give the stage up, which kills this task) combined by the sidecar.
   */
  def lead(hub: String, seq: Int, members: Seq[Int], own: RoundResult, rule: BlockRule, ctx: TaskContext): RoundResult = {
    val others = members.filter(_ != own.partition)
    val results = others.map { q =>
      val key = (hub, seq, q)
      offered.synchronized {
        while (!offered.containsKey(key)) {
          if (ctx.isInterrupted()) throw new TaskKilledException("the round's stage was given up")
          offered.wait(200)
        }
      }
      offered.remove(key)
    }
    // A leader killed before it collected leaves its members' entries: drop this hub's older rounds.
    offered.keySet().asScala.filter(k => k._1 == hub && k._2 < seq).foreach(offered.remove)
    val ids = (own +: results).map(_.heldUpdate)
    val combined = SidecarManager.client().combine(CombineRequest.newBuilder().setRule(rule).addAllHeld(ids.asJava).build())
    own.copy(update = combined.getUpdate.toByteArray, heldUpdate = "", replicas = ids.size)
  }
}
