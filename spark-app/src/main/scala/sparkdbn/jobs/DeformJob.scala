package sparkdbn.jobs

import org.apache.spark.sql.{DataFrame, SparkSession}

import sparkdbn.io.Idx

/**
 * `deform-digits`: as many rows as asked, each a deformation (Deformation) of one source digit of an IDX
 * pair, row id i taking digit i mod count: written as Parquet like `import`'s (id, features, label) and
 * the digit it came from (source). The same rows whatever the partitioning: a row follows from its id
 * and the seed alone.
 */
object DeformJob {
  val summary: String = "writes deformed digits (random affine and elastic distortions of an IDX image set) as Parquet"

  private val d = Deformation()

  val opts: Seq[Opt] = Seq(
    Opt("images", "the IDX images file (square images, e.g. MNIST's train-images-idx3-ubyte)", required = true),
    Opt("labels", "the IDX labels file that goes with --images", required = true),
    Opt("out", "where to write the Parquet data set (overwritten)", required = true),
    Opt("rows", "rows to write: row i deforms source digit i mod the number of digits", required = true),
    Opt("seed", "random seed: with a row's id, all of its deformation", Some("1")),
    Opt("partitions", "partitions (files) to write; by default one per 50,000 rows, at least 2"),
    Opt("alpha", "elastic scale, pixels: no point moves further than this in x or in y", Some(d.alpha.toString)),
    Opt("sigma", "smoothing of the elastic field, pixels", Some(d.sigma.toString)),
    Opt("rotation", "largest rotation, degrees", Some(d.rotation.toString)),
    Opt("scale", "largest relative change of size, each axis", Some(d.scale.toString)),
    Opt("shear", "largest shear factor", Some(d.shear.toString)),
    Opt("shift", "largest translation, pixels, each axis", Some(d.shift.toString)))

  /** The settings checked before any work: (rows, partitions, deformation); a UsageException names the first bad one. */
  def settings(a: Args): (Long, Int, Deformation) = {
    val rows = a.long("rows")
    if (rows < 1) throw new UsageException(s"deform-digits: --rows must be at least 1, got $rows")
    val partitions = a.intOpt("partitions").getOrElse(math.max(2L, (rows + 49999) / 50000).toInt)
    if (partitions < 1) throw new UsageException(s"deform-digits: --partitions must be at least 1, got $partitions")
    val deformation = Deformation(a.double("alpha"), a.double("sigma"), a.double("rotation"), a.double("scale"),
      a.double("shear"), a.double("shift"))
    deformation.problem.foreach(p => throw new UsageException(s"deform-digits: --$p"))
    (rows, partitions, deformation)
  }

  def run(spark: SparkSession, a: Args): Unit = {
    val (rows, partitions, deformation) = settings(a)
    def bytesOf(path: String) = try java.nio.file.Files.readAllBytes(java.nio.file.Paths.get(path)) catch {
      case _: java.nio.file.NoSuchFileException => throw new UsageException(s"deform-digits: $path does not exist")
    }
    val (img, lab) = Idx.readPair(bytesOf(a("images")), a("images"), bytesOf(a("labels")), a("labels"))
    if (img.rows != img.cols) throw new UsageException(s"deform-digits: ${a("images")} holds ${img.rows} x ${img.cols} images; square ones are deformed")
    if (img.count == 0) throw new UsageException(s"deform-digits: ${a("images")} holds no images")
    val df = frame(spark, img, lab, rows, a.long("seed"), partitions, deformation)
    Output.directory(spark, a("out"), df.write.parquet(_))
    println(s"deform-digits: wrote ${a("out")}: $rows rows from ${img.count} digits in $partitions partitions")
  }

  /** The rows: (id, features array<float> in [0, 1], label, source). */
  def frame(spark: SparkSession, img: Idx.Array3, labels: Array[Byte], rows: Long, seed: Long, partitions: Int,
      deformation: Deformation): DataFrame = {
    // The digits travel once per executor as bytes (60,000 x 784 = 47 MB); rows are made in the tasks.
    val bImg = spark.sparkContext.broadcast(img.values)
    val bLab = spark.sparkContext.broadcast(labels)
    val (side, count) = (img.rows, img.count)
    import spark.implicits._
    spark.range(0, rows, 1, partitions).as[Long].mapPartitions { ids =>
      val n = side * side
      val src = new Array[Float](n)
      ids.map { id =>
        val k = (id % count).toInt
        val b = bImg.value
        var j = 0
        while (j < n) { src(j) = (b(k * n + j) & 0xff) / 255f; j += 1 }
        (id, deformation(src, side, seed, id), bLab.value(k) & 0xff, k)
      }
    }.toDF("id", "features", "label", "source")
  }
}
