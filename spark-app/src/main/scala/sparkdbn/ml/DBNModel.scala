package sparkdbn.ml

import java.security.MessageDigest
import java.util.HexFormat


import org.apache.hadoop.fs.Path
import org.apache.spark.TaskContext
import org.apache.spark.ml.Model
import org.apache.spark.ml.linalg.{SQLDataTypes, Vectors}
import org.apache.spark.ml.param.ParamMap
import org.apache.spark.ml.util._
import org.apache.spark.ml.util.DBNMetadataIO
import org.apache.spark.sql.{DataFrame, Dataset, DbnSqlBridge}
import org.apache.spark.sql.catalyst.expressions.{GenericInternalRow, JoinedRow}
import org.apache.spark.sql.catalyst.expressions.UnsafeArrayData
import org.apache.spark.sql.types._
import org.json4s._
import org.json4s.jackson.JsonMethods

import sparkdbn.model.{DbnWeights, DbnSnapshots}
import sparkdbn.sidecar.{SidecarManager, TaskId}

/**
 * A trained DBN, applied by Spark: each executor streams its partitions through
 * its own sidecar, which runs the engine. Appends outputCol (the top layer's
 * P(h|v)) and, for a fine-tuned model, probabilityCol and predictionCol; other
 * columns pass through, row order within a partition is kept.
 *
 * @param snapshot the engine's Avro snapshot (proto/model.avsc)
 */
class DBNModel(override val uid: String, val snapshot: Array[Byte]) extends Model[DBNModel] with DBNParams with MLWritable {

  def this(snapshot: Array[Byte]) = this(Identifiable.randomUID("dbnModel"), snapshot)

  /**
   * For Spark Connect's registry of stages (META-INF/services), which lists a model by its class and makes
   * stages by uid: a model of no snapshot, which refuses to transform. Connect's own models come from fit or load.
   */
  def this(uid: String) = this(uid, Array.emptyByteArray)
  def this() = this(Identifiable.randomUID("dbnModel"))

  /** What the snapshot holds, checked: layer sizes, output layer. */
  @transient lazy val dbn: DbnWeights = DbnSnapshots.read(snapshot, s"model $uid")
  /** Content hash: executors cache the model by it. */
  lazy val version: String = DBNModel.versionOf(snapshot)

  /** What training measured, round by round; set by DBN.fit, absent on a loaded model. */
  @transient private var trainingSummary: Option[sparkdbn.train.TrainOutcome] = None

  private[ml] def setSummary(s: sparkdbn.train.TrainOutcome): this.type = { trainingSummary = Some(s); this }

  def hasSummary: Boolean = trainingSummary.isDefined

  /** The training summary (rounds, versions, the pre-trained model); throws when the model was loaded, not fitted. */
  def summary: sparkdbn.train.TrainOutcome = trainingSummary.getOrElse(
    throw new IllegalStateException(s"DBNModel $uid has no training summary: it was loaded, not fitted"))

  /**
   * The model in one line, with what its training measured: over Spark Connect, where a client reaches no
   * other attribute of a third-party model, the Python DBNModel reads its sizes, classes and summary from it.
   */
  override def toString: String = scala.util.Try {
    val fig = trainingSummary.fold("none") { o =>
      def opt(v: Option[Double]) = v.fold("none")(_.toString)
      s"(rounds=${o.roundCount}, finalReconstructionError=${opt(o.finalReconstructionError)}, " +
        s"finalTrainAccuracy=${opt(o.finalTrainAccuracy)})"
    }
    s"DBNModel(uid=$uid, sizes=[${layerSizes.mkString(", ")}], numClasses=$numClasses, summary=$fig)"
  }.getOrElse(s"DBNModel(uid=$uid, no model)")

  def numInputs: Int = dbn.nInputs
  def numFeatures: Int = dbn.nFeatures
  def numClasses: Int = dbn.output.map(_.nClasses).getOrElse(0)

  def setFeaturesCol(v: String): this.type = set(featuresCol, v)
  def setInputCols(v: Array[String]): this.type = set(inputCols, v)
  def setOutputCol(v: String): this.type = set(outputCol, v)
  def setOutputType(v: String): this.type = set(outputType, v)
  def setProbabilityCol(v: String): this.type = set(probabilityCol, v)
  def setPredictionCol(v: String): this.type = set(predictionCol, v)
  def setFreeEnergyCol(v: String): this.type = set(freeEnergyCol, v)
  def setReconstructionErrorCol(v: String): this.type = set(reconstructionErrorCol, v)
  def setBatchRows(v: Int): this.type = set(batchRows, v)
  def setBatchBytes(v: Long): this.type = set(batchBytes, v)
  def setMaxInFlight(v: Int): this.type = set(maxInFlight, v)
  def setIdCol(v: String): this.type = set(idCol, v)

  private def scoresClasses: Boolean = numClasses > 0 && ($(probabilityCol).nonEmpty || $(predictionCol).nonEmpty)

  override def transformSchema(schema: StructType): StructType = {
    featureSource.check(schema, numInputs)
    sparkdbn.io.RowKey.bind(schema, $(idCol))
    withOutputColumns(schema, scoresClasses)
  }

  /** Layer sizes, input first: [784, 500, 500]. */
  def layerSizes: Array[Int] = dbn.sizes.toArray

  /** The training summary's rounds as a DataFrame (the rounds table's columns); throws when there is no summary. */
  def roundsFrame(spark: org.apache.spark.sql.SparkSession): DataFrame = sparkdbn.train.RunTables.roundsFrame(spark, summary.rounds)

  override def transform(dataset: Dataset[_]): DataFrame = {
    val outSchema = transformSchema(dataset.schema, logging = true)
    val spark = dataset.sparkSession
    sparkdbn.sidecar.SidecarConf.fromSparkConf(spark.sparkContext.getConf)
    val snapshotBc = spark.sparkContext.broadcast(snapshot)
    val (ver, n, probs) = (version, numInputs, scoresClasses)
    val inSchema = dataset.schema
    val source = featureSource.bind(inSchema)
    val rowKey = sparkdbn.io.RowKey.bind(inSchema, $(idCol))
    val conf = ScoringConf($(batchRows), $(batchBytes), $(maxInFlight))
    val asVector = $(outputType) == "vector"
    val (withProb, withPred) = (probs && $(probabilityCol).nonEmpty, probs && $(predictionCol).nonEmpty)
    val (withFree, withRec) = ($(freeEnergyCol).nonEmpty, $(reconstructionErrorCol).nonEmpty)
    val scores = withFree || withRec
    val extraCount = Seq(true, withProb, withPred, withFree, withRec).count(identity)
    // Spark's internal rows in and out: the input columns pass through as they are.
    val rdd = dataset.toDF().queryExecution.toRdd.mapPartitionsWithIndex { (pid, rows) =>
      val ctx = TaskContext.get()
      val task = TaskId.of(ctx).label
      val udt = SQLDataTypes.VectorType.asInstanceOf[UserDefinedType[org.apache.spark.ml.linalg.Vector]]
      val joined = new JoinedRow()
      val extra = new GenericInternalRow(extraCount)
      val scoring = new SidecarScoring(SidecarManager.client(), ver, () => snapshotBc.value, rows, inSchema, source, n, probs, scores, conf, task, pid, rowKey)
      scoring.map { case (row, res, i) =>
        val (h, f) = res.vectors("features")
        val feats = java.util.Arrays.copyOfRange(f, i * h, (i + 1) * h)
        extra.update(0, if (asVector) udt.serialize(Vectors.dense(feats.map(_.toDouble))) else UnsafeArrayData.fromPrimitiveArray(feats))
        var k = 1
        if (withProb) {
          val (c, p) = res.vectors("probability")
          extra.update(k, udt.serialize(Vectors.dense(Array.tabulate(c)(j => p(i * c + j).toDouble))))
          k += 1
        }
        if (withPred) { extra.update(k, res.doubles("prediction")(i)); k += 1 }
        if (withFree) { extra.update(k, res.doubles("free_energy")(i)); k += 1 }
        if (withRec) extra.update(k, res.doubles("reconstruction_error")(i))
        // No projection here: the scan over this RDD makes UnsafeRows itself where its consumer needs
        // them, and reads just the columns it uses otherwise (a copy of every row saved: scripts/bench ingest).
        joined(row, extra): org.apache.spark.sql.catalyst.InternalRow
      }
    }
    DbnSqlBridge.createDataFrame(spark, rdd, outSchema)
  }

  override def copy(extra: ParamMap): DBNModel = copyValues(new DBNModel(uid, snapshot), extra).setParent(parent)

  /** This model's params on other engine weights (e.g. the summary's pre-trained model). */
  def withSnapshot(other: Array[Byte]): DBNModel = copyValues(new DBNModel(uid, other)).setParent(parent)

  override def write: MLWriter = new DBNModel.Writer(this)

}

object DBNModel extends MLReadable[DBNModel] {
  /** Content hash of a snapshot: the version id sidecars cache it by (ids are the JVM's to choose). */
  def versionOf(snapshot: Array[Byte]): String =
    HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(snapshot)).take(32)

  /** A model from the engine's Avro snapshot file (any Hadoop path). */
  def fromSnapshot(path: String): DBNModel = {
    val spark = org.apache.spark.sql.SparkSession.active
    val p = new Path(path)
    val fs = p.getFileSystem(spark.sparkContext.hadoopConfiguration)
    val in = fs.open(p)
    val bytes = try in.readAllBytes() finally in.close()
    // Checked now, in the driver, and named by its file (the model's generated uid would tell the user nothing).
    DbnSnapshots.read(bytes, s"model snapshot $path")
    new DBNModel(bytes)
  }

  override def read: MLReader[DBNModel] = new Reader
  override def load(path: String): DBNModel = super.load(path)

  /**
   * Saved form, as Spark ML's own stages: `metadata` (DefaultParamsWriter: class, uid, params, written
   * by Spark, read by Spark's and PySpark's Pipeline loaders) and the model data in `data/model.avro`
   * (the engine's snapshot). A directory saved before (metadata.json and model.avro) still loads.
   */
  private class Writer(m: DBNModel) extends MLWriter {
    override protected def saveImpl(path: String): Unit = {
      DBNMetadataIO.saveMetadata(m, path, sparkSession)
      val fs = new Path(path).getFileSystem(sparkSession.sparkContext.hadoopConfiguration)
      val model = fs.create(new Path(new Path(path, "data"), "model.avro"))
      try model.write(m.snapshot) finally model.close()
    }
  }

  private class Reader extends MLReader[DBNModel] {
    override def load(path: String): DBNModel = {
      val fs = new Path(path).getFileSystem(sparkSession.sparkContext.hadoopConfiguration)
      def readAll(p: Path): Array[Byte] = {
        val in = fs.open(p)
        try in.readAllBytes() finally in.close()
      }
      if (fs.exists(new Path(path, "metadata.json"))) return legacy(path, fs, readAll)
      val className = classOf[DBNModel].getName
      val data = new Path(new Path(path, "data"), "model.avro")
      val bytes = readAll(data)
      DbnSnapshots.read(bytes, s"model snapshot $data") // checked now, in the driver, named by its file
      val m = new DBNModel(DBNMetadataIO.savedUid(path, sparkSession, className), bytes)
      DBNMetadataIO.loadParams(m, path, sparkSession, className)
      m
    }

    /** The form this class wrote before it used Spark's: metadata.json and model.avro. */
    private def legacy(path: String, fs: org.apache.hadoop.fs.FileSystem, readAll: Path => Array[Byte]): DBNModel = {
      val meta = JsonMethods.parse(new String(readAll(new Path(path, "metadata.json")), "UTF-8"))
      implicit val formats: Formats = DefaultFormats
      val cls = (meta \ "class").extract[String]
      if (cls != classOf[DBNModel].getName) throw new IllegalArgumentException(s"$path holds a $cls, not a DBNModel")
      val bytes = readAll(new Path(path, "model.avro"))
      DbnSnapshots.read(bytes, s"model snapshot ${new Path(path, "model.avro")}")
      val m = new DBNModel((meta \ "uid").extract[String], bytes)
      (meta \ "paramMap") match {
        case JObject(fields) => fields.foreach { case (name, v) =>
          val p = m.getParam(name)
          m.set(p, p.jsonDecode(JsonMethods.compact(JsonMethods.render(v))))
        }
        case _ =>
      }
      m
    }
  }
}

/** Loads either form a user may have: a saved DBNModel directory or a bare engine snapshot. */
object DBNModelLoader {
  def load(path: String): DBNModel = {
    val spark = org.apache.spark.sql.SparkSession.active
    val p = new Path(path)
    val fs = p.getFileSystem(spark.sparkContext.hadoopConfiguration)
    if (!fs.exists(p)) throw new IllegalArgumentException(s"model path $path does not exist")
    if (fs.getFileStatus(p).isDirectory) DBNModel.load(path) else DBNModel.fromSnapshot(path)
  }
}
