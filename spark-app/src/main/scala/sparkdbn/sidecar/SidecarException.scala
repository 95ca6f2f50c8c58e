package sparkdbn.sidecar

/** The sidecar could not be started or died; the message carries its stderr. */
class SidecarException(message: String, cause: Throwable = null) extends RuntimeException(message, cause)
