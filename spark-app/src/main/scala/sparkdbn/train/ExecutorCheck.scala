package sparkdbn.train

import org.apache.spark.{SparkContext, SparkEnv}

import sparkdbn.sidecar.SidecarManager

/** One executor's sidecar as it described itself before training: what will train there. */
final case class ExecutorKernels(executor: String, host: String, node: String, kernels: String, blasCore: String,
    simd: String, threads: Int, peakRssBytes: Long) {
  /** "openblas Haswell/avx2, 2 threads", or "ts, 1 thread". */
  def summary: String =
    (if (kernels == "ts") "ts" else s"$kernels $blasCore/$simd") + s", $threads thread${if (threads == 1) "" else "s"}"
}

/**
 * Before the first round, every executor the run's tasks reach starts its sidecar and says which kernels
 * it runs: a sidecar that cannot run the native kernels has already failed its task with the reason
 * (spark.dbn.kernels), so what is left is the table a person reads and the runs table records.
 */
object ExecutorCheck {
  def run(sc: SparkContext, partitions: Int, what: String = "each executor's sidecar and kernels"): Seq[ExecutorKernels] = {
    // The status tracker lists the driver too; in local mode it is the one executor.
    val executors = math.max(1, sc.statusTracker.getExecutorInfos.length - (if (sc.isLocal) 0 else 1))
    val tasks = math.max(partitions, executors)
    sc.setJobDescription(s"spark-dbn: $what")
    try {
      sc.parallelize(0 until tasks, tasks).mapPartitions { _ =>
        val d = SidecarManager.client().describe()
        Iterator(ExecutorKernels(SparkEnv.get.executorId, d.getHostname, d.getNodeVersion, d.getKernels, d.getBlasCore,
          d.getSimd, d.getThreads, d.getMaxRssBytes))
      }.collect().groupBy(_.executor).values.map(_.maxBy(_.peakRssBytes)).toSeq.sortBy(_.executor)
    } finally sc.setJobDescription(null)
  }

  /** The table, a line a row. */
  def lines(rows: Seq[ExecutorKernels]): Seq[String] = {
    val header = Seq("executor", "host", "node", "kernels")
    val cells = rows.map(r => Seq(r.executor, r.host, r.node, r.summary))
    val widths = header.indices.map(i => (header +: cells).map(_(i).length).max)
    (header +: cells).map(row => row.zip(widths).map { case (c, w) => c.padTo(w, ' ') }.mkString("  ").trim)
  }

  /** What the runs table records: each distinct kernel setup, with how many executors ran it. */
  def record(rows: Seq[ExecutorKernels]): String =
    rows.groupBy(_.summary).toSeq.sortBy(_._1).map { case (s, rs) => s"$s on ${rs.size} executor${if (rs.size == 1) "" else "s"}" }
      .mkString("; ")

  /** Each executor's sidecar's peak resident memory (its VmHWM), MiB, as the runs table records it. */
  def peaksMb(rows: Seq[ExecutorKernels]): Map[String, Long] = rows.map(r => r.executor -> peakMb(r)).toMap

  private def peakMb(r: ExecutorKernels): Long = (r.peakRssBytes + (1L << 20) - 1) >> 20

  /** One line: "sidecar peak memory: driver 812m (spark.dbn.sidecar.memory=1536m)". */
  def peaksLine(rows: Seq[ExecutorKernels], budget: Long): String =
    s"sidecar peak memory: ${rows.map(r => s"${r.executor} ${peakMb(r)}m").mkString(", ")} " +
      s"(${sparkdbn.sidecar.SidecarConf.MemoryKey}=${sparkdbn.sidecar.SidecarMemory.mib(budget)})"
}
