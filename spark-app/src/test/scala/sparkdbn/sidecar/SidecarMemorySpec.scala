package sparkdbn.sidecar

import org.apache.spark.SparkConf
import org.scalatest.funsuite.AnyFunSuite

/** The memory budget's split (closed forms) and its refusals, one line each. */
class SidecarMemorySpec extends AnyFunSuite {
  private val MiB = 1L << 20
  private def conf(kv: (String, String)*) = SidecarConf.fromSparkConf(new SparkConf(false).setAll(kv))
  private def err(kv: (String, String)*) = intercept[IllegalArgumentException](conf(kv: _*)).getMessage

  test("the default budget a newcomer gets: 1536 MiB split into heaps, the process and the row cache") {
    val one = conf() // no master: one training worker
    assert(one.memory == 1536 * MiB && one.trainWorkers == 1)
    // Heaps: 1536/8 = 192 MiB for the main thread, 1536/16 = 96 MiB the one worker; reserve 96 + 48 + 192 + 96.
    assert(one.memoryPlan.mainHeapMb == 192 && one.memoryPlan.workerHeapMb == 96)
    assert(one.cacheBytes == (1536 - 432) * MiB)
    assert(one.nodeFlags == Seq("--max-old-space-size=192"))
    // local[2]: two workers, each with its isolate and half the workers' heap: 96 + 2 x 48 + 192 + 2 x 48 = 480.
    assert(conf("spark.master" -> "local[2]").cacheBytes == (1536 - 480) * MiB)
  }

  test("the heaps follow the budget within their bounds; the cache takes the rest") {
    def plan(mb: Long, workers: Int) = SidecarMemory(mb * MiB, workers)
    assert(plan(256, 1).mainHeapMb == 64 && plan(256, 1).workerHeapMb == 32)
    assert(plan(1024, 1).mainHeapMb == 128 && plan(1024, 1).workerHeapMb == 64)
    assert(plan(8192, 4).mainHeapMb == 256 && plan(8192, 4).workerHeapMb == 128)
    assert(plan(1536, 2).workerHeapMb == 48 && plan(1536, 8).workerHeapMb == 32)
    assert(plan(8192, 4).cacheBytes == (8192 - 96 - 4 * 48 - 256 - 4 * 128) * MiB)
    // At the minimum the cache is exactly the least one.
    for (w <- Seq(1, 2, 8, 32)) {
      val min = SidecarMemory.minimumBytes(w)
      assert(SidecarMemory(min, w).cacheBytes >= SidecarMemory.MinCacheBytes)
      assert(SidecarMemory(min - MiB, w).cacheBytes < SidecarMemory.MinCacheBytes)
    }
    assert(SidecarMemory.minimumBytes(2) == 336 * MiB)
    // The budget a cache needs: 64m of cache for two workers at 384m (heaps at their floors); 1 GiB of cache at 1494m
    // (b - 96 - 2 x 48 - floor(b / 8) - 2 x max(32, floor(b / 32)) >= 1024: 1494 - 96 - 96 - 186 - 92 = 1024).
    assert(SidecarMemory.budgetFor(64 * MiB, 2) == 384 * MiB)
    assert(SidecarMemory.budgetFor(1024 * MiB, 2) == 1494 * MiB)
    // Eight workers: the main heap is past its floor there (b / 8 > 64): b - floor(b / 8) >= 96 + 8 x 48 + 8 x 32 + 16 = 752.
    assert(SidecarMemory.minimumBytes(8) == 859 * MiB)
  }

  test("a budget that is not a size, not positive, or below an empty sidecar's needs: one line naming the conf") {
    assert(err("spark.dbn.sidecar.memory" -> "lots") == "spark.dbn.sidecar.memory=lots: expected a size such as 2g or 1536m")
    assert(err("spark.dbn.sidecar.memory" -> "0") == "spark.dbn.sidecar.memory=0: expected a size such as 2g or 1536m")
    assert(err("spark.dbn.sidecar.memory" -> "-1g").startsWith("spark.dbn.sidecar.memory=-1g: expected a size"))
    assert(err("spark.dbn.sidecar.memory" -> "300m", "spark.master" -> "local[2]") == "spark.dbn.sidecar.memory=300m is below " +
      "what a sidecar with 2 training workers needs: at least 336m (Node and its heaps, and the least row cache)")
    assert(conf("spark.dbn.sidecar.memory" -> "336m", "spark.master" -> "local[2]").cacheBytes == 16 * MiB)
  }

  test("confs that contradict the budget: a cache above its share, a heap flag of node's own") {
    assert(err("spark.dbn.sidecar.cacheBytes" -> "2g") == "spark.dbn.sidecar.cacheBytes=2048m contradicts " +
      "spark.dbn.sidecar.memory=1536m, whose share for the row cache is 1104m: raise spark.dbn.sidecar.memory, or leave " +
      "spark.dbn.sidecar.cacheBytes unset")
    assert(conf("spark.dbn.sidecar.cacheBytes" -> "24m").cacheBytes == 24 * MiB)
    assert(err("spark.dbn.sidecar.nodeOptions" -> "--max-old-space-size=4096") == "spark.dbn.sidecar.nodeOptions: " +
      "'--max-old-space-size=4096' contradicts spark.dbn.sidecar.memory, which sets the heap (--max-old-space-size=192 of " +
      "1536m): set spark.dbn.sidecar.memory instead")
    // Other node flags come after the budget's.
    assert(conf("spark.dbn.sidecar.nodeOptions" -> "--max-semi-space-size=32").nodeFlags.last == "--max-semi-space-size=32")
  }
}
