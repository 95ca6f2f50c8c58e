// Entry point of the sidecar process started by the Spark executor.
// Protocol with the parent (proto/sidecar.proto, SidecarLaunch): the config arrives in SPARK_DBN_LAUNCH,
// and one line `SPARK_DBN_READY <base64 SidecarReady>` goes to stdout once serving; diagnostics go to stderr; the process exits when its
// stdin closes or its parent disappears, so it never outlives the executor.
import { hostname } from 'node:os';
import { kernelsReason, loadKernels } from '../math/native.js';
import { Kernels, SidecarReady } from '../gen/sidecar.js';
import { READY_PREFIX, sidecarConfigFromEnv } from './config.js';
import { startSidecar, type RunningSidecar } from './server.js';

async function main(): Promise<void> {
  const config = sidecarConfigFromEnv();
  // On this thread, before any training worker: the BLAS library reads its settings from the process's
  // environment as it loads.
  if (loadKernels(() => {}).name === 'ts' && config.kernels === Kernels.KERNELS_NATIVE) {
    // One line for the executor to quote: the TypeScript kernels are ~100x slower, never taken unasked.
    process.stderr.write(`spark-dbn: the native kernels cannot load on ${hostname()}: ${kernelsReason()}; ` +
      'ship the runtime archive (README, "Running on a cluster"), or set spark.dbn.kernels=ts to run the TypeScript kernels\n');
    process.exit(3);
  }
  const parentPid = process.ppid;
  let running: RunningSidecar | undefined;
  let exiting = false;
  const exit = (why: string, code: number): void => {
    if (exiting) return;
    exiting = true;
    process.stderr.write(`spark-dbn sidecar ${process.pid}: exiting: ${why}\n`);
    const stop = running ? running.stop(1000) : Promise.resolve();
    // Whatever happens to the graceful stop, do not linger.
    setTimeout(() => process.exit(code), 1500).unref();
    void stop.then(() => process.exit(code));
  };
  process.on('SIGTERM', () => exit('SIGTERM', 0));
  process.on('SIGINT', () => exit('SIGINT', 0));
  if (config.exitOnStdinEnd) {
    process.stdin.on('end', () => exit('parent closed stdin', 0));
    process.stdin.on('error', () => exit('stdin error', 0));
    process.stdin.resume();
  }
  if (config.parentPollMs > 0) {
    setInterval(() => {
      // Re-parenting (to init or a subreaper) means the parent has died.
      if (process.ppid !== parentPid) exit(`parent ${parentPid} is gone`, 0);
    }, config.parentPollMs).unref();
  }
  running = await startSidecar(config);
  const ready = SidecarReady.encode({ port: running.port, pid: process.pid }).finish();
  process.stdout.write(`${READY_PREFIX}${Buffer.from(ready).toString('base64')}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`spark-dbn sidecar failed to start: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(2);
});
