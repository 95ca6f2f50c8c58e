package sparkdbn.ml

import org.apache.spark.ml.param._
import org.apache.spark.ml.linalg.SQLDataTypes
import org.apache.spark.sql.types._

import sparkdbn.sidecar.EngineSpec
import sparkdbn.train.DistributedTrainer
import sparkdbn.sidecar.EngineSpec.{block, fineTune, parseSchedule, rbm}

/**
 * A step size or momentum: a number ("0.05") or a schedule "epoch:value,..." ("0:0.5,5:0.9"), its values
 * in the engine option's range. A class of its own so that the PySpark stages accept a number, a dict or
 * pairs for it (python/spark_dbn/_ml.py picks the converter by this class's name).
 */
final class ScheduleParam(parent: Params, name: String, doc: String, option: EngineSpec.Option)
  extends Param[String](parent, name, doc, (s: String) => parseSchedule(s, option).isRight) {
  /** A constant schedule. */
  def w(value: Double): ParamPair[String] = w(EngineSpec.number(value))
}

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
    "type of outputCol: 'vector' (a Spark ML Vector, what the ML stages after this one take) or 'array' (array<float>)",
    ParamValidators.inArray(Array("array", "vector")))

  final val probabilityCol: Param[String] = new Param[String](this, "probabilityCol",
    "output column of class probabilities (a Vector), for fine-tuned models; empty for none")

  final val predictionCol: Param[String] = new Param[String](this, "predictionCol",
    "output column of the predicted class (double), for fine-tuned models; empty for none")

  final val freeEnergyCol: Param[String] = new Param[String](this, "freeEnergyCol",
    "output column of each row's free energy under the first RBM (double; higher is less like the training data), " +
      "an anomaly score; empty for none")

  final val reconstructionErrorCol: Param[String] = new Param[String](this, "reconstructionErrorCol",
    "output column of each row's squared reconstruction error through the first RBM, summed over inputs (double, " +
      "of the standardised input for Gaussian units), an anomaly score; empty for none")

  final val batchRows: IntParam = new IntParam(this, "batchRows",
    "rows per Arrow batch sent to the sidecar (at most)", ParamValidators.inRange(1, 1 << 24))

  final val batchBytes: LongParam = new LongParam(this, "batchBytes",
    "bytes of feature values per Arrow batch (at most; lowers batchRows for wide inputs)", ParamValidators.gtEq(1024))

  final val maxInFlight: IntParam = new IntParam(this, "maxInFlight",
    "batches a task sends ahead of their answers", ParamValidators.inRange(1, 64))

  // ---- Training (the DBN estimator; a fitted model carries them for the record) ----

  final val layers: IntArrayParam = new IntArrayParam(this, "layers",
    "hidden layer sizes, bottom to top (the input size comes from the data): e.g. [500, 500]",
    (a: Array[Int]) => a.nonEmpty && a.forall(n => n >= 1 && n <= 1000000))

  final val visibleUnits: Param[String] = new Param[String](this, "visibleUnits",
    "units of the first layer's input: 'bernoulli' (values in [0, 1]) or 'gaussian' (standardised real values)",
    ParamValidators.inArray(Array("bernoulli", "gaussian")))

  final val k: IntParam = new IntParam(this, "k", s"Gibbs steps per update (CD-k, or PCD-k when persistent), in ${rbm("k").rangeText}",
    rbm("k").intValidator)

  final val persistent: BooleanParam = new BooleanParam(this, "persistent",
    "persistent contrastive divergence (negative chains carry over between updates)")

  final val learningRate: ScheduleParam = new ScheduleParam(this, "learningRate",
    s"pre-training step size: a number, or a schedule 'epoch:value,...' such as '0:0.05,10:0.01', values in ${rbm("learning_rate").rangeText}",
    rbm("learning_rate"))

  final val momentum: ScheduleParam = new ScheduleParam(this, "momentum",
    s"pre-training momentum: a number or a schedule 'epoch:value,...', values in ${rbm("momentum").rangeText}",
    rbm("momentum"))

  final val weightDecay: DoubleParam = new DoubleParam(this, "weightDecay",
    s"pre-training's L2 penalty on the weights, in ${rbm("weight_decay").rangeText}", rbm("weight_decay").doubleValidator)

  final val sparsityTarget: DoubleParam = new DoubleParam(this, "sparsityTarget",
    s"target mean activation of each hidden unit, in ${rbm("sparsity_target").rangeText}; 0 turns the sparsity penalty off",
    rbm("sparsity_target").doubleValidator)

  final val sparsityCost: DoubleParam = new DoubleParam(this, "sparsityCost",
    s"strength of the sparsity penalty, in ${rbm("sparsity_cost").rangeText}", rbm("sparsity_cost").doubleValidator)

  final val epochs: IntParam = new IntParam(this, "epochs",
    s"pre-training passes over the data, per layer, in ${rbm("epochs").rangeText}", rbm("epochs").intValidator)

  final val batchSize: IntParam = new IntParam(this, "batchSize",
    s"rows per mini-batch (pre-training and fine-tuning), in ${rbm("batch_size").rangeText}",
    (n: Int) => rbm("batch_size").contains(n) && fineTune("batch_size").contains(n))

  final val labelCol: Param[String] = new Param[String](this, "labelCol",
    "class label column (integers 0..C-1); when set, the network is fine-tuned with a soft-max layer; empty for none")

  final val fineTuneEpochs: IntParam = new IntParam(this, "fineTuneEpochs",
    s"fine-tuning passes over the data, in ${fineTune("epochs").rangeText}", fineTune("epochs").intValidator)

  final val fineTuneLearningRate: ScheduleParam = new ScheduleParam(this, "fineTuneLearningRate",
    s"fine-tuning step size: a number or a schedule 'epoch:value,...', values in ${fineTune("learning_rate").rangeText}",
    fineTune("learning_rate"))

  final val fineTuneMomentum: ScheduleParam = new ScheduleParam(this, "fineTuneMomentum",
    s"fine-tuning momentum: a number or a schedule 'epoch:value,...', values in ${fineTune("momentum").rangeText}",
    fineTune("momentum"))

  final val fineTuneWeightDecay: DoubleParam = new DoubleParam(this, "fineTuneWeightDecay",
    s"fine-tuning's L2 penalty on the weights, in ${fineTune("weight_decay").rangeText}", fineTune("weight_decay").doubleValidator)

  final val mode: Param[String] = new Param[String](this, "mode",
    "'sync': rounds, every partition trains syncEvery mini-batches from the same version, then they are averaged; " +
      "'async': partitions train independently and each update is merged as it arrives",
    ParamValidators.inArray(Array("sync", "async")))

  final val syncEvery: IntParam = new IntParam(this, "syncEvery",
    s"mini-batches a replica trains between syncs; unset: ${DistributedTrainer.DefaultSyncEvery} (shorter blocks put the block " +
      "momentum in series with the replicas' own, which rings; longer ones lose quality too)",
    ParamValidators.inRange(1, 1 << 24))

  final val resetLocalMomentum: BooleanParam = new BooleanParam(this, "resetLocalMomentum",
    "replicas start every round with zero momentum (CNTK's resetSGDMomentum); by default they keep it between rounds")

  final val mergeRule: Param[String] = new Param[String](this, "mergeRule",
    "how updates move the published model: 'bmuf' — block momentum (Chen & Huo 2016): the mean update of a block " +
      "feeds a momentum D <- eta D + zeta G and the model moves by D (replicas start each block from it, or with nesterov " +
      "from the look-ahead W + eta D), so long local runs (syncEvery 16-64) keep one process's quality; 'sum' — each replica's whole update " +
      "is applied (tracks one process only when syncing every 1-2 mini-batches; overshoots beyond); 'average' — model " +
      "averaging (steady, but P replicas make the progress of one). Async: each arriving update is weighted by its staleness",
    ParamValidators.inArray(Array("bmuf", "sum", "average")))

  final val blockMomentum: DoubleParam = new DoubleParam(this, "blockMomentum",
    s"bmuf: the block momentum eta in ${block("block_momentum").rangeText}; unset: the engine's default, which depends on " +
      "the partition count (block momentum for a few, model averaging for more; the README's settings table says which and why)",
    block("block_momentum").doubleValidator)

  final val blockLearningRate: DoubleParam = new DoubleParam(this, "blockLearningRate",
    s"bmuf: the block learning rate zeta in ${block("block_learning_rate").rangeText}; unset: the engine's default, " +
      EngineSpec.block("block_learning_rate").default, block("block_learning_rate").doubleValidator)

  final val nesterov: BooleanParam = new BooleanParam(this, "nesterov",
    "bmuf: Nesterov's block momentum (replicas start each block from the look-ahead W + eta D) when true, the classical " +
      "form (from W) when false; unset: the engine's default, which depends on the partition count (proto/sidecar.proto, " +
      "BlockRule.nesterov, says which and why)")

  final val maxStaleness: IntParam = new IntParam(this, "maxStaleness",
    "async: an update computed from a version more than this many versions old is rejected and redone",
    ParamValidators.inRange(0, 1 << 20))

  final val numPartitions: IntParam = new IntParam(this, "numPartitions",
    "replicas: the data is split into this many partitions; 0 keeps the input's partition count", ParamValidators.inRange(0, 100000))

  final val seed: LongParam = new LongParam(this, "seed",
    s"seed of every random choice (initialisation, shuffling, sampling), |seed| <= ${EngineSpec.MaxSeed} (the engine's integers)",
    (v: Long) => math.abs(v) <= EngineSpec.MaxSeed)

  final val checkpointDir: Param[String] = new Param[String](this, "checkpointDir",
    "where the latest published version of every topic is written as it is published (any Hadoop path); empty for none")

  final val resume: BooleanParam = new BooleanParam(this, "resume", "continue the run found in checkpointDir")

  final val replicaInit: Param[String] = new Param[String](this, "replicaInit",
    "'shared': every replica starts from, and syncs to, the published model; 'independent': each replica starts from its " +
      "own random initialisation and never adopts the published one (a negative control: its average is meaningless)",
    ParamValidators.inArray(Array("shared", "independent")))

  final val heldOutRows: IntParam = new IntParam(this, "heldOutRows",
    "rows of each partition (its last) kept out of training to measure the free energy of held-out data after every " +
      "pre-training round, beside the training rows' (the overfitting monitor of Hinton's practical guide); 0 for none",
    ParamValidators.gtEq(0))

  final val idCol: Param[String] = new Param[String](this, "idCol",
    "a column whose value names a row in errors about bad input (\"txn_id = 'T-17'\"), beside its place; empty for none")

  final val monitorRows: IntParam = new IntParam(this, "monitorRows",
    s"rows of each partition on which reconstruction error and free energy are measured: each round measures its share of an epoch " +
      s"of them, in a window that goes round them once an epoch, in ${rbm("monitor_rows").rangeText}",
    rbm("monitor_rows").intValidator)

  setDefault(
    layers -> Array(500, 500),
    visibleUnits -> "bernoulli",
    // The engine's options at the engine's defaults (proto/engine.proto owns them).
    k -> rbm("k").defaultInt,
    persistent -> rbm("persistent").defaultFlag,
    learningRate -> rbm("learning_rate").defaultSchedule,
    momentum -> rbm("momentum").defaultSchedule,
    weightDecay -> rbm("weight_decay").default,
    sparsityTarget -> rbm("sparsity_target").default,
    sparsityCost -> rbm("sparsity_cost").default,
    epochs -> rbm("epochs").defaultInt,
    batchSize -> rbm("batch_size").defaultInt,
    labelCol -> "",
    fineTuneEpochs -> fineTune("epochs").defaultInt,
    fineTuneLearningRate -> fineTune("learning_rate").defaultSchedule,
    fineTuneMomentum -> fineTune("momentum").defaultSchedule,
    fineTuneWeightDecay -> fineTune("weight_decay").default,
    mode -> "sync",
    resetLocalMomentum -> false,
    maxStaleness -> 8,
    mergeRule -> "bmuf",
    numPartitions -> 0,
    seed -> rbm("seed").default.toLong,
    checkpointDir -> "",
    resume -> false,
    replicaInit -> "shared",
    monitorRows -> rbm("monitor_rows").defaultInt,
    heldOutRows -> 0,
    idCol -> "")

  /**
   * `schema` with the model's output columns: the top layer's P(h|v), and the class probabilities and
   * prediction when the model scores classes. Used by the model, and by the estimator for the model it
   * will fit, so that a Pipeline's later stages can read them.
   */
  protected def withOutputColumns(schema: StructType, scoresClasses: Boolean): StructType = {
    val added = scala.collection.mutable.ArrayBuffer(StructField($(outputCol),
      if ($(outputType) == "vector") SQLDataTypes.VectorType else ArrayType(FloatType, containsNull = false), nullable = false))
    if (scoresClasses) {
      if ($(probabilityCol).nonEmpty) added += StructField($(probabilityCol), SQLDataTypes.VectorType, nullable = false)
      if ($(predictionCol).nonEmpty) added += StructField($(predictionCol), DoubleType, nullable = false)
    }
    if ($(freeEnergyCol).nonEmpty) added += StructField($(freeEnergyCol), DoubleType, nullable = false)
    if ($(reconstructionErrorCol).nonEmpty) added += StructField($(reconstructionErrorCol), DoubleType, nullable = false)
    added.groupBy(_.name).find(_._2.size > 1).foreach { case (name, _) =>
      throw new IllegalArgumentException(s"two output columns are named '$name'")
    }
    added.foreach { f =>
      if (schema.fieldNames.contains(f.name)) throw new IllegalArgumentException(s"output column '${f.name}' already exists in the input")
    }
    StructType(schema.fields ++ added)
  }

  setDefault(
    featuresCol -> "features",
    inputCols -> Array.empty[String],
    outputCol -> "dbn_features",
    outputType -> "vector",
    probabilityCol -> "probability",
    predictionCol -> "prediction",
    freeEnergyCol -> "",
    reconstructionErrorCol -> "",
    batchRows -> 4096,
    // 4 MiB, not 8: scripts/bench ingest's passes took 0.68-0.77 s instead of 0.82-0.94 (six alternated
    // passes each, two runs); 2 MiB, 0.73-0.79.
    batchBytes -> 4L * 1024 * 1024,
    maxInFlight -> 4)

  def getFeaturesCol: String = $(featuresCol)
  def getInputCols: Array[String] = $(inputCols)
  def getOutputCol: String = $(outputCol)
  def getOutputType: String = $(outputType)
  def getProbabilityCol: String = $(probabilityCol)
  def getPredictionCol: String = $(predictionCol)
  def getFreeEnergyCol: String = $(freeEnergyCol)
  def getReconstructionErrorCol: String = $(reconstructionErrorCol)
  def getBatchRows: Int = $(batchRows)
  def getBatchBytes: Long = $(batchBytes)
  def getMaxInFlight: Int = $(maxInFlight)

  def getLayers: Array[Int] = $(layers)
  def getMode: String = $(mode)
  def getSyncEvery: Option[Int] = get(syncEvery)
  def getSeed: Long = $(seed)
  def getLabelCol: String = $(labelCol)

  protected def featureSource: sparkdbn.io.FeatureSource =
    if ($(inputCols).nonEmpty) sparkdbn.io.FeatureSource.NumericColumns($(inputCols).toSeq)
    else sparkdbn.io.FeatureSource.VectorColumn($(featuresCol))
}
