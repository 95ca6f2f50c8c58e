// Bundles the sidecar into one self-contained CommonJS file plus the files it
// reads at run time. The Maven build packs out/bundle into the jar; executors
// unpack it from there, so nothing on an executor points into this checkout.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'out', 'bundle');
rmSync(out, { recursive: true, force: true });
// grpc-health-check loads its .proto from ${__dirname}/../../proto: keep that shape.
mkdirSync(join(out, 'lib', 'node'), { recursive: true });
// The sidecar, and its training worker beside it (workers load their own file).
for (const [entry, file] of [['main.ts', 'sidecar.cjs'], ['train-worker.ts', 'train-worker.cjs']]) await build({
  entryPoints: [join(root, 'ts', 'service', entry)],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  outfile: join(out, 'lib', 'node', file),
  sourcemap: false,
  logLevel: 'warning',
  // ESM sources locate files from import.meta.url; give the CJS bundle the same.
  define: { 'import.meta.url': '__sparkDbnImportMetaUrl' },
  banner: { js: "const __sparkDbnImportMetaUrl = require('url').pathToFileURL(__filename).href;" },
});
// The native kernels travel with the sidecar (lib/native beside lib/node): the addon, the OpenBLAS it
// loads from its own directory, and that library's licence.
const nativeDir = join(root, 'out', 'native');
const nativeFiles = ['spark_dbn_native.node', 'libscipy_openblas.so', 'LICENSE.scipy-openblas32.txt'];
const missing = nativeFiles.filter((f) => !existsSync(join(nativeDir, f)));
if (missing.length > 0) throw new Error(`out/native lacks ${missing.join(', ')}: run scripts/build-native.sh first`);
mkdirSync(join(out, 'lib', 'native'), { recursive: true });
for (const f of nativeFiles) cpSync(join(nativeDir, f), join(out, 'lib', 'native', f));
cpSync(join(root, 'node_modules', 'grpc-health-check', 'proto'), join(out, 'proto'), { recursive: true });
// Chart.js's browser build, which the Report call inlines into its pages (read beside the sidecar).
cpSync(join(root, 'node_modules', 'chart.js', 'dist', 'chart.umd.min.js'), join(out, 'lib', 'node', 'chart.umd.min.js'));

// MANIFEST: a content hash (executors unpack into a directory named by it, so
// two versions never mix) and every file to unpack.
const files = readdirSync(out, { recursive: true, withFileTypes: true })
  .filter((d) => d.isFile())
  .map((d) => relative(out, join(d.parentPath, d.name)))
  .sort();
const hash = createHash('sha256');
for (const f of files) hash.update(f).update('\0').update(readFileSync(join(out, f)));
// The oldest Node the sidecar runs on: package.json's engines (">=20.19"), checked by the JVM before it starts one.
const engines = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).engines.node;
const nodeMin = /^>=(\d+\.\d+)$/.exec(engines)?.[1];
if (!nodeMin) throw new Error(`package.json engines.node must read ">=MAJOR.MINOR", got ${engines}`);
writeFileSync(join(out, 'MANIFEST'), [`hash ${hash.digest('hex').slice(0, 16)}`, `node-min ${nodeMin}`, ...files, ''].join('\n'));
