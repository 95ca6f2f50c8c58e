// Generates the TypeScript side of proto/ into ts/gen (never committed).
// buf (from npm) compiles the .proto; ts-proto emits grpc-js service code.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'ts', 'gen');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const template = {
  version: 'v2',
  plugins: [{
    local: join(root, 'node_modules', '.bin', 'protoc-gen-ts_proto'),
    out,
    opt: [
      'outputServices=grpc-js',
      'esModuleInterop=true',
      'env=node',
      'importSuffix=.js',
      'forceLong=number',
      'useOptionals=none',
    ],
  }],
};
execFileSync(join(root, 'node_modules', '.bin', 'buf'),
  ['generate', join(root, 'proto'), '--template', JSON.stringify(template)],
  { stdio: 'inherit', cwd: root });
