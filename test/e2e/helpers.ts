// End-to-end helpers: real spark-submit, spark-sql and scripts/standalone
// processes, each in a workspace of its own (conf dir, catalog, cluster dir).
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

export const ROOT = process.cwd();

function required(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the end-to-end tests through scripts/test`);
  return v;
}
export const SPARK_HOME = required('SPARK_HOME');
export const JAR = required('SPARK_DBN_JAR');
export const MAIN_CLASS = required('SPARK_DBN_MAIN_CLASS');

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Workspace {
  dir: string;
  conf: string;
  catalog: string;
  env: NodeJS.ProcessEnv;
}

/** A fresh directory with its own Spark conf and persistent catalog. */
/**
 * Earlier runs' workspaces of this name beyond the newest `keep` (a failed run's stay for a look): every
 * run left its own, 3.6 GB of them after a few sessions.
 */
function pruneWorkspaces(name: string, keep = 2): void {
  const base = join(ROOT, 'var', 'e2e');
  if (!existsSync(base)) return;
  const mine = new RegExp(`^${name.replace(/[^a-z0-9]/gi, (c) => `\\${c}`)}-[0-9a-f]{8}$`);
  readdirSync(base).filter((d) => mine.test(d))
    .map((d) => ({ d, at: statSync(join(base, d)).mtimeMs }))
    .sort((a, b) => b.at - a.at)
    .slice(keep)
    .forEach(({ d }) => rmSync(join(base, d), { recursive: true, force: true }));
}

export async function workspace(name: string): Promise<Workspace> {
  pruneWorkspaces(name);
  const dir = join(ROOT, 'var', 'e2e', `${name}-${randomBytes(4).toString('hex')}`);
  const conf = join(dir, 'conf');
  const catalog = join(dir, 'catalog');
  mkdirSync(dir, { recursive: true });
  const r = await run('bash', ['-c', `source scripts/lib.sh && write_spark_conf "$1" "$2"`, '_', catalog, conf], {});
  if (r.code !== 0) throw new Error(`write_spark_conf failed: ${r.stderr}`);
  const env = {
    ...process.env,
    SPARK_CONF_DIR: conf,
    SPARK_DBN_CATALOG: catalog,
    SPARK_LOCAL_IP: '127.0.0.1',
    SPARK_LOCAL_DIRS: join(dir, 'tmp'),
    SPARK_DBN_STANDALONE_DIR: join(dir, 'standalone'),
  };
  return { dir, conf, catalog, env };
}

/** Runs a command to completion; kills its whole process group on timeout. */
export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 300_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...env }, cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      try {
        process.kill(-p.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
      reject(new Error(`${cmd} ${args.join(' ')} timed out after ${timeoutMs} ms; stderr tail:\n${stderr.slice(-3000)}`));
    }, timeoutMs);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** spark-submit of our jar; throws with the stderr tail unless `expectFailure`. */
export async function submit(ws: Workspace, master: string, args: string[], conf: Record<string, string> = {},
  expectFailure = false): Promise<RunResult> {
  const confArgs = Object.entries({ 'spark.ui.enabled': 'false', ...conf }).flatMap(([k, v]) => ['--conf', `${k}=${v}`]);
  const r = await run(join(SPARK_HOME, 'bin', 'spark-submit'),
    ['--master', master, ...confArgs, '--class', MAIN_CLASS, JAR, ...args], ws.env);
  if (!expectFailure && r.code !== 0) {
    throw new Error(`spark-submit ${args[0]} exited with ${r.code}; stderr tail:\n${r.stderr.slice(-4000)}`);
  }
  return r;
}

/**
 * Runs SQL in a new spark-sql session on the workspace's catalog and returns
 * the rows of every result whose first column is 'ROW', as string arrays.
 */
export async function sql(ws: Workspace, statements: string): Promise<string[][]> {
  return (await sqlLines(ws, statements)).filter((l) => l[0] === 'ROW').map((l) => l.slice(1));
}

/** Every tab-separated line spark-sql printed on stdout. */
export async function sqlLines(ws: Workspace, statements: string): Promise<string[][]> {
  const r = await run(join(SPARK_HOME, 'bin', 'spark-sql'), ['--conf', 'spark.ui.enabled=false', '-e', statements], ws.env);
  if (r.code !== 0) throw new Error(`spark-sql exited with ${r.code}; stderr tail:\n${r.stderr.slice(-4000)}`);
  return r.stdout.split('\n').filter((l) => l.length > 0).map((l) => l.split('\t'));
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Pids of live processes whose command line or working directory is under `dir`. */
export function processesUnder(dir: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      const cwd = readlinkSync(`/proc/${name}/cwd`);
      if (cmd.includes(dir) || cwd.startsWith(dir)) found.push(Number(name));
    } catch {
      /* exited while we looked */
    }
  }
  return found.filter((p) => p !== process.pid);
}

export interface Cluster {
  ws: Workspace;
  master: string;
  /** Pids of the master and workers, as scripts/standalone recorded them. */
  daemons: number[];
  stop(): Promise<RunResult>;
}

/**
 * Registers mocha hooks that start a standalone cluster (scripts/standalone,
 * its own workspace) before the suite and always stop it after, also when a
 * test failed. Read the returned object inside tests.
 */
export function useStandaloneCluster(name: string, env: NodeJS.ProcessEnv = {}): Cluster {
  const c = { master: '', daemons: [] as number[] } as Cluster;
  const standalone = (cmd: string) => run(join(ROOT, 'scripts', 'standalone'), [cmd], { ...c.ws.env, ...env }, 120_000);
  c.stop = () => standalone('stop');
  before(async () => {
    c.ws = await workspace(name);
    const r = await standalone('start');
    if (r.code !== 0) throw new Error(`scripts/standalone start failed: ${r.stderr}`);
    c.master = r.stdout.trim();
    const pidsDir = join(c.ws.dir, 'standalone', 'pids');
    c.daemons = readdirSync(pidsDir).map((f) => Number(readFileSync(join(pidsDir, f), 'utf8')));
  });
  after(async () => {
    if (c.ws) await standalone('stop');
  });
  return c;
}

/** `rows` MNIST digits (14 x 14, binary, with labels) imported as Parquet in the workspace: its path. */
export async function smallDigits(ws: Workspace, rows: number): Promise<string> {
  const jsonl = join(ws.dir, 'digits');
  const g = await run('node', ['scripts/mnist-jsonl.mjs', jsonl, '--size', '14', '--binary', '--full', String(rows)], ws.env);
  if (g.code !== 0) throw new Error(g.stderr);
  const input = join(ws.dir, 'digits.parquet');
  await submit(ws, 'local[2]', ['import', '--input', join(jsonl, 'train.jsonl'), '--out', input]);
  return input;
}

/** Spark conf for jobs on that cluster: two executors of one core, both registered before work starts. */
export const CLUSTER_CONF = {
  'spark.executor.cores': '1',
  'spark.cores.max': '2',
  'spark.executor.memory': '1g',
  'spark.scheduler.minRegisteredResourcesRatio': '1.0',
  'spark.scheduler.maxRegisteredResourcesWaitingTime': '60s',
};

/**
 * What a failed command must look like to a person: a non-zero exit, one line `<command>: <what is wrong>`
 * matching `message`, and no stack trace (no `at pkg.Class.method(` frame, no "Exception in thread").
 * For any new failure case: run it, then pass the result here.
 */
export function expectOneClearLine(r: RunResult, command: string, message: RegExp, code = 1): void {
  expect(r.code, r.stderr.slice(-3000)).to.equal(code);
  const lines = r.stderr.split('\n').filter((l) => l.startsWith(`${command}: `));
  expect(lines, r.stderr.slice(-3000)).to.have.length(1);
  expect(lines[0]).to.match(message);
  expect(r.stderr).to.not.match(/^\s+at [\w$.<>]+\(/m);
  expect(r.stderr).to.not.contain('Exception in thread');
}
