package sparkdbn.jobs

import java.nio.file.{Files, Paths, StandardCopyOption}

import scala.jdk.CollectionConverters._

import com.google.protobuf.UnsafeByteOperations
import org.apache.spark.ml.linalg.Vector
import org.apache.spark.sql.{DataFrame, Row, SparkSession}
import org.apache.spark.sql.functions._

import sparkdbn.io.Inputs
import sparkdbn.ml.{DBNModel, DBNModelLoader}
import sparkdbn.proto.{ReportMistake, ReportRequest, ReportRound, ReportSetting}
import sparkdbn.sidecar.SidecarManager
import sparkdbn.train.RunTables

/**
 * `report`: a finished run as one self-contained HTML page, rebuilt from its tables and its model
 * (`train --report DIR` writes the same page at the end of a run). The figures come from the run's
 * tables, the test set's confusion matrix and mistakes from scoring `--test-input` with the model;
 * the page itself (charts, filters, samples from the model) is drawn by the engine, in the driver's
 * sidecar.
 */
object ReportJob {
  val opts: Seq[Opt] = Seq(
    Opt("run-id", "the run to report on", required = true),
    Opt("table-prefix", "the run's tables: <prefix>_runs, <prefix>_rounds", Some("dbn")),
    Opt("model", "the run's model: a saved DBNModel directory (train --model-out) or an engine snapshot (.avro)", required = true),
    Opt("out", "directory for report.html (created; a report.html there is replaced)", required = true),
    Opt("test-input", "labelled data to test the model on, for the confusion matrix and examples of mistakes"),
    Opt("format", "format of --test-input: parquet or csv", Some("parquet")),
    Opt("label-col", "label column of --test-input", Some("label")),
    Opt("features-col", "input column of --test-input", Some("features")))

  def run(spark: SparkSession, a: Args): Unit = {
    val model = DBNModelLoader.load(a("model")).setFeaturesCol(a("features-col"))
    val test = a.get("test-input").map(p => Inputs.read(spark, p, a("format")))
    val path = write(spark, a("run-id"), a("table-prefix"), model, test.map(_ -> a("label-col")), a("out"))
    println(s"report: wrote $path")
  }

  /** Mistakes shown as images: enough to see what goes wrong, few enough for a page. */
  private val MistakesShown = 24

  /** Writes `outDir`/report.html for run `runId`; answers its path. */
  def write(spark: SparkSession, runId: String, prefix: String, model: DBNModel, test: Option[(DataFrame, String)],
      outDir: String): String = {
    val runs = spark.table(RunTables.runs(prefix)).where(col("run_id") === runId).orderBy(col("ended_at").desc).limit(1).collect()
    val run = runs.headOption.getOrElse(throw new UsageException(s"report: no run '$runId' in ${RunTables.runs(prefix)}"))
    val req = ReportRequest.newBuilder().setSnapshot(UnsafeByteOperations.unsafeWrap(model.snapshot)).setRunId(runId)
    def setting(name: String, value: Any): Unit =
      req.addSettings(ReportSetting.newBuilder().setName(name).setValue(String.valueOf(value)))
    Seq("status", "sizes", "rows", "partitions", "seconds", "rounds", "versions_published", "accuracy")
      .foreach(f => setting(f, Option(run.getAs[Any](f)).getOrElse("")))
    run.getAs[String]("params").split(", ").map(_.split("=", 2)).foreach {
      case Array(k, v) => setting(k, v)
      case other => setting(other.mkString, "")
    }
    spark.table(RunTables.roundsTable(prefix)).where(col("run_id") === runId).collect().foreach { r =>
      val b = ReportRound.newBuilder().setTopic(r.getAs[String]("topic")).setLayer(r.getAs[Int]("layer"))
        .setRound(r.getAs[Int]("round")).setEpoch(r.getAs[Int]("epoch")).setPartition(r.getAs[Int]("partition"))
        .setExecutor(r.getAs[String]("executor")).setTrainSeconds(r.getAs[Double]("train_seconds"))
        .setRoundSeconds(r.getAs[Double]("round_seconds")).setMergeSeconds(r.getAs[Double]("merge_seconds"))
        .setPublishSeconds(r.getAs[Double]("publish_seconds")).setTimestampMs(r.getAs[Long]("timestamp_ms"))
        .setMerged(r.getAs[String]("status") == "merged")
      // NULL (and NaN, in tables written before NULLs) means the figure does not apply to the round.
      def figure(c: String)(set: Double => Any): Unit =
        Option(r.getAs[java.lang.Double](c)).map(_.doubleValue).filterNot(_.isNaN).foreach(set)
      figure("reconstruction_error")(b.setReconstructionError)
      figure("free_energy")(b.setFreeEnergy)
      if (r.schema.fieldNames.contains("held_out_free_energy")) figure("held_out_free_energy")(b.setHeldOutFreeEnergy)
      figure("loss")(b.setLoss)
      figure("accuracy")(b.setAccuracy)
      req.addRounds(b)
    }
    val nInputs = model.dbn.sizes.head
    val side = math.round(math.sqrt(nInputs.toDouble)).toInt
    req.setImageSide(if (side * side == nInputs) side else 0)
    test.filter(_ => model.numClasses > 0).foreach { case (df, label) =>
      if (!df.columns.contains(label)) throw new UsageException(s"report: --test-input has no label column '$label'")
      val k = model.numClasses
      val scored = model.transform(df).select(col(label).cast("int").as("label"), col(model.getPredictionCol).cast("int").as("prediction"),
        col(model.getFeaturesCol).as("features")).cache()
      try {
        val counts = new Array[Long](k * k)
        scored.groupBy("label", "prediction").count().collect().foreach { r =>
          val (t, p) = (r.getInt(0), r.getInt(1))
          if (t < 0 || t >= k) throw new IllegalArgumentException(s"report: --test-input's label $t is not one of the model's $k classes")
          counts(t * k + p) += r.getLong(2)
        }
        req.setClasses(k).addAllConfusion(counts.map(java.lang.Long.valueOf).toSeq.asJava)
        scored.where(col("label") =!= col("prediction")).limit(MistakesShown).collect().foreach { r =>
          req.addMistakes(ReportMistake.newBuilder().setLabel(r.getInt(0)).setPrediction(r.getInt(1))
            .addAllPixels(pixels(r).map(java.lang.Float.valueOf).toSeq.asJava))
        }
      } finally scored.unpersist()
    }
    val html = SidecarManager.client().report(req.build()).getHtml.toByteArray
    // Written beside, then moved: a failure leaves the previous report (or none), never half a page.
    val dir = Paths.get(outDir)
    Files.createDirectories(dir)
    val tmp = Files.createTempFile(dir, ".report-", ".html")
    Files.write(tmp, html)
    // A temporary file is the owner's alone; a report is for reading like any other output.
    try Files.setPosixFilePermissions(tmp, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"))
    catch { case _: UnsupportedOperationException => () }
    val path = dir.resolve("report.html")
    Files.move(tmp, path, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE)
    path.toAbsolutePath.toString
  }

  private def pixels(r: Row): Array[Float] = r.get(2) match {
    case v: Vector => v.toArray.map(_.toFloat)
    case s: scala.collection.Seq[_] => s.map { case n: Number => n.floatValue(); case _ => Float.NaN }.toArray
    case other => throw new IllegalArgumentException(s"report: the features column holds ${other.getClass.getSimpleName}, not numbers")
  }
}
