package sparkdbn.jobs

import org.apache.spark.sql.SparkSession
import org.apache.spark.sql.functions._

import sparkdbn.io.Inputs

/** `gen-data`: a synthetic numeric data set for tests and demos. */
object GenDataJob {
  val summary: String = "writes a synthetic numeric data set (id plus uniform columns) for tests and demos"

  val opts: Seq[Opt] = Seq(
    Opt("out", "where to write", required = true),
    Opt("format", "parquet or csv", Some("parquet")),
    Opt("rows", "number of rows", Some("10000")),
    Opt("cols", "number of feature columns x0..x<n-1>", Some("4")),
    Opt("as", "columns (x0..), array (one array<float> column 'features') or vector (one Vector column 'features')",
      Some("columns")),
    Opt("seed", "random seed", Some("42")))

  def run(spark: SparkSession, a: Args): Unit = {
    val cols = a.int("cols")
    if (cols < 1) throw new UsageException(s"gen-data: --cols must be >= 1, got $cols")
    val seed = a.long("seed")
    val xs = (0 until cols).map(k => rand(seed + k))
    val df = a("as") match {
      case "columns" => spark.range(a.long("rows")).select(col("id") +: xs.zipWithIndex.map { case (x, k) => x.as(s"x$k") }: _*)
      case "array" => spark.range(a.long("rows")).select(col("id"), array(xs.map(_.cast("float")): _*).as("features"))
      case "vector" => spark.range(a.long("rows")).select(col("id"),
        org.apache.spark.ml.functions.array_to_vector(array(xs: _*)).as("features"))
      case other => throw new UsageException(s"gen-data: --as must be columns, array or vector, got '$other'")
    }
    a("format") match {
      case "parquet" => Output.directory(spark, a("out"), df.write.parquet(_))
      case "csv" => Output.directory(spark, a("out"), df.write.option("header", "true").csv(_))
      case other => throw new UsageException(s"gen-data: --format must be parquet or csv, got '$other'")
    }
  }
}

/** `import`: a data set (json, csv, parquet, raw float32 rows, or MNIST-style IDX files) copied into Parquet. */
object ImportJob {
  val summary: String = "copies a data set into Parquet, with every array<double> column as array<float>"

  val opts: Seq[Opt] = Seq(
    Opt("input", "input path", required = true),
    Opt("format", "json, csv, parquet, f32 (raw little-endian float32 rows: id and features array<float>), or idx " +
      "(an MNIST-style IDX images file, with --labels: id, features array<float> scaled to [0, 1], label)", Some("json")),
    Opt("cols", "f32 only: values per row", Some("784")),
    Opt("labels", "idx only: the IDX labels file that goes with --input"),
    Opt("out", "where to write the Parquet data set (overwritten)", required = true),
    Opt("partitions", "write this many files", Some("2")))

  def run(spark: SparkSession, a: Args): Unit = {
    val df = a("format") match {
      case "json" => spark.read.json(a("input"))
      case "f32" =>
        val n = a.int("cols")
        val bytes = java.nio.file.Files.readAllBytes(java.nio.file.Paths.get(a("input")))
        if (bytes.length % (4 * n) != 0) throw new UsageException(s"import: ${a("input")} has ${bytes.length} bytes, not rows of $n float32")
        val fb = java.nio.ByteBuffer.wrap(bytes).order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer()
        val rows = (0 until bytes.length / (4 * n)).map { r =>
          val v = new Array[Float](n)
          fb.get(r * n, v)
          (r.toLong, v)
        }
        spark.createDataFrame(rows).toDF("id", "features")
      case "idx" =>
        val labels = a.get("labels").getOrElse(throw new UsageException("import: --format idx needs --labels (the IDX labels file)"))
        def bytesOf(path: String) = try java.nio.file.Files.readAllBytes(java.nio.file.Paths.get(path)) catch {
          case _: java.nio.file.NoSuchFileException => throw new UsageException(s"import: $path does not exist")
        }
        val (img, lab) = sparkdbn.io.Idx.readPair(bytesOf(a("input")), a("input"), bytesOf(labels), labels)
        // The bytes travel once per executor; rows are made in the tasks (60,000 x 784 floats are 188 MB).
        val n = img.rows * img.cols
        val bImg = spark.sparkContext.broadcast(img.values)
        val bLab = spark.sparkContext.broadcast(lab)
        val rows = spark.sparkContext.parallelize(0 until img.count, a.int("partitions")).map { r =>
          val v = new Array[Float](n)
          val src = bImg.value
          var j = 0
          while (j < n) { v(j) = (src(r * n + j) & 0xff) / 255f; j += 1 }
          (r.toLong, v, bLab.value(r) & 0xff)
        }
        spark.createDataFrame(rows).toDF("id", "features", "label")
      case other => Inputs.read(spark, a("input"), other)
    }
    val cols = df.schema.fields.map { f =>
      f.dataType match {
        case org.apache.spark.sql.types.ArrayType(org.apache.spark.sql.types.DoubleType, _) =>
          col(f.name).cast("array<float>").as(f.name)
        case _ => col(f.name)
      }
    }
    Output.directory(spark, a("out"), df.select(cols.toIndexedSeq: _*).repartition(a.int("partitions")).write.parquet(_))
    println(s"import: wrote ${a("out")}")
  }
}

/** `transform`: a data set scored by a trained DBN through each executor's sidecar, saved as a table. */
object TransformJob {
  val summary: String = "scores a data set with a trained DBN (through each executor's sidecar) and saves the result as a table"

  val opts: Seq[Opt] = Seq(
    Opt("model", "a saved DBNModel directory, or an engine snapshot (.avro)", required = true),
    Opt("input", "input data set path", required = true),
    Opt("format", "parquet or csv", Some("parquet")),
    Opt("table", "output table name", required = true),
    Opt("mode", Output.ModeHelp, Some("error")),
    Opt("features-col", "input column: Vector, array<float> or array<double>", Some("features")),
    Opt("input-cols", "comma-separated numeric input columns, instead of --features-col", None),
    Opt("output-col", "output column of the top layer's P(h|v)", Some("dbn_features")),
    Opt("output-type", "array or vector", Some("array")),
    Opt("probability-col", "class probabilities (fine-tuned models); '' for none", Some("probability")),
    Opt("prediction-col", "predicted class (fine-tuned models); '' for none", Some("prediction")),
    Opt("id-col", "a column whose value names a row in errors about bad input, beside its file and row"),
    Opt("free-energy-col", "add each row's free energy under the first RBM (an anomaly score) as this column"),
    Opt("reconstruction-error-col", "add each row's reconstruction error through the first RBM (an anomaly score) as this column"),
    Opt("batch-rows", "rows per Arrow batch sent to the sidecar", Some("4096")),
    Opt("max-in-flight", "batches a task sends ahead of their answers", Some("4")),
    Opt("partitions", "repartition the input into this many partitions first", None))

  def run(spark: SparkSession, a: Args): Unit = {
    val mode = Output.mode("transform", a("mode"))
    Output.checkTable(spark, a("table"), mode)
    val model = sparkdbn.ml.DBNModelLoader.load(a("model"))
    model.setFeaturesCol(a("features-col")).setOutputCol(a("output-col")).setOutputType(a("output-type"))
      .setProbabilityCol(a("probability-col")).setPredictionCol(a("prediction-col"))
      .setBatchRows(a.int("batch-rows")).setMaxInFlight(a.int("max-in-flight"))
    a.get("input-cols").foreach(c => model.setInputCols(c.split(",").map(_.trim).filter(_.nonEmpty)))
    a.get("free-energy-col").foreach(model.setFreeEnergyCol)
    a.get("id-col").foreach(model.setIdCol)
    a.get("reconstruction-error-col").foreach(model.setReconstructionErrorCol)
    val input = Inputs.read(spark, a("input"), a("format"))
    val parts = a.intOpt("partitions").fold(input)(n => input.repartition(n))
    // A bad row fails a task with its partition's row; named here by its file and row when it has one.
    try Output.table(spark, model.transform(parts), a("table"), mode)
    catch { case scala.util.control.NonFatal(e) => throw sparkdbn.io.InputLocation.relocate(parts, e) }
    println(s"transform: wrote table ${a("table")} with $model")
  }
}
