package sparkdbn.ml

import java.io.File
import java.nio.file.Files

import scala.concurrent.{Await, Future}
import scala.concurrent.ExecutionContext.Implicits.global
import scala.concurrent.duration._
import scala.jdk.CollectionConverters._

import org.apache.spark.SparkException
import org.apache.spark.ml.param.ParamMap
import org.apache.spark.ml.Pipeline
import org.apache.spark.ml.linalg.{Vector, Vectors}
import org.apache.spark.sql.DataFrame
import org.apache.spark.sql.functions._
import org.scalatest.funsuite.AnyFunSuite

import sparkdbn.testing.LocalSpark

import sparkdbn.model.DbnWeights
import sparkdbn.sidecar.SidecarManager

/** DBNModel over a real local Spark (up to 3 attempts per task) and a real sidecar. */
class DBNModelSpec extends AnyFunSuite with LocalSpark {
  override protected def master: String = "local[2,3]"
  private val snapshot = Files.readAllBytes(new File("../proto/testdata/dbn-v1.avro").toPath)
  private val dir = Files.createTempDirectory("dbn-model-spec")


  /** The naive reference: sigmoid layers, then soft-max, in double. */
  private def forward(p: DbnWeights, x: Array[Double]): (Array[Double], Array[Double]) = {
    var a = x
    p.layers.foreach { l =>
      a = Array.tabulate(l.nHidden) { j =>
        val z = l.hiddenBias(j) + a.indices.map(i => a(i) * l.weights(i * l.nHidden + j)).sum
        1 / (1 + math.exp(-z))
      }
    }
    val o = p.output.get
    val z = Array.tabulate(o.nClasses)(k => o.bias(k) + a.indices.map(i => a(i) * o.weights(i * o.nClasses + k)).sum)
    val m = z.max
    val e = z.map(v => math.exp(v - m))
    (a, e.map(_ / e.sum))
  }

  private def data(rows: Int, partitions: Int): DataFrame = spark.range(rows).repartition(partitions)
    .select(col("id"), array((0 until 4).map(k => rand(k).cast("float")): _*).as("features"))

  test("params: defaults, setters and validation") {
    val m = new DBNModel(snapshot)
    // A Vector by default: what the ML stages after this one take (the CLI's tables keep arrays).
    assert(m.getFeaturesCol == "features" && m.getOutputCol == "dbn_features" && m.getOutputType == "vector")
    assert(m.getBatchRows == 4096 && m.getBatchBytes == 4L * 1024 * 1024 && m.getMaxInFlight == 4)
    assert(m.getInputCols.isEmpty && m.getProbabilityCol == "probability" && m.getPredictionCol == "prediction")
    assert(m.setBatchRows(10).setOutputType("array").getBatchRows == 10)
    intercept[IllegalArgumentException](m.setOutputType("matrix"))
    intercept[IllegalArgumentException](m.setBatchRows(0))
    intercept[IllegalArgumentException](m.setMaxInFlight(0))
    intercept[IllegalArgumentException](m.setOutputCol(""))
    assert(m.numInputs == 4 && m.numFeatures == 2 && m.numClasses == 3)
  }

  test("transform equals the naive forward pass row for row, ids and order kept, batches of 7 rows") {
    val m = new DBNModel(snapshot).setBatchRows(7).setOutputType("array")
    val in = data(1000, 3)
    val out = m.transform(in)
    assert(out.columns.toSeq == Seq("id", "features", "dbn_features", "probability", "prediction"))
    val rows = out.collect()
    assert(rows.length == 1000 && rows.map(_.getLong(0)).toSet.size == 1000)
    // Order within each partition is the input's.
    assert(out.select(spark_partition_id(), col("id")).collect().toSeq ==
      in.select(spark_partition_id(), col("id")).collect().toSeq)
    rows.foreach { r =>
      val x = r.getSeq[Float](1).map(_.toDouble).toArray
      val (h, p) = forward(m.dbn, x)
      val got = r.getSeq[Float](2)
      h.indices.foreach(j => assert(math.abs(got(j) - h(j)) < 1e-5, s"row ${r.getLong(0)}: ${got(j)} vs ${h(j)}"))
      val prob = r.getAs[Vector](3).toArray
      p.indices.foreach(k => assert(math.abs(prob(k) - p(k)) < 1e-5))
      assert(r.getDouble(4) == p.indices.maxBy(p).toDouble)
    }
  }

  test("Vector (dense and sparse), array<double>, numeric column input and vector output give the same features") {
    val base = data(50, 2).cache()
    val viaArray = new DBNModel(snapshot).setOutputType("array").transform(base).select("id", "dbn_features").collect().map(r => r.getLong(0) -> r.getSeq[Float](1)).toMap
    val toVec = udf((a: Seq[Float]) => Vectors.dense(a.map(_.toDouble).toArray))
    val viaVector = new DBNModel(snapshot).setOutputType("vector").setProbabilityCol("").setPredictionCol("")
      .transform(base.withColumn("features", toVec(col("features"))))
    assert(viaVector.columns.toSeq == Seq("id", "features", "dbn_features"))
    viaVector.collect().foreach { r =>
      val a = viaArray(r.getLong(0))
      val v = r.getAs[Vector](2).toArray
      a.indices.foreach(j => assert(math.abs(a(j) - v(j)) < 1e-6))
    }
    // Sparse vectors and dense arrays with one zero a row, in batches of 3 rows written over the
    // previous batch's values: a sparse row's zeros must be written, not left from the row before.
    val holed = base.withColumn("features", udf((id: Long, a: Seq[Float]) => a.updated((id % 4).toInt, 0f)).apply(col("id"), col("features")))
    val holedArray = new DBNModel(snapshot).setOutputType("array").transform(holed).select("id", "dbn_features").collect()
      .map(r => r.getLong(0) -> r.getSeq[Float](1)).toMap
    val toSparse = udf((a: Seq[Float]) => Vectors.dense(a.map(_.toDouble).toArray).toSparse)
    val viaSparse = new DBNModel(snapshot).setBatchRows(3).setOutputType("array").transform(holed.withColumn("features", toSparse(col("features"))))
    viaSparse.select("id", "dbn_features").collect().foreach { r =>
      val a = holedArray(r.getLong(0))
      val v = r.getSeq[Float](1)
      a.indices.foreach(j => assert(math.abs(a(j) - v(j)) < 1e-6, s"row ${r.getLong(0)} unit $j"))
    }
    val viaDoubles = new DBNModel(snapshot).setBatchRows(3).setOutputType("array").transform(base.withColumn("features", col("features").cast("array<double>")))
    viaDoubles.select("id", "dbn_features").collect().foreach { r =>
      val a = viaArray(r.getLong(0))
      val d = r.getSeq[Float](1)
      a.indices.foreach(j => assert(math.abs(a(j) - d(j)) < 1e-6))
    }
    val cols = base.select(col("id") +: (0 until 4).map(k => col("features")(k).as(s"c$k")): _*)
    val viaCols = new DBNModel(snapshot).setInputCols(Array("c0", "c1", "c2", "c3")).setOutputType("array").transform(cols)
    viaCols.select("id", "dbn_features").collect().foreach { r =>
      val a = viaArray(r.getLong(0))
      val c = r.getSeq[Float](1)
      a.indices.foreach(j => assert(math.abs(a(j) - c(j)) < 1e-6))
    }
  }

  test("schema problems are refused in the driver, naming the column") {
    val m = new DBNModel(snapshot)
    def msg(df: DataFrame, model: DBNModel = m) = intercept[IllegalArgumentException](model.transform(df)).getMessage
    assert(msg(spark.range(3).toDF("x")).contains("column 'features' does not exist"))
    assert(msg(spark.range(3).select(col("id").as("features"))).contains("column 'features' is bigint"))
    assert(msg(data(3, 1), new DBNModel(snapshot).setInputCols(Array("id"))).contains("1 input columns given, the model takes 4"))
    assert(msg(data(3, 1).withColumn("dbn_features", lit(1))).contains("output column 'dbn_features' already exists"))
  }

  test("a truncated or corrupt snapshot is refused when the model loads, naming its file (not a generated uid)") {
    val dir = java.nio.file.Files.createTempDirectory("dbn-bad-snapshot")
    val truncated = dir.resolve("truncated.avro")
    java.nio.file.Files.write(truncated, snapshot.take(snapshot.length - 40))
    val e1 = intercept[sparkdbn.model.SnapshotException](DBNModel.fromSnapshot(truncated.toString)).getMessage
    assert(e1.startsWith(s"model snapshot $truncated ") && !e1.contains("dbnModel_"), e1)
    val saved = dir.resolve("saved").toString
    new DBNModel(snapshot).write.save(saved)
    val data = java.nio.file.Paths.get(saved, "data", "model.avro")
    java.nio.file.Files.write(data, "PAR1 not a snapshot".getBytes)
    // Hadoop's local file system keeps a checksum beside the file; a file replaced by hand has none.
    java.nio.file.Files.deleteIfExists(data.resolveSibling(".model.avro.crc"))
    val e2 = intercept[sparkdbn.model.SnapshotException](DBNModel.load(saved)).getMessage
    assert(e2.contains(s"model snapshot ") && e2.contains("data/model.avro is not an Avro object container file"), e2)
  }

  test("bad rows fail the task naming partition and row; the sidecar survives and the next job works") {
    val m = new DBNModel(snapshot)
    val bad = (f: DataFrame => DataFrame) => intercept[SparkException](m.transform(f(data(100, 1))).collect()).getMessage
    val nan = bad(_.withColumn("features", when(col("id") === 42, array(lit(0.5f), lit(Float.NaN), lit(0.5f), lit(0.5f)))
      .otherwise(col("features"))))
    // The sidecar's RowError trailer, typed: the row of the partition and the input named as the user knows it.
    assert(nan.matches("(?s).*partition 0 attempt \\d+: row 42: column 'features' element 1: value is NaN.*"), nan)
    val range = bad(_.withColumn("features", when(col("id") === 7, array(lit(2f), lit(0f), lit(0f), lit(0f))).otherwise(col("features"))))
    assert(range.contains("row 7: column 'features' element 0: value is 2, outside [0, 1]"), range)
    val nul = bad(_.withColumn("features", when(col("id") === 3, lit(null)).otherwise(col("features"))))
    assert(nul.matches("(?s).*partition 0 attempt \\d+: row \\d+: column 'features' is null.*"), nul)
    val hole = bad(_.withColumn("features", when(col("id") === 9, array(lit(0.1f), lit(null).cast("float"), lit(0.1f), lit(0.1f)))
      .otherwise(col("features"))))
    assert(hole.matches("(?s).*row \\d+: column 'features' element 1 is null.*"), hole)
    val short = bad(_.withColumn("features", when(col("id") === 5, array(lit(0.1f))).otherwise(col("features"))))
    assert(short.contains("has an array of 1 values, the model takes 4"), short)
    // With an id column, the bad row is named by its id as well: found by the sidecar (in a batch still
    // awaiting its answer among several: 10 rows a batch, 4 in flight) and by the JVM as it reads.
    val keyed = m.copy(ParamMap.empty).setIdCol("id").setBatchRows(10)
    val badKeyed = (f: DataFrame => DataFrame) => intercept[SparkException](keyed.transform(f(data(100, 1))).collect()).getMessage
    for (at <- Seq(42, 3, 97)) {
      val k = badKeyed(_.withColumn("features", when(col("id") === at, array(lit(0.5f), lit(Float.NaN), lit(0.5f), lit(0.5f)))
        .otherwise(col("features"))))
      assert(k.matches(s"(?s).*partition 0 attempt \\d+: row $at \\(id = $at\\): column 'features' element 1: value is NaN.*"), k)
    }
    val nulKeyed = badKeyed(_.withColumn("features", when(col("id") === 3, lit(null)).otherwise(col("features"))))
    assert(nulKeyed.matches("(?s).*partition 0 attempt \\d+: row 3 \\(id = 3\\): column 'features' is null.*"), nulKeyed)
    assert(m.transform(data(20, 1)).count() == 20)
  }

  test("save and load: params and snapshot round-trip; usable inside a Pipeline") {
    val m = new DBNModel(snapshot).setOutputCol("h").setBatchRows(123).setInputCols(Array("a", "b", "c", "d"))
      .setOutputType("array")
    val path = dir.resolve("model").toString
    m.write.overwrite().save(path)
    val back = DBNModel.load(path)
    // Every param, set or default, as it was.
    // (Params without a default, such as blockLearningRate, are left out while unset.)
    def params(x: DBNModel) = x.params.filter(x.isDefined).map(p => p.name -> (x.getOrDefault(p) match {
      case a: Array[_] => a.toSeq
      case v => v
    })).toMap
    assert(params(back) == params(m))
    assert(back.uid == m.uid && back.getOutputCol == "h" && back.getBatchRows == 123)
    assert(back.getInputCols.toSeq == Seq("a", "b", "c", "d"))
    assert(back.snapshot.sameElements(snapshot))
    val avro = dir.resolve("snap.avro")
    Files.write(avro, snapshot)
    assert(DBNModel.fromSnapshot(avro.toString).numFeatures == 2)
    val pipe = new Pipeline().setStages(Array(new DBNModel(snapshot).setProbabilityCol("").setPredictionCol(""))).fit(data(10, 1))
    assert(pipe.transform(data(10, 1)).columns.contains("dbn_features"))
    // Spark ML's own layout (DefaultParamsWriter's metadata/, the model data under data/): a saved Pipeline
    // holding the model loads with Spark's PipelineModel reader, which reads each stage's metadata/.
    assert(Files.isDirectory(dir.resolve("model").resolve("metadata")))
    assert(Files.isRegularFile(dir.resolve("model").resolve("data").resolve("model.avro")))
    val pipePath = dir.resolve("pipeline").toString
    pipe.write.overwrite().save(pipePath)
    val pipeBack = org.apache.spark.ml.PipelineModel.load(pipePath)
    assert(pipeBack.stages.head.asInstanceOf[DBNModel].snapshot.sameElements(snapshot))
    // A saved Pipeline's model keeps every param (outputType among them) and scores as before.
    val arrayPipe = new Pipeline().setStages(Array(new DBNModel(snapshot).setOutputType("array").setProbabilityCol("")
      .setPredictionCol(""))).fit(data(10, 1))
    arrayPipe.write.overwrite().save(pipePath)
    val arrayBack = org.apache.spark.ml.PipelineModel.load(pipePath)
    assert(params(arrayBack.stages.head.asInstanceOf[DBNModel]) == params(arrayPipe.stages.head.asInstanceOf[DBNModel]))
    def scores(p: org.apache.spark.ml.PipelineModel) =
      p.transform(data(10, 1)).select("id", "dbn_features").collect().map(r => r.getLong(0) -> r.getSeq[Float](1)).toMap
    assert(scores(arrayBack) == scores(arrayPipe))
    // The layout this class wrote before (metadata.json and model.avro) still loads.
    val legacy = Files.createDirectories(dir.resolve("legacy"))
    Files.write(legacy.resolve("model.avro"), snapshot)
    Files.writeString(legacy.resolve("metadata.json"),
      s"""{"class":"sparkdbn.ml.DBNModel","uid":"dbnModel_old","paramMap":{"outputCol":"old_h"}}""")
    val old = DBNModel.load(legacy.toString)
    assert(old.uid == "dbnModel_old" && old.getOutputCol == "old_h" && old.snapshot.sameElements(snapshot))
  }

  test("1,000,000 rows x 784 features stream through: sidecar peak RSS < 512 MiB, live JVM heap < 512 MiB") {
    import java.lang.management.ManagementFactory
    val m = DBNModel.fromSnapshot("../proto/testdata/rbm-784-64.avro").setProbabilityCol("").setPredictionCol("").setOutputType("array")
    val rows = 1000000L
    // Two partitions of 1.5 GiB of floats each, scored at the same time: a side that held a partition would show.
    val df = spark.range(0, rows, 1, 2).select(col("id"),
      array_repeat((col("id") % 101 / 101.0).cast("float"), 784).as("features"))
    // What the JVM keeps alive: heap in use right after a full collection, forced every second while the
    // job runs. (Old-generation usage after young collections counts garbage that G1 has not marked yet:
    // it read 488 MiB here and over 512 MiB on CI for the same job.)
    val memory = ManagementFactory.getMemoryMXBean
    def liveHeap(): Long = { System.gc(); memory.getHeapMemoryUsage.getUsed }
    val before = liveHeap()
    @volatile var running = true
    @volatile var heapPeak = 0L
    val sampler = new Thread(() => while (running) {
      heapPeak = math.max(heapPeak, liveHeap())
      Thread.sleep(1000)
    })
    sampler.start()
    // Aggregate in Spark: nothing is collected, every row is scored.
    val agg = try m.transform(df).agg(count(lit(1)), sum(col("dbn_features")(0))).collect().head
    finally { running = false; sampler.join() }
    assert(agg.getLong(0) == rows)
    val rss = SidecarManager.client().describe().getMaxRssBytes
    info(f"sidecar peak RSS ${rss / 1048576.0}%.0f MiB; live JVM heap ${before / 1048576.0}%.0f MiB before, at most ${heapPeak / 1048576.0}%.0f MiB during the job; ${SidecarManager.client().describe().getUnalignedBatches} unaligned batches")
    // Measured: 135 MiB (the sidecar's own VmHWM; 4 MiB batches, node --initial-old-space-size=256). Before Describe read VmHWM it reported getrusage's maxRSS,
    // which carries the JVM's resident set from before exec: 440 MiB with this suite alone, 774-1040 MiB after
    // the others had grown the JVM, and this bound (then 1 GiB) failed once for no fault of the sidecar's.
    assert(rss < 512L * 1024 * 1024, s"sidecar peak RSS $rss")
    assert(heapPeak < 512L * 1024 * 1024, s"live heap $heapPeak")
    // proto/sidecar.proto's Alignment: every batch reached Arrow JS 8-byte aligned, read in place.
    assert(SidecarManager.client().describe().getUnalignedBatches == 0)
  }

  test("a sidecar killed during a transform: the task in flight goes on with a fresh sidecar and the result is complete") {
    val m = new DBNModel(snapshot).setBatchRows(50).setMaxInFlight(1)
    // Slow enough to kill mid-way: many small batches.
    val in = data(200000, 2)
    val before = SidecarManager.get().pid
    // Killed while a task of the job runs (it was after a fixed sleep, which passed even when the job had
    // finished first): the kill is timed from the task's start and must fall within a task's life. The task
    // re-sends its batches to a fresh sidecar itself (SidecarScoring), or Spark runs it again (local[2,3]).
    val tasks = new java.util.concurrent.ConcurrentLinkedQueue[org.apache.spark.scheduler.TaskInfo]()
    val killedAt = new java.util.concurrent.atomic.AtomicLong(0L)
    // The scoring job's stage (its call site is this file's collect), not an earlier job's.
    val scoring = java.util.concurrent.ConcurrentHashMap.newKeySet[Int]()
    val listener = new org.apache.spark.scheduler.SparkListener {
      override def onStageSubmitted(e: org.apache.spark.scheduler.SparkListenerStageSubmitted): Unit =
        if (e.stageInfo.name.startsWith("collect at DBNModelSpec")) scoring.add(e.stageInfo.stageId)
      override def onTaskStart(e: org.apache.spark.scheduler.SparkListenerTaskStart): Unit =
        if (scoring.contains(e.stageId) && killedAt.compareAndSet(0L, -1L)) Future {
          Thread.sleep(300) // into the task's batches
          killedAt.set(System.currentTimeMillis())
          java.lang.ProcessHandle.of(before).ifPresent(h => h.destroyForcibly())
        }
      override def onTaskEnd(e: org.apache.spark.scheduler.SparkListenerTaskEnd): Unit = if (scoring.contains(e.stageId)) tasks.add(e.taskInfo)
    }
    spark.sparkContext.addSparkListener(listener)
    def spanned = { val k = killedAt.get(); k > 0 && tasks.asScala.exists(t => t.launchTime < k && t.finishTime > k) }
    val out = try {
      val rows = m.transform(in).select("id", "prediction").collect()
      // Listeners hear of task ends asynchronously: give the bus a moment.
      val deadline = System.nanoTime() + 10L * 1000000000L
      while (!spanned && System.nanoTime() < deadline) Thread.sleep(50)
      rows
    } finally spark.sparkContext.removeSparkListener(listener)
    assert(spanned, (killedAt.get(), tasks.asScala.map(t => (t.index, t.attemptNumber, t.launchTime, t.finishTime, t.successful))))
    assert(out.length == 200000 && out.map(_.getLong(0)).toSet.size == 200000)
    assert(SidecarManager.get().pid != before)
  }

  test("a sidecar call is bound to its task: a killed task stops waiting for its Train call at once (no interrupt needed)") {
    val sc = spark.sparkContext
    // A valid round of a version nobody will publish: the sidecar waits up to await_model_ms for it.
    val req = sparkdbn.proto.TrainRequest.newBuilder().setPretrain(sparkdbn.proto.PretrainLayer.newBuilder().setLayer(0)
      .setConfig(new DBN().setLayers(Array(4)).settings("bound").rbmConfig)).setSession("bound/0").setModelVersion("never-published")
      .setBatches(1).setAwaitModelMs(120000).setTask("bound").build().toByteArray
    val started = new java.util.concurrent.CountDownLatch(1)
    val ended = new java.util.concurrent.CompletableFuture[org.apache.spark.TaskEndReason]()
    val listener = new org.apache.spark.scheduler.SparkListener {
      override def onTaskStart(t: org.apache.spark.scheduler.SparkListenerTaskStart): Unit = started.countDown()
      override def onTaskEnd(t: org.apache.spark.scheduler.SparkListenerTaskEnd): Unit = ended.complete(t.reason)
    }
    sc.addSparkListener(listener)
    try {
      val job = Future {
        // interruptOnCancel = false: Spark only flags the task killed; the client's wait must see the flag itself.
        sc.setJobGroup("bound", "a Train call that waits", interruptOnCancel = false)
        sc.parallelize(Seq(1), 1).map(_ => SidecarManager.client().train(sparkdbn.proto.TrainRequest.parseFrom(req)).getRows).collect()
      }
      assert(started.await(60, java.util.concurrent.TimeUnit.SECONDS))
      Thread.sleep(1500) // the call is in flight, the sidecar waiting for the version
      val t0 = System.nanoTime()
      sc.cancelJobGroup("bound")
      intercept[SparkException](Await.result(job, 30.seconds)) // the driver gives the job up at once, whatever the task does
      // The task itself: unbound, it sat out the sidecar's 120 s wait.
      val reason = ended.get(60, java.util.concurrent.TimeUnit.SECONDS)
      val s = (System.nanoTime() - t0) / 1e9
      assert(reason.isInstanceOf[org.apache.spark.TaskKilled], reason.toString)
      assert(s < 15, f"the task ended $s%.1f s after the cancel")
      assert(SidecarManager.client().describe().getPid > 0) // the sidecar serves on
    } finally sc.removeSparkListener(listener)
  }
}
