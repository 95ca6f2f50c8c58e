package sparkdbn.jobs

import java.nio.file.Files

import org.apache.spark.sql.SparkSession
import org.apache.spark.sql.functions._
import org.scalatest.funsuite.AnyFunSuite

import sparkdbn.testing.LocalSpark

import sparkdbn.sidecar.SidecarManager

/** A real local Spark, a real sidecar: one per executor, replaced when it dies. */
class SkeletonJobSpec extends AnyFunSuite with LocalSpark {
  private val dir = Files.createTempDirectory("skeleton-spec")


  private def sidecarPids(partitions: Int): Set[Long] = spark.sparkContext
    .parallelize(0 until partitions, partitions).mapPartitions(_ => Iterator(SidecarManager.get().pid)).collect().toSet

  test("every partition reaches the same sidecar; a dead sidecar is replaced on next use") {
    val first = sidecarPids(4)
    assert(first.size == 1)
    val h = java.lang.ProcessHandle.of(first.head).get
    h.destroyForcibly()
    h.onExit().get()
    val second = sidecarPids(4)
    assert(second.size == 1 && second != first)
    assert(java.lang.ProcessHandle.of(second.head).get.isAlive)
  }

  test("row counts and column sums from the sidecar equal Spark's own per partition") {
    val path = dir.resolve("data").toString
    spark.range(5000).select(col("id"), (rand(1) * 100).as("a"), when(col("id") % 10 === 0, lit(null))
      .otherwise(rand(2)).as("b"), col("id").cast("string").as("label")).write.parquet(path)
    val result = SkeletonJob.run(spark, SkeletonJob.Options(path, "parquet", "unused", Some(3), 700)).collect()
    val expected = SkeletonJob.partitioned(spark.read.parquet(path), Some(3))
      .withColumn("p", spark_partition_id()).groupBy("p")
      .agg(count(lit(1)), sum("id").cast("double"), sum("a"), sum("b"), count("b")).collect()
      .map(r => r.getInt(0) -> r).toMap
    assert(result.map(_.getAs[Int]("partition")).toSet == expected.keySet)
    assert(result.map(_.getAs[String]("column")).toSet == Set("id", "a", "b"))
    result.foreach { r =>
      val e = expected(r.getAs[Int]("partition"))
      assert(r.getAs[Long]("rows") == e.getLong(1))
      val (want, n) = r.getAs[String]("column") match {
        case "id" => (e.getDouble(2), e.getLong(1))
        case "a" => (e.getDouble(3), e.getLong(1))
        case "b" => (e.getDouble(4), e.getLong(5))
      }
      // Doubles summed in a different order: relative 1e-9.
      assert(math.abs(r.getAs[Double]("sum") - want) <= 1e-9 * math.max(1.0, math.abs(want)))
      assert(r.getAs[Long]("count") == n)
    }
    assert(result.map(_.getAs[Long]("sidecar_pid")).distinct.length == 1)
  }

  test("a data set without a numeric column is refused before any task runs") {
    val path = dir.resolve("text").toString
    spark.range(3).select(col("id").cast("string").as("s")).write.parquet(path)
    val e = intercept[IllegalArgumentException](SkeletonJob.run(spark, SkeletonJob.Options(path, "parquet", "t")))
    assert(e.getMessage.contains("no numeric column") && e.getMessage.contains("s: string"), e.getMessage)
  }
}
