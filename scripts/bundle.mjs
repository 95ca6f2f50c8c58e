// Bundles the sidecar into one self-contained CommonJS file plus the files it
// reads at run time. The Maven build packs out/bundle into the jar; executors
// unpack it from there, so nothing on an executor points into this checkout.
import { build } from 'esbuild';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'out', 'bundle');
rmSync(out, { recursive: true, force: true });
// grpc-health-check loads its .proto from ${__dirname}/../../proto: keep that shape.
mkdirSync(join(out, 'lib', 'node'), { recursive: true });
await build({
  entryPoints: [join(root, 'ts', 'service', 'main.ts')],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  outfile: join(out, 'lib', 'node', 'sidecar.cjs'),
  sourcemap: false,
  logLevel: 'warning',
});
cpSync(join(root, 'node_modules', 'grpc-health-check', 'proto'), join(out, 'proto'), { recursive: true });
