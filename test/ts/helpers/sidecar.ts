import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { SidecarClient, SidecarLaunch, SidecarReady } from '../../../ts/gen/sidecar.js';
import { SECRET_METADATA } from '../../../ts/service/auth.js';
import { LAUNCH_ENV, READY_PREFIX } from '../../../ts/service/config.js';

/** The bundled sidecar, exactly as the jar ships it. */
export const BUNDLE = join(process.cwd(), 'out', 'bundle', 'lib', 'node', 'sidecar.cjs');

export type HealthClient = grpc.Client & {
  check(req: { service: string }, md: grpc.Metadata, cb: (e: grpc.ServiceError | null, r?: { status: string }) => void): void;
};

export interface SpawnedSidecar {
  proc: ChildProcess;
  port: number;
  secret: string;
  stderr(): string;
  client(): SidecarClient;
  health(): HealthClient;
  stop(): Promise<void>;
}

/** Metadata carrying a secret, as every call needs. */
export function md(secret: string): grpc.Metadata {
  const m = new grpc.Metadata();
  m.set(SECRET_METADATA, secret);
  return m;
}

/** Starts the real sidecar process on a free port; call stop() in an after hook. */
export async function spawnSidecar(launch: Partial<SidecarLaunch> = {}): Promise<SpawnedSidecar> {
  const secret = launch.secret ?? randomBytes(24).toString('hex');
  // As an executor starts it: the SidecarLaunch message in SPARK_DBN_LAUNCH.
  const bytes = SidecarLaunch.encode(SidecarLaunch.fromPartial({ ...launch, secret })).finish();
  const proc = spawn(process.execPath, [BUNDLE], {
    env: { ...process.env, [LAUNCH_ENV]: Buffer.from(bytes).toString('base64') },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`sidecar did not start in 15 s; stderr: ${err}`)), 15000);
    proc.stdout!.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith(READY_PREFIX));
      if (line !== undefined && out.includes('\n')) {
        clearTimeout(timer);
        resolve(SidecarReady.decode(Buffer.from(line.slice(READY_PREFIX.length), 'base64')).port);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sidecar exited with ${code}; stderr: ${err}`));
    });
  });
  const clients: grpc.Client[] = [];
  const HealthCtor = grpc.makeClientConstructor(healthService as never, 'Health');
  const target = `127.0.0.1:${port}`;
  return {
    proc,
    port,
    secret,
    stderr: () => err,
    client() {
      const c = new SidecarClient(target, grpc.credentials.createInsecure());
      clients.push(c);
      return c;
    },
    health() {
      const c = new HealthCtor(target, grpc.credentials.createInsecure()) as unknown as HealthClient;
      clients.push(c);
      return c;
    },
    async stop() {
      for (const c of clients) c.close();
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
  };
}
