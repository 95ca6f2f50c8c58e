import { expect } from 'chai';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DBN, saveSnapshot } from 'spark-dbn';
import { fillNormal, newRngState } from '../../ts/math/rng.js';
import { alive, CLUSTER_CONF, expectOneClearLine, processesUnder, run, sql, sqlLines, submit, useStandaloneCluster, type Workspace,
  workspace } from './helpers.js';

const ROWS = 20000;
const INPUTS = 16;

/** A 16-12-8 DBN with a 3-class output and weights large enough that rounding differences would show. */
function makeModel(): DBN {
  const dbn = DBN.create([INPUTS, 12, 8], { seed: 11 });
  const st = newRngState(11);
  for (const l of dbn.layers) {
    fillNormal(st, l.W, l.W.length, 0, 0.8);
    fillNormal(st, l.hBias, l.hBias.length, 0, 0.5);
  }
  const W = new Float32Array(8 * 3);
  fillNormal(st, W, W.length, 0, 1);
  dbn.output = { nIn: 8, nClasses: 3, W, bias: Float32Array.from([0.1, 0, -0.1]) };
  return dbn;
}

/** Spark's output table against the engine run in this process on the same rows: features to 1e-5, same prediction. */
async function compareWithEngine(ws: Workspace, table: string, model: DBN): Promise<void> {
  const rows = await sql(ws, `SELECT 'ROW', to_json(struct(id, features, dbn_features, prediction)) FROM ${table}`);
  expect(rows).to.have.length(ROWS);
  const parsed = rows.map(([j]) => JSON.parse(j) as { id: number; features: number[]; dbn_features: number[]; prediction: number });
  expect(new Set(parsed.map((r) => r.id)).size).to.equal(ROWS);
  const x = new Float32Array(parsed.length * INPUTS);
  parsed.forEach((r, i) => x.set(r.features, i * INPUTS));
  const m = { data: x, rows: parsed.length, cols: INPUTS };
  const want = model.transform(m);
  const pred = model.predict(m);
  let maxDiff = 0;
  parsed.forEach((r, i) => {
    r.dbn_features.forEach((v, j) => (maxDiff = Math.max(maxDiff, Math.abs(v - want.data[i * 8 + j]))));
    expect(r.prediction, `row ${r.id}`).to.equal(pred[i]);
  });
  // Same engine, same float32 inputs; JSON printing of floats is the only difference.
  expect(maxDiff).to.be.lessThan(1e-5);
}

describe('transform with a trained DBN, end to end', function () {
  const model = makeModel();

  describe('local mode', function () {
    let ws: Workspace;
    let data: string;
    let modelPath: string;
    before(async () => {
      ws = await workspace('transform-local');
      data = join(ws.dir, 'data');
      modelPath = join(ws.dir, 'model.avro');
      await saveSnapshot(model, modelPath);
      await submit(ws, 'local[2]', ['gen-data', '--out', data, '--rows', String(ROWS), '--cols', String(INPUTS), '--as', 'array']);
    });

    it('equals the in-process engine row for row', async () => {
      await submit(ws, 'local[2]', ['transform', '--model', modelPath, '--input', data, '--table', 'scored', '--partitions', '3']);
      await compareWithEngine(ws, 'scored', model);
    });

    it('fails on a NaN naming partition and row, leaves no table, and the next job works', async () => {
      const bad = join(ws.dir, 'bad');
      // One NaN in row id 1234, written by Spark itself.
      const r0 = await submit(ws, 'local[2]', ['gen-data', '--out', bad, '--rows', '3000', '--cols', String(INPUTS), '--as', 'array']);
      expect(r0.code).to.equal(0);
      const withNaN = await run(join(process.env.SPARK_HOME!, 'bin', 'spark-sql'), ['--conf', 'spark.ui.enabled=false', '-e',
        `CREATE TABLE nan_input USING parquet AS SELECT id, CASE WHEN id = 1234 THEN transform(features, (x, i) -> CASE WHEN i = 5 THEN float('NaN') ELSE x END) ELSE features END AS features FROM parquet.\`${bad}\``],
      ws.env);
      expect(withNaN.code, withNaN.stderr.slice(-2000)).to.equal(0);
      const where = join(ws.catalog, 'warehouse', 'nan_input');
      const r = await submit(ws, 'local[2]', ['transform', '--model', modelPath, '--input', where, '--table', 'scored_nan',
        '--id-col', 'id'], {}, true);
      expect(r.code).to.not.equal(0);
      // Named where the user finds it: the file and its row (the sidecar's typed RowError, placed by the driver),
      // and by the id column given.
      const m = /row (\d+) \(from 0\) of (\S+) \(id = 1234\): column 'features' element 5: value is NaN/.exec(r.stderr);
      expect(m, r.stderr.slice(-2000)).to.not.equal(null);
      const ids = (await sqlLines(ws, `SELECT id FROM parquet.\`${m![2]}\``)).flat();
      expect(ids[Number(m![1])]).to.equal('1234');
      const tables = (await sqlLines(ws, 'SHOW TABLES')).flat();
      expect(tables).to.include('nan_input');
      expect(tables).to.not.include('scored_nan');
      const ok = await submit(ws, 'local[2]', ['transform', '--model', modelPath, '--input', data, '--table', 'scored_again']);
      expect(ok.code).to.equal(0);
    });

    it('refuses an existing table by default; a failed job leaves no table and no directory, and under --mode overwrite the old table as it was', async () => {
      // The table of the first case exists: refused before any work.
      const again = await submit(ws, 'local[2]', ['transform', '--model', modelPath, '--input', data, '--table', 'scored'], {}, true);
      expectOneClearLine(again, 'transform', /^transform: table scored exists: --mode overwrite replaces it, --mode append adds to it$/);
      // Array data of 8 values for a model of 16 inputs: nothing in the schema tells, so the tasks fail.
      const narrow = join(ws.dir, 'narrow');
      await submit(ws, 'local[2]', ['gen-data', '--out', narrow, '--rows', '500', '--cols', '8', '--as', 'array']);
      const failNew = await submit(ws, 'local[2]', ['transform', '--model', modelPath, '--input', narrow, '--table', 'never'], {}, true);
      expect(failNew.code).to.equal(1);
      expect(failNew.stderr).to.match(/has an array of 8 values, the model takes 16/);
      const failOver = await submit(ws, 'local[2]', ['transform', '--model', modelPath, '--input', narrow, '--table', 'scored',
        '--mode', 'overwrite'], {}, true);
      expect(failOver.code).to.equal(1);
      const warehouse = readdirSync(join(ws.catalog, 'warehouse'));
      expect(warehouse).to.not.include('never');
      expect(warehouse.filter((d) => d.includes('spark_dbn'))).to.deep.equal([]);
      const tables = (await sqlLines(ws, 'SHOW TABLES')).flat();
      expect(tables).to.not.include('never');
      const [[n]] = await sql(ws, `SELECT 'ROW', count(*) FROM scored`);
      expect(n).to.equal(String(ROWS));
      // The name is free again: no directory is left in the way (the warehouse check above).
      await submit(ws, 'local[2]', ['transform', '--model', modelPath, '--input', data, '--table', 'scored', '--mode', 'overwrite']);
      await compareWithEngine(ws, 'scored', model);
    });

    it('bad input as a user meets it: one clear line and a non-zero exit, no stack trace', async () => {
      const help = await submit(ws, 'local[1]', ['transform', '--help']);
      expect(help.stdout).to.contain('--batch-rows').and.contain('(default: 4096)').and.contain('--table');
      // A missing input path.
      expectOneClearLine(await submit(ws, 'local[2]', ['transform', '--model', modelPath, '--input', join(ws.dir, 'nowhere'),
        '--table', 't'], {}, true), 'transform', /^transform: input path \S+nowhere does not exist$/);
      // A task's own error (the sidecar cannot start), not Spark's wrappings of it.
      expectOneClearLine(await submit(ws, 'local[2]', ['transform', '--model', modelPath, '--input', data, '--table', 'no_node'],
        { 'spark.dbn.node': '/nonexistent/node' }, true), 'transform',
      /^transform: executor driver on \S+: cannot run spark.dbn.node=\/nonexistent\/node \(the jar's sidecar\): /);
      // A spark.dbn conf that does not parse: named, with its value and what is accepted, before any work.
      expectOneClearLine(await submit(ws, 'local[2]', ['transform', '--model', modelPath, '--input', data, '--table', 't'],
        { 'spark.dbn.sidecar.threads': 'abc' }, true), 'transform', /^transform: spark\.dbn\.sidecar\.threads=abc: expected an integer from 1 to 256$/);
    });

    it('refuses a wrong input width in the driver before any task', async () => {
      const r = await submit(ws, 'local[2]', ['transform', '--model', modelPath, '--input', data, '--table', 't',
        '--input-cols', 'id'], {}, true);
      expect(r.code).to.not.equal(0);
      expect(r.stderr).to.contain('1 input columns given, the model takes 16 inputs');
      expect(r.stderr).to.not.match(/Executor: Exception in task/);
    });
  });

  describe('local standalone cluster', function () {
    const cluster = useStandaloneCluster('transform-standalone');

    it('equals the in-process engine over two executors, then leaves no process behind', async () => {
      const { ws, master } = cluster;
      const data = join(ws.dir, 'data');
      const modelPath = join(ws.dir, 'model.avro');
      await saveSnapshot(model, modelPath);
      await submit(ws, master, ['gen-data', '--out', data, '--rows', String(ROWS), '--cols', String(INPUTS), '--as', 'array'], CLUSTER_CONF);
      await submit(ws, master, ['transform', '--model', modelPath, '--input', data, '--table', 'scored', '--partitions', '4'], CLUSTER_CONF);
      await compareWithEngine(ws, 'scored', model);
      expect((await cluster.stop()).code).to.equal(0);
      expect(cluster.daemons.filter(alive)).to.deep.equal([]);
      expect(processesUnder(ws.dir)).to.deep.equal([]);
    });
  });
});
