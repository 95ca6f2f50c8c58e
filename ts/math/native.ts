import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';
import type { Kernels } from './kernels.js';
import { referenceKernels } from './reference.js';

/** What the addon exports (native/spark_dbn_native.c). */
interface NativeModule extends Omit<Kernels, 'name'> {
  setThreads(n: number): void;
  getThreads(): number;
  config(): string;
}

export const NATIVE_FILE = 'spark_dbn_native.node';

/** Where the addon may be: beside the compiled TS (out/) or inside the sidecar bundle. */
function candidates(): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  const list = [
    process.env.SPARK_DBN_NATIVE_PATH ?? '',
    join(here, '..', '..', 'native', NATIVE_FILE), // out/ts/math -> out/native
    join(here, '..', 'native', NATIVE_FILE), // bundle lib/node -> lib/native
  ];
  return list.filter((p) => p !== '');
}

let loaded: { kernels: Kernels; native: NativeModule | null; reason: string } | undefined;

/**
 * The OpenBLAS kernel family for this CPU, named before the library loads (it reads OPENBLAS_CORETYPE
 * then). Debian 12's OpenBLAS 0.3.21 (DYNAMIC_ARCH) takes some AVX-512 Xeons it does not know by model
 * for a Prescott (SSE3) and runs sgemm 6x slower: 32 against 192 GFLOP/s for CD-1's 256 x 784 x 500 on
 * 2 threads here. A value the user set is kept; only the main thread's environment reaches the C library
 * (a worker's is a copy), so the sidecar loads the kernels on its main thread first.
 */
function chooseBlasCore(): void {
  if (process.env.OPENBLAS_CORETYPE !== undefined || !isMainThread) return;
  let flags: Set<string>;
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'));
    flags = new Set((line?.split(':')[1] ?? '').trim().split(/\s+/));
  } catch {
    return; // not Linux: OpenBLAS's own detection
  }
  const has = (...f: string[]) => f.every((x) => flags.has(x));
  if (has('avx512f', 'avx512cd', 'avx512bw', 'avx512dq', 'avx512vl')) process.env.OPENBLAS_CORETYPE = 'SkylakeX';
  else if (has('avx2', 'fma')) process.env.OPENBLAS_CORETYPE = 'Haswell';
}

/**
 * The fast kernels when the addon loads, else the TypeScript ones. Logs one
 * line to stderr saying which, and why the fast path is off if it is.
 * SPARK_DBN_KERNELS=ts forces the fallback.
 */
export function loadKernels(log: (line: string) => void = (l) => process.stderr.write(l + '\n')): Kernels {
  if (loaded) return loaded.kernels;
  let reason = '';
  if (process.env.SPARK_DBN_KERNELS === 'ts') {
    reason = 'SPARK_DBN_KERNELS=ts';
  } else {
    const req = createRequire(import.meta.url);
    const found = candidates().find((p) => existsSync(p));
    if (!found) {
      reason = `${NATIVE_FILE} not found (looked in ${candidates().join(', ')}); run scripts/build-native.sh`;
    } else {
      try {
        chooseBlasCore();
        const m = req(found) as NativeModule;
        const kernels: Kernels = { name: 'openblas', ...pick(m) };
        loaded = { kernels, native: m, reason: '' };
        return kernels;
      } catch (e) {
        reason = `${found} failed to load: ${(e as Error).message}`;
      }
    }
  }
  log(`spark-dbn: native kernels unavailable (${reason}); using the TypeScript kernels`);
  loaded = { kernels: referenceKernels, native: null, reason };
  return referenceKernels;
}

/**
 * The addon's kernels, each one the reference has: an addon built from an older C file (a kernel
 * missing) fails to load with the names, and the TypeScript kernels take over, rather than the
 * first call of the missing one failing in the middle of training.
 */
function pick(m: NativeModule): Omit<Kernels, 'name'> {
  const names = Object.keys(referenceKernels).filter((k) => k !== 'name') as (keyof Omit<Kernels, 'name'>)[];
  const missing = names.filter((k) => typeof m[k] !== 'function');
  if (missing.length > 0) throw new Error(`it lacks ${missing.join(', ')} (rebuild it: scripts/build-native.sh)`);
  return Object.fromEntries(names.map((k) => [k, m[k]])) as unknown as Omit<Kernels, 'name'>;
}

/** The addon itself (for thread control and tests), or null when it is not loaded. */
export function nativeModule(): NativeModule | null {
  loadKernels();
  return loaded!.native;
}

/** Sets the BLAS thread count; a no-op on the TypeScript kernels. */
export function setBlasThreads(n: number): void {
  nativeModule()?.setThreads(n);
}
