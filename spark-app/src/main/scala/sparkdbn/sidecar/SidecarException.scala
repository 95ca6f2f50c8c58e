package sparkdbn.sidecar

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
