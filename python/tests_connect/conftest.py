"""A Spark Connect server with the project's jar, started for this suite on a free loopback port and stopped
after it (also when a test fails), and a Connect client session to it. Its own pytest process: a Connect
session switches PySpark's ML wrappers into remote mode for the whole process."""
import os
import signal
import socket
import subprocess
import tempfile
import time

import pyspark
import pytest

import spark_dbn


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server():
    work = tempfile.mkdtemp(prefix="spark-dbn-connect-")
    port = _free_port()
    submit = os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-submit")
    log = open(os.path.join(work, "server.log"), "w")
    proc = subprocess.Popen(
        [submit, "--master", "local[2]", "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
         "--jars", spark_dbn.jar_path(), "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
         "--conf", f"spark.connect.grpc.binding.port={port}", "--conf", "spark.ui.enabled=false",
         "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.driver.bindAddress=127.0.0.1",
         "--conf", f"spark.sql.warehouse.dir={os.path.join(work, 'warehouse')}"],
        cwd=work, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 180
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the Connect server exited ({proc.returncode}): {open(log.name).read()[-3000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError(f"the Connect server did not listen within 180 s: {open(log.name).read()[-3000:]}")
                time.sleep(0.5)
        yield f"sc://127.0.0.1:{port}", work
    finally:
        # The server and what it started (its sidecar) are one process group.
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(60)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="session")
def remote(server):
    from pyspark.sql import SparkSession
    url, _ = server
    s = SparkSession.builder.remote(url).getOrCreate()
    yield s
    s.stop()
