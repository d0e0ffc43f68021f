// Reading the user's files: one place that turns a failed read into the one-line FILE_UNREADABLE
// error naming the file (writing lives in atomic-file.ts).

import { readFileSync } from 'node:fs';
import { unreadable } from '../errors.js';

export function readBytes(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw unreadable(file, e);
  }
}

export function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw unreadable(file, e);
  }
}
