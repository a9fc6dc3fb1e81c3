// Compiles the AssemblyScript kernels: assembly/ring.ts (Z_2^64 ring, MPC) to build/ring.wasm and
// assembly/sgemm.ts (float32 GEMM for the float runtime's convolutions) to build/sgemm.wasm and
// build/sgemm-relaxed.wasm.
// Run by `npm run build:wasm` and by the `prepare` script during `npm ci` (devDependencies present).
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import asc from 'assemblyscript/asc';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
mkdirSync(join(root, 'build'), { recursive: true });

const targets = [
  // The ring kernels own their memory through a JS-side arena: no allocator needed.
  { src: 'assembly/ring.ts', out: 'build/ring.wasm', flags: ['--runtime', 'stub', '--initialMemory', '2'] },
  // The float kernels keep packed weights across runs: AssemblyScript's allocator (heap.alloc/free),
  // and no `abort` import so the module instantiates with no imports.
  { src: 'assembly/sgemm.ts', out: 'build/sgemm.wasm', flags: ['--runtime', 'minimal', '--use', 'abort=', '--initialMemory', '16'] },
  // The same with relaxed SIMD (fused multiply-add), used where the engine validates it.
  {
    src: 'assembly/sgemm.ts',
    out: 'build/sgemm-relaxed.wasm',
    flags: ['--runtime', 'minimal', '--use', 'abort=', '--initialMemory', '16'],
    features: ',relaxed-simd',
  },
];
for (const t of targets) {
  const { error, stderr } = await asc.main([
    join(root, t.src),
    '--outFile',
    join(root, t.out),
    '--enable',
    `simd${t.features ?? ''}`,
    '-O3',
    '--noAssert',
    ...t.flags,
  ]);
  if (error) {
    console.error(stderr.toString());
    console.error(`build-wasm: ${t.src}: ${error.message}`);
    process.exit(1);
  }
  console.log(`build-wasm: wrote ${t.out}`);
}
