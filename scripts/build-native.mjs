// Builds the native kernels (src/core/kernels/native/*.cc) into dist/native/dptrain_kernels.node with
// the system C++ compiler against the headers of the Node running this script: offline, no node-gyp.
// Never fails the build: without a compiler (or on a failed compile) it prints one line and exits 0,
// and the kernels fall back to wasm at run time.

import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src/core/kernels/native');
const out = join(root, 'dist/native/dptrain_kernels.node');
const cxx = process.env.CXX || 'c++';
const nodeInclude = join(dirname(dirname(process.execPath)), 'include/node');

// No -march=native and no fast-math: each path's ISA is named per file, element-wise code rounds
// every operation (-ffp-contract=off), the GEMM's FMAs are explicit intrinsics.
const common = ['-std=c++17', '-O3', '-fPIC', '-fvisibility=hidden', '-ffp-contract=off', '-fno-math-errno', `-I${nodeInclude}`];
const units = [
  ['addon.cc', []],
  ['isa_avx2.cc', ['-mavx2', '-mfma']],
  ['isa_avx512.cc', ['-mavx512f', '-mavx2', '-mfma']],
];

function notBuilt(why) {
  // A binary left from an earlier build would no longer match these sources.
  rmSync(out, { force: true });
  console.log(`native kernels not built (${why}); --kernels auto will use wasm`);
  process.exit(0);
}

if (process.env.DPTRAIN_SKIP_NATIVE) notBuilt('DPTRAIN_SKIP_NATIVE is set');
if (process.arch !== 'x64') notBuilt(`${process.arch} is not x86-64`);
try {
  await run(cxx, ['--version']);
} catch {
  notBuilt(`no C++ compiler: ${cxx} not found`);
}

const tmp = mkdtempSync(join(tmpdir(), 'dptrain-native-'));
try {
  const objects = await Promise.all(units.map(async ([file, flags]) => {
    const obj = join(tmp, file.replace(/\.cc$/, '.o'));
    await run(cxx, [...common, ...flags, '-c', join(src, file), '-o', obj]);
    return obj;
  }));
  mkdirSync(dirname(out), { recursive: true });
  await run(cxx, ['-shared', '-o', join(tmp, 'k.node'), ...objects]);
  copyFileSync(join(tmp, 'k.node'), out);
  console.log(`native kernels built: ${out.slice(root.length + 1)}`);
} catch (e) {
  const firstError = String(e.stderr ?? e.message).split('\n').find((l) => /error/i.test(l)) ?? String(e.message).split('\n')[0];
  notBuilt(`compile failed: ${firstError.trim()}`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
