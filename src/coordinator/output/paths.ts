// Output paths checked before the first step, so that no run trains for hours and then fails to
// write: each folder is made and a probe file written into it and removed.

import { rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { outputUnwritable } from '../../core/errors.js';
import { ioReason, makeDir } from '../../core/io/atomic-file.js';

export interface OutputPath {
  /** The flag the user set it with, for the message. */
  readonly flag: string;
  readonly path: string;
  /** A folder to write files into, or a file (its folder is made). */
  readonly kind: 'folder' | 'file';
}

/** Throws OUTPUT_UNWRITABLE (one line naming the flag and path) for the first path that fails. */
export function checkOutputPaths(paths: readonly OutputPath[]): void {
  for (const { flag, path, kind } of paths) {
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
