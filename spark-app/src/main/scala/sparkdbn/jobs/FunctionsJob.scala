package sparkdbn.jobs

import org.apache.spark.sql.SparkSession

import sparkdbn.sql.CodeFunctions

/**
 * `sql-functions`: keeps the code functions (sparkdbn.sql) in the catalog, so that any later session on it
 * (`scripts/spark-sql`, a notebook) calls them by name: `CREATE FUNCTION db.name AS 'class' USING JAR 'jar'`,
 * the jar being this one unless --jar names a copy every session can read (on a cluster: HDFS, S3).
 */
object FunctionsJob {
  val opts: Seq[Opt] = Seq(
    Opt("database", "database the functions belong to", Some("default")),
    Opt("jar", "where sessions load the functions' jar from; by default this jar's own path"),
    Opt("replace", "replace functions of the same names", flag = true))

  def run(spark: SparkSession, a: Args): Unit = {
    val db = a("database")
    if (!db.matches("[A-Za-z_][A-Za-z0-9_]*")) throw new UsageException(s"sql-functions: --database must be a name, got '$db'")
    val jar = a.get("jar").getOrElse(
      new java.io.File(classOf[CodeFunctions.type].getProtectionDomain.getCodeSource.getLocation.toURI).getAbsolutePath)
    if (jar.contains("'")) throw new UsageException(s"sql-functions: --jar must not contain a quote: $jar")
    if (!spark.catalog.databaseExists(db)) throw new IllegalArgumentException(s"database $db does not exist")
    val replace = a.get("replace").contains("true")
    CodeFunctions.all.foreach { case (name, cls) =>
      val exists = spark.catalog.functionExists(s"$db.$name")
      if (exists && replace) spark.sql(s"DROP FUNCTION $db.$name")
      if (!exists || replace) spark.sql(s"CREATE FUNCTION $db.$name AS '$cls' USING JAR '$jar'")
      println(s"sql-functions: $db.$name ${if (exists && !replace) "exists (--replace to renew it)" else "created"} ($cls)")
    }
  }
}
