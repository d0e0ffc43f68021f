// Files the build writes under dist/ (the wasm kernels, the packed digits), found beside the compiled
// code (dist/src/core/ → dist/) or, when the TypeScript sources run (vitest), in dist/ of the nearest
// folder holding a package.json.

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/`rel` if the build wrote it, else null. */
export function builtFile(rel: string): string | null {
  const besideDist = fileURLToPath(new URL(`../../${rel}`, import.meta.url));
  if (existsSync(besideDist)) return besideDist;
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) {
      const p = join(dir, 'dist', rel);
      return existsSync(p) ? p : null;
    }
    if (dirname(dir) === dir) return null;
  }
}
