import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Kernels } from './kernels.js';
import { referenceKernels } from './reference.js';

/** What the addon exports (native/spark_dbn_native.c). */
interface NativeModule extends Omit<Kernels, 'name'> {
  setThreads(n: number): void;
  getThreads(): number;
  config(): string;
  /** OpenBLAS's kernel family for this CPU (older builds of the addon lack it). */
  coreName?(): string;
  /** The clone of the element-wise loops this CPU runs. */
  simd?(): string;
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

/** Why the native kernels are not in use ('' when they are). */
export function kernelsReason(): string {
  loadKernels(() => {});
  return loaded!.reason;
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
