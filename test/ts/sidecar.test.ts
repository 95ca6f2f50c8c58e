import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { Http2Session } from 'node:http2';
import { HealthImplementation } from 'grpc-health-check';
import { SECRET_METADATA } from '../../ts/service/auth.js';
import { raiseReceiveWindow } from '../../ts/service/window.js';
import { md, spawnSidecar, type SpawnedSidecar } from './helpers/sidecar.js';

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
      if (secret) m.set(SECRET_METADATA, secret);
      const e1 = await new Promise<grpc.ServiceError | null>((r) => sc.client().describe({}, m, (e) => r(e)));
      expect(e1?.code).to.equal(grpc.status.UNAUTHENTICATED);
      expect(e1?.details).to.match(/x-dbn-secret/);
      const e2 = await new Promise<grpc.ServiceError | null>((r) => sc.health().check({ service: '' }, m, (e) => r(e)));
      expect(e2?.code).to.equal(grpc.status.UNAUTHENTICATED);
    });
  }

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
