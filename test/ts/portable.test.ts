import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// The native kernels as an executor on any cluster gets them (README, "Running on a cluster"): built
// for baseline x86-64, linked to the OpenBLAS beside them, needing nothing of the host but glibc.
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const nativeDir = join(root, 'out', 'native');
const shipped = ['spark_dbn_native.node', 'libscipy_openblas.so'];
/** Node 20's own floor: a worker that runs Node runs these. */
const GLIBC_FLOOR = [2, 28];
/** What every glibc system has; anything else must travel in the runtime archive. */
const SYSTEM_LIBS = new Set(['libc.so.6', 'libm.so.6', 'libpthread.so.0', 'libdl.so.2', 'librt.so.1', 'ld-linux-x86-64.so.2']);

/** The libraries a file names as NEEDED, and the newest GLIBC_x.y its imports require. */
export function nativeNeeds(file: string): { needed: string[]; newestGlibc: number[] } {
  const dyn = execFileSync('readelf', ['-d', file], { encoding: 'utf8' });
  const needed = [...dyn.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  const syms = execFileSync('objdump', ['-T', file], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const versions = [...syms.matchAll(/\bGLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  const newestGlibc = versions.reduce((a, b) => (b[0] > a[0] || (b[0] === a[0] && b[1] > a[1]) ? b : a), [0, 0]);
  return { needed, newestGlibc };
}

describe('portable native kernels', function () {
  this.timeout(300000);

  for (const f of shipped) {
    it(`${f} needs only glibc (<= ${GLIBC_FLOOR.join('.')}) and the files shipped beside it`, () => {
      const { needed, newestGlibc } = nativeNeeds(join(nativeDir, f));
      const foreign = needed.filter((n) => !SYSTEM_LIBS.has(n) && !shipped.includes(n));
      expect(foreign, `${f} needs libraries from the host`).to.deep.equal([]);
      expect(newestGlibc[0] * 1000 + newestGlibc[1], `${f} needs GLIBC_${newestGlibc.join('.')}`)
        .to.be.at.most(GLIBC_FLOOR[0] * 1000 + GLIBC_FLOOR[1]);
    });
  }

  it('finds its OpenBLAS beside itself, not on the host\'s library path', () => {
    const dyn = execFileSync('readelf', ['-d', join(nativeDir, 'spark_dbn_native.node')], { encoding: 'utf8' });
    expect(dyn).to.match(/\((RUNPATH|RPATH)\)\s+Library (runpath|rpath): \[\$ORIGIN\]/);
  });

  it('gives the reference results on a CPU without AVX2 or AVX-512 (kernels.test.js under qemu, -cpu Nehalem)', () => {
    const qemu = ['/usr/bin/qemu-x86_64', '/usr/bin/qemu-x86_64-static'].find((p) => existsSync(p));
    if (!qemu) throw new Error('qemu-user is not installed (scripts/setup --test installs it)');
    // OpenBLAS must choose its Nehalem kernels and the addon its baseline loops: the test asserts both.
    const r = spawnSync(qemu, ['-cpu', 'Nehalem', process.execPath, join(root, 'node_modules', 'mocha', 'bin', 'mocha.js'),
      '--timeout', '120000', join(root, 'out', 'test', 'ts', 'kernels.test.js')], {
      encoding: 'utf8', env: { ...process.env, SPARK_DBN_TEST_EXPECT_CPU: 'baseline/Nehalem', OPENBLAS_NUM_THREADS: '2' },
      timeout: 280000,
    });
    const out = `${r.stdout}\n${r.stderr.split('\n').filter((l) => !l.includes("TCG doesn't support")).join('\n')}`;
    expect(r.signal, `killed by ${r.signal}:\n${out.slice(-3000)}`).to.equal(null);
    expect(r.status, out.slice(-3000)).to.equal(0);
    expect(out).to.match(/\d+ passing/).and.not.match(/failing/);
  });
});
