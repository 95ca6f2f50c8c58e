package sparkdbn.sidecar

import com.google.protobuf.{ByteString, CodedOutputStream}

import sparkdbn.proto.{CacheDataRequest, TransformRequest}

/**
 * proto/sidecar.proto's Alignment: the zero bytes a request's `align` field
 * carries so that its `batch` field starts a multiple of 8 bytes into the gRPC
 * frame. grpc-js gives the sidecar every frame in a buffer of its own starting
 * 8-byte aligned; Arrow JS reads a batch in place only when its body is 8-byte
 * aligned, and copies the whole batch otherwise.
 */
object Alignment {
  /** gRPC's length-prefixed message framing: 1 flag byte and a 4-byte length. */
  private val FramePrefix = 5
  // The field numbers come from the contract; both requests that carry batches number them alike.
  private val AlignField = TransformRequest.ALIGN_FIELD_NUMBER
  private val BatchField = TransformRequest.BATCH_FIELD_NUMBER
  require(CacheDataRequest.ALIGN_FIELD_NUMBER == AlignField && CacheDataRequest.BATCH_FIELD_NUMBER == BatchField,
    "proto/sidecar.proto: CacheDataRequest and TransformRequest must number align and batch alike")
  require(AlignField < BatchField, "proto/sidecar.proto: align must be numbered before batch (fields are written in number order)")
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
