package sparkdbn.io

/**
 * Bad input found while a task reads its rows: `where` names the row as the reader knows it, `problem`
 * says what is wrong ("column 'c' is NaN"). `partition` and `row` (the row's place in that input
 * partition, from 0; -1 when not known) let the driver say where the row is in the user's files
 * (InputLocation); `key` names it by the user's id column ("id = 1234", RowKey) when one is given.
 */
final class InputRowException(val where: String, val problem: String, val partition: Int = -1, val row: Long = -1L,
    val key: String = "") extends IllegalArgumentException(if (key.isEmpty) s"$where: $problem" else s"$where ($key): $problem") {
  /** The same, placed at `row` of input `partition` by a reader that counts rows. */
  def at(partition: Int, row: Long): InputRowException = new InputRowException(where, problem, partition, row, key)
  /** The same, with the row's id ("id = 1234"). */
  def keyed(key: String): InputRowException = new InputRowException(where, problem, partition, row, key)
  /** The same, with the row's id when the user gave an id column (RowKey). */
  def keyedBy(key: Option[RowKey], row: org.apache.spark.sql.catalyst.InternalRow): InputRowException =
    key.fold(this)(k => keyed(k.of(row)))
  /** The same row, named otherwise (its file and row there). */
  def locatedAt(where: String): InputRowException = new InputRowException(where, problem, partition, row, key)
}

object InputRowException {
  def apply(where: String, problem: String): InputRowException = new InputRowException(where, problem)
}

