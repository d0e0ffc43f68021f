// Where the package's own files are: its root (found from this module's location, in src/ or in
// dist/src/ alike, so the CLI works from any working directory) and the files the build writes
// under dist/ (the wasm kernels, the packed digits).

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('dptrain: cannot find the package root');
    dir = up;
  }
  return dir;
}

export const PACKAGE_ROOT = packageRoot();
export const DEFAULT_CONFIG = join(PACKAGE_ROOT, 'config', 'mnist-mlp.json');

/** dist/`rel` if the build wrote it, else null. */
export function builtFile(rel: string): string | null {
  const p = join(PACKAGE_ROOT, 'dist', rel);
  return existsSync(p) ? p : null;
}
