import { checkOption, ConfigError, optionDefault, optionSpecs } from 'spark-dbn';
import { Kernels, SidecarLaunch } from '../gen/sidecar.js';
import { validateTrainingConfig } from './training.js';
import { contract } from '../gen/contract.js';

/** Settings of one sidecar process. */
export interface SidecarConfig {
  /** Interface to bind; only loopback is accepted. */
  host: string;
  /** TCP port; 0 lets the kernel choose a free one, which is then reported. */
  port: number;
  /** Shared secret every call must carry in the `x-dbn-secret` metadata. */
  secret: string;
  /** Spark executor id of the parent, reported by Describe. */
  executorId: string;
  /** Largest message the server accepts, bytes. */
  maxReceiveMessageBytes: number;
  /** Exit when standard input closes (the parent holds its write end). */
  exitOnStdinEnd: boolean;
  /** How often to check that the parent process still exists, ms; 0 disables. */
  parentPollMs: number;
  /** Training worker threads: the executor's task slots (cores / task.cpus). */
  trainWorkers: number;
  /** BLAS and element-wise threads of each training worker (task.cpus). */
  workerThreads: number;
  /** Memory budget of the training session cache (rows and derived layer inputs), bytes. */
  cacheBytes: number;
  /** Which kernels the sidecar must run: native, or it exits before serving (main.ts). */
  kernels: Kernels;
  /** The V8 heap each training worker may grow to, MiB; undefined: V8's own limit. */
  workerHeapMb?: number;
}

/** The environment variable that carries the SidecarLaunch message (base64), and the prefix of the ready line. */
export const LAUNCH_ENV = contract.launchEnv;
export const READY_PREFIX = contract.readyPrefix;

const launchSpecs = optionSpecs('SidecarLaunch');
const launchDefault = (name: string) => optionDefault(launchSpecs[name]);

export const defaultSidecarConfig: Omit<SidecarConfig, 'secret'> = {
  host: '127.0.0.1',
  port: 0,
  executorId: 'unknown',
  // The rest from proto/sidecar.proto's SidecarLaunch spec options (the JVM reads the same).
  maxReceiveMessageBytes: launchDefault('maxReceiveMessageBytes') as number,
  exitOnStdinEnd: launchDefault('exitOnStdinEnd') as boolean,
  parentPollMs: launchDefault('parentPollMs') as number,
  trainWorkers: launchDefault('trainWorkers') as number,
  workerThreads: launchDefault('workerThreads') as number,
  cacheBytes: launchDefault('cacheBytes') as number,
  kernels: Kernels.KERNELS_NATIVE,
};

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** Throws a ConfigError naming the first field that is out of range. */
export function validateSidecarConfig(c: SidecarConfig): SidecarConfig {
  if (!LOOPBACK.has(c.host)) throw new ConfigError('host', `must be a loopback address, got '${c.host}'`);
  if (!Number.isInteger(c.port) || c.port < 0 || c.port > 65535) {
    throw new ConfigError('port', `must be an integer in [0, 65535], got ${c.port}`);
  }
  if (c.secret.length < 16) throw new ConfigError('secret', 'must be at least 16 characters');
  if (!Number.isInteger(c.maxReceiveMessageBytes) || c.maxReceiveMessageBytes < 1024) {
    throw new ConfigError('maxReceiveMessageBytes', `must be an integer >= 1024, got ${c.maxReceiveMessageBytes}`);
  }
  if (!Number.isInteger(c.parentPollMs) || c.parentPollMs < 0) {
    throw new ConfigError('parentPollMs', `must be a non-negative integer, got ${c.parentPollMs}`);
  }
  validateTrainingConfig({ workers: c.trainWorkers, threadsPerWorker: c.workerThreads, cacheBytes: c.cacheBytes,
    workerHeapMb: c.workerHeapMb });
  return c;
}

/** The config the executor passes in SPARK_DBN_LAUNCH (a SidecarLaunch message); ConfigError naming what is wrong. */
export function sidecarConfigFromEnv(env: NodeJS.ProcessEnv = process.env): SidecarConfig {
  const raw = env[LAUNCH_ENV];
  if (raw === undefined || raw === '') {
    throw new ConfigError(LAUNCH_ENV, 'is not set: the sidecar is started by a Spark executor, which passes its SidecarLaunch there');
  }
  let m: SidecarLaunch;
  try {
    m = SidecarLaunch.decode(Buffer.from(raw, 'base64'));
  } catch (e) {
    throw new ConfigError(LAUNCH_ENV, `is not a base64 SidecarLaunch message (${e instanceof Error ? e.message : String(e)})`);
  }
  return sidecarConfigFrom(m);
}

/** A SidecarLaunch with its unset fields at their defaults, every value checked. */
export function sidecarConfigFrom(m: SidecarLaunch): SidecarConfig {
  const pick = <K extends keyof SidecarConfig>(name: K, v: SidecarConfig[K] | undefined): SidecarConfig[K] => {
    const value = v ?? defaultSidecarConfig[name as Exclude<K, 'secret'>];
    if (name in launchSpecs) checkOption(name, launchSpecs[name], value);
    return value as SidecarConfig[K];
  };
  return validateSidecarConfig({
    host: m.host || defaultSidecarConfig.host,
    port: m.port,
    secret: m.secret,
    executorId: m.executorId || defaultSidecarConfig.executorId,
    maxReceiveMessageBytes: pick('maxReceiveMessageBytes', m.maxReceiveMessageBytes),
    exitOnStdinEnd: pick('exitOnStdinEnd', m.exitOnStdinEnd),
    parentPollMs: pick('parentPollMs', m.parentPollMs),
    trainWorkers: pick('trainWorkers', m.trainWorkers),
    workerThreads: pick('workerThreads', m.workerThreads),
    cacheBytes: pick('cacheBytes', m.cacheBytes),
    kernels: checkKernels(m.kernels),
    workerHeapMb: m.workerHeapMb,
  });
}

function checkKernels(k: Kernels): Kernels {
  if (k !== Kernels.KERNELS_NATIVE && k !== Kernels.KERNELS_TS) throw new ConfigError('kernels', `must be KERNELS_NATIVE or KERNELS_TS, got ${k}`);
  return k;
}
