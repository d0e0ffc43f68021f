// Where the package's own files are, found from this module's location (dist/src/coordinator or
// src/coordinator alike), so the CLI works from any working directory.

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
