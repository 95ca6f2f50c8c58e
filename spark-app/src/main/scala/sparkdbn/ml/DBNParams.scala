package sparkdbn.ml

import org.apache.spark.ml.param._

/**
 * The parameters shared by the DBN estimator and DBNModel (Spark ML style:
 * typed, documented, validated, defaults in one setDefault).
 */
trait DBNParams extends Params {
  final val featuresCol: Param[String] = new Param[String](this, "featuresCol",
    "input column: a Spark ML Vector, array<float> or array<double> with one value per visible unit",
    (s: String) => s.nonEmpty)

  final val inputCols: StringArrayParam = new StringArrayParam(this, "inputCols",
    "numeric input columns, one per visible unit, in order; used instead of featuresCol when not empty")

  final val outputCol: Param[String] = new Param[String](this, "outputCol",
    "output column: the top layer's P(h|v) for each row", (s: String) => s.nonEmpty)

  final val outputType: Param[String] = new Param[String](this, "outputType",
    "type of outputCol: 'array' (array<float>) or 'vector' (Spark ML Vector)", ParamValidators.inArray(Array("array", "vector")))

  final val probabilityCol: Param[String] = new Param[String](this, "probabilityCol",
    "output column of class probabilities (a Vector), for fine-tuned models; empty for none")

  final val predictionCol: Param[String] = new Param[String](this, "predictionCol",
    "output column of the predicted class (double), for fine-tuned models; empty for none")

  final val batchRows: IntParam = new IntParam(this, "batchRows",
    "rows per Arrow batch sent to the sidecar (at most)", ParamValidators.inRange(1, 1 << 24))

  final val batchBytes: LongParam = new LongParam(this, "batchBytes",
    "bytes of feature values per Arrow batch (at most; lowers batchRows for wide inputs)", ParamValidators.gtEq(1024))

  final val maxInFlight: IntParam = new IntParam(this, "maxInFlight",
    "batches a task sends ahead of their answers", ParamValidators.inRange(1, 64))

  setDefault(
    featuresCol -> "features",
    inputCols -> Array.empty[String],
    outputCol -> "dbn_features",
    outputType -> "array",
    probabilityCol -> "probability",
    predictionCol -> "prediction",
    batchRows -> 4096,
    batchBytes -> 8L * 1024 * 1024,
    maxInFlight -> 4)

  def getFeaturesCol: String = $(featuresCol)
  def getInputCols: Array[String] = $(inputCols)
  def getOutputCol: String = $(outputCol)
  def getOutputType: String = $(outputType)
  def getProbabilityCol: String = $(probabilityCol)
  def getPredictionCol: String = $(predictionCol)
  def getBatchRows: Int = $(batchRows)
  def getBatchBytes: Long = $(batchBytes)
  def getMaxInFlight: Int = $(maxInFlight)

  protected def featureSource: sparkdbn.io.FeatureSource =
    if ($(inputCols).nonEmpty) sparkdbn.io.FeatureSource.NumericColumns($(inputCols).toSeq)
    else sparkdbn.io.FeatureSource.VectorColumn($(featuresCol))
}
