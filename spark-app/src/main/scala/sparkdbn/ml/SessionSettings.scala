package sparkdbn.ml

import scala.jdk.CollectionConverters._

import org.apache.spark.SparkConf

import sparkdbn.sidecar.{SidecarConf, SidecarMemory}

/**
 * What a session that trains and scores with spark-dbn needs from its Spark conf, decided before the
 * session starts (executors are sized then): the jar's commands and the Python `session()` helper add
 * these to what the user set, and print the warnings. Confs the user set are never changed.
 *
 * @param additions confs to add, the user having set none of them
 * @param warnings  one line each, about confs the user set that work against the run
 */
final case class SessionSettings(additions: Seq[(String, String)], warnings: Seq[String]) {
  def additionsJava: java.util.Map[String, String] = additions.toMap.asJava
  def warningsJava: java.util.List[String] = warnings.asJava
}

object SessionSettings {
  val DirectResultKey = "spark.task.maxDirectResultSize"
  val BroadcastCompressKey = "spark.broadcast.compress"
  val OverheadKey = "spark.executor.memoryOverhead"

  /**
   * For the confs the user gave (`userConf`, with spark.master when known). Throws IllegalArgumentException
   * naming a spark.dbn.* conf that is wrong, as SidecarConf does, before any session exists.
   */
  def plan(userConf: SparkConf): SessionSettings = {
    val sidecar = SidecarConf.fromSparkConf(userConf)
    val add = Seq.newBuilder[(String, String)]
    val warn = Seq.newBuilder[String]
    // A training round's result is a model update (4 bytes a parameter: 1.6 MB for 784-500), over
    // Spark's 1 MiB default for results sent directly; above it, each result takes a trip through
    // the block manager (scripts/bench train: 3.2-3.7 -> 3.0-3.4 s).
    if (!userConf.contains(DirectResultKey)) add += DirectResultKey -> "64m"
    // Every round publishes the model as a broadcast; float32 weights do not compress (LZ4 kept
    // 1538.9 of 1538.9 KiB for 784-500) and compressing them cost 10-16 ms of the driver a round.
    if (!userConf.contains(BroadcastCompressKey)) add += BroadcastCompressKey -> "false"
    // The sidecar lives outside the executor's heap: in the container's overhead on YARN and Kubernetes,
    // added there as Spark adds spark.executor.pyspark.memory (local mode has no executor containers).
    if (!userConf.get("spark.master", "local").startsWith("local")) {
      val sidecarMb = (sidecar.memory + (1L << 20) - 1) >> 20
      userConf.getOption(OverheadKey) match {
        case None => add += OverheadKey -> s"${jvmOverheadMb(userConf) + sidecarMb}m"
        case Some(raw) =>
          val set = userConf.getSizeAsMb(OverheadKey)
          if (set < sidecarMb) warn += s"$OverheadKey=$raw is below ${SidecarConf.MemoryKey}=${SidecarMemory.mib(sidecar.memory)}, " +
            s"which each executor's sidecar alone may use outside the heap: YARN or Kubernetes would kill executors that " +
            s"reach it. Raise $OverheadKey to ${jvmOverheadMb(userConf) + sidecarMb}m (the sidecar's and the JVM's own " +
            s"${jvmOverheadMb(userConf)}m), or lower ${SidecarConf.MemoryKey}"
      }
    }
    SessionSettings(add.result(), warn.result())
  }

  /** For Python (py4j): the user's confs as a map. */
  def planJava(userConf: java.util.Map[String, String]): SessionSettings =
    plan(new SparkConf(false).setAll(userConf.asScala))

  /** Spark's own overhead for the executor JVM: max(minimum, factor x executor memory). */
  private def jvmOverheadMb(conf: SparkConf): Long = {
    val heap = conf.getSizeAsMb("spark.executor.memory", "1g")
    val factor = conf.getDouble("spark.executor.memoryOverheadFactor", 0.10)
    math.max(conf.getSizeAsMb("spark.executor.minMemoryOverhead", "384m"), (heap * factor).toLong)
  }
}
