// Output paths checked before the first step, so that no run trains for hours and then fails to
// write: each folder is made and a probe file written into it and removed.

import { rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { outputUnwritable } from '../../core/errors.js';
import { ioReason, makeDir } from '../../core/io/atomic-file.js';

/** A run's outputs, each by the flag that sets it. */
export interface OutputPaths {
  readonly checkpointDir?: string;
  readonly saveWeights?: string;
  readonly metrics?: string;
  readonly plot?: string;
}

/**
 * Throws OUTPUT_UNWRITABLE (one line naming the flag and path) for the first path that fails.
 * `names` replaces flag names where the paths came from elsewhere (the library's options).
 */
export function checkOutputPaths(o: OutputPaths, names: Partial<Record<keyof OutputPaths, string>> = {}): void {
  const paths = [
    { flag: names.checkpointDir ?? '--checkpoint-dir', path: o.checkpointDir, kind: 'folder' },
    { flag: names.saveWeights ?? '--save-weights', path: o.saveWeights, kind: 'file' },
    { flag: names.metrics ?? '--metrics', path: o.metrics, kind: 'file' },
    { flag: names.plot ?? '--plot', path: o.plot, kind: 'file' },
  ] as const;
  for (const { flag, path, kind } of paths) {
    if (path === undefined) continue;
    const folder = kind === 'folder' ? path : dirname(resolve(path));
    try {
      if (kind === 'file' && isFolder(path)) throw new Error('it is a folder');
      makeDir(folder);
      const probe = join(folder, `.dptrain-probe-${process.pid}`);
      writeFileSync(probe, '');
      rmSync(probe);
    } catch (e) {
      throw outputUnwritable(flag, path, ioReason(e));
    }
  }
}

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
