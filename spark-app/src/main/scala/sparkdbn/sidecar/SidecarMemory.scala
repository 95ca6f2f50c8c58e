package sparkdbn.sidecar

/**
 * How one sidecar's memory budget (`spark.dbn.sidecar.memory`) splits: a fixed part for the process
 * (Node, the native kernels and OpenBLAS, gRPC; more for each training worker), V8 heap caps for the
 * main thread and each worker, and the rest for the row cache (rows and the upper layers' inputs
 * derived from them). The one owner of this rule: the sidecar is told the caps and the cache size.
 *
 * @param budget  bytes the sidecar keeps within
 * @param workers its training worker threads (the executor's task slots)
 */
final case class SidecarMemory(budget: Long, workers: Int) {
  import SidecarMemory._

  /** V8 old-space cap of the main thread, MiB: an eighth of the budget, 64 to 256. */
  def mainHeapMb: Int = clamp(budget / 8 >> 20, 64, 256)

  /** V8 old-space cap of each training worker, MiB: the workers share a sixteenth of the budget, 32 to 128 each. */
  def workerHeapMb: Int = clamp(budget / (16L * workers) >> 20, 32, 128)

  /** What the process takes besides its cache: the fixed part and the heaps at their caps. */
  def reserveBytes: Long = ProcessBytes + workers * WorkerBytes + (mainHeapMb.toLong << 20) + workers * (workerHeapMb.toLong << 20)

  /** The row cache's share: the budget less the reserve (negative when the budget is too small). */
  def cacheBytes: Long = budget - reserveBytes

  /**
   * Node flags that hold the main thread's heap to its cap. Not also starting it there: V8 then lets garbage
   * fill the whole cap before it collects, and a long run's resident size creeps up for thousands of rounds.
   */
  def nodeOptions: Seq[String] = Seq(s"--max-old-space-size=$mainHeapMb")
}

object SidecarMemory {
  /** An idle sidecar's resident memory (66 MB measured: Node, the addon, OpenBLAS, gRPC), with room. */
  val ProcessBytes: Long = 96L << 20
  /** A training worker's isolate and its BLAS thread's buffers, besides its heap. */
  val WorkerBytes: Long = 48L << 20
  /** The least cache that lets a sidecar train at all. */
  val MinCacheBytes: Long = 16L << 20
  /** The default budget: what the main job (784-500-500-2000, 60,000 rows, local[2]) needs, with room (bench/README, memory). */
  val DefaultBytes: Long = 1536L << 20

  private def clamp(v: Long, lo: Int, hi: Int): Int = math.max(lo.toLong, math.min(hi.toLong, v)).toInt

  /** The least budget for `workers` training workers: the one that leaves them the least cache. */
  def minimumBytes(workers: Int): Long = budgetFor(MinCacheBytes, workers)

  /** The least budget, in whole MiB, whose cache holds `cache` bytes (the reserve grows with the budget, slower). */
  def budgetFor(cache: Long, workers: Int): Long = {
    var b = (ProcessBytes + workers * WorkerBytes + (64L << 20) + workers * (32L << 20) + cache + (1L << 20) - 1) >> 20 << 20
    while (SidecarMemory(b, workers).cacheBytes < cache) b += 1L << 20
    b
  }

  def mib(bytes: Long): String = s"${(bytes + (1L << 20) - 1) >> 20}m"
}
