// Nothing lost (invariant 7), as a user meets it: real processes of the compiled CLI. Ctrl-C in a
// real terminal (tmux), output paths that cannot be written, two runs sharing a checkpoint folder,
// and --resume keeping the metrics and the plot of the whole run.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { listCheckpoints, readCheckpoint } from '../src/coordinator/train/checkpoint.js';
import { train, type Reporter } from '../src/coordinator/train/trainer.js';
import { parseConfig } from '../src/core/config.js';
import { randomData } from './helpers.js';

const CLI = join(import.meta.dirname, '..', 'dist', 'src', 'cli.js');

function dptrain(args: string[], cwd: string) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, seconds: (performance.now() - t0) / 1000 };
}

const spirals = {
  model: { layers: [2, 32, 2], hidden: 'relu', output: 'linear' },
  loss: 'cross-entropy',
  optimizer: { name: 'adam', lr: 0.02 },
  data: { source: 'synthetic', name: 'spirals', n: 400 },
  training: { epochs: 3, batchSize: 32, seed: 5 },
};
// Another model altogether: one step an epoch.
const xor = {
  model: { layers: [2, 3, 1], hidden: 'sigmoid', output: 'sigmoid' },
  loss: 'half-sse',
  optimizer: { name: 'sgd', lr: 2, momentum: 0.9 },
  data: { source: 'synthetic', name: 'xor', n: 4 },
  training: { epochs: 30, batchSize: 4, shuffle: false, seed: 1 },
};

function workdir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'dptrain-lost-'));
  writeFileSync(join(dir, 'spirals.json'), JSON.stringify(spirals));
  writeFileSync(join(dir, 'xor.json'), JSON.stringify(xor));
  return dir;
}

const names = (dir: string): string[] => listCheckpoints(dir).map((f) => basename(f));
const noStack = (text: string): void => expect(text).not.toMatch(/^\s+at /m);

describe('Ctrl-C in a terminal (tmux)', () => {
  const socket = `dptrain-test-${process.pid}`;
  const tmux = (...args: string[]) => spawnSync('tmux', ['-L', socket, ...args], { encoding: 'utf8', env: { ...process.env, TERM: 'xterm-256color' } });
  afterAll(() => void tmux('kill-server'));
  const pane = (): string => tmux('capture-pane', '-p', '-J', '-t', 'run', '-S', '-500').stdout;
  const until = async (what: string, ok: () => boolean, ms: number): Promise<void> => {
    const end = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; the pane:\n${pane()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  it('stops the progress bar, exits 130 at once, and prints nothing after the checkpoint line', async () => {
    const dir = workdir();
    // The default run (MNIST) as in the report, kept in the pane after it exits with its exit code.
    const started = tmux('new-session', '-d', '-s', 'run', '-x', '200', '-y', '50', '-c', dir,
      `${process.execPath} ${CLI} train --epochs 30 --workers 2; echo EXIT=$?; sleep 600`);
    expect(started.status, started.stderr).toBe(0);
    await until('epoch 3', () => /^epoch 3\/30 {2}train loss/m.test(pane()), 240_000);
    tmux('send-keys', '-t', 'run', 'C-c');
    const sent = Date.now();
    await until('the exit code', () => /EXIT=\d+/.test(pane()), 30_000);
    const seconds = (Date.now() - sent) / 1000;
    const text = pane();
    expect(/EXIT=(\d+)/.exec(text)![1], text).toBe('130');
    expect(seconds, text).toBeLessThan(20);
    const lines = text.split('\n');
    const at = lines.findIndex((l) => /^dptrain: interrupted at step \d+; checkpoint \S+ \(continue with --resume\)$/.test(l));
    expect(at, text).toBeGreaterThan(0);
    // Only the exit code follows: no progress bar drawn again.
    expect(lines.slice(at + 1).filter((l) => l.trim() !== ''), text).toEqual([expect.stringMatching(/^EXIT=130$/)]);
    const ckpt = /checkpoint (\S+) \(continue/.exec(lines[at])![1];
    expect(readCheckpoint(ckpt).meta.step).toBeGreaterThan(0);
  }, 300_000);
});

describe('output paths are checked before the first step', () => {
  const dir = workdir();
  const table: [string, string][] = [
    ['--checkpoint-dir', '/dev/null'],
    ['--checkpoint-dir', '/proc/self'],
    // Node's recursive mkdir spins here forever.
    ['--checkpoint-dir', '/proc/dptrain-ck'],
    ['--checkpoint-dir', 'spirals.json'],
    // Root may make any folder: under /proc and under a file no one can.
    ['--save-weights', '/proc/dptrain/dir/w.safetensors'],
    ['--save-weights', 'spirals.json/w.safetensors'],
    ['--save-weights', '.'],
    ['--plot', '/proc/dptrain/p.svg'],
    ['--metrics', '/proc/m.jsonl'],
  ];
  it.each(table)('%s %s: one line naming the flag and the path, exit 2, nothing trained', (flag, path) => {
    const r = dptrain(['train', '--config', 'spirals.json', '--workers', '1', '--epochs', '200', flag, path], dir);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^dptrain: ${flag} ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot write there \\(.+\\)$`));
    expect(r.seconds).toBeLessThan(30);
  });

  it('a checkpoint write that fails mid-run keeps the previous checkpoint, says so in one line, exits 1', () => {
    const d = workdir();
    const first = dptrain(['train', '--config', 'spirals.json', '--workers', '1', '--max-steps', '20', '--checkpoint-every', '10', '--checkpoint-dir', 'ck'], d);
    expect(first.code, first.stderr).toBe(0);
    expect(names(join(d, 'ck'))).toEqual(['ckpt-000000010.safetensors', 'ckpt-000000020.safetensors']);
    // Non-empty folders where the step-30 checkpoint goes (under either name it may take): the
    // rename fails, even for root.
    const id8 = readCheckpoint(join(d, 'ck', 'ckpt-000000020.safetensors')).meta.runId!.slice(0, 8);
    for (const name of ['ckpt-000000030.safetensors', `ckpt-000000030-${id8}.safetensors`]) mkdirSync(join(d, 'ck', name, 'x'), { recursive: true });
    const r = dptrain(['train', '--config', 'spirals.json', '--workers', '1', '--resume', '--checkpoint-every', '10', '--checkpoint-dir', 'ck'], d);
    expect(r.code, r.stderr).toBe(1);
    noStack(r.stderr);
    const last = r.stderr.trimEnd().split('\n').at(-1);
    expect(last).toMatch(/^dptrain: cannot write the checkpoint of step 30 in \S+ck \((EISDIR|ENOTEMPTY|EEXIST)[^)]*\); the previous checkpoint \S+ckpt-000000020\.safetensors is kept$/);
    expect(readCheckpoint(join(d, 'ck', 'ckpt-000000020.safetensors')).meta.step).toBe(20);
    // No temporary file left behind.
    expect(readdirSync(join(d, 'ck')).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});

describe('a checkpoint folder that goes away mid-run (in process, through the reporter\'s step hook)', () => {
  it('stops with WRITE_FAILED naming the checkpoint kept; no loop, nothing else written', async () => {
    const c = parseConfig(spirals, 'spirals', tmpdir());
    const data = { train: randomData(c.model, 320, 1), test: randomData(c.model, 80, 2) };
    const dir = mkdtempSync(join(tmpdir(), 'dptrain-gone-'));
    const ck = join(dir, 'ck');
    // Step 15, between the checkpoints of steps 10 and 20: the folder is moved away and a file takes
    // its place, which stops root as it stops anyone.
    const reporter: Reporter = {
      start() {}, epoch() {}, log() {}, close() {},
      step: (r) => {
        if (r.step !== 15) return;
        renameSync(ck, `${ck}.moved`);
        writeFileSync(ck, 'not a folder');
      },
    };
    const run = train({ config: c, workers: 1, kernels: 'ts', reporter, data, skipEval: true, checkpointDir: ck, checkpointEvery: 10 });
    await expect(run).rejects.toMatchObject({
      code: 'WRITE_FAILED',
      message: expect.stringMatching(/^cannot write the checkpoint of step 20 in \S+ck \(ENOTDIR[^)]*\); the previous checkpoint \S+ck\/ckpt-000000010\.safetensors is kept$/),
    });
    expect(names(`${ck}.moved`)).toEqual(['ckpt-000000010.safetensors']);
  });
});

describe('checkpoints belong to a run', () => {
  it('two models in one folder: pruning and --resume touch only their own run\'s files', () => {
    const dir = workdir();
    const a = dptrain(['train', '--config', 'spirals.json', '--workers', '1', '--checkpoint-every', '10', '--checkpoint-dir', 'shared', '--quiet'], dir);
    expect(a.code, a.stderr).toBe(0);
    expect(names(join(dir, 'shared'))).toEqual(['ckpt-000000020.safetensors', 'ckpt-000000030.safetensors']);
    // xor before it has any checkpoint of its own: spirals' files are skipped, not loaded.
    const fresh = dptrain(['train', '--config', 'xor.json', '--workers', '1', '--checkpoint-every', '10', '--checkpoint-dir', 'shared', '--resume', '--quiet'], dir);
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(fresh.stderr).toMatch(/skipping \S+ckpt-000000020\.safetensors, \S+ckpt-000000030\.safetensors: another run \(config spirals, model\.layers differs\)/);
    expect(fresh.stderr).toMatch(/no checkpoint of this run \(xor, run id [0-9a-f]+\) in \S+shared: starting fresh/);
    // Same steps, other run: xor's files get its run id in their names; spirals' are untouched.
    const files = names(join(dir, 'shared'));
    expect(files.filter((f) => /^ckpt-0+(20|30)\.safetensors$/.test(f))).toHaveLength(2);
    expect(files.filter((f) => /^ckpt-0+(20|30)-[0-9a-f]{8}\.safetensors$/.test(f))).toHaveLength(2);
    expect(files).toHaveLength(4);
    const resumedXor = dptrain(['train', '--config', 'xor.json', '--workers', '1', '--checkpoint-dir', 'shared', '--resume', '--epochs', '40'], dir);
    expect(resumedXor.code, resumedXor.stderr).toBe(0);
    expect(resumedXor.stderr).toMatch(/resuming from \S+ckpt-000000030-[0-9a-f]{8}\.safetensors at step 30/);
    expect(existsSync(join(dir, 'shared', 'ckpt-000000020.safetensors'))).toBe(true);
    expect(existsSync(join(dir, 'shared', 'ckpt-000000030.safetensors'))).toBe(true);
    const resumedSpirals = dptrain(['train', '--config', 'spirals.json', '--workers', '1', '--checkpoint-dir', 'shared', '--resume', '--epochs', '4'], dir);
    expect(resumedSpirals.code, resumedSpirals.stderr).toBe(0);
    expect(resumedSpirals.stderr).toMatch(/resuming from \S+shared\/ckpt-000000030\.safetensors at step 30/);
    expect(resumedSpirals.stderr).toMatch(/skipping .*: another run \(config xor, model\.layers differs\)/);
    expect(resumedSpirals.stdout).toMatch(/done: 40 steps/);
  });

  it('by default each run has its own folder, named after its config and run id', () => {
    const dir = workdir();
    for (const c of ['spirals.json', 'xor.json']) expect(dptrain(['train', '--config', c, '--workers', '1', '--quiet'], dir).code).toBe(0);
    const folders = readdirSync(join(dir, 'checkpoints')).sort();
    expect(folders).toEqual([expect.stringMatching(/^spirals-[0-9a-f]{8}$/), expect.stringMatching(/^xor-[0-9a-f]{8}$/)]);
    expect(names(join(dir, 'checkpoints', folders[0]))).toEqual(['ckpt-000000030.safetensors']);
    expect(names(join(dir, 'checkpoints', folders[1]))).toEqual(['ckpt-000000030.safetensors']);
  });
});

describe('--resume continues the history', () => {
  it('appends to --metrics, plots every epoch, and allows a new --epochs without a warning', () => {
    const dir = workdir();
    const first = dptrain(['train', '--config', 'spirals.json', '--workers', '1', '--metrics', 'mr.jsonl', '--metrics-every', '5', '--quiet'], dir);
    expect(first.code, first.stderr).toBe(0);
    const before = readFileSync(join(dir, 'mr.jsonl'), 'utf8').trim().split('\n');
    expect(before).toHaveLength(9);
    const r = dptrain(['train', '--config', 'spirals.json', '--workers', '1', '--metrics', 'mr.jsonl', '--metrics-every', '5', '--resume', '--epochs', '6', '--plot', 'p.svg'], dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/warning/);
    expect(r.stderr).toMatch(/training\.epochs changed on resume: 3 → 6/);
    const after = readFileSync(join(dir, 'mr.jsonl'), 'utf8').trim().split('\n');
    expect(after).toHaveLength(18);
    expect(after.slice(0, 9)).toEqual(before);
    const metrics = after.map((l) => JSON.parse(l) as { type: string; epoch: number; step: number });
    expect(metrics.filter((m) => m.type === 'epoch').map((m) => m.epoch)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(metrics.map((m) => m.step)).toEqual([...metrics.map((m) => m.step)].sort((x, y) => x - y));
    // The plot's points: every epoch of the run, not only the resumed ones.
    const svg = readFileSync(join(dir, 'p.svg'), 'utf8');
    const plotted = new Set([...svg.matchAll(/aria-label="epoch: (\d+); loss:/g)].map((m) => Number(m[1])));
    expect([...plotted].sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('metrics lines past the checkpoint (a killed run) are dropped before appending', () => {
    const dir = workdir();
    expect(dptrain(['train', '--config', 'spirals.json', '--workers', '1', '--max-steps', '10', '--metrics', 'm.jsonl', '--metrics-every', '5', '--quiet'], dir).code).toBe(0);
    // As if the run had gone on to step 15 before it died, with its last checkpoint at 10.
    writeFileSync(join(dir, 'm.jsonl'), `${readFileSync(join(dir, 'm.jsonl'), 'utf8')}${JSON.stringify({ type: 'step', step: 15, epoch: 2 })}\n`);
    expect(dptrain(['train', '--config', 'spirals.json', '--workers', '1', '--resume', '--metrics', 'm.jsonl', '--metrics-every', '5', '--quiet'], dir).code).toBe(0);
    const steps = readFileSync(join(dir, 'm.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { step: number }).step);
    expect(steps.filter((s) => s === 15)).toHaveLength(1);
    expect(steps).toEqual([...steps].sort((x, y) => x - y));
  });

  const refusals: [string[], string][] = [
    [['--lr', '0.5'], 'optimizer.lr is 0.5 here but 0.02'],
    [['--batch-size', '16'], 'training.batchSize is 16 here but 32'],
    [['--seed', '6'], 'training.seed is 6 here but 5'],
    [['--set', 'model.layers=[2,16,2]'], 'model.layers is [2,16,2] here but [2,32,2]'],
  ];
  it.each(refusals)('refuses %j on resume: one line naming the field, exit 2', (flags, what) => {
    const dir = workdir();
    expect(dptrain(['train', '--config', 'spirals.json', '--workers', '1', '--quiet'], dir).code).toBe(0);
    const r = dptrain(['train', '--config', 'spirals.json', '--workers', '1', '--resume', ...flags], dir);
    expect(r.code, r.stderr).toBe(2);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^dptrain: --resume: ${what.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} in \\S+ckpt-000000030\\.safetensors; a resumed run may change only epochs, stop criteria \\(targetLoss, targetAccuracy\\), outputs and checkpoint frequency$`));
  });
});
