package sparkdbn.sidecar

import io.grpc.Status

/**
 * The sidecar could not be started, failed a call or died; the message carries
 * its stderr. Tasks throw it, so it must serialize: a gRPC exception (whose
 * trailers do not) is never kept as the cause, only its status in the message.
 */
class SidecarException(message: String, cause: Throwable = null)
    extends RuntimeException(message, SidecarException.serializableCause(cause))

object SidecarException {
  /** The cause when it is safe to ship from an executor to the driver, else a plain copy of its message. */
  def serializableCause(t: Throwable): Throwable = t match {
    case null => null
    case s: io.grpc.StatusRuntimeException => new RuntimeException(s"gRPC ${s.getStatus.getCode}: ${s.getStatus.getDescription}")
    case s: io.grpc.StatusException => new RuntimeException(s"gRPC ${s.getStatus.getCode}: ${s.getStatus.getDescription}")
    case other => other
  }
}

/** The value a Transform call refused (proto/sidecar.proto's RowError, in the call's trailers): row of the task's batch stream, input column. */
final case class BadValue(row: Long, column: Int, reason: String)

/**
 * One call to the sidecar failed: every status the sidecar answers becomes this one type ([[SidecarClient]]),
 * with what a caller decides on as fields — the call, its gRPC code and description, the task it was made
 * for (None on the driver) and, for a refused value, which — and in the message the process's state and
 * stderr when the failure was not the input's.
 */
final class SidecarCallException(
    val call: String,
    val code: Status.Code,
    val description: String,
    val task: Option[TaskId],
    val badValue: Option[BadValue],
    processState: String)
    extends SidecarException(
      s"$call failed${task.fold("")(t => s" for ${t.label}")}: gRPC $code: $description$processState") {
  /** The sidecar refused the request's content (a bad value, a bad option): the user's error, not the process's. */
  def isBadInput: Boolean = code == Status.Code.INVALID_ARGUMENT
}
