import { expect } from 'chai';
import { join } from 'node:path';
import { loadSnapshot } from 'spark-dbn';
import { smallDigits, sql, submit, useStandaloneCluster } from './helpers.js';

// Sync rounds over a cluster whose executors run several replicas each: the replicas sharing an executor's
// sidecar combine their updates there, and the executors' combined updates are combined in turn (a tree of
// leaders whose blocks pass through Spark's block managers) (spark.dbn.combineUpdates, the default), so that
// the driver receives one update a round, not one a replica.
describe('sync rounds on a standalone cluster of two executors of four tasks', function () {
  const cluster = useStandaloneCluster('cluster-rounds', { SPARK_DBN_WORKER_CORES: '4' });
  const conf = {
    'spark.executor.cores': '4',
    'spark.cores.max': '8',
    'spark.executor.memory': '1g',
    'spark.scheduler.minRegisteredResourcesRatio': '1.0',
    'spark.scheduler.maxRegisteredResourcesWaitingTime': '60s',
  };
  let input = '';

  before(async function () {
    this.timeout(300_000);
    input = await smallDigits(cluster.ws, 2000);
  });

  const train = (runId: string, extra: Record<string, string> = {}) =>
    submit(cluster.ws, cluster.master, ['train', '--input', input, '--layers', '32', '--epochs', '2', '--batch-size', '20',
      '--sync-every', '5', '--partitions', '8', '--seed', '6', '--run-id', runId, '--model-out', join(cluster.ws.dir, runId)],
    { ...conf, ...extra });

  it('combines the round\'s updates before the driver: 1 update a round instead of 8, and the same model', async () => {
    const { ws } = cluster;
    const combined = await train('combined');
    const plain = await train('plain', { 'spark.dbn.combineUpdates': 'false' });
    for (const r of [combined, plain]) expect(r.stdout).to.match(/over 8 partitions \(sync, syncEvery 5, rounds in one stage\)/);
    // Per round: the updates that reached the driver, their bytes, the replicas they carry, the executors.
    const perRound = async (runId: string) => (await sql(ws, `SELECT 'ROW', count_if(update_bytes > 0), sum(update_bytes),
      sum(updates_combined), max(update_bytes), count(DISTINCT executor), count(*) FROM dbn_rounds WHERE run_id = '${runId}'
      GROUP BY topic, round ORDER BY topic, round`)).map((row) => row.map(Number));
    const [c, p] = [await perRound('combined'), await perRound('plain')];
    expect(c.length).to.be.greaterThan(4);
    expect(c.length).to.equal(p.length);
    for (const [updates, , replicas, , executors, rows] of c) expect([updates, replicas, executors, rows]).to.deep.equal([1, 8, 2, 8]);
    for (const [updates, , replicas, , , rows] of p) expect([updates, replicas, rows]).to.deep.equal([8, 8, 8]);
    // The update is the size of one replica's (the same parameters), so the driver receives an eighth of the bytes.
    c.forEach(([, bytes, , largest], i) => {
      expect(largest).to.be.closeTo(p[i][3], 8);
      expect(bytes / p[i][1]).to.be.closeTo(1 / 8, 0.01);
    });
    // The same rounds and merges; only the order of the float sums differs (a mean of means in float32).
    const [a, b] = await Promise.all(['combined', 'plain'].map((r) => loadSnapshot(join(ws.dir, r, 'data', 'model.avro'))));
    const W = [a.layers[0].W, b.layers[0].W];
    const diff = W[0].reduce((m, w, i) => Math.max(m, Math.abs(w - W[1][i])), 0);
    expect(diff).to.be.below(1e-4);
    expect(a.layers[0].counters.samples).to.equal(b.layers[0].counters.samples);
  });
});
