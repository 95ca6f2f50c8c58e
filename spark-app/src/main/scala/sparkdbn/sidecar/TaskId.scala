package sparkdbn.sidecar

import org.apache.spark.TaskContext

/**
 * The task a sidecar call is made for, as fields (a caller matching on a failure reads them, not a string),
 * and its one label, "stage S partition P attempt A", which the sidecar's RowError and the user's errors carry.
 */
final case class TaskId(stage: Int, partition: Int, attempt: Int) {
  def label: String = s"stage $stage partition $partition attempt $attempt"
}

object TaskId {
  def of(ctx: TaskContext): TaskId = TaskId(ctx.stageId(), ctx.partitionId(), ctx.attemptNumber())
  /** The running task's, or None on the driver. */
  def current: Option[TaskId] = Option(TaskContext.get()).map(of)
}
