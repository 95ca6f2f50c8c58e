import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { makeData, Field, FixedSizeList, Float32, Float64, Int32, RecordBatch, Schema, Struct, tableToIPC, Table, vectorFromArray, Utf8 } from 'apache-arrow';
import type { IngestSummary, SidecarClient } from '../../ts/gen/sidecar.js';
import type { Http2Session } from 'node:http2';
import { HealthImplementation } from 'grpc-health-check';
import { raiseReceiveWindow } from '../../ts/service/window.js';
import { md, spawnSidecar, type SpawnedSidecar } from './helpers/sidecar.js';

function ingest(client: SidecarClient, secret: string, chunks: Uint8Array[]): Promise<IngestSummary> {
  return new Promise((resolve, reject) => {
    const call = client.ingestArrow(md(secret), (err, res) => (err ? reject(err) : resolve(res!)));
    for (const c of chunks) call.write({ ipcStream: Buffer.from(c.buffer, c.byteOffset, c.byteLength), task: 'test task' });
    call.end();
  });
}

/** A batch with an int column, a double column with nulls, a text column and a vector column. */
function sampleTable(rows: number, seed: number): { table: Table; a: number[]; b: (number | null)[]; v: number[] } {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const a = Array.from({ length: rows }, (_, i) => i * seed);
  const b = Array.from({ length: rows }, (_, i) => (i % 7 === 3 ? null : rnd() * 100 - 50));
  const dim = 3;
  const v = Array.from({ length: rows * dim }, () => Math.fround(rnd()));
  const vType = new FixedSizeList(dim, new Field('x', new Float32(), false));
  const child = makeData({ type: new Float32(), length: v.length, data: Float32Array.from(v) });
  const vData = makeData({ type: vType, length: rows, nullCount: 0, child });
  const schema = new Schema([
    new Field('a', new Int32(), false),
    new Field('b', new Float64(), true),
    new Field('name', new Utf8(), true),
    new Field('v', vType, false),
  ]);
  const struct = makeData({
    type: new Struct(schema.fields),
    length: rows,
    nullCount: 0,
    children: [
      vectorFromArray(a, new Int32()).data[0],
      vectorFromArray(b, new Float64()).data[0],
      vectorFromArray(a.map((x) => `r${x}`), new Utf8()).data[0],
      vData,
    ],
  });
  return { table: new Table(schema, [new RecordBatch(schema, struct)]), a, b, v };
}

describe('sidecar process (real gRPC over loopback)', function () {
  this.timeout(20000);
  let sc: SpawnedSidecar;
  before(async () => {
    sc = await spawnSidecar({ executorId: 'exec-7' });
  });
  after(async () => {
    await sc?.stop();
  });

  it('reports health SERVING to a caller with the secret', (done) => {
    sc.health().check({ service: '' }, md(sc.secret), (err, res) => {
      expect(err).to.equal(null);
      expect(res!.status).to.equal('SERVING');
      done();
    });
  });

  it('describes itself with its pid and executor id', (done) => {
    sc.client().describe({}, md(sc.secret), (err, res) => {
      expect(err).to.equal(null);
      expect(res!.pid).to.equal(sc.proc.pid);
      expect(res!.executorId).to.equal('exec-7');
      done();
    });
  });

  for (const [what, secret] of [['a wrong secret', 'not-the-secret-0123456789'], ['no secret', '']] as const) {
    it(`answers ${what} with UNAUTHENTICATED, on Describe and on health`, async () => {
      const m = new grpc.Metadata();
      if (secret) m.set('x-dbn-secret', secret);
      const e1 = await new Promise<grpc.ServiceError | null>((r) => sc.client().describe({}, m, (e) => r(e)));
      expect(e1?.code).to.equal(grpc.status.UNAUTHENTICATED);
      expect(e1?.details).to.match(/x-dbn-secret/);
      const e2 = await new Promise<grpc.ServiceError | null>((r) => sc.health().check({ service: '' }, m, (e) => r(e)));
      expect(e2?.code).to.equal(grpc.status.UNAUTHENTICATED);
    });
  }

  it('counts rows and sums numeric columns over several chunks like a naive loop', async () => {
    const t1 = sampleTable(1000, 3);
    const t2 = sampleTable(257, 5);
    const res = await ingest(sc.client(), sc.secret, [tableToIPC(t1.table, 'stream'), tableToIPC(t2.table, 'stream')]);
    expect(res.rows).to.equal(1257);
    expect(res.chunks).to.equal(2);
    expect(res.pid).to.equal(sc.proc.pid);
    const naive = (xs: (number | null)[]) => xs.reduce<number>((s, x) => s + (x ?? 0), 0);
    const byName = Object.fromEntries(res.columns.map((c) => [c.name, c]));
    expect(Object.keys(byName)).to.have.members(['a', 'b', 'v']);
    expect(byName.a.sum).to.equal(naive(t1.a) + naive(t2.a));
    expect(byName.a.count).to.equal(1257);
    // Doubles summed in a different order: relative 1e-12 is ample for 1257 terms.
    const bExp = naive(t1.b) + naive(t2.b);
    expect(byName.b.sum).to.be.closeTo(bExp, Math.abs(bExp) * 1e-12 + 1e-9);
    expect(byName.b.count).to.equal([...t1.b, ...t2.b].filter((x) => x !== null).length);
    expect(byName.v.sum).to.be.closeTo(naive(t1.v) + naive(t2.v), 1e-6);
    expect(byName.v.count).to.equal(1257 * 3);
  });

  it('rejects a malformed Arrow payload with INVALID_ARGUMENT naming the chunk, then keeps serving', async () => {
    const good = tableToIPC(sampleTable(10, 1).table, 'stream');
    const garbage = Uint8Array.from({ length: 200 }, (_, i) => (i * 37) & 0xff);
    const err = await ingest(sc.client(), sc.secret, [good, garbage]).then(
      () => null,
      (e: grpc.ServiceError) => e,
    );
    expect(err?.code).to.equal(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).to.match(/test task: chunk 1 /);
    const truncated = good.slice(0, good.length - 40);
    const err2 = await ingest(sc.client(), sc.secret, [truncated]).then(() => null, (e: grpc.ServiceError) => e);
    expect(err2?.code).to.equal(grpc.status.INVALID_ARGUMENT);
    const empty = await ingest(sc.client(), sc.secret, [new Uint8Array(0)]).then(() => null, (e: grpc.ServiceError) => e);
    expect(empty?.code).to.equal(grpc.status.INVALID_ARGUMENT);
    expect(empty?.details).to.match(/no bytes/);
    const ok = await ingest(sc.client(), sc.secret, [good]);
    expect(ok.rows).to.equal(10);
  });

  it('rejects a chunk whose schema differs from the first one', async () => {
    const a = tableToIPC(sampleTable(4, 1).table, 'stream');
    const b = tableToIPC(new Table({ z: vectorFromArray([1, 2], new Float64()) }), 'stream');
    const err = await ingest(sc.client(), sc.secret, [a, b]).then(() => null, (e: grpc.ServiceError) => e);
    expect(err?.code).to.equal(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).to.match(/chunk 1 has schema \[z:Float64\]/);
  });
});

describe('sidecar lifetime', function () {
  this.timeout(20000);
  it('exits by itself when its parent closes stdin', async () => {
    const sc = await spawnSidecar();
    try {
      const exited = new Promise<number | null>((r) => sc.proc.once('exit', (c) => r(c)));
      sc.proc.stdin!.end();
      expect(await exited).to.equal(0);
      expect(sc.stderr()).to.match(/parent closed stdin/);
    } finally {
      await sc.stop();
    }
  });

  it("reports its own peak resident memory, not that of the process that started it", async () => {
    // Touch 400 MB here first: getrusage's maxRSS in a child carries the parent's resident set from
    // before exec, which is what Describe used to report (440-1040 MiB for a sidecar of 172 MiB).
    const ballast = Buffer.alloc(400 << 20, 1);
    const sc = await spawnSidecar();
    try {
      const res = await new Promise<{ maxRssBytes: number }>((resolve, reject) =>
        sc.client().describe({}, md(sc.secret), (e, r) => (e ? reject(e) : resolve(r!))));
      const hwm = Number(/^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${sc.proc.pid}/status`, 'utf8'))![1]) * 1024;
      expect(Math.abs(res.maxRssBytes - hwm)).to.be.below(16 << 20);
      expect(res.maxRssBytes).to.be.below(ballast.length / 2);
    } finally {
      await sc.stop();
    }
  });

  it('refuses to start without a secret and says why on stderr', async () => {
    const err = await spawnSidecar({ secret: 'short' }).then(() => null, (e: Error) => e);
    expect(err?.message).to.match(/secret: must be at least 16 characters/);
  });
});

describe('sidecar HTTP/2 receive window', () => {
  it('raiseReceiveWindow gives each connection the asked stream and connection windows (grpc-js has no option for them)', async () => {
    const server = new grpc.Server();
    const sessions: Http2Session[] = [];
    expect(raiseReceiveWindow(server, 4 << 20, (s) => sessions.push(s))).to.equal(true);
    const health = new HealthImplementation({ '': 'SERVING' });
    health.addToServer(server);
    const port = await new Promise<number>((res, rej) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
    const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      // Any call opens the connection.
      await new Promise<void>((res, rej) => client.waitForReady(Date.now() + 5000, (e) => (e ? rej(e) : res())));
      await new Promise((r) => setTimeout(r, 100));
      expect(sessions).to.have.length(1);
      expect(sessions[0].localSettings.initialWindowSize).to.equal(4 << 20);
      expect(sessions[0].localSettings.maxFrameSize).to.equal(1 << 20);
      expect(sessions[0].state.effectiveLocalWindowSize).to.equal(4 << 20);
    } finally {
      client.close();
      server.forceShutdown();
    }
  });
});
