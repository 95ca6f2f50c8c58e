import { expect } from 'chai';
import { join } from 'node:path';
import { loadSnapshot } from 'spark-dbn';
import { alive, CLUSTER_CONF, expectOneClearLine, processesUnder, run, sql, sqlLines, submit, useStandaloneCluster, type Workspace, workspace } from './helpers.js';

const ROWS = 20000;
const PARTITIONS = 6;

/**
 * Compares the skeleton's table with what Spark computes itself from the same
 * data in a new session: per partition (the job hashes all columns, as
 * DISTRIBUTE BY does), the row count and each column's sum.
 */
async function verify(ws: Workspace, data: string, table: string) {
  const rows = await sql(ws, `
    SET spark.sql.adaptive.enabled=false;
    SET spark.sql.shuffle.partitions=${PARTITIONS};
    CREATE TEMPORARY VIEW src USING parquet OPTIONS (path '${data}');
    CREATE TEMPORARY VIEW expected AS
      SELECT p, rows, col, s FROM (
        SELECT p, count(*) AS rows, CAST(sum(id) AS DOUBLE) AS id, sum(x0) AS x0, sum(x1) AS x1, sum(x2) AS x2
        FROM (SELECT spark_partition_id() AS p, * FROM (SELECT * FROM src DISTRIBUTE BY id, x0, x1, x2)) GROUP BY p)
      LATERAL VIEW stack(4, 'id', id, 'x0', x0, 'x1', x1, 'x2', x2) t AS col, s;
    SELECT 'ROW', count(*),
      sum(CASE WHEN t.rows = e.rows AND abs(t.sum - e.s) <= 1e-9 * greatest(1, abs(e.s)) THEN 0 ELSE 1 END),
      (SELECT count(*) FROM expected), sum(t.rows) / 4
    FROM ${table} t JOIN expected e ON e.p = t.partition AND e.col = t.column;
    SELECT 'ROW', executor_id, sidecar_pid FROM ${table} GROUP BY executor_id, sidecar_pid;`);
  const [[matched, mismatched, expectedRows, totalRows], ...sidecars] = rows;
  return {
    matched: Number(matched),
    mismatched: Number(mismatched),
    expectedRows: Number(expectedRows),
    totalRows: Number(totalRows),
    sidecars: sidecars.map(([exec, pid]) => ({ exec, pid: Number(pid) })),
  };
}

describe('skeleton job, end to end', function () {
  describe('local mode (local[2])', function () {
    let ws: Workspace;
    let data: string;
    before(async () => {
      ws = await workspace('local');
      data = join(ws.dir, 'data');
      await submit(ws, 'local[2]', ['gen-data', '--out', data, '--rows', String(ROWS), '--cols', '3']);
    });

    it("saves a table whose per-partition rows and sums equal Spark's own, from one sidecar per executor", async () => {
      await submit(ws, 'local[2]', ['skeleton', '--input', data, '--table', 'skel_local', '--partitions', String(PARTITIONS),
        '--batch-rows', '1000']);
      const v = await verify(ws, data, 'skel_local');
      expect(v.expectedRows).to.equal(PARTITIONS * 4);
      expect(v.matched).to.equal(PARTITIONS * 4);
      expect(v.mismatched).to.equal(0);
      expect(v.totalRows).to.equal(ROWS);
      // local mode has one executor, "driver": one sidecar.
      expect(v.sidecars.map((s) => s.exec)).to.deep.equal(['driver']);
      expect(v.sidecars).to.have.length(1);
      // The sidecar went away with the application.
      expect(alive(v.sidecars[0].pid)).to.equal(false);
    });

    it('fails the job with the sidecar start error when node cannot be run, and leaves no table', async () => {
      const r = await submit(ws, 'local[2]', ['skeleton', '--input', data, '--table', 'skel_broken'],
        { 'spark.dbn.node': '/nonexistent/node' }, true);
      expect(r.code).to.not.equal(0);
      expect(r.stderr).to.match(/executor driver on \S+: cannot run spark.dbn.node=\/nonexistent\/node \(the jar's sidecar\)/);
      const tables = (await sqlLines(ws, 'SHOW TABLES')).flat();
      expect(tables).to.include('skel_local');
      expect(tables).to.not.include('skel_broken');
    });

    it('refuses input without numeric columns, naming the schema, before any work', async () => {
      const text = join(ws.dir, 'text.csv');
      const r0 = await run('bash', ['-c', `mkdir -p ${text} && printf 'a,b\\nx,y\\n' > ${text}/part.csv`], {});
      expect(r0.code).to.equal(0);
      const r = await submit(ws, 'local[2]', ['skeleton', '--input', text, '--format', 'csv', '--table', 't'], {}, true);
      expectOneClearLine(r, 'skeleton', /has no numeric column; its schema is a: string, b: string/);
    });

    it('bad input as a user meets it: one clear line and a non-zero exit, no stack trace', async () => {
      // A missing input path.
      expectOneClearLine(await submit(ws, 'local[2]', ['skeleton', '--input', join(ws.dir, 'nowhere'), '--table', 't'], {}, true),
        'skeleton', /^skeleton: input path \S+nowhere does not exist$/);
      // A task's own error (the sidecar cannot start), not Spark's wrappings of it.
      expectOneClearLine(await submit(ws, 'local[2]', ['skeleton', '--input', data, '--table', 'skel_broken2'],
        { 'spark.dbn.node': '/nonexistent/node' }, true), 'skeleton', /^skeleton: executor driver on \S+: cannot run spark.dbn.node=\/nonexistent\/node \(the jar's sidecar\): /);
      // A spark.dbn conf that does not parse: named, with its value and what is accepted, before any work.
      expectOneClearLine(await submit(ws, 'local[2]', ['skeleton', '--input', data, '--table', 'skel_conf'],
        { 'spark.dbn.sidecar.threads': 'abc' }, true), 'skeleton', /^skeleton: spark\.dbn\.sidecar\.threads=abc: expected an integer from 1 to 256$/);
    });

    it('--help lists every option with its default and exits 0', async () => {
      const r = await submit(ws, 'local[1]', ['skeleton', '--help']);
      expect(r.stdout).to.contain('--batch-rows').and.contain('(default: 4096)').and.contain('--table');
    });
  });

  describe('local standalone cluster (two workers, one executor each)', function () {
    const cluster = useStandaloneCluster('standalone');

    it('trains over two executors with a topic\'s rounds in one stage: the model of a Spark job a round, bit for bit', async () => {
      // Off local mode every version crosses as a broadcast and every update as the task's message to the
      // driver's round hub: the path local mode's shared sidecar skips.
      const { ws, master } = cluster;
      const jsonl = join(ws.dir, 'digits');
      const g = await run('node', ['scripts/mnist-jsonl.mjs', jsonl, '--size', '14', '--binary', '--full', '2000'], ws.env);
      if (g.code !== 0) throw new Error(g.stderr);
      const input = join(ws.dir, 'digits.parquet');
      await submit(ws, 'local[2]', ['import', '--input', join(jsonl, 'train.jsonl'), '--out', input]);
      const fit = (stage: boolean) => submit(ws, master, ['train', '--input', input, '--layers', '32', '--epochs', '3', '--batch-size',
        '20', '--sync-every', '5', '--partitions', '2', '--seed', '4', '--run-id', `cluster-${stage}`, '--model-out',
        join(ws.dir, `model-${stage}`)], { ...CLUSTER_CONF, 'spark.dbn.roundsInOneStage': String(stage) });
      const [inStage, perRound] = [await fit(true), await fit(false)];
      expect(inStage.stdout).to.match(/layer0: 3 epochs, \d+ mini-batches over 2 partitions \(sync, syncEvery 5, rounds in one stage\)/);
      expect(perRound.stdout).to.match(/\(sync, syncEvery 5, a Spark job a round\)/);
      const [a, b] = await Promise.all([true, false].map((s) => loadSnapshot(join(ws.dir, `model-${s}`, 'data', 'model.avro'))));
      expect(Array.from(a.layers[0].W)).to.deep.equal(Array.from(b.layers[0].W));
      expect(Array.from(a.layers[0].hBias)).to.deep.equal(Array.from(b.layers[0].hBias));
      // Both executors trained: each partition's rounds ran on its own executor's sidecar.
      const rows = await sql(ws, `SELECT 'ROW', count(DISTINCT executor), count(*) FROM dbn_rounds WHERE run_id = 'cluster-true'`);
      expect(Number(rows[0][0])).to.equal(2);
      expect(Number(rows[0][1])).to.be.greaterThan(10);
    });

    it('runs the same job over two executors, two sidecars, then leaves no process behind', async () => {
      const { ws, master } = cluster;
      expect(master).to.match(/^spark:\/\/127\.0\.0\.1:\d+$/);
      expect(cluster.daemons).to.have.length(3);
      const data = join(ws.dir, 'data');
      await submit(ws, master, ['gen-data', '--out', data, '--rows', String(ROWS), '--cols', '3'], CLUSTER_CONF);
      await submit(ws, master, ['skeleton', '--input', data, '--table', 'skel_cluster', '--partitions', String(PARTITIONS)], CLUSTER_CONF);
      const v = await verify(ws, data, 'skel_cluster');
      expect(v.matched).to.equal(PARTITIONS * 4);
      expect(v.mismatched).to.equal(0);
      expect(v.totalRows).to.equal(ROWS);
      const execs = new Set(v.sidecars.map((s) => s.exec));
      expect(execs.size).to.equal(2);
      expect(v.sidecars).to.have.length(2);
      expect(new Set(v.sidecars.map((s) => s.pid)).size).to.equal(2);

      expect((await cluster.stop()).code).to.equal(0);
      expect(cluster.daemons.filter(alive)).to.deep.equal([]);
      expect(v.sidecars.map((s) => s.pid).filter(alive)).to.deep.equal([]);
      expect(processesUnder(ws.dir)).to.deep.equal([]);
    });
  });
});
