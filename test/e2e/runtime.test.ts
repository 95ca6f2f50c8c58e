import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadSnapshot } from 'spark-dbn';
import { CLUSTER_CONF, expectOneClearLine, ROOT, run, submit, useStandaloneCluster } from './helpers.js';

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
    const { ws } = cluster;
    const jsonl = join(ws.dir, 'digits');
    const g = await run('node', ['scripts/mnist-jsonl.mjs', jsonl, '--size', '14', '--binary', '--full', '2000'], ws.env);
    if (g.code !== 0) throw new Error(g.stderr);
    input = join(ws.dir, 'digits.parquet');
    await submit(ws, 'local[2]', ['import', '--input', join(jsonl, 'train.jsonl'), '--out', input]);
  });

  const train = (master: string, runId: string, conf: Record<string, string>, expectFailure = false) =>
    submit(cluster.ws, master, ['train', '--input', input, '--layers', '32', '--epochs', '2', '--batch-size', '20',
      '--sync-every', '5', '--partitions', '2', '--seed', '4', '--run-id', runId, '--model-out', join(cluster.ws.dir, runId)],
    conf, expectFailure);

  it('trains with only the jar and the runtime archive: native kernels on every executor, the model of local mode', async () => {
    const { ws, master } = cluster;
    const shipped = { 'spark.archives': `${archive}#sparkdbn` };
    await train(master, 'bare', { ...CLUSTER_CONF, ...shipped });
    await train('local[2]', 'local', shipped);
    // Each executor started its sidecar from the archive; one that could not load the native kernels
    // would have failed its task (spark.dbn.kernels defaults to native).
    const logs = readdirSync(join(ws.dir, 'standalone', 'work'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('stderr')).map((f) => readFileSync(join(ws.dir, 'standalone', 'work', f), 'utf8')).join('\n');
    const started = logs.match(/started sidecar pid \d+ .* for executor \d+ from the runtime archive sparkdbn/g) ?? [];
    expect(started, logs.slice(-3000)).to.have.length(2);
    const [a, b] = await Promise.all(['bare', 'local'].map((r) => loadSnapshot(join(ws.dir, r, 'data', 'model.avro'))));
    const W = [a.layers[0].W, b.layers[0].W];
    const diff = Math.max(...Array.from(W[0], (w, i) => Math.abs(w - W[1][i])));
    // The same rounds and merges; only BLAS's summation order may differ between 1 and 2 threads.
    expect(diff).to.be.below(1e-4);
  });

  it('without the archive fails before training with one clear line naming the executor, its host and what is missing', async () => {
    const r = await train(cluster.master, 'bare-no-archive', CLUSTER_CONF, true);
    expectOneClearLine(r, 'train', /^train: executor \d+ on \S+: cannot run spark.dbn.node=node \(the jar's sidecar\): .*ship the runtime archive/);
  });
});
