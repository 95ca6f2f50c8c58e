package sparkdbn.sidecar

import scala.jdk.CollectionConverters._

import com.google.protobuf.Descriptors.Descriptor

import sparkdbn.proto.{BlockRule, EngineProto, FineTuneConfig, OptionSpec, RBMTrainConfig, Schedule, ScheduleStep, SidecarLaunch}

/**
 * The engine's options' defaults and ranges, as proto/engine.proto's `(sparkdbn.v1.spec)` field options
 * give them (the engine reads the same options, generated into ts/gen/engine-spec.ts): the Spark params
 * take their defaults and validators from here, so no default or range is written in Scala.
 */
object EngineSpec {

  /** One option of one message. */
  final case class Option(message: String, field: String, spec: OptionSpec) {
    private def where = s"$message.$field"

    def default: Double = {
      require(spec.hasDefault, s"$where has no default in proto/engine.proto")
      spec.getDefault
    }
    def defaultInt: Int = default.toInt
    def defaultFlag: Boolean = default != 0

    /** A schedule's default in the params' syntax: "0.05", or "0:0.5,5:0.9". */
    def defaultSchedule: String = {
      val steps = spec.getDefaultScheduleList.asScala.toSeq
      require(steps.nonEmpty, s"$where has no default schedule in proto/engine.proto")
      if (steps.size == 1 && steps.head.getEpoch == 0) number(steps.head.getValue)
      else steps.map(s => s"${s.getEpoch}:${number(s.getValue)}").mkString(",")
    }

    def contains(v: Double): Boolean =
      !spec.getHasRange || ((if (spec.getMinOpen) v > spec.getMin else v >= spec.getMin) &&
        (if (spec.getMaxOpen) v < spec.getMax else v <= spec.getMax))

    /** "[0, 10]", "(0, 100]": the range as messages say it. */
    def rangeText: String =
      s"${if (spec.getMinOpen) "(" else "["}${number(spec.getMin)}, ${number(spec.getMax)}${if (spec.getMaxOpen) ")" else "]"}"

    def intValidator: Int => Boolean = (v: Int) => contains(v.toDouble)
    def doubleValidator: Double => Boolean = (v: Double) => !v.isNaN && contains(v)
  }

  def number(v: Double): String = if (v == math.rint(v) && math.abs(v) < 1e15) v.toLong.toString else v.toString

  private def of(d: Descriptor, field: String): Option = {
    val f = d.findFieldByName(field)
    require(f != null, s"${d.getName} has no field $field")
    val o = f.getOptions
    require(o.hasExtension(EngineProto.spec), s"${d.getName}.$field has no (sparkdbn.v1.spec) option")
    Option(d.getName, field, o.getExtension(EngineProto.spec))
  }

  def rbm(field: String): Option = of(RBMTrainConfig.getDescriptor, field)
  def fineTune(field: String): Option = of(FineTuneConfig.getDescriptor, field)
  def block(field: String): Option = of(BlockRule.getDescriptor, field)
  def launch(field: String): Option = of(SidecarLaunch.getDescriptor, field)

  /** The largest seed the engine takes (a JavaScript number's integers: |n| <= 2^53 - 1). */
  val MaxSeed: Long = (1L << 53) - 1

  /**
   * "0.05" or "0:0.5,5:0.9" (from epoch 0 the value 0.5, from epoch 5 0.9) as the contract's Schedule;
   * Left(reason) when malformed or outside the option's range.
   */
  def parseSchedule(s: String, o: Option): Either[String, Schedule] = {
    def num(t: String): scala.Option[Double] = t.trim.toDoubleOption.filter(v => !v.isNaN && o.contains(v))
    def step(e: Int, v: Double) = ScheduleStep.newBuilder().setEpoch(e).setValue(v).build()
    if (!s.contains(":")) {
      num(s).map(v => Right(Schedule.newBuilder().addSteps(step(0, v)).build()))
        .getOrElse(Left(s"'$s' is not a number in ${o.rangeText}"))
    } else {
      val pairs = s.split(",").map(_.split(":")).map {
        case Array(e, v) => e.trim.toIntOption.filter(_ >= 0).zip(num(v))
        case _ => None
      }
      if (pairs.exists(_.isEmpty)) Left(s"'$s' is not 'epoch:value,...' with values in ${o.rangeText}")
      else {
        val ps = pairs.flatten
        if (ps.head._1 != 0 || ps.map(_._1).sliding(2).exists(w => w.length == 2 && w(0) >= w(1))) {
          Left(s"'$s': epochs must start at 0 and increase")
        } else Right(Schedule.newBuilder().addAllSteps(ps.map { case (e, v) => step(e, v) }.toSeq.asJava).build())
      }
    }
  }
}
