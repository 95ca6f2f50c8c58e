package sparkdbn.sidecar

import org.apache.spark.SparkConf

/**
 * How an executor starts and talks to its sidecar. Read from the Spark conf,
 * so every executor of an application uses the same settings.
 *
 * @param nodeBinary     `spark.dbn.node`: the node executable, a path or a name on PATH.
 * @param startTimeoutMs `spark.dbn.sidecar.startTimeout`: from process start to health SERVING.
 * @param maxMessageBytes `spark.dbn.sidecar.maxMessageBytes`: largest gRPC message either way.
 * @param extraEnv       environment added to the sidecar's (tests use it to inject faults).
 * @param threads        `spark.dbn.sidecar.threads`: threads of the sidecar's kernels; by default
 *                       the executor's cores (`spark.executor.cores`, or N of `local[N]`), so that
 *                       one sidecar serving all of an executor's tasks uses its cores, and no more.
 * @param taskCpus       `spark.task.cpus`: training runs one worker thread per task slot
 *                       (threads / taskCpus of them), each with taskCpus BLAS threads.
 * @param memory         `spark.dbn.sidecar.memory`: the memory the sidecar keeps within, split by
 *                       SidecarMemory into its heaps and its row cache, and declared to the cluster
 *                       manager with the executor's (ml.SessionSettings).
 * @param cacheBytesSet  `spark.dbn.sidecar.cacheBytes`, when set: the row cache's size in place of the
 *                       budget's share (never above it). Beyond the cache the least recently used
 *                       partition is dropped and its next task sends its rows again.
 * @param nodeOptions    `spark.dbn.sidecar.nodeOptions`: flags for node before the sidecar's
 *                       script, space-separated, after the heap flags the budget sets.
 * @param callTimeoutMs  `spark.dbn.sidecar.callTimeout`: the deadline of every short call (sending a model,
 *                       describing, initialising a layer, merging, fetching a model, drawing a report).
 *                       Training rounds and streams have none: they last as long as their data and end
 *                       with their task or the process (SidecarClient).
 * @param kernels        `spark.dbn.kernels`: `native` (the default: a sidecar that cannot load the native
 *                       kernels fails its task, saying why) or `ts` (the TypeScript kernels, ~100x slower).
 * @param nodeExplicit   whether `spark.dbn.node` was set: then it runs the sidecar even where a runtime
 *                       archive brings a Node of its own (SidecarRuntime).
 * @param roundsInOneStage `spark.dbn.roundsInOneStage`: sync training runs a topic's rounds in one
 *                       barrier stage when the partitions fit the task slots (true, the default), or
 *                       one Spark job per round (false: the way before, for comparison).
 * @param combineUpdates `spark.dbn.combineUpdates`: in a sync round's stage off local mode, a round's updates
 *                       are combined before the driver (in each executor's sidecar, then in a tree of
 *                       executors), so that one update a round reaches it (true, the default), or each
 *                       replica sends its own (false).
 */
final case class SidecarConf(
    nodeBinary: String = SidecarConf.DefaultNode,
    startTimeoutMs: Long = SidecarConf.DefaultStartTimeoutMs,
    maxMessageBytes: Int = SidecarConf.DefaultMaxMessageBytes,
    extraEnv: Map[String, String] = Map.empty,
    threads: Int = 1,
    taskCpus: Int = 1,
    memory: Long = SidecarMemory.DefaultBytes,
    cacheBytesSet: Option[Long] = None,
    nodeOptions: Seq[String] = Nil,
    roundsInOneStage: Boolean = true,
    combineUpdates: Boolean = true,
    callTimeoutMs: Long = SidecarConf.DefaultCallTimeoutMs,
    kernels: sparkdbn.proto.Kernels = sparkdbn.proto.Kernels.KERNELS_NATIVE,
    nodeExplicit: Boolean = false) {

  def trainWorkers: Int = math.max(1, threads / taskCpus)

  /** How the budget splits for this sidecar's workers. */
  def memoryPlan: SidecarMemory = SidecarMemory(memory, trainWorkers)

  /** The row cache's size: the one set, else the budget's share. */
  def cacheBytes: Long = cacheBytesSet.getOrElse(memoryPlan.cacheBytes)

  /** Node's flags: the heap caps of the budget, then the user's. */
  def nodeFlags: Seq[String] = memoryPlan.nodeOptions ++ nodeOptions

  def validate(): this.type = {
    require(nodeBinary.trim.nonEmpty, s"${SidecarConf.NodeKey} must not be empty")
    require(startTimeoutMs > 0, s"${SidecarConf.StartTimeoutKey} must be positive, got ${startTimeoutMs}ms")
    require(callTimeoutMs > 0, s"${SidecarConf.CallTimeoutKey} must be positive, got ${callTimeoutMs}ms")
    require(EngineSpec.launch("max_receive_message_bytes").contains(maxMessageBytes.toDouble),
      s"${SidecarConf.MaxMessageBytesKey} must be in ${EngineSpec.launch("max_receive_message_bytes").rangeText}, got $maxMessageBytes")
    require(threads >= 1 && threads <= 256, s"${SidecarConf.ThreadsKey} must be in [1, 256], got $threads")
    require(taskCpus >= 1 && taskCpus <= 256, s"spark.task.cpus must be in [1, 256], got $taskCpus")
    nodeOptions.foreach { o =>
      require(o.startsWith("-") && !o.exists(_.isWhitespace),
        s"${SidecarConf.NodeOptionsKey}: '$o' is not a node flag (each starts with '-', flags separated by spaces)")
    }
    checkMemory()
    this
  }

  /** The budget against what a sidecar needs, and the confs that must agree with it: one line each. */
  private def checkMemory(): Unit = {
    import SidecarMemory.mib
    val (mem, min) = (SidecarConf.MemoryKey, SidecarMemory.minimumBytes(trainWorkers))
    if (memory < min) throw new IllegalArgumentException(s"$mem=${mib(memory)} is below what a sidecar with $trainWorkers " +
      s"training worker${if (trainWorkers == 1) "" else "s"} needs: at least ${mib(min)} (Node and its heaps, and the least row cache)")
    cacheBytesSet.foreach { c =>
      if (c < 0 || c > memoryPlan.cacheBytes) throw new IllegalArgumentException(s"${SidecarConf.CacheBytesKey}=${mib(c)} " +
        s"contradicts $mem=${mib(memory)}, whose share for the row cache is ${mib(memoryPlan.cacheBytes)}: raise $mem, " +
        s"or leave ${SidecarConf.CacheBytesKey} unset")
    }
    nodeOptions.find(_.startsWith("--max-old-space-size")).foreach { o =>
      throw new IllegalArgumentException(s"${SidecarConf.NodeOptionsKey}: '$o' contradicts $mem, which sets the heap " +
        s"(--max-old-space-size=${memoryPlan.mainHeapMb} of ${mib(memory)}): set $mem instead")
    }
  }
}

object SidecarConf {
  val NodeKey = "spark.dbn.node"
  val StartTimeoutKey = "spark.dbn.sidecar.startTimeout"
  val MaxMessageBytesKey = "spark.dbn.sidecar.maxMessageBytes"
  val EnvPrefix = "spark.dbn.sidecar.env."
  val ThreadsKey = "spark.dbn.sidecar.threads"
  val CacheBytesKey = "spark.dbn.sidecar.cacheBytes"
  val MemoryKey = "spark.dbn.sidecar.memory"
  val NodeOptionsKey = "spark.dbn.sidecar.nodeOptions"
  val RoundsInOneStageKey = "spark.dbn.roundsInOneStage"
  val CombineUpdatesKey = "spark.dbn.combineUpdates"
  val CallTimeoutKey = "spark.dbn.sidecar.callTimeout"
  val KernelsKey = "spark.dbn.kernels"

  val DefaultNode = "node"
  val DefaultStartTimeoutMs = 30000L
  val DefaultCallTimeoutMs = 600000L
  // proto/sidecar.proto's SidecarLaunch owns these (the sidecar takes the same when a field is unset).
  private def launch(field: String) = EngineSpec.launch(field)
  val DefaultMaxMessageBytes: Int = launch("max_receive_message_bytes").default.toInt

  /** Every spark.dbn.* key this project reads (and the prefix of the sidecar's environment). */
  val Keys: Seq[String] = Seq(NodeKey, StartTimeoutKey, MaxMessageBytesKey, ThreadsKey, MemoryKey, CacheBytesKey, NodeOptionsKey,
    RoundsInOneStageKey, CombineUpdatesKey, CallTimeoutKey, KernelsKey)

  /**
   * The one place spark.dbn.* confs are read: each parsed by its type, an unknown spark.dbn.* key refused
   * (a typo would otherwise be ignored), and every error an IllegalArgumentException naming the key, the
   * value given and what is accepted. The driver calls it before any work; executors, to start sidecars.
   */
  def fromSparkConf(conf: SparkConf): SidecarConf = {
    conf.getAll.map(_._1).filter(k => k.startsWith("spark.dbn.") && !Keys.contains(k) && !k.startsWith(EnvPrefix)).sorted
      .headOption.foreach { k =>
        throw new IllegalArgumentException(s"$k is not a spark-dbn conf; they are ${Keys.mkString(", ")} and $EnvPrefix<NAME>")
      }
    def read[T](key: String, accepted: String, default: => T)(parse: String => T)(ok: T => Boolean): T =
      conf.getOption(key).fold(default) { raw =>
        val v = try parse(raw.trim) catch {
          case scala.util.control.NonFatal(_) => throw new IllegalArgumentException(s"$key=$raw: expected $accepted")
        }
        if (!ok(v)) throw new IllegalArgumentException(s"$key=$raw: expected $accepted")
        v
      }
    def bytes(s: String): Long = org.apache.spark.network.util.JavaUtils.byteStringAsBytes(s)
    SidecarConf(
      nodeBinary = read(NodeKey, "the node executable (a path, or a name on PATH)", DefaultNode)(identity)(_.nonEmpty),
      startTimeoutMs = read(StartTimeoutKey, "a positive duration such as 30s or 500ms", DefaultStartTimeoutMs)(
        org.apache.spark.network.util.JavaUtils.timeStringAsMs)(_ > 0),
      maxMessageBytes = read(MaxMessageBytesKey, "a size from 1k to 2047m, such as 64m", DefaultMaxMessageBytes)(
        v => { val b = bytes(v); if (b > Int.MaxValue) throw new IllegalArgumentException(); b.toInt })(_ >= 1024),
      extraEnv = conf.getAllWithPrefix(EnvPrefix).toMap,
      threads = read(ThreadsKey, "an integer from 1 to 256", executorCores(conf))(_.toInt)(t => t >= 1 && t <= 256),
      taskCpus = read("spark.task.cpus", "an integer from 1 to 256", 1)(_.toInt)(t => t >= 1 && t <= 256),
      memory = read(MemoryKey, "a size such as 2g or 1536m", SidecarMemory.DefaultBytes)(bytes)(_ > 0),
      cacheBytesSet = read(CacheBytesKey, "a size such as 2g or 512m", Option.empty[Long])(v => Some(bytes(v)))(_.forall(_ >= 0)),
      nodeOptions = read(NodeOptionsKey, "node flags separated by spaces, each starting with '-'", Seq.empty[String])(
        _.split("\\s+").toSeq.filter(_.nonEmpty))(_ => true), // validate() names a bad flag
      roundsInOneStage = read(RoundsInOneStageKey, "true or false", true)(_.toBoolean)(_ => true),
      combineUpdates = read(CombineUpdatesKey, "true or false", true)(_.toBoolean)(_ => true),
      callTimeoutMs = read(CallTimeoutKey, "a positive duration such as 10min or 30s", DefaultCallTimeoutMs)(
        org.apache.spark.network.util.JavaUtils.timeStringAsMs)(_ > 0),
      kernels = read(KernelsKey, "native or ts", sparkdbn.proto.Kernels.KERNELS_NATIVE)(v =>
        sparkdbn.proto.Kernels.valueOf("KERNELS_" + v.toUpperCase(java.util.Locale.ROOT)))(
        k => k == sparkdbn.proto.Kernels.KERNELS_NATIVE || k == sparkdbn.proto.Kernels.KERNELS_TS),
      nodeExplicit = conf.contains(NodeKey)
    ).validate()
  }

  private val LocalN = """local\[(\d+|\*)(?:,\d+)?\]""".r

  /** The cores one executor has: spark.executor.cores, or N of local[N] (local mode has one executor). */
  def executorCores(conf: SparkConf): Int = conf.getOption("spark.executor.cores").map(_.toInt).getOrElse {
    conf.get("spark.master", "local[1]") match {
      case LocalN("*") => Runtime.getRuntime.availableProcessors()
      case LocalN(n) => n.toInt
      case "local" => 1
      case _ => 1
    }
  }
}
