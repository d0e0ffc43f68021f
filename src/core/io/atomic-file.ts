// Writing the user's files: never left half-written (a temporary file beside the target, flushed,
// then renamed over it: rename is atomic within a file system), and folders made one level at a time.

import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

export function writeFileAtomic(path: string, chunks: readonly Uint8Array[]): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  let fd = -1;
  try {
    fd = openSync(tmp, 'w');
    for (const chunk of chunks) {
      let off = 0;
      while (off < chunk.byteLength) off += writeSync(fd, chunk, off, chunk.byteLength - off);
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    renameSync(tmp, path);
  } catch (e) {
    if (fd >= 0) closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Makes `dir` and any missing parents, each with a plain mkdir, so every failure surfaces as an
 * error: Node's recursive mkdir retries ENOENT from its parent and spins forever where a parent
 * exists but refuses new entries (/proc).
 */
export function makeDir(dir: string): void {
  const missing: string[] = [];
  let d = resolve(dir);
  for (;;) {
    try {
      if (!statSync(d).isDirectory()) throw Object.assign(new Error(`ENOTDIR: not a folder, '${d}'`), { code: 'ENOTDIR' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(d) === d) throw e;
      missing.push(d);
      d = dirname(d);
    }
  }
  for (const m of missing.reverse()) mkdirSync(m);
}

/** A file-system error as one short clause ("ENOENT: no such file or directory"). */
export function ioReason(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const code = (e as NodeJS.ErrnoException).code;
  return code ? e.message.split(',')[0] : e.message.split('\n')[0];
}
