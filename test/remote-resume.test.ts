// The coordinator as a real process: killed and restarted with --resume while its nodes reconnect,
// and giving up cleanly when every node keeps failing.

import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { freePort } from '../src/coordinator/bench/net/fleet.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { listCheckpoints, readCheckpoint } from '../src/coordinator/train/checkpoint.js';
import { parseConfig } from '../src/core/config.js';
import { paramLayout } from '../src/core/layout.js';
import { loadWeights } from '../src/core/io/safetensors.js';
import { workdir } from './helpers.js';
import { CLI, killAll, track, resultFrame, rogue, sameBits, spawnNode } from './remote-helpers.js';

afterAll(killAll);

const raw = {
  model: { layers: [2, 96, 96, 2], hidden: 'relu' },
  loss: 'cross-entropy',
  optimizer: { name: 'adam', lr: 0.01 },
  data: { source: 'synthetic', name: 'spirals', n: 400 },
  training: { epochs: 40, batchSize: 32, seed: 4 },
};
const layout = paramLayout(parseConfig(raw, 't', tmpdir()).model);


function coordinator(dir: string, port: number, extra: string[]): ChildProcess & { out: string; done: Promise<number | null> } {
  const child = track(spawn(process.execPath, [CLI, 'train', '--config', 'c.json', '--workers', '0', '--listen', `127.0.0.1:${port}`, '--balance', 'static', '--quiet', '--checkpoint-dir', 'checkpoints', ...extra], { cwd: dir })) as ChildProcess & { out: string; done: Promise<number | null> };
  child.out = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (child.out += d));
  child.done = new Promise((r) => child.on('exit', (code) => r(code)));
  return child;
}

const runDir = (): string => workdir('remote-resume', raw);

function weights(file: string): Float32Array {
  const p = new Float32Array(layout.size);
  loadWeights(file, layout, p);
  return p;
}

describe('coordinator restarted with --resume', () => {
  it('takes its nodes back and ends as an uninterrupted run', async () => {
    const refDir = runDir();
    const refPort = await freePort();
    const ref = coordinator(refDir, refPort, ['--min-nodes', '2', '--save-weights', 'w.safetensors']);
    spawnNode(`ws://127.0.0.1:${refPort}`);
    spawnNode(`ws://127.0.0.1:${refPort}`);
    expect(await ref.done, ref.out).toBe(0);

    const dir = runDir();
    const port = await freePort();
    const url = `ws://127.0.0.1:${port}`;
    const args = ['--min-nodes', '2', '--checkpoint-every', '10', '--save-weights', 'w.safetensors'];
    const first = coordinator(dir, port, args);
    const nodes = [spawnNode(url), spawnNode(url)];
    // Kill the coordinator (SIGKILL: no goodbye) once it has checkpointed past step 50.
    for (;;) {
      const newest = listCheckpoints(join(dir, 'checkpoints')).at(-1);
      if (newest && Number(/ckpt-(\d+)/.exec(newest)![1]) >= 50) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    first.kill('SIGKILL');
    expect(await first.done).toBe(null);
    const second = coordinator(dir, port, [...args, '--resume']);
    expect(await second.done, second.out).toBe(0);
    expect(second.out).toMatch(/resuming from .*ckpt-\d+\.safetensors at step \d+/);
    expect(second.out.match(/node node\d \(127\.0\.0\.1:\d+, 1 thread\) joined/g)).toHaveLength(2);
    expect(nodes.every((n) => /connection to .* lost .*reconnecting/.test(n.log)), nodes.map((n) => n.log).join('\n')).toBe(true);
    expect(sameBits(weights(join(dir, 'w.safetensors')), weights(join(refDir, 'w.safetensors')))).toBe(true);
  });
});

describe('when every node keeps failing', () => {
  it('gives up with exit code 1 and a line saying why; the last checkpoint is intact', async () => {
    const dir = runDir();
    const port = await freePort();
    const url = `ws://127.0.0.1:${port}`;
    const warmup = coordinator(dir, port, ['--max-steps', '3', '--checkpoint-every', '1']);
    spawnNode(url);
    expect(await warmup.done, warmup.out).toBe(0);
    const last = listCheckpoints(join(dir, 'checkpoints')).at(-1)!;
    const before = createHash('sha256').update(readFileSync(last)).digest('hex');

    const run = coordinator(dir, port, ['--resume', '--min-nodes', '3', '--max-node-failures', '2', '--checkpoint-every', '1']);
    while (!run.out.includes('listening for worker nodes')) await new Promise((r) => setTimeout(r, 20));
    for (let i = 0; i < 3; i++) {
      const r = await rogue(url, { onStep: (q, _p, ws) => ws.send(resultFrame(q, new Float32Array(layout.size).fill(NaN))) });
      expect(await r.status).toBe('open');
    }
    expect(await run.done, run.out).toBe(1);
    expect(run.out).toMatch(/node node1 \(127\.0\.0\.1:\d+, 1 thread\) joined; it takes part from step 4/);
    const lines = run.out.trim().split('\n');
    expect(lines.at(-1)).toMatch(/^dptrain: step 4: 3 nodes failed during this step \(last: .*gradient holds a non-finite value at index 0\)+; giving up$/);
    expect(listCheckpoints(join(dir, 'checkpoints')).at(-1)).toBe(last);
    expect(createHash('sha256').update(readFileSync(last)).digest('hex')).toBe(before);
    expect(readCheckpoint(last).meta.step).toBe(3);
  });
});

describe('Ctrl-C while waiting for nodes', () => {
  it('ends the wait with a checkpoint and exit code 130', async () => {
    const dir = runDir();
    const port = await freePort();
    const run = coordinator(dir, port, ['--min-nodes', '1']);
    while (!run.out.includes('waiting for 1 more worker node(s)')) await new Promise((r) => setTimeout(r, 20));
    run.kill('SIGINT');
    expect(await run.done, run.out).toBe(130);
    const m = /dptrain: interrupted at step 0; checkpoint (\S+) \(continue with --resume/.exec(run.out);
    expect(m, run.out).not.toBeNull();
    expect(readCheckpoint(m![1]).meta).toMatchObject({ step: 0, epoch: 0, batch: 0 });
  });
});
