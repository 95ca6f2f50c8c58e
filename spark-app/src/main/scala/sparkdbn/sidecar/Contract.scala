package sparkdbn.sidecar

import sparkdbn.proto.{ContractLiterals, SidecarProto}

/**
 * The contract's fixed words and sizes (an environment variable, metadata keys, the HTTP/2 window), as
 * proto/sidecar.proto's ContractLiterals writes them once (the sidecar reads the same, generated into
 * ts/gen/contract.ts).
 */
object Contract {
  private def literal(field: String): String = {
    val f = ContractLiterals.getDescriptor.findFieldByName(field)
    require(f != null && f.getOptions.hasExtension(SidecarProto.literal), s"proto/sidecar.proto: ContractLiterals.$field has no (literal)")
    f.getOptions.getExtension(SidecarProto.literal)
  }

  /** The environment variable that carries a sidecar's SidecarLaunch. */
  val LaunchEnv: String = literal("launch_env")
  /** The start of the line a sidecar writes once it serves. */
  val ReadyPrefix: String = literal("ready_prefix")
  /** The metadata key of the secret every call carries. */
  val SecretMetadata: String = literal("secret_metadata")
  /** The trailer of a Transform call a bad value ended (a RowError). */
  val RowErrorTrailer: String = literal("row_error_trailer")
  /** Both sides' HTTP/2 receive window, bytes. */
  val ReceiveWindowBytes: Int = literal("receive_window_bytes").toInt
}
