import { expect } from 'chai';
import { join } from 'node:path';
import { DBN, type Matrix, saveSnapshot } from 'spark-dbn';
import { fillNormal, newRngState } from '../../ts/math/rng.js';
import { expectOneClearLine, sql, submit, type Workspace, workspace } from './helpers.js';

const INPUTS = 16;

/** id and features of a gen-data set, read back through spark-sql. */
async function rowsOf(ws: Workspace, path: string): Promise<{ ids: number[]; x: Matrix }> {
  const rows = await sql(ws, `SELECT 'ROW', id, to_json(features) FROM parquet.\`${path}\` ORDER BY id`);
  const x = new Float32Array(rows.length * INPUTS);
  rows.forEach(([, f], i) => x.set(JSON.parse(f) as number[], i * INPUTS));
  return { ids: rows.map(([id]) => Number(id)), x: { data: x, rows: rows.length, cols: INPUTS } };
}

const cosineDistance = (a: Float32Array, b: Float32Array) => {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return 1 - ab / Math.sqrt(aa * bb);
};

describe('search in the code space and the SQL code functions, end to end (local mode)', function () {
  let ws: Workspace;
  let modelPath: string;
  let base: string;
  let queries: string;
  let baseRows: { ids: number[]; x: Matrix };
  const model = DBN.create([INPUTS, 12, 8], { seed: 21 });
  for (const l of model.layers) fillNormal(newRngState(21), l.W, l.W.length, 0, 0.8);

  before(async () => {
    ws = await workspace('search');
    modelPath = join(ws.dir, 'model.avro');
    base = join(ws.dir, 'base');
    queries = join(ws.dir, 'queries');
    await saveSnapshot(model, modelPath);
    await submit(ws, 'local[2]', ['gen-data', '--out', base, '--rows', '400', '--cols', String(INPUTS), '--as', 'array', '--seed', '1']);
    await submit(ws, 'local[2]', ['gen-data', '--out', queries, '--rows', '30', '--cols', String(INPUTS), '--as', 'array', '--seed', '2']);
  });

  it('writes each query\'s k nearest base rows by cosine of their codes, as a naive ranking of the engine\'s codes does', async () => {
    const out = await submit(ws, 'local[2]', ['search', '--model', modelPath, '--base', base, '--queries', queries, '--k', '5',
      '--table', 'nn', '--partitions', '3']);
    expect(out.stdout).to.match(/search: wrote table nn: 5 nearest of 400 base rows \(codes of 8, cosine\) for 30 queries/);
    const b = (baseRows = await rowsOf(ws, base));
    const q = await rowsOf(ws, queries);
    const bc = model.transform(b.x);
    const qc = model.transform(q.x);
    const got = await sql(ws, `SELECT 'ROW', query_id, rank, base_id, distance FROM nn ORDER BY query_id, rank`);
    expect(got).to.have.length(30 * 5);
    q.ids.forEach((qid, qi) => {
      const code = (m: Matrix, i: number) => m.data.subarray(i * 8, (i + 1) * 8);
      const want = b.ids.map((bid, bi) => ({ bid, d: cosineDistance(code(qc, qi), code(bc, bi)) }))
        .sort((u, v) => u.d - v.d).slice(0, 5);
      const mine = got.filter(([id]) => Number(id) === qid);
      expect(mine.map(([, rank]) => Number(rank))).to.deep.equal([1, 2, 3, 4, 5]);
      expect(mine.map(([, , bid]) => Number(bid)), `query ${qid}`).to.deep.equal(want.map((w) => w.bid));
      mine.forEach(([, , , d], i) => expect(Number(d)).to.be.closeTo(want[i].d, 1e-5));
    });
  });

  it('refuses to replace an existing table unless --mode says so, in one clear line', async () => {
    // What --mode overwrite then does is Output's, tested with transform (transform.test.ts).
    const r = await submit(ws, 'local[2]', ['search', '--model', modelPath, '--base', base, '--queries', queries, '--table', 'nn'], {}, true);
    expectOneClearLine(r, 'search', /table nn exists: --mode overwrite replaces it, --mode append adds to it/);
  });

  it('keeps the code functions in the catalog: a new spark-sql session calls them, with the naive values, in ORDER BY ... LIMIT', async () => {
    const reg = await submit(ws, 'local[2]', ['sql-functions']);
    expect(reg.stdout).to.match(/sql-functions: default.dbn_cosine created/);
    await submit(ws, 'local[2]', ['transform', '--model', modelPath, '--input', base, '--table', 'codes']);
    // A new session: nothing registered in it, only the catalog's functions.
    const got = await sql(ws, [
      `SELECT 'ROW', dbn_cosine(array(1.0, 2.0, 3.0), array(3.0, 2.0, 1.0)), dbn_euclidean(array(1, 2, 3), array(3, 2, 1)),`,
      ` hex(dbn_binary_code(array(0.9, 0.2, 0.7))), dbn_hamming(dbn_binary_code(array(0.9, 0.2, 0.7)), dbn_binary_code(array(0.1, 0.6, 0.8))),`,
      ` dbn_cosine(CAST(NULL AS ARRAY<DOUBLE>), array(1.0));`,
      `SELECT 'ROW', c.id FROM codes c ORDER BY dbn_cosine(c.dbn_features, (SELECT dbn_features FROM codes WHERE id = 7)) DESC, c.id LIMIT 3;`,
    ].join('\n'));
    expect(Number(got[0][0])).to.be.closeTo(10 / 14, 1e-12);
    expect(Number(got[0][1])).to.be.closeTo(Math.sqrt(8), 1e-12);
    expect(got[0].slice(2)).to.deep.equal(['05', '2', 'NULL']);
    const b = baseRows ?? (await rowsOf(ws, base));
    const bc = model.transform(b.x);
    const seven = bc.data.subarray(7 * 8, 8 * 8);
    const want = b.ids.map((id, i) => ({ id, d: cosineDistance(seven, bc.data.subarray(i * 8, (i + 1) * 8)) }))
      .sort((u, v) => u.d - v.d || u.id - v.id).slice(0, 3).map((w) => String(w.id));
    expect(got.slice(1).map(([id]) => id)).to.deep.equal(want);
    expect(want[0]).to.equal('7');
  });
});
