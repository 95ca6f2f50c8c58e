package sparkdbn.io

import org.apache.spark.sql.catalyst.CatalystTypeConverters
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.types._

/**
 * Names a row by the value of the user's id column ("txn_id = 'T-1234'"), for errors about bad input:
 * a file's row number means little for data that is not a file, or that was shuffled on its way in.
 * Read only when a row is bad, so it costs nothing on the way.
 */
final class RowKey private (name: String, ordinal: Int, dataType: DataType) extends Serializable {
  def of(row: InternalRow): String =
    if (row.isNullAt(ordinal)) s"$name = null"
    else CatalystTypeConverters.createToScalaConverter(dataType)(row.get(ordinal, dataType)) match {
      case s: String => s"$name = '$s'"
      case v => s"$name = $v"
    }
}

object RowKey {
  /** The id column's key for rows of `schema`; None when `column` is empty. Throws naming the column when it cannot be one. */
  def bind(schema: StructType, column: String): Option[RowKey] = if (column.isEmpty) None else {
    val i = schema.fieldNames.indexOf(column)
    if (i < 0) {
      throw new IllegalArgumentException(s"id column '$column' does not exist; the input has ${schema.fieldNames.mkString(", ")}")
    }
    schema(i).dataType match {
      case _: StringType | _: NumericType | BooleanType | DateType | TimestampType | TimestampNTZType =>
        Some(new RowKey(column, i, schema(i).dataType))
      case other => throw new IllegalArgumentException(
        s"id column '$column' is ${other.simpleString}; an id column must hold a single value (a string, number, date or timestamp)")
    }
  }
}
