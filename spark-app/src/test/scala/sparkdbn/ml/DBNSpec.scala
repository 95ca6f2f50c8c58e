package sparkdbn.ml

import scala.jdk.CollectionConverters._

import java.nio.file.Files

import org.apache.spark.sql.functions._
import org.scalatest.funsuite.AnyFunSuite

import sparkdbn.testing.LocalSpark

import sparkdbn.train.ModelChannel

/** The DBN estimator's params, its fit over a real local Spark and sidecar, and the model channel. */
class DBNSpec extends AnyFunSuite with LocalSpark {
  private val dir = Files.createTempDirectory("dbn-spec")


  test("defaults, set, and validation naming the param") {
    val d = new DBN()
    assert(d.getLayers.toSeq == Seq(500, 500))
    assert(d.getMode == "sync" && d.getSyncEvery.isEmpty && d.getOrDefault(d.mergeRule) == "bmuf" && !d.isDefined(d.blockMomentum))
    assert(d.getOrDefault(d.momentum) == "0:0.5,5:0.9")
    d.setLayers(Array(8, 4)).setMode("sync").setSyncEvery(3).setLearningRate("0:0.1,3:0.01")
    assert(d.getLayers.toSeq == Seq(8, 4) && d.getMode == "sync" && d.getSyncEvery.contains(3))
    // A number where a number makes sense: the same constant schedule as its string.
    assert(d.setMomentum(0.9).getOrDefault(d.momentum) == "0.9" && d.setFineTuneLearningRate(1e-4).getOrDefault(d.fineTuneLearningRate) == "1.0E-4")
    assert(d.setLearningRate(1).getOrDefault(d.learningRate) == "1")
    assert(d.learningRate.isInstanceOf[ScheduleParam] && d.fineTuneMomentum.isInstanceOf[ScheduleParam])
    d.setLearningRate("0:0.1,3:0.01")
    // Each error names its own param (it accepted any of six words in any message).
    val bad = Seq[(String, () => Any)]("mode" -> (() => d.setMode("fast")), "layers" -> (() => d.setLayers(Array.empty[Int])),
      "syncEvery" -> (() => d.setSyncEvery(0)), "learningRate" -> (() => d.setLearningRate("0:0.1,0:0.2")),
      "learningRate" -> (() => d.setLearningRate("11")), "momentum" -> (() => d.setMomentum("1.5")), "k" -> (() => d.setK(0)),
      "fineTuneMomentum" -> (() => d.setFineTuneMomentum(2.0)))
    bad.foreach { case (name, f) =>
      val msg = intercept[IllegalArgumentException](f()).getMessage
      assert(msg.matches(s"(?s).*\\b$name\\b.*") && bad.map(_._1).filter(_ != name).forall(o => !msg.matches(s"(?s).*\\b$o\\b.*")), s"$name: $msg")
    }
    val unit = sparkdbn.sidecar.EngineSpec.rbm("sparsity_target") // [0, 1]
    def steps(s: String) = sparkdbn.sidecar.EngineSpec.parseSchedule(s, unit).map(_.getStepsList.asScala.map(t => (t.getEpoch, t.getValue)).toList)
    assert(steps("0:0.5,5:0.9") == Right(List((0, 0.5), (5, 0.9))))
    assert(steps("0.05") == Right(List((0, 0.05))))
    assert(steps("1:0.5").isLeft && steps("1.5").isLeft)
  }

  test("the engine's options: defaults and ranges from proto/engine.proto, every one sent, fine-tuning's weight decay too") {
    val d = new DBN()
    // The spec's values (the TypeScript engine's defaults come from the same options: options.test.ts).
    assert(d.getOrDefault(d.k) == 1 && d.getOrDefault(d.batchSize) == 100 && d.getOrDefault(d.learningRate) == "0.05")
    assert(d.getOrDefault(d.weightDecay) == 2e-4 && d.getOrDefault(d.fineTuneWeightDecay) == 1e-5 && d.getOrDefault(d.monitorRows) == 1000)
    assert(d.getOrDefault(d.fineTuneLearningRate) == "0.1" && d.getOrDefault(d.epochs) == 10 && d.getSeed == 1L)
    // Ranges at their bounds, closed and open, each refusal naming its param; the doc says the range.
    d.setK(1000).setBlockMomentum(0.999).setBlockLearningRate(100).setSeed((1L << 53) - 1).setWeightDecay(1)
    Seq[(String, () => Any)]("k" -> (() => d.setK(1001)), "blockMomentum" -> (() => d.setBlockMomentum(1.0)),
      "blockLearningRate" -> (() => d.setBlockLearningRate(0)), "seed" -> (() => d.setSeed(1L << 53)),
      "fineTuneWeightDecay" -> (() => d.setFineTuneWeightDecay(1.5)), "monitorRows" -> (() => d.setMonitorRows(-1)))
      .foreach { case (name, f) => assert(intercept[IllegalArgumentException](f()).getMessage.contains(name), name) }
    assert(d.explainParam(d.k).contains("[1, 1000]") && d.explainParam(d.blockMomentum).contains("[0, 1)"))
    // What the engine is sent: every param, typed, fine-tuning's weight decay included (it used to stay at the engine's default).
    val s = d.setFineTuneWeightDecay(0.003).setMomentum("0:0.4,2:0.8").setSparsityTarget(0.1).settings("r")
    assert(s.fineTuneConfig.hasWeightDecay && s.fineTuneConfig.getWeightDecay == 0.003)
    assert(s.rbmConfig.getK == 1000 && s.rbmConfig.getWeightDecay == 1.0 && s.rbmConfig.getSparsityTarget == 0.1 && s.rbmConfig.getMonitorRows == 1000)
    assert(s.rbmConfig.getMomentum.getStepsList.asScala.map(t => (t.getEpoch, t.getValue)) == Seq((0, 0.4), (2, 0.8)))
    assert(!s.rbmConfig.hasSeed && !s.fineTuneConfig.hasSeed, "each replica's seed is the engine's to derive")
  }

  test("save and load keep every param") {
    val d = new DBN().setLayers(Array(7, 3)).setMode("sync").setSeed(9).setLabelCol("y")
    d.write.overwrite().save(dir.resolve("est").toString)
    val back = DBN.load(dir.resolve("est").toString)
    assert(back.uid == d.uid && back.getLayers.toSeq == Seq(7, 3) && back.getMode == "sync" && back.getSeed == 9 && back.getLabelCol == "y")
  }

  test("schema problems are raised in the driver before any work") {
    val df = spark.range(10).select(col("id"), array(lit(0.5f), lit(0.25f)).as("features"), lit("a").as("y"))
    val e1 = intercept[IllegalArgumentException](new DBN().setFeaturesCol("nope").fit(df))
    assert(e1.getMessage.contains("column 'nope' does not exist"))
    val e2 = intercept[IllegalArgumentException](new DBN().setLabelCol("y").fit(df))
    assert(e2.getMessage.contains("label column 'y' is string, not numeric"))
  }

  test("fit over Spark (sync, 2 partitions) returns a model that scores, with its rounds in the summary and the job descriptions") {
    // Two prototypes with 10% noise: an 8-4 RBM with a soft-max learns to tell them apart.
    val rng = new scala.util.Random(3)
    val protos = Array(Array.tabulate(8)(i => if (i < 4) 1f else 0f), Array.tabulate(8)(i => if (i < 4) 0f else 1f))
    // 401 rows: the partitions get 200 and 201, whose own batch counts would differ (20 and 21 an epoch).
    val rows = (0 until 401).map { r =>
      val y = r % 2
      (protos(y).map(v => if (rng.nextDouble() < 0.1) 1 - v else v), y)
    }
    val session = spark
    import session.implicits._
    val df = rows.toDF("features", "label")
    // The Spark job of every round says which layer and round it is (the UI and event log show it).
    val descriptions = new java.util.concurrent.ConcurrentLinkedQueue[String]()
    val listener = new org.apache.spark.scheduler.SparkListener {
      override def onJobStart(e: org.apache.spark.scheduler.SparkListenerJobStart): Unit =
        Option(e.properties).flatMap(p => Option(p.getProperty("spark.job.description"))).foreach(descriptions.add)
    }
    // Sync rounds run in one barrier stage a topic (the partitions fit local[2]'s two task slots), or, with
    // spark.dbn.roundsInOneStage=false, one Spark job a round: the same rounds, the same model bit for bit.
    def fitWith(stage: Boolean) = {
      spark.conf.set(sparkdbn.sidecar.SidecarConf.RoundsInOneStageKey, stage.toString)
      try new DBN().setLayers(Array(4)).setLabelCol("label").setEpochs(3).setFineTuneEpochs(5).setBatchSize(10)
        .setLearningRate("0.1").setFineTuneLearningRate("0.2").setMode("sync").setSyncEvery(4).setNumPartitions(2).fit(df)
      finally spark.conf.unset(sparkdbn.sidecar.SidecarConf.RoundsInOneStageKey)
    }
    spark.sparkContext.addSparkListener(listener)
    val (model, perRound, stageDescriptions) = try {
      val m = fitWith(stage = true)
      // Listeners hear of jobs asynchronously: give the bus a moment before the next fit's jobs.
      val deadline = System.nanoTime() + 10L * 1000000000L
      while (descriptions.asScala.count(_.endsWith("rounds (one stage)")) < 2 && System.nanoTime() < deadline) Thread.sleep(50)
      val seen = descriptions.asScala.toList
      descriptions.clear()
      (m, fitWith(stage = false), seen)
    } finally spark.sparkContext.removeSparkListener(listener)
    def params(m: DBNModel) = {
      val p = sparkdbn.model.DbnSnapshots.read(m.snapshot)
      (p.layers.map(l => (l.weights.toSeq, l.visibleBias.toSeq, l.hiddenBias.toSeq)), p.output.map(o => (o.weights.toSeq, o.bias.toSeq)))
    }
    assert(params(model) == params(perRound))
    assert(model.summary.rounds.map(r => (r.topic, r.round, r.partition, r.batches, r.version)) ==
      perRound.summary.rounds.map(r => (r.topic, r.round, r.partition, r.batches, r.version)))
    // One stage a topic, no job a round.
    assert(stageDescriptions.count(_.endsWith("layer0 rounds (one stage)")) == 1 &&
      stageDescriptions.count(_.endsWith("finetune rounds (one stage)")) == 1, stageDescriptions)
    assert(!stageDescriptions.exists(_.matches(".*round \\d+ \\(from version \\d+\\)")), stageDescriptions)
    def rounds(topic: String) = descriptions.asScala.count(_.matches(s""".*: $topic round \\d+ \\(from version \\d+\\)"""))
    // Every replica trains the mean partition's ceil(401 / (2 x 10)) = 21 mini-batches an epoch, whatever
    // the split's sizes: ceil(epochs x 21 / 4) rounds a topic, each a block of both partitions.
    val layer0 = model.summary.rounds.filter(_.topic == "layer0")
    assert(layer0.groupBy(_.partition).map { case (p, rs) => p -> rs.map(_.batches).sum } == Map(0 -> 63, 1 -> 63), layer0)
    def expected(epochs: Int) = (epochs * 21 + 3) / 4
    val deadline = System.nanoTime() + 10L * 1000000000L
    while ((rounds("layer0") < expected(3) || rounds("finetune") < expected(5)) && System.nanoTime() < deadline) Thread.sleep(50)
    assert(rounds("layer0") == expected(3) && rounds("finetune") == expected(5), descriptions)
    assert(model.numInputs == 8 && model.numFeatures == 4 && model.numClasses == 2)
    val s = model.summary
    // The summary keeps the model as it was before fine-tuning: the same layers' shapes, no soft-max.
    val pre = sparkdbn.model.DbnSnapshots.read(s.pretrained.get)
    assert(pre.output.isEmpty && pre.sizes == model.dbn.sizes && !s.pretrained.get.sameElements(model.snapshot))
    // Every partition takes part in every round.
    def perPartition(epochs: Int) = 2 * expected(epochs)
    assert(s.rounds.count(_.topic == "layer0") == perPartition(3) && s.rounds.count(_.topic == "finetune") == perPartition(5))
    assert(s.rounds.forall(r => r.status == "merged" && r.staleness == 0))
    val acc = model.transform(df).select(avg((col("prediction") === col("label")).cast("double"))).head().getDouble(0)
    assert(acc > 0.95, s"accuracy $acc")

    // In a Pipeline, a later stage reads the DBN's output with the defaults (a Vector): the estimator's
    // transformSchema is the model's. A step size given as a number. Fitted, saved, loaded, scored.
    val pipe = new org.apache.spark.ml.Pipeline().setStages(Array(
      new DBN().setLayers(Array(4)).setEpochs(3).setBatchSize(10).setLearningRate(0.1).setSyncEvery(4).setNumPartitions(2),
      new org.apache.spark.ml.classification.LogisticRegression().setFeaturesCol("dbn_features").setMaxIter(50)))
    val est = pipe.getStages.head.asInstanceOf[DBN]
    assert(est.transformSchema(df.schema).fieldNames.toSeq == Seq("features", "label", "dbn_features"))
    assert(est.copy(org.apache.spark.ml.param.ParamMap.empty).setLabelCol("label").transformSchema(df.schema).fieldNames.toSeq ==
      Seq("features", "label", "dbn_features", "probability", "prediction"))
    val fitted = pipe.fit(df)
    val path = java.nio.file.Files.createTempDirectory("dbn-pipeline").resolve("p").toString
    fitted.write.overwrite().save(path)
    val again = org.apache.spark.ml.PipelineModel.load(path)
    def predictions(m: org.apache.spark.ml.PipelineModel) = m.transform(df).select("prediction").collect().map(_.getDouble(0)).toSeq
    val (p1, p2) = (predictions(fitted), predictions(again))
    assert(p1 == p2)
    val pipeAcc = p1.zip(rows.map(_._2)).count { case (p, y) => p == y }.toDouble / rows.size
    assert(pipeAcc > 0.9, s"pipeline accuracy $pipeAcc")
  }

  /** Three raw columns of very different scales (means 1000, -5, 0; deviations 300, 0.01, 1), and a label. */
  private def rawColumns(rows: Int, seed: Int) = {
    val rng = new scala.util.Random(seed)
    val session = spark
    import session.implicits._
    (0 until rows).map(r => (1000 + 300 * rng.nextGaussian(), -5 + 0.01 * rng.nextGaussian(), rng.nextGaussian(), r % 2))
      .toDF("a", "b", "c", "label")
  }

  test("the standardisation statistics Spark measures for training equal Spark SQL's own avg and stddev") {
    val df = rawColumns(1003, 4)
    val data = sparkdbn.train.TrainingData.prepare(df, sparkdbn.io.FeatureSource.NumericColumns(Seq("a", "b", "c")), 3, "", 3)
    try {
      val want = df.agg(avg("a"), avg("b"), avg("c"), stddev("a"), stddev("b"), stddev("c")).head()
      (0 until 3).foreach { j =>
        // Data reach the engine as float32: Spark's figures here are of the float32 values.
        assert(math.abs(data.means(j) - want.getDouble(j)) <= 1e-6 * math.max(1, math.abs(want.getDouble(j))), (j, data.means(j), want))
        assert(math.abs(data.stddevs(j) / want.getDouble(3 + j) - 1) < 1e-5, (j, data.stddevs(j), want))
      }
    } finally data.unpersist()
  }

  test("Gaussian inputs: the model standardises raw columns itself; its anomaly scores equal a naive computation, also after save and load") {
    val df = rawColumns(600, 5)
    val model = new DBN().setInputCols(Array("a", "b", "c")).setVisibleUnits("gaussian").setLayers(Array(4)).setEpochs(2)
      .setBatchSize(20).setLearningRate("0.01").setSyncEvery(4).setNumPartitions(2).fit(df)
    val scaling = model.dbn.inputScaling.get
    val stats = df.agg(avg("a"), avg("b"), avg("c"), stddev("a"), stddev("b"), stddev("c")).head()
    (0 until 3).foreach { j =>
      assert(math.abs(scaling.mean(j) - stats.getDouble(j)) <= 1e-6 * math.max(1, math.abs(stats.getDouble(j))))
      assert(math.abs(scaling.std(j) / stats.getDouble(3 + j) - 1) < 1e-5)
    }
    model.setFreeEnergyCol("fe").setReconstructionErrorCol("re")
    assert(model.transformSchema(df.schema).fieldNames.toSeq == Seq("a", "b", "c", "label", "dbn_features", "fe", "re"))
    val scored = model.transform(df).select("a", "b", "c", "fe", "re").collect()
    // Naive, in double, from the definitions: x = (v - mean) / std; F = |x - b|^2 / 2 - sum_j softplus(c_j + (xW)_j);
    // reconstruction W sigmoid(c + xW) + b, error |x - reconstruction|^2.
    val l = model.dbn.layers.head
    val (vn, hn) = (l.nVisible, l.nHidden)
    def softplus(z: Double) = if (z > 30) z else math.log1p(math.exp(z))
    scored.foreach { r =>
      val x = Array.tabulate(vn)(i => (r.getDouble(i).toFloat - scaling.mean(i)) / scaling.std(i))
      val pre = Array.tabulate(hn)(j => l.hiddenBias(j) + (0 until vn).map(i => x(i) * l.weights(i * hn + j)).sum)
      val fe = (0 until vn).map(i => 0.5 * math.pow(x(i) - l.visibleBias(i), 2)).sum - pre.map(softplus).sum
      val h = pre.map(z => 1 / (1 + math.exp(-z)))
      val re = (0 until vn).map(i => math.pow(x(i) - l.visibleBias(i) - (0 until hn).map(j => h(j) * l.weights(i * hn + j)).sum, 2)).sum
      // float32 arithmetic in the engine: 1e-4 relative.
      assert(math.abs(r.getDouble(3) - fe) <= 1e-4 * math.max(1, math.abs(fe)), (r, fe))
      assert(math.abs(r.getDouble(4) - re) <= 1e-4 * math.max(1, math.abs(re)), (r, re))
    }
    val path = dir.resolve("gaussian-model").toString
    model.write.overwrite().save(path)
    val back = DBNModel.load(path)
    assert(back.getFreeEnergyCol == "fe" && back.dbn.inputScaling.get.std.toSeq == scaling.std.toSeq)
    // Spark ML's idiom: a loaded model has no summary, and asking for it says why; without labels the
    // pre-trained model is the model.
    assert(model.hasSummary && model.summary.pretrained.get.sameElements(model.snapshot))
    assert(!back.hasSummary && intercept[IllegalStateException](back.summary).getMessage.endsWith("has no training summary: it was loaded, not fitted"))
    assert(back.transform(df).select("fe").collect().map(_.getDouble(0)).toSeq == scored.map(_.getDouble(3)).toSeq)
  }

  test("Gaussian inputs: a constant column, a NaN and a column missing at scoring each get an error naming the column") {
    val df = rawColumns(200, 6)
    def est = new DBN().setInputCols(Array("a", "b", "c")).setVisibleUnits("gaussian").setLayers(Array(2)).setEpochs(1)
      .setBatchSize(20).setNumPartitions(2)
    val constant = intercept[IllegalArgumentException](est.fit(df.withColumn("b", lit(2.5))))
    assert(constant.getMessage.startsWith("column 'b' is constant (2.5 in every row)"), constant.getMessage)
    val nan = intercept[Exception](est.fit(df.withColumn("c", when(col("label") === 1 && col("a") > 1000, lit(Double.NaN))
      .otherwise(col("c")))))
    assert(sparkdbn.cli.Failure.explain(nan).matches(".*row \\d+: column 'c' is NaN.*"), sparkdbn.cli.Failure.explain(nan))
    val model = est.setEpochs(0).fit(df)
    val missing = intercept[IllegalArgumentException](model.transform(df.drop("c")))
    assert(missing.getMessage.startsWith("column 'c' does not exist"), missing.getMessage)
  }

  test("a bad training row is named by its file and its row there, as the user can find it (issue 16, item 3)") {
    val session = spark
    import session.implicits._
    // 300 rows in two Parquet files; row id 123 carries the bad value.
    def write(name: String, bad: Float): String = {
      val path = dir.resolve(name).toString
      (0 until 300).map(i => (i.toLong, Array.tabulate(4)(j => if (i == 123 && j == 2) bad else ((i + j) % 2).toFloat)))
        .toDF("id", "features").repartition(2).write.mode("overwrite").parquet(path)
      path
    }
    def est = new DBN().setLayers(Array(2)).setEpochs(1).setBatchSize(10).setNumPartitions(2)
    for ((name, bad, problem) <- Seq(("nan-rows", Float.NaN, "column 'features' element 2 is NaN"),
        ("range-rows", 2f, "column 'features' element 2 is 2.0, outside [0, 1] for Bernoulli visible units"))) {
      val path = write(name, bad)
      val msg = sparkdbn.cli.Failure.explain(intercept[Exception](est.fit(spark.read.parquet(path))))
      val m = "row (\\d+) \\(from 0\\) of (\\S+): (.*)".r.findFirstMatchIn(msg).getOrElse(fail(msg))
      assert(m.group(3) == problem, msg)
      // That row of that file, read on its own, is the bad one.
      val ids = spark.read.parquet(m.group(2)).select("id").collect().map(_.getLong(0))
      assert(ids(m.group(1).toInt) == 123L, (msg, ids.take(10).toSeq))
    }
    // Rows that are not in files are named as Spark knows them: the stage, its partition and the row there.
    val local = (0 until 40).map(i => Array.tabulate(4)(j => if (i == 7 && j == 1) Float.NaN else 0f)).toDF("features")
    val msg = sparkdbn.cli.Failure.explain(intercept[Exception](est.fit(local)))
    assert(msg.matches("stage \\d+ partition \\d+: row \\d+: column 'features' element 1 is NaN"), msg)
    // With an id column the row is also named by its id: in files, and where it has no file.
    val inFiles = sparkdbn.cli.Failure.explain(intercept[Exception](est.setIdCol("id").fit(spark.read.parquet(dir.resolve("nan-rows").toString))))
    assert(inFiles.matches("row \\d+ \\(from 0\\) of \\S+ \\(id = 123\\): column 'features' element 2 is NaN"), inFiles)
    val keyedRows = (0 until 40).map(i => (s"k$i", Array.tabulate(4)(j => if (i == 7 && j == 1) Float.NaN else 0f))).toDF("key", "features")
    val keyed = sparkdbn.cli.Failure.explain(intercept[Exception](est.setIdCol("key").fit(keyedRows)))
    assert(keyed.matches("stage \\d+ partition \\d+: row \\d+ \\(key = 'k7'\\): column 'features' element 1 is NaN"), keyed)
    // An id column that is not there, or holds no single value, is refused (by transformSchema), named.
    assert(intercept[IllegalArgumentException](est.setIdCol("nope").fit(keyedRows)).getMessage
      .startsWith("id column 'nope' does not exist; the input has key, features"))
    assert(intercept[IllegalArgumentException](est.setIdCol("features").fit(keyedRows)).getMessage
      .startsWith("id column 'features' is array<float>; an id column must hold a single value"))
  }

  test("syncEvery unset: replicas sync every 32 mini-batches, also on data far too small for CNTK's H P^2 rule") {
    // The rule (rows / (P^2 x batch)) gave these 400 rows at batch 10 on 2 partitions a sync every 10 mini-batches.
    val session = spark
    import session.implicits._
    val df = (0 until 400).map(r => Array.tabulate(8)(i => ((r + i) % 3 == 0).compare(false).toFloat)).toDF("features")
    val lines = new java.util.concurrent.ConcurrentLinkedQueue[String]()
    val model = new DBN().setLayers(Array(4)).setEpochs(4).setBatchSize(10).setNumPartitions(2)
      .train(df, "default-sync", (l: String) => { lines.add(l); () })
    assert(lines.asScala.exists(_.matches("layer0: 4 epochs, \\d+ mini-batches over 2 partitions \\(sync, syncEvery 32, .*")),
      lines.asScala.mkString("\n"))
    // 20 mini-batches an epoch a replica, 80 in all: blocks of 32, 32 and 16.
    assert(model.summary.rounds.count(r => r.topic == "layer0" && r.partition == 0) == 3)
  }

  test("nesterov: unset, BMUF merges in the engine's default (classical) form; set, in Nesterov's, a different model") {
    val session = spark
    import session.implicits._
    val df = (0 until 400).map(r => Array.tabulate(8)(i => ((r + i) % 3 == 0).compare(false).toFloat)).toDF("features")
    def weights(nesterov: Option[Boolean]): Seq[Float] = {
      val d = new DBN().setLayers(Array(4)).setEpochs(2).setBatchSize(10).setSyncEvery(5).setNumPartitions(2).setSeed(7)
      nesterov.foreach(d.setNesterov)
      sparkdbn.model.DbnSnapshots.read(d.train(df, s"nesterov-${nesterov.getOrElse("unset")}", _ => ()).snapshot).layers.head.weights.toSeq
    }
    val unset = weights(None)
    assert(unset == weights(Some(false)), "unset must be the classical form, bit for bit")
    val look = weights(Some(true))
    assert(look.zip(unset).map { case (a, b) => math.abs(a - b) }.max > 1e-4, "Nesterov's form must move the model otherwise")
  }

  test("the driver's sidecar restarted mid-topic without a checkpoint: said in one line, and the run completes") {
    // Without a checkpoint no block momentum crosses a round: only the driver's sidecar keeps it. Its
    // loss must be said (the run goes on from zero momentum), not silent. In local mode the driver's
    // sidecar is the executors' too, so the replicas re-send their rows as well.
    val session = spark
    import session.implicits._
    val df = (0 until 400).map(r => Array.tabulate(8)(i => ((r + i) % 3 == 0).compare(false).toFloat)).toDF("features")
    val lines = new java.util.concurrent.ConcurrentLinkedQueue[String]()
    var killed = false
    val model = new DBN().setLayers(Array(4)).setEpochs(4).setBatchSize(10).setSyncEvery(2).setNumPartitions(2)
      .train(df, "restart", (l: String) => {
        lines.add(l)
        // After a few merged rounds of layer0 (the merge state exists), from the trainer's own thread.
        if (!killed && lines.asScala.count(_.startsWith("layer0: epoch")) == 3) {
          killed = true
          sparkdbn.sidecar.SidecarManager.get().process.destroyForcibly().waitFor()
        }
      })
    assert(killed)
    val told = lines.asScala.filter(_.contains("block momentum is lost"))
    assert(told.size == 1 && told.head.startsWith("layer0: the driver's sidecar was restarted"), lines.asScala.mkString("\n"))
    assert(model.transform(df).count() == 400)
  }

  test("the channel keeps at most two versions of a topic alive, plus those a running job holds") {
    val ch = new ModelChannel(spark.sparkContext)
    val v0 = ch.publish("t", Array[Byte](0))
    ch.publish("t", Array[Byte](1))
    val held = ch.subscribe("t")
    ch.publish("t", Array[Byte](2))
    ch.publish("t", Array[Byte](3))
    assert(ch.alive("t") == Seq(1, 2, 3)) // 0 destroyed, 1 held
    assert(intercept[Exception](v0.snapshot.value).getMessage.contains("destroyed"))
    ch.release(held)
    assert(ch.alive("t") == Seq(2, 3))
    assert(ch.subscribe("t").number == 3 && ch.latest("t").get.version == s"${ch.id}/t@3")
    // Another channel (another fit in the same application, whose sidecars cache by version) never names alike.
    val other = new ModelChannel(spark.sparkContext)
    assert(other.publish("t", Array[Byte](0)).version != v0.version)
    other.close()
    ch.close()
    assert(ch.alive("t").isEmpty && ch.destroyed == 4)
  }

  test("a checkpoint keeps every round once, in order, and the block momentum of its version, across many saves and a reload") {
    val ckpt = dir.resolve("ckpt").toString
    // Each field its own value (a reader that swaps two fields fails), NaN where a figure does not apply.
    def round(i: Int) = sparkdbn.train.RoundMetrics("r", "layer0", 0, i, i, i - 1, i % 2, i % 3, if (i % 5 == 0) "rejected" else "merged",
      i / 7, 10L * i, i + 1, 1.0 + i, -2.0 - i, if (i % 2 == 0) Double.NaN else -1.5 - i, 0.5 + i / 1e3, 0.9 - i / 1e4,
      0.1 * i, 0.2 * i, 0.3 * i, 0.01 * i, 0.001 * i, s"executor ${i % 4}", warm = i % 2 == 0, resent = i % 3 == 0, 1000L * i)
    val c = new sparkdbn.train.Checkpoint(ckpt, spark.sparkContext.hadoopConfiguration)
    // 150 saves of 2 new rounds each: the files are merged into one along the way.
    (1 to 150).foreach { n =>
      c.save(sparkdbn.train.CheckpointState("r", "fp", "layer0", n, Array(n.toLong, n.toLong), finished = false,
        Array[Byte](n.toByte), Array.tabulate[Byte](8)(i => (n * 3 + i).toByte), (1 to 2 * n).map(round).toList))
    }
    val files = new java.io.File(ckpt).list().filter(_.startsWith("rounds-"))
    assert(files.length < 64, files.mkString(", "))
    val back = new sparkdbn.train.Checkpoint(ckpt, spark.sparkContext.hadoopConfiguration).load().get
    assert(back.number == 150 && back.snapshot.toSeq == Seq(150.toByte) && back.done.toSeq == Seq(150L, 150L))
    // Every field of every round comes back (compared as text: NaN fields are not == themselves).
    assert(back.rounds.size == 300)
    back.rounds.map(_.toString).zip((1 to 300).map(round(_).toString)).find { case (g, w) => g != w }
      .foreach { case (g, w) => fail(s"a round read back as $g, written as $w") }
    assert(new java.io.File(ckpt).list().count(n => n.startsWith("layer0-v") && n.endsWith(".avro")) == 2)
    // The rounds are Avro files any Avro reader takes, by field name, without this build's classes.
    val generic = new org.apache.avro.file.DataFileReader(new java.io.File(ckpt, "rounds-0.avro"),
      new org.apache.avro.generic.GenericDatumReader[org.apache.avro.generic.GenericRecord]())
    val first = try generic.next() finally generic.close()
    assert(first.get("round") == 1 && first.get("topic").toString == "layer0" && first.get("freeEnergy") == -3.0)
    // The momentum restored is the one saved with version 150 (BMUF's D survives --resume).
    assert(back.momentum.toSeq == Array.tabulate[Byte](8)(i => (150 * 3 + i).toByte).toSeq)
    assert(new java.io.File(ckpt).list().count(_.endsWith(".momentum")) == 2)
    // A rule without momentum saves none, and a reload answers none.
    c.save(sparkdbn.train.CheckpointState("r", "fp", "layer1", 1, Array(1L, 1L), finished = false, Array[Byte](1),
      Array.emptyByteArray, (1 to 300).map(round).toList))
    assert(new sparkdbn.train.Checkpoint(ckpt, spark.sparkContext.hadoopConfiguration).load().get.momentum.isEmpty)
    // A checkpoint of another format is refused by name before anything in it is read as this one's.
    val state = java.nio.file.Paths.get(ckpt, "state.json")
    val text = java.nio.file.Files.readString(state)
    assert(text.contains("\"formatVersion\":2"))
    for ((edited, says) <- Seq(text.replace("\"formatVersion\":2,", "") -> "format 1, but this spark-dbn reads format 2 only (it was written by an older",
        text.replace("\"formatVersion\":2", "\"formatVersion\":3") -> "format 3, but this spark-dbn reads format 2 only:")) {
      java.nio.file.Files.writeString(state, edited)
      java.nio.file.Files.deleteIfExists(java.nio.file.Paths.get(ckpt, ".state.json.crc")) // Hadoop's checksum of the old text
      val e = intercept[IllegalStateException](new sparkdbn.train.Checkpoint(ckpt, spark.sparkContext.hadoopConfiguration).load())
      assert(e.getMessage.contains(s"checkpoint $ckpt: $says"), e.getMessage)
    }
  }
}
