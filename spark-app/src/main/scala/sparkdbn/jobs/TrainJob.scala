package sparkdbn.jobs

import java.sql.Timestamp
import java.util.UUID

import scala.util.control.NonFatal

import org.apache.spark.ml.param._
import org.apache.spark.sql.SparkSession
import org.apache.spark.sql.functions._

import sparkdbn.io.Inputs
import sparkdbn.ml.DBN
import sparkdbn.train.{Checkpoint, RunRow, RunTables}

/** `train`: fits a DBN over Spark and leaves the run, its rounds, its parameters (and features) as tables. */
object TrainJob {
  /** CLI name of each estimator param the command exposes (kebab-case of the param, or a shorter name). */
  private val exposed: Seq[(String, String)] = Seq(
    "featuresCol" -> "features-col", "inputCols" -> "input-cols", "labelCol" -> "label-col", "layers" -> "layers",
    "visibleUnits" -> "visible-units", "k" -> "k", "persistent" -> "persistent", "learningRate" -> "learning-rate",
    "momentum" -> "momentum", "weightDecay" -> "weight-decay", "sparsityTarget" -> "sparsity-target",
    "sparsityCost" -> "sparsity-cost", "epochs" -> "epochs", "batchSize" -> "batch-size",
    "fineTuneEpochs" -> "fine-tune-epochs", "fineTuneLearningRate" -> "fine-tune-learning-rate",
    "fineTuneMomentum" -> "fine-tune-momentum", "fineTuneWeightDecay" -> "fine-tune-weight-decay", "mode" -> "mode", "syncEvery" -> "sync-every",
    "maxStaleness" -> "max-staleness", "mergeRule" -> "merge-rule", "resetLocalMomentum" -> "reset-local-momentum", "blockMomentum" -> "block-momentum",
    "blockLearningRate" -> "block-learning-rate", "nesterov" -> "nesterov", "numPartitions" -> "partitions", "seed" -> "seed",
    "checkpointDir" -> "checkpoint-dir", "resume" -> "resume", "replicaInit" -> "replica-init",
    "monitorRows" -> "monitor-rows", "heldOutRows" -> "held-out-rows", "idCol" -> "id-col")

  private def show(p: Param[_], v: Any): String = v match {
    case a: Array[_] => a.mkString(",")
    case other => other.toString
  }

  val opts: Seq[Opt] = {
    val d = new DBN()
    Seq(
      Opt("input", "input data set path", required = true),
      Opt("format", "parquet or csv", Some("parquet")),
      Opt("run-id", "names the run in the tables and checkpoints; by default a new one (or the checkpoint's with --resume)"),
      Opt("table-prefix", "result tables: <prefix>_runs, _rounds, _params, _features (appended to)", Some("dbn")),
      Opt("model-out", "also save the fitted DBNModel here (overwritten)"),
      Opt("pretrained-out", "also save the model as it was after pre-training, before fine-tuning, here (overwritten)"),
      Opt("features-input", "score this data set (same format) with the fitted model into <prefix>_features; 'train' for the input"),
      Opt("features-output-type", "array or vector", Some("array")),
      Opt("report", "write the run's report (report.html: charts, filters, samples, the --features-input's confusion " +
        "matrix) into this directory")) ++
      exposed.map { case (param, name) =>
        val p = d.getParam(param)
        // A param with no default (syncEvery, blockMomentum, ...) shows none: unset, the rule in its doc applies.
        val default = if (d.hasDefault(p)) d.getDefault(p).map(v => show(p, v)).filter(_.nonEmpty).orElse(Some("''")) else None
        Opt(name, p.doc, default, flag = p.isInstanceOf[BooleanParam])
      }
  }

  private def setFrom(est: DBN, a: Args): Unit = exposed.foreach { case (param, name) =>
    a.values.get(name).foreach { raw =>
      val p: Param[_] = est.getParam(param)
      def bad(why: String) = throw new UsageException(s"train: --$name $why")
      val value: Any = (p: Any) match {
        case _: IntParam => raw.toIntOption.getOrElse(bad(s"must be an integer, got '$raw'"))
        case _: LongParam => raw.toLongOption.getOrElse(bad(s"must be an integer, got '$raw'"))
        case _: DoubleParam => raw.toDoubleOption.getOrElse(bad(s"must be a number, got '$raw'"))
        case _: BooleanParam => raw.toBooleanOption.getOrElse(bad(s"must be true or false, got '$raw'"))
        case _: IntArrayParam => raw.split(",").map(s => s.trim.toIntOption.getOrElse(bad(s"must be integers like 500,500, got '$raw'")))
        case _: StringArrayParam => raw.split(",").map(_.trim).filter(_.nonEmpty)
        case _ => if (raw == "''") "" else raw
      }
      try est.set(p.asInstanceOf[Param[Any]], value) catch {
        case e: IllegalArgumentException => bad(s"'$raw' is not valid: ${p.doc}")
      }
    }
  }

  def run(spark: SparkSession, a: Args): Unit = {
    val est = new DBN()
    setFrom(est, a)
    val prefix = a("table-prefix")
    if (!prefix.matches("[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)?")) {
      throw new UsageException(s"train: --table-prefix must be a table name prefix like dbn or mydb.dbn, got '$prefix'")
    }
    val resumedId = if (est.getOrDefault(est.resume)) {
      val dir = est.getOrDefault(est.checkpointDir)
      if (dir.isEmpty) throw new UsageException("train: --resume needs --checkpoint-dir")
      new Checkpoint(dir, spark.sparkContext.hadoopConfiguration).load().map(_.runId)
    } else None
    val runId = a.get("run-id").orElse(resumedId).getOrElse(s"run-${UUID.randomUUID().toString.take(8)}")
    resumedId.filter(_ != runId).foreach(id => throw new UsageException(s"train: --run-id $runId, but the checkpoint is of run $id"))
    val input = Inputs.read(spark, a("input"), a("format"))
    val started = new Timestamp(System.currentTimeMillis())
    val params = est.extractParamMap().toSeq.map(pp => s"${pp.param.name}=${show(pp.param, pp.value)}").sorted.mkString(", ")
    def runRow(status: String, error: Option[String]) = RunRow(runId, status, est.getMode, 0, "", 0L, params, started,
      new Timestamp(System.currentTimeMillis()), (System.currentTimeMillis() - started.getTime) / 1000.0, 0, 0, None,
      None, None, None, error)
    val model = try {
      sc(spark).setJobDescription(s"spark-dbn train $runId")
      est.train(input, runId, ProgressPrinter.stdout("train: "))
    } catch {
      case NonFatal(e) =>
        try RunTables.writeRun(spark, prefix, runRow("failed", Some(String.valueOf(e.getMessage).take(4000)))) catch {
          case NonFatal(w) => e.addSuppressed(w)
        }
        throw e
    }
    val outcome = model.summary
    RunTables.writeRounds(spark, prefix, outcome.rounds)
    RunTables.writeParams(spark, prefix, runId, model.snapshot)
    a.get("model-out").foreach(p => model.write.overwrite().save(p))
    a.get("pretrained-out").foreach { p =>
      val bytes = outcome.pretrained.getOrElse(throw new IllegalArgumentException(
        "--pretrained-out: this run resumed past pre-training; the pre-trained model is in the checkpoint of that run"))
      model.withSnapshot(bytes).write.overwrite().save(p)
    }
    val accuracy = a.get("features-input").flatMap { path =>
      val df = if (path == "train") input else Inputs.read(spark, path, a("format"))
      model.setOutputType(a("features-output-type"))
      val inputs = est.getInputCols.toSeq :+ est.getFeaturesCol
      val out = model.transform(df).drop(inputs: _*).withColumn("run_id", lit(runId))
      out.write.mode("append").saveAsTable(RunTables.features(prefix))
      val label = est.getLabelCol
      if (label.nonEmpty && df.columns.contains(label) && model.numClasses > 0) {
        val t = spark.table(RunTables.features(prefix)).where(col("run_id") === runId)
        Some(t.select(avg((col("prediction") === col(label).cast("double")).cast("double"))).head().getDouble(0))
      } else None
    }
    val merged = outcome.rounds.filter(_.status == "merged")
    RunTables.writeRun(spark, prefix, runRow("succeeded", None).copy(
      partitions = merged.map(_.partition).distinct.size,
      sizes = model.dbn.sizes.mkString("-") + (if (model.numClasses > 0) s"-${model.numClasses}" else ""),
      rows = merged.filter(_.layer == 0).map(_.samples).sum / math.max(1, est.getOrDefault(est.epochs)),
      rounds = outcome.roundCount,
      versions_published = outcome.versionsPublished,
      kernels = Some(sparkdbn.train.ExecutorCheck.record(outcome.executors)).filter(_.nonEmpty),
      sidecar_peak_mb = Some(sparkdbn.train.ExecutorCheck.peaksMb(outcome.executorsAfter)).filter(_.nonEmpty),
      final_reconstruction_error = outcome.finalReconstructionError,
      final_train_accuracy = outcome.finalTrainAccuracy,
      accuracy = accuracy,
      resumed_from = outcome.resumedFrom))
    a.get("report").foreach { dir =>
      val test = a.get("features-input").map(p => if (p == "train") input else Inputs.read(spark, p, a("format")))
        .filter(df => est.getLabelCol.nonEmpty && df.columns.contains(est.getLabelCol)).map(_ -> est.getLabelCol)
      println(s"train: report ${ReportJob.write(spark, runId, prefix, model.setOutputType("array"), test, dir)}")
    }
    println(s"train: run $runId done: ${model}; tables ${RunTables.runs(prefix)}, ${RunTables.roundsTable(prefix)}, " +
      s"${RunTables.params(prefix)}" + a.get("features-input").fold("")(_ => s", ${RunTables.features(prefix)}") +
      accuracy.fold("")(x => f"; accuracy ${x * 100}%.2f%%"))
  }

  private def sc(spark: SparkSession) = spark.sparkContext
}
