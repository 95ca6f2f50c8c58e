import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { DescribeRequest, DescribeResponse } from '../gen/sidecar.js';
import { PROJECT_VERSION } from '../gen/version.js';
import { kernelsReason, loadKernels, nativeModule } from '../math/native.js';
import type { Shared } from './shared.js';

/** The sidecar's version is the project's (spark-app/pom.xml). */
const SIDECAR_VERSION = PROJECT_VERSION;

/**
 * This process's own peak resident set, bytes. Not getrusage's maxRSS: Linux carries into it the
 * resident set of the process image that exec replaced, which for a sidecar started by the JVM
 * (posix_spawn shares the JVM's memory until exec) is the JVM's: Describe reported 440-1040 MiB
 * for a sidecar whose own peak was 172 MiB. VmHWM counts only the memory of this image.
 */
function peakRssBytes(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // Not Linux: the best the platform offers.
  }
  return process.resourceUsage().maxRSS * 1024;
}

/** Describe: this process, its kernels and what it has seen. */
export async function describeHandler(s: Shared, _r: DescribeRequest): Promise<DescribeResponse> {
  return {
    pid: process.pid,
    sidecarVersion: SIDECAR_VERSION,
    nodeVersion: process.version,
    executorId: s.config.executorId,
    uptimeSeconds: (Date.now() - s.startedAt) / 1000,
    kernels: loadKernels().name,
    threads: nativeModule()?.getThreads() ?? 1,
    maxRssBytes: peakRssBytes(),
    unalignedBatches: s.unalignedBatches,
    blasCore: nativeModule()?.coreName?.() ?? '',
    simd: nativeModule()?.simd?.() ?? '',
    kernelsReason: kernelsReason(),
    hostname: hostname(),
  };
}
