package sparkdbn.train

import org.scalatest.funsuite.AnyFunSuite

import sparkdbn.testing.LocalSpark

class RunTablesSpec extends AnyFunSuite with LocalSpark {
  test("appending to a table an older version made: new columns are added (old rows NULL there), absent ones written NULL") {
    val s = spark
    import s.implicits._
    // A name of its own: a run that failed half-way must not leave a location in this one's way.
    val table = s"evolve_rounds_${System.nanoTime()}"
    Seq(("r0", 1.5, "x")).toDF("run_id", "free_energy", "gone").write.saveAsTable(table)
    RunTables.appendTo(spark, Seq(("r1", 2.5, -3.0)).toDF("run_id", "free_energy", "held_out_free_energy"), table)
    val rows = spark.sql(s"SELECT run_id, free_energy, held_out_free_energy, gone FROM $table ORDER BY run_id").collect()
      .map(r => (r.getString(0), r.getDouble(1), Option(r.get(2)), Option(r.get(3)))).toSeq
    assert(rows == Seq(("r0", 1.5, None, Some("x")), ("r1", 2.5, Some(-3.0), None)))
    spark.sql(s"DROP TABLE $table")
  }
}
