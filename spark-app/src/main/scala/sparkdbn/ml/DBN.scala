package sparkdbn.ml

import java.util.UUID

import scala.util.control.NonFatal

import org.apache.spark.ml.Estimator
import org.apache.spark.ml.param.ParamMap
import org.apache.spark.ml.util.{DefaultParamsReadable, DefaultParamsWritable, Identifiable}
import org.apache.spark.sql.Dataset
import org.apache.spark.sql.types.StructType
import org.slf4j.LoggerFactory

import sparkdbn.sidecar.EngineSpec
import sparkdbn.proto.{FineTuneConfig, RBMTrainConfig, Schedule}
import sparkdbn.train.{DistributedTrainer, TrainProgress, TrainSettings, TrainingData}

/**
 * A deep belief network trained data-parallel over Spark: greedy layer-wise
 * pre-training of a stack of RBMs, then (when labelCol is set) supervised
 * fine-tuning with a soft-max layer. Every partition's replica trains in its
 * executor's sidecar; replicas sync through broadcast model versions, in
 * rounds (`sync`) or as their updates arrive (`async`). `fit` returns the
 * DBNModel that scores DataFrames; its `summary` holds the per-round figures.
 */
class DBN(override val uid: String) extends Estimator[DBNModel] with DBNParams with DefaultParamsWritable {
  private val logger = LoggerFactory.getLogger(getClass)

  def this() = this(Identifiable.randomUID("dbn"))

  def setFeaturesCol(v: String): this.type = set(featuresCol, v)
  def setInputCols(v: Array[String]): this.type = set(inputCols, v)
  def setLabelCol(v: String): this.type = set(labelCol, v)
  def setLayers(v: Array[Int]): this.type = set(layers, v)
  def setVisibleUnits(v: String): this.type = set(visibleUnits, v)
  def setK(v: Int): this.type = set(k, v)
  def setPersistent(v: Boolean): this.type = set(persistent, v)
  def setLearningRate(v: String): this.type = set(learningRate, v)
  def setLearningRate(v: Double): this.type = set(learningRate.w(v))
  def setMomentum(v: String): this.type = set(momentum, v)
  def setMomentum(v: Double): this.type = set(momentum.w(v))
  def setWeightDecay(v: Double): this.type = set(weightDecay, v)
  def setSparsityTarget(v: Double): this.type = set(sparsityTarget, v)
  def setSparsityCost(v: Double): this.type = set(sparsityCost, v)
  def setEpochs(v: Int): this.type = set(epochs, v)
  def setBatchSize(v: Int): this.type = set(batchSize, v)
  def setFineTuneEpochs(v: Int): this.type = set(fineTuneEpochs, v)
  def setFineTuneLearningRate(v: String): this.type = set(fineTuneLearningRate, v)
  def setFineTuneLearningRate(v: Double): this.type = set(fineTuneLearningRate.w(v))
  def setFineTuneMomentum(v: String): this.type = set(fineTuneMomentum, v)
  def setFineTuneMomentum(v: Double): this.type = set(fineTuneMomentum.w(v))
  def setFineTuneWeightDecay(v: Double): this.type = set(fineTuneWeightDecay, v)
  def setMode(v: String): this.type = set(mode, v)
  def setSyncEvery(v: Int): this.type = set(syncEvery, v)
  def setMaxStaleness(v: Int): this.type = set(maxStaleness, v)
  def setMergeRule(v: String): this.type = set(mergeRule, v)
  def setResetLocalMomentum(v: Boolean): this.type = set(resetLocalMomentum, v)
  def setBlockMomentum(v: Double): this.type = set(blockMomentum, v)
  def setBlockLearningRate(v: Double): this.type = set(blockLearningRate, v)
  def setNesterov(v: Boolean): this.type = set(nesterov, v)
  def setNumPartitions(v: Int): this.type = set(numPartitions, v)
  def setSeed(v: Long): this.type = set(seed, v)
  def setCheckpointDir(v: String): this.type = set(checkpointDir, v)
  def setResume(v: Boolean): this.type = set(resume, v)
  def setReplicaInit(v: String): this.type = set(replicaInit, v)
  def setMonitorRows(v: Int): this.type = set(monitorRows, v)

  def setOutputCol(v: String): this.type = set(outputCol, v)
  def setOutputType(v: String): this.type = set(outputType, v)
  def setProbabilityCol(v: String): this.type = set(probabilityCol, v)
  def setPredictionCol(v: String): this.type = set(predictionCol, v)
  def setHeldOutRows(v: Int): this.type = set(heldOutRows, v)
  def setIdCol(v: String): this.type = set(idCol, v)

  /**
   * Checks the input columns' types (the input width is known only from the data) and answers the
   * schema the fitted model will produce (the model scores classes when a labelCol is given).
   */
  override def transformSchema(schema: StructType): StructType = {
    featureSource.check(schema, sparkdbn.io.FeatureSource.AnyWidth)
    TrainingData.checkLabel(schema, $(labelCol))
    sparkdbn.io.RowKey.bind(schema, $(idCol))
    if ($(resume) && $(checkpointDir).isEmpty) throw new IllegalArgumentException("resume needs checkpointDir")
    withOutputColumns(schema, scoresClasses = $(labelCol).nonEmpty)
  }

  override def fit(dataset: Dataset[_]): DBNModel =
    train(dataset, s"run-${UUID.randomUUID().toString.take(8)}", TrainProgress.lines(m => logger.info(m)))

  /**
   * `fit` with a run id (names sessions, checkpoints and table rows) and a sink for the progress lines:
   * the project's jobs' entry (the `train` command); a user's is `fit`.
   */
  private[sparkdbn] def train(dataset: Dataset[_], runId: String, progress: String => Unit): DBNModel =
    train(dataset, runId, TrainProgress.lines(progress))

  /** `fit` with a run id and a progress display. */
  private[sparkdbn] def train(dataset: Dataset[_], runId: String, progress: TrainProgress): DBNModel = {
    transformSchema(dataset.schema, logging = true)
    // A session of the user's own may lack what the commands' and spark_dbn.session()'s have; it can no
    // longer be set (executors read it at start): said once, with the conf to set next time.
    SessionSettings.plan(dataset.sparkSession.sparkContext.getConf).additions.foreach { case (k, v) =>
      progress.line(s"warning: this session was started without $k=$v, which spark-dbn's sessions set (see the README, Memory " +
        "and Training over Spark): the run goes on without it")
    }
    val df = dataset.toDF()
    val n = TrainingData.inputWidth(df, featureSource)
    // The driver's sidecar (new layers, merges) starts while Spark prepares the data: 0.65 s off the
    // first layer in scripts/bench train. On a thread of its own, named in a thread dump, not on the
    // global pool a user's code shares. A failure here is not lost: the first driver call starts it
    // again and raises.
    val warm = new Thread(() => try sparkdbn.sidecar.SidecarManager.client().describe() catch { case NonFatal(_) => () },
      "spark-dbn: starting the driver's sidecar")
    warm.setDaemon(true)
    warm.start()
    val data = TrainingData.prepare(df, featureSource, n, $(labelCol), $(numPartitions), bernoulli = $(visibleUnits) == "bernoulli",
      idCol = $(idCol))
    try {
      if (data.labelled && data.numClasses < 2) {
        throw new IllegalArgumentException(s"label column '${$(labelCol)}' has ${data.numClasses} class; fine-tuning needs at least 2")
      }
      if ($(visibleUnits) == "gaussian") {
        // The model standardises each input by the deviation measured here (the engine's InputScaling).
        data.stddevs.zipWithIndex.find(_._1 == 0).foreach { case (_, j) =>
          throw new IllegalArgumentException(s"${featureSource.valueName(j)} is constant (${data.means(j)} in every row): " +
            "Gaussian visible units standardise each input and cannot use a constant one; leave it out")
        }
      }
      progress.line(s"run $runId: ${data.totalRows} rows x $n inputs in ${data.partitions} partitions" +
        (if (data.labelled) s", ${data.numClasses} classes" else "") + s"; layers ${(n +: $(layers).toSeq).mkString("-")}")
      val executors = sparkdbn.train.ExecutorCheck.run(dataset.sparkSession.sparkContext, data.partitions)
      sparkdbn.train.ExecutorCheck.lines(executors).foreach(progress.line)
      val trained = new DistributedTrainer(dataset.sparkSession, data, settings(runId), progress).run()
      val after = sparkdbn.train.ExecutorCheck.run(dataset.sparkSession.sparkContext, data.partitions, "each sidecar's peak memory")
      progress.line(sparkdbn.train.ExecutorCheck.peaksLine(after,
        sparkdbn.sidecar.SidecarConf.fromSparkConf(dataset.sparkSession.sparkContext.getConf).memory))
      val outcome = trained.copy(executors = executors, executorsAfter = after)
      val model = copyValues(new DBNModel(uid, outcome.snapshot).setParent(this))
      model.setSummary(outcome)
      model
    } finally data.unpersist()
  }

  private def schedule(p: org.apache.spark.ml.param.Param[String], o: EngineSpec.Option): Schedule =
    EngineSpec.parseSchedule($(p), o).fold(e => throw new IllegalArgumentException(s"${p.name}: $e"), identity)

  /**
   * The one place where this estimator's params become the engine's options (typed, proto/engine.proto).
   * Every option is set explicitly, at the param's value or its default (which came from the same spec).
   */
  private[ml] def settings(runId: String): TrainSettings = {
    val rbm = RBMTrainConfig.newBuilder()
      .setBatchSize($(batchSize))
      .setK($(k))
      .setPersistent($(persistent))
      .setLearningRate(schedule(learningRate, EngineSpec.rbm("learning_rate")))
      .setMomentum(schedule(momentum, EngineSpec.rbm("momentum")))
      .setWeightDecay($(weightDecay))
      .setSparsityTarget($(sparsityTarget))
      .setSparsityCost($(sparsityCost))
      .setMonitorRows($(monitorRows))
      .build()
    val ft = FineTuneConfig.newBuilder()
      .setBatchSize($(batchSize))
      .setLearningRate(schedule(fineTuneLearningRate, EngineSpec.fineTune("learning_rate")))
      .setMomentum(schedule(fineTuneMomentum, EngineSpec.fineTune("momentum")))
      .setWeightDecay($(fineTuneWeightDecay))
      .build()
    val record = params.filter(isDefined).map(p => s"\"${p.name}\":${p.asInstanceOf[org.apache.spark.ml.param.Param[Any]].jsonEncode($(p))}")
      .mkString("{", ",", s",\"runId\":\"$runId\"}")
    TrainSettings(runId, $(layers).toSeq, $(visibleUnits), rbm, ft, $(epochs), $(fineTuneEpochs), $(batchSize), $(mode),
      get(syncEvery), $(resetLocalMomentum), $(maxStaleness), $(mergeRule), get(blockMomentum), get(blockLearningRate), get(nesterov), $(seed), $(replicaInit) == "independent",
      Option($(checkpointDir)).filter(_.nonEmpty), $(resume), $(heldOutRows), record)
  }

  override def copy(extra: ParamMap): DBN = defaultCopy(extra)
}

object DBN extends DefaultParamsReadable[DBN] {
  override def load(path: String): DBN = super.load(path)
}
