package sparkdbn.sidecar

import com.google.protobuf.{ByteString, CodedOutputStream}

/**
 * proto/sidecar.proto's Alignment: the zero bytes a request's `align` field
 * (number 2) carries so that its `batch` field (number 3) starts a multiple of
 * 8 bytes into the gRPC frame. grpc-js gives the sidecar every frame in a
 * buffer of its own starting 8-byte aligned; Arrow JS reads a batch in place
 * only when its body is 8-byte aligned, and copies the whole batch otherwise.
 */
object Alignment {
  /** gRPC's length-prefixed message framing: 1 flag byte and a 4-byte length. */
  private val FramePrefix = 5
  private val BatchField = 3
  private val AlignField = 2
  private val pads = Array.tabulate(11)(k => ByteString.copyFrom(new Array[Byte](k)))

  /** The `align` value for a request whose only other field is a `batch` of batchBytes bytes. */
  def pad(batchBytes: Int): ByteString = {
    val before = FramePrefix + CodedOutputStream.computeTagSize(BatchField) + CodedOutputStream.computeUInt32SizeNoTag(batchBytes)
    val need = (8 - before % 8) % 8
    if (need == 0) return ByteString.EMPTY
    // An empty `align` is not written at all (proto3), so the field costs its tag and one length byte
    // on top of its k bytes: the smallest such size that is `need` modulo 8.
    val overhead = CodedOutputStream.computeTagSize(AlignField) + 1
    val k = if (need >= overhead) need - overhead else need + 8 - overhead
    pads(k)
  }

}
