package sparkdbn.train

import java.sql.Timestamp

import org.apache.spark.sql.{DataFrame, Row, SparkSession}
import org.apache.spark.sql.functions.{isnan, lit, when}
import org.apache.spark.sql.types._

import sparkdbn.model.DbnSnapshots

/** One row of `<prefix>_runs`. */
final case class RunRow(
    run_id: String,
    status: String,
    mode: String,
    partitions: Int,
    sizes: String,
    rows: Long,
    params: String,
    started_at: Timestamp,
    ended_at: Timestamp,
    seconds: Double,
    rounds: Int,
    versions_published: Int,
    /** NULL when the run pre-trained nothing (or fine-tuned nothing): not applicable, not NaN. */
    final_reconstruction_error: Option[Double],
    final_train_accuracy: Option[Double],
    accuracy: Option[Double],
    resumed_from: Option[String],
    error: Option[String],
    /** Each executor's kernels (ExecutorCheck.record): "openblas Haswell/avx2, 1 thread on 2 executors". */
    kernels: Option[String] = None,
    /** Each executor's sidecar's peak resident memory after the run, MiB (ExecutorCheck.peaksMb): size the next run from it. */
    sidecar_peak_mb: Option[Map[String, Long]] = None)

/**
 * The tables a run leaves in the catalog, appended to by every run and keyed
 * by run_id: `<prefix>_runs` (one row per run), `<prefix>_rounds` (one per
 * replica round), `<prefix>_params` (one per layer and unit: weights as an
 * array), and on request `<prefix>_features` (the input, transformed).
 */
object RunTables {
  def runs(prefix: String): String = s"${prefix}_runs"
  def roundsTable(prefix: String): String = s"${prefix}_rounds"
  def params(prefix: String): String = s"${prefix}_params"
  def features(prefix: String): String = s"${prefix}_features"

  def writeRun(spark: SparkSession, prefix: String, row: RunRow): Unit =
    appendTo(spark, spark.createDataFrame(Seq(row)).coalesce(1), runs(prefix))

  /**
   * Appends `df` to `table`, by column name. The tables outlive versions of this code: a column the
   * table lacks is added to it (earlier rows read NULL there), and a column the frame lacks is
   * written as NULL, so a run never fails at its end because an older run made the table.
   */
  def appendTo(spark: SparkSession, df: DataFrame, table: String): Unit = {
    if (!spark.catalog.tableExists(table)) df.write.mode("append").saveAsTable(table)
    else {
      val existing = spark.table(table).schema
      val lower = existing.fieldNames.map(_.toLowerCase).toSet
      val missing = df.schema.filterNot(f => lower.contains(f.name.toLowerCase))
      if (missing.nonEmpty) {
        spark.sql(s"ALTER TABLE $table ADD COLUMNS (${missing.map(f => s"`${f.name}` ${f.dataType.sql}").mkString(", ")})")
      }
      val have = df.columns.map(_.toLowerCase).toSet
      val filled = existing.filterNot(f => have.contains(f.name.toLowerCase))
        .foldLeft(df)((d, f) => d.withColumn(f.name, lit(null).cast(f.dataType)))
      filled.write.mode("append").saveAsTable(table)
    }
  }

  /** Figures of one kind of round only (the engine reports NaN for the others): NULL in the table where they do not apply. */
  private val OnlySomeRounds = Set("reconstructionError", "freeEnergy", "heldOutFreeEnergy", "loss", "accuracy")

  /** The rounds as the rounds table holds them: snake_case columns, NULL where a figure does not apply. */
  def roundsFrame(spark: SparkSession, rounds: Seq[RoundMetrics]): DataFrame = {
    val df = spark.createDataFrame(rounds)
    val snake = df.columns.map { c =>
      val v = if (OnlySomeRounds(c)) when(!isnan(df.col(c)), df.col(c)) else df.col(c)
      v.as(c.replaceAll("([a-z])([A-Z])", "$1_$2").toLowerCase)
    }
    df.select(snake.toIndexedSeq: _*)
  }

  def writeRounds(spark: SparkSession, prefix: String, rounds: Seq[RoundMetrics]): Unit = if (rounds.nonEmpty) {
    appendTo(spark, roundsFrame(spark, rounds).coalesce(1), roundsTable(prefix))
  }

  val ParamsSchema: StructType = StructType(Seq(
    StructField("run_id", StringType, nullable = false),
    StructField("layer", IntegerType, nullable = false),
    StructField("kind", StringType, nullable = false),
    StructField("unit", IntegerType, nullable = false),
    StructField("bias", FloatType, nullable = false),
    StructField("weights", ArrayType(FloatType, containsNull = false), nullable = true)))

  /**
   * One row per unit: kind 'hidden' (layer l's hidden unit j: its bias and its
   * incoming weights W[:, j]), 'visible' (layer l's visible bias, no weights),
   * 'output' (soft-max class k: bias and weights from the top layer; layer = number of RBMs).
   */
  def paramsFrame(spark: SparkSession, runId: String, snapshot: Array[Byte]): DataFrame = {
    val m = DbnSnapshots.read(snapshot, s"run $runId")
    val rows = m.layers.zipWithIndex.flatMap { case (l, li) =>
      val hidden = (0 until l.nHidden).map { j =>
        Row(runId, li, "hidden", j, l.hiddenBias(j), Array.tabulate(l.nVisible)(i => l.weights(i * l.nHidden + j)).toSeq)
      }
      val visible = (0 until l.nVisible).map(i => Row(runId, li, "visible", i, l.visibleBias(i), null))
      hidden ++ visible
    } ++ m.output.toSeq.flatMap { o =>
      (0 until o.nClasses).map(c => Row(runId, m.layers.length, "output", c, o.bias(c),
        Array.tabulate(o.nIn)(i => o.weights(i * o.nClasses + c)).toSeq))
    }
    spark.createDataFrame(spark.sparkContext.parallelize(rows, 1), ParamsSchema)
  }

  def writeParams(spark: SparkSession, prefix: String, runId: String, snapshot: Array[Byte]): Unit =
    appendTo(spark, paramsFrame(spark, runId, snapshot), params(prefix))
}
