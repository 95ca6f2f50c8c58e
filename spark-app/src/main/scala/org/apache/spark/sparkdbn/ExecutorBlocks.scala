package org.apache.spark.sparkdbn

import java.nio.ByteBuffer

import org.apache.spark.SparkEnv
import org.apache.spark.storage.{StorageLevel, TestBlockId}
import org.apache.spark.util.io.ChunkedByteBuffer

/**
 * Bytes one executor leaves for another, through Spark's block managers (as TorrentBroadcast passes its
 * pieces): an executor's combined round update for the executor that combines it further (ExecutorCombine's
 * tree), fetched over Spark's block transfer service with its authentication and encryption. The second use of
 * Spark internals besides DriverRpc; TestBlockId is the one block id of free form Spark has.
 */
object ExecutorBlocks {
  private def id(name: String) = TestBlockId(s"sparkdbn-$name")

  /**
   * Keeps `bytes` in this executor's block manager under `name`, known to the driver's block manager master; a
   * serialised level, so that the bytes are kept as they are (as TorrentBroadcast keeps its pieces).
   */
  def put(name: String, bytes: Array[Byte]): Unit = {
    val bm = SparkEnv.get.blockManager
    if (!bm.putBytes(id(name), new ChunkedByteBuffer(ByteBuffer.wrap(bytes)), StorageLevel.MEMORY_AND_DISK_SER, tellMaster = true)) {
      throw new IllegalStateException(s"block manager of executor ${SparkEnv.get.executorId} refused block $name (${bytes.length} bytes)")
    }
  }

  /** The bytes another executor put under `name` (None: no executor holds them). */
  def fetch(name: String): Option[Array[Byte]] =
    SparkEnv.get.blockManager.getRemoteBytes(id(name)).map(_.toArray)

  /** Drops a block this executor put (nothing when it has none). */
  def remove(name: String): Unit = SparkEnv.get.blockManager.removeBlock(id(name), tellMaster = true)
}
