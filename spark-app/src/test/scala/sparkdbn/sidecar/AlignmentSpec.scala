package sparkdbn.sidecar

import com.google.protobuf.ByteString
import org.scalatest.funsuite.AnyFunSuite

import sparkdbn.proto.{CacheDataRequest, TransformRequest}

class AlignmentSpec extends AnyFunSuite {
  // Every batch length whose length prefix takes 1 to 4 bytes, and each residue modulo 8 around them.
  private val sizes = (0 until 300) ++ (16370 until 16400) ++ (2097140 until 2097160) ++ (8388600 until 8388616)

  test("a batch starts a multiple of 8 bytes into its gRPC frame, in both requests that carry one, for any length") {
    for (n <- sizes) {
      val batch = ByteString.copyFrom(new Array[Byte](n))
      val pad = Alignment.pad(n)
      for ((what, bytes) <- Seq(
          "TransformRequest" -> TransformRequest.newBuilder().setAlign(pad).setBatch(batch).build().toByteArray,
          "CacheDataRequest" -> CacheDataRequest.newBuilder().setAlign(pad).setBatch(batch).build().toByteArray)) {
        // The frame is a 5-byte prefix, then the message; the batch is the message's last n bytes.
        val offset = 5 + bytes.length - n
        assert(offset % 8 == 0, s"$what with a $n-byte batch: the batch starts at byte $offset of the frame")
        assert(pad.size <= 10, s"$what: ${pad.size} bytes of padding")
      }
    }
  }
}
