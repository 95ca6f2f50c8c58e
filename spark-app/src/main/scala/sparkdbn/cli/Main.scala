package sparkdbn.cli

import scala.util.control.NonFatal

import org.apache.spark.sql.SparkSession

import sparkdbn.jobs.{Args, DeformJob, FunctionsJob, GenDataJob, ImportJob, Opt, ReportJob, SearchJob, TrainJob,
  TransformJob, UsageException}

/** `spark-submit --class sparkdbn.cli.Main spark-dbn.jar <command> [--option value ...]`. */
object Main {
  private final case class Command(name: String, summary: String, opts: Seq[Opt], run: (SparkSession, Args) => Unit)

  private val commands: Seq[Command] = Seq(
    Command("gen-data", GenDataJob.summary, GenDataJob.opts, GenDataJob.run),
    Command("import", ImportJob.summary, ImportJob.opts, ImportJob.run),
    Command("deform-digits", DeformJob.summary, DeformJob.opts, DeformJob.run),
    Command("transform", TransformJob.summary, TransformJob.opts, TransformJob.run),
    Command("train", "trains a DBN over Spark (replicas in the executors' sidecars, synced by broadcast) and writes " +
      "the run's tables", TrainJob.opts, TrainJob.run),
    Command("report", "writes a finished run's report (one self-contained HTML page) from its tables and model",
      ReportJob.opts, ReportJob.run),
    Command("search", "writes, for each query row, its k nearest base rows in the model's code space as a table",
      SearchJob.opts, SearchJob.run),
    Command("sql-functions", "keeps the code functions (dbn_cosine, dbn_euclidean, dbn_binary_code, dbn_hamming) in the " +
      "catalog for every later SQL session", FunctionsJob.opts, FunctionsJob.run))

  private def topUsage: String =
    ("usage: spark-submit --class sparkdbn.cli.Main spark-dbn.jar <command> [--help | options]" +: "" +: "commands:" +:
      commands.map(c => f"  ${c.name}%-14s ${c.summary}")).mkString("\n")

  def main(argv: Array[String]): Unit = {
    val code = run(argv.toSeq)
    if (code != 0) sys.exit(code)
  }

  private val VerboseEnv = "SPARK_DBN_VERBOSE"

  /** Returns the process exit code; 2 for usage errors. */
  def run(argv: Seq[String]): Int = argv match {
    case Seq() | Seq("--help") | Seq("-h") =>
      println(topUsage)
      if (argv.isEmpty) 2 else 0
    case name +: rest =>
      commands.find(_.name == name) match {
        case None =>
          System.err.println(s"unknown command '$name'\n\n$topUsage")
          2
        case Some(c) if rest.contains("--help") =>
          println(Args.usage(c.name, c.summary, c.opts))
          0
        case Some(c) =>
          val args = try new Args(c.name, c.opts, rest) catch {
            case u: UsageException =>
              System.err.println(s"${u.getMessage}\n\n${Args.usage(c.name, c.summary, c.opts)}")
              return 2
          }
          val builder = SparkSession.builder().appName(s"spark-dbn ${c.name}").enableHiveSupport()
          val userConf = new org.apache.spark.SparkConf()
          try {
            // Before Spark unpacks them: a bad runtime archive named by its conf and file, in one line.
            sparkdbn.sidecar.RuntimeArchive.verifyShipped(userConf)
            // What the session needs (a bad spark.dbn.* conf refused here, before Spark starts).
            val settings = sparkdbn.ml.SessionSettings.plan(userConf)
            settings.warnings.foreach(w => System.err.println(s"${c.name}: warning: $w"))
            settings.additions.foreach { case (k, v) => builder.config(k, v) }
            val spark = builder.getOrCreate()
            try {
              // Every spark.dbn.* conf checked here, before any work (not first in a task, as a failure).
              sparkdbn.sidecar.SidecarConf.fromSparkConf(spark.sparkContext.getConf)
              c.run(spark, args)
              0
            } finally spark.stop()
          } catch {
            case u: UsageException =>
              System.err.println(s"${u.getMessage}\n\n${Args.usage(c.name, c.summary, c.opts)}")
              2
            case NonFatal(e) =>
              // One line a person can act on; the trace only when asked for (the log is stderr too).
              System.err.println(s"${c.name}: ${Failure.explain(e)}")
              if (sys.env.get(VerboseEnv).exists(_.nonEmpty)) e.printStackTrace()
              else System.err.println(s"(set $VerboseEnv=1 for the stack trace)")
              1
          }
      }
  }
}
