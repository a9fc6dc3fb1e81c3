// Compiles the AssemblyScript ring kernels (assembly/ring.ts) to build/ring.wasm.
// Run by `npm run build:wasm` and by the `prepare` script during `npm ci` (devDependencies present).
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import asc from 'assemblyscript/asc';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
mkdirSync(join(root, 'build'), { recursive: true });

const { error, stderr } = await asc.main([
  join(root, 'assembly/ring.ts'),
  '--outFile',
  join(root, 'build/ring.wasm'),
  '--runtime',
  'stub',
  '--enable',
  'simd',
  '-O3',
  '--noAssert',
  '--initialMemory',
  '2',
]);
if (error) {
  console.error(stderr.toString());
  console.error(`build-wasm: ${error.message}`);
  process.exit(1);
}
console.log('build-wasm: wrote build/ring.wasm');
