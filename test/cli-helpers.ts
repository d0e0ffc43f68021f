// Running the compiled CLI as a user does (a real child process), and a small spirals config in a
// fresh folder to run it in.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CLI = join(import.meta.dirname, '..', 'dist', 'src', 'cli.js');

export function dptrain(args: string[], cwd: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export const spirals = {
  model: { layers: [2, 32, 2], hidden: 'relu', output: 'linear' },
  loss: 'cross-entropy',
  optimizer: { name: 'adam', lr: 0.02 },
  data: { source: 'synthetic', name: 'spirals', n: 400 },
  training: { epochs: 30, batchSize: 32, seed: 5 },
};

/** A new temporary folder holding the config as c.json. */
export function workdir(config: object = spirals): string {
  const dir = mkdtempSync(join(tmpdir(), 'dptrain-cli-'));
  writeFileSync(join(dir, 'c.json'), JSON.stringify(config));
  return dir;
}
