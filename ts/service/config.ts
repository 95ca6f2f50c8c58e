import { ConfigError } from 'spark-dbn';
import { validateTrainingConfig } from './training.js';

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
}

export const SECRET_ENV = 'SPARK_DBN_SECRET';

export const defaultSidecarConfig: Omit<SidecarConfig, 'secret'> = {
  host: '127.0.0.1',
  port: 0,
  executorId: 'unknown',
  maxReceiveMessageBytes: 64 * 1024 * 1024,
  exitOnStdinEnd: true,
  parentPollMs: 1000,
  trainWorkers: 1,
  workerThreads: 1,
  cacheBytes: 2 * 1024 * 1024 * 1024,
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
  validateTrainingConfig({ workers: c.trainWorkers, threadsPerWorker: c.workerThreads, cacheBytes: c.cacheBytes });
  return c;
}

function intEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new ConfigError(name, `must be an integer, got '${raw}'`);
  return n;
}

/** Reads the config the executor passes by environment. */
export function sidecarConfigFromEnv(env: NodeJS.ProcessEnv = process.env): SidecarConfig {
  const secret = env[SECRET_ENV];
  if (secret === undefined) throw new ConfigError(SECRET_ENV, 'is not set; the sidecar refuses to serve without a secret');
  return validateSidecarConfig({
    host: env.SPARK_DBN_HOST ?? defaultSidecarConfig.host,
    port: intEnv(env, 'SPARK_DBN_PORT', defaultSidecarConfig.port),
    secret,
    executorId: env.SPARK_DBN_EXECUTOR_ID ?? defaultSidecarConfig.executorId,
    maxReceiveMessageBytes: intEnv(env, 'SPARK_DBN_MAX_MESSAGE_BYTES', defaultSidecarConfig.maxReceiveMessageBytes),
    exitOnStdinEnd: (env.SPARK_DBN_EXIT_ON_STDIN_END ?? '1') !== '0',
    parentPollMs: intEnv(env, 'SPARK_DBN_PARENT_POLL_MS', defaultSidecarConfig.parentPollMs),
    trainWorkers: intEnv(env, 'SPARK_DBN_TRAIN_WORKERS', defaultSidecarConfig.trainWorkers),
    workerThreads: intEnv(env, 'SPARK_DBN_WORKER_THREADS', defaultSidecarConfig.workerThreads),
    cacheBytes: intEnv(env, 'SPARK_DBN_CACHE_BYTES', defaultSidecarConfig.cacheBytes),
  });
}
