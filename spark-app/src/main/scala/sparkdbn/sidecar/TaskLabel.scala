package sparkdbn.sidecar

import org.apache.spark.TaskContext

/**
 * How a task names itself to its sidecar and in its errors, in one format for every job:
 * "stage S partition P attempt A" (the sidecar's RowError and a user's exception carry it).
 */
object TaskLabel {
  def apply(ctx: TaskContext): String = s"stage ${ctx.stageId()} partition ${ctx.partitionId()} attempt ${ctx.attemptNumber()}"
}
