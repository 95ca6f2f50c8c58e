package sparkdbn.jobs

import org.apache.spark.sql.{Row, SparkSession}
import org.apache.spark.sql.functions.col
import org.apache.spark.sql.types._

import sparkdbn.io.Inputs
import sparkdbn.ml.DBNModelLoader
import sparkdbn.search.Codes

/**
 * `search`: for each row of a query data set, its k nearest rows of a base data set in the model's
 * code space (the top layer's P(h|v)), as a table of (query id, rank, base id, distance). The base's
 * codes are computed by the executors' sidecars, gathered and broadcast (4 bytes a value: 60,000 codes
 * of 64 are 15 MB); each query task ranks them all (Codes.Base).
 */
object SearchJob {
  private val Code = "__dbn_code"

  val opts: Seq[Opt] = Seq(
    Opt("model", "a saved DBNModel directory, or an engine snapshot (.avro)", required = true),
    Opt("base", "the data set searched (its rows are the answers)", required = true),
    Opt("queries", "the data set of queries", required = true),
    Opt("format", "parquet or csv (both data sets)", Some("parquet")),
    Opt("id-col", "column that names a row, in both data sets", Some("id")),
    Opt("features-col", "input column: Vector, array<float> or array<double>", Some("features")),
    Opt("input-cols", "comma-separated numeric input columns, instead of --features-col"),
    Opt("k", "neighbours per query", Some("10")),
    Opt("metric", s"distance between codes: ${Codes.Metrics.mkString(", ")} (1 - cosine similarity; hamming: of the " +
      "binary codes, bit i set when P(h_i|v) >= 0.5)", Some("cosine")),
    Opt("table", "output table: query_id, rank (1 = nearest), base_id, distance", required = true),
    Opt("mode", Output.ModeHelp, Some("error")),
    Opt("partitions", "repartition the queries into this many tasks"))

  def run(spark: SparkSession, a: Args): Unit = {
    val k = a.int("k")
    if (k < 1) throw new UsageException(s"search: --k must be >= 1, got $k")
    val metric = a("metric")
    if (!Codes.Metrics.contains(metric)) throw new UsageException(s"search: --metric must be one of ${Codes.Metrics.mkString(", ")}, got '$metric'")
    val mode = Output.mode("search", a("mode"))
    val table = a("table")
    Output.checkTable(spark, table, mode)
    val model = DBNModelLoader.load(a("model")).setOutputCol(Code).setOutputType("array").setProbabilityCol("").setPredictionCol("")
      .setFeaturesCol(a("features-col"))
    a.get("input-cols").foreach(c => model.setInputCols(c.split(",").map(_.trim).filter(_.nonEmpty)))
    val id = a("id-col")
    def codes(path: String, what: String) = {
      val df = Inputs.read(spark, path, a("format"))
      if (!df.columns.contains(id)) throw new IllegalArgumentException(s"$what $path has no id column '$id'; it has ${df.columns.mkString(", ")}")
      model.transform(df).select(col(id), col(Code))
    }
    val queries = codes(a("queries"), "queries")
    val baseDf = codes(a("base"), "base")
    val idType = baseDf.schema(id).dataType
    if (queries.schema(id).dataType != idType) {
      throw new IllegalArgumentException(s"id column '$id' is ${idType.simpleString} in the base and " +
        s"${queries.schema(id).dataType.simpleString} in the queries")
    }
    val t0 = System.nanoTime()
    val rows = baseDf.collect()
    if (rows.isEmpty) throw new IllegalArgumentException(s"base ${a("base")} has no rows")
    val ids = rows.map(_.get(0))
    val base = new Codes.Base(metric, rows.map(_.getSeq[Float](1).toArray))
    val bc = spark.sparkContext.broadcast((ids, base))
    val kk = math.min(k, base.size)
    val parts = a.intOpt("partitions").fold(queries)(n => queries.repartition(n))
    val out = parts.rdd.mapPartitions { it =>
      val (ids, base) = bc.value
      it.flatMap { r =>
        base.nearest(r.getSeq[Float](1).toArray, kk).iterator.zipWithIndex.map { case ((i, d), rank) => Row(r.get(0), rank + 1, ids(i), d) }
      }
    }
    val schema = StructType(Seq(StructField("query_id", idType), StructField("rank", IntegerType, nullable = false),
      StructField("base_id", idType), StructField("distance", DoubleType, nullable = false)))
    Output.table(spark, spark.createDataFrame(out, schema), table, mode)
    bc.destroy()
    val n = spark.table(table).where(col("rank") === 1).count()
    val secs = (System.nanoTime() - t0) / 1e9
    println(f"search: wrote table $table: $kk nearest of ${base.size} base rows (codes of ${base.width}, $metric) for " +
      f"$n queries in $secs%.1f s (${secs * 1000 / math.max(1, n)}%.2f ms a query, codes included)")
  }
}
