// What a user meets when a run goes wrong or an input is hostile (issue #11, items 5–7): the
// compiled CLI as a child process, plus the kernels' losses on the inputs that broke them.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createArena } from '../src/core/arena.js';
import { paramLayout } from '../src/core/layout.js';
import { saveWeights } from '../src/core/io/safetensors.js';
import { parseConfig } from '../src/core/config.js';
import { losses } from '../src/core/losses.js';
import { createKernels } from '../src/core/kernels/index.js';
import { nativeKernelsAvailable } from '../src/core/kernels/native.js';
import { readCheckpoint } from '../src/coordinator/train/checkpoint.js';
import { BACKENDS, CLI, makeKernels, runCli as dptrain, workdir as tmpWorkdir } from './helpers.js';

// A small classifier: three epochs of ten steps.
const spirals = {
  model: { layers: [2, 32, 2], hidden: 'relu', output: 'linear' }, loss: 'cross-entropy', optimizer: { name: 'adam', lr: 0.02 },
  data: { source: 'synthetic', name: 'spirals', n: 400 }, training: { epochs: 3, batchSize: 32, seed: 5 },
};
const workdir = (config: object = spirals): string => tmpWorkdir('robust', config);

// The native kernels where this machine built them.
const NATIVE = nativeKernelsAvailable().ok ? ['native' as const] : [];

/** The one line on stderr (fails the test if there are more). */
function oneLine(stderr: string): string {
  const lines = stderr.trimEnd().split('\n');
  expect(lines, stderr).toHaveLength(1);
  return lines[0];
}

describe('a diverging run stops (item 5)', () => {
  it.each([['wasm', '2'], ['ts', '1'], ...NATIVE.map((k) => [k, '2'])])('--lr 1e30 (kernels %s, %s threads): exit 3 at the step, no NaN checkpoint, names the last good one', (kernels, workers) => {
    const dir = workdir();
    const r = dptrain(['train', '--config', 'c.json', '--workers', workers, '--kernels', kernels, '--lr', '1e30', '--checkpoint-every', '1', '--checkpoint-dir', 'ck', '--save-weights', 'w.safetensors'], dir);
    expect(r.code).toBe(3);
    const line = oneLine(r.stderr);
    const m = /^dptrain: step (\d+): the training loss is (NaN|Infinity|-Infinity): the run diverged .*; last good checkpoint (\S+) \(--resume continues from it\)$/.exec(line);
    expect(m, line).not.toBeNull();
    const step = Number(m![1]);
    expect(step).toBeGreaterThan(1);
    // Every checkpoint on disk holds finite weights and optimizer state, none is of the bad step.
    const files = readdirSync(join(dir, 'ck'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      expect(Number(/(\d+)/.exec(f)![1])).toBeLessThan(step);
      for (const t of readCheckpoint(join(dir, 'ck', f)).tensors.values()) expect(t.data.every(Number.isFinite)).toBe(true);
    }
    expect(existsSync(m![3])).toBe(true);
    expect(existsSync(join(dir, 'w.safetensors'))).toBe(false);
    expect(r.stdout).not.toMatch(/^done:/m);
  });

  it('without any checkpoint before the divergence, says so', () => {
    const dir = workdir();
    const r = dptrain(['train', '--config', 'c.json', '--workers', '1', '--lr', '1e30', '--checkpoint-dir', 'ck'], dir);
    expect(r.code).toBe(3);
    expect(oneLine(r.stderr)).toMatch(/^dptrain: step \d+: the training loss is \S+: the run diverged .*; no checkpoint was written before$/);
    expect(existsSync(join(dir, 'ck')) ? readdirSync(join(dir, 'ck')) : []).toEqual([]);
  });

  it.each(['wasm', 'ts', ...NATIVE])('eval of a wrecked model (all weights 1e10, kernels %s) reports ln 2, not a loss of 0', (kernels) => {
    const dir = workdir();
    const layout = paramLayout(parseConfig(spirals, 'c.json', dir).model);
    saveWeights(join(dir, 'w.safetensors'), layout, new Float32Array(layout.size).fill(1e10), { format: 'pt' });
    const r = dptrain(['eval', '--config', 'c.json', '--weights', 'w.safetensors', '--kernels', kernels], dir);
    expect(r.code).toBe(0);
    // Both logits are the same huge number: the loss is ln 2 for every row.
    expect(r.stdout).toMatch(/^test samples 80 {2}loss 0\.6931 {2}accuracy/m);
  });

  it.each([...BACKENDS, ...NATIVE])('the %s backend\'s cross-entropy works with differences from the row max', (backend) => {
    const spec = { layers: [1, 3], hidden: 'relu', output: 'identity', softmaxOutput: false, bias: true, loss: 'cross-entropy' } as const;
    const arena = createArena(spec, { shards: 1, maxRows: 4, stateVectors: 0 });
    const kernels = backend === 'native' ? createKernels('native', arena.memory, arena.workspaces[0].scratch) : makeKernels(backend, arena);
    const ws = arena.workspaces[0];
    const h = ws.z[0].subarray(0, 6);
    const dh = ws.d0.subarray(0, 6);
    const y = ws.y.subarray(0, 2);
    // Row 0: three equal logits of 1e34 (loss ln 3); row 1: ordinary logits.
    h.set([1e34, 1e34, 1e34, 0.5, -1, 2]);
    y.set([1, 2]);
    const ordinary = Math.log(Math.exp(0.5) + Math.exp(-1) + Math.exp(2)) - 2;
    const value = losses['cross-entropy'].value(h, y, 2, 3);
    expect(value).toBeCloseTo(Math.log(3) + ordinary, 5);
    expect(kernels.lossGrad('cross-entropy', dh, h, y, 2, 3)).toBeCloseTo(Math.log(3) + ordinary, 5);
    // A row with an infinite logit is NaN, never a finite number.
    h.set([Infinity, 0, 0, 0.5, -1, 2]);
    expect(losses['cross-entropy'].value(h, y, 2, 3)).toBeNaN();
    expect(kernels.lossGrad('cross-entropy', dh, h, y, 2, 3)).toBeNaN();
  });
});

describe('crashes that owe one line (item 6)', () => {
  it('--batch-size 1e9: says the memory the arena needs and the limit', () => {
    const r = dptrain(['train', '--config', 'c.json', '--workers', '1', '--batch-size', '1e9'], workdir());
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toMatch(
      /^dptrain: batch size 1000000000: the arena needs [\d.]+ TiB for 1000000000 rows per chunk, above WebAssembly's limit of 4\.0 GiB; lower --batch-size \(the training set has 320 rows\)$/);
  });

  it('--workers 1000: refused at once with the cap; more threads than cores is one warning line', () => {
    const cores = availableParallelism();
    const t0 = performance.now();
    const r = dptrain(['train', '--config', 'c.json', '--workers', '1000'], workdir());
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toBe(`dptrain: --workers: 1000 threads is more than this machine's limit of ${4 * cores} (4 × its ${cores} cores)`);
    expect(performance.now() - t0).toBeLessThan(20_000);
    const over = dptrain(['train', '--config', 'c.json', '--workers', String(cores + 1), '--epochs', '1'], workdir());
    expect(over.code).toBe(0);
    expect(oneLine(over.stderr)).toBe(`warning: ${cores + 1} worker threads on ${cores} cores: they take turns, which is slower than ${cores}`);
  });

  it.each(['__proto__.polluted=1', 'constructor.prototype.polluted=1', 'model.__proto__.polluted=1'])('--set %s is refused in one line', (set) => {
    const r = dptrain(['train', '--config', 'c.json', '--set', set], workdir());
    expect(r.code).toBe(2);
    const key = /(__proto__|constructor)/.exec(set)![1];
    expect(oneLine(r.stderr)).toBe(`dptrain: --set ${set}: ${key} is not a config field`);
  });

  it('train | a reader that leaves after the first line: no stack trace, the run ends cleanly', async () => {
    const dir = workdir({ ...spirals, training: { ...spirals.training, epochs: 40 } });
    const child = spawn(process.execPath, [CLI, 'train', '--config', 'c.json', '--workers', '1', '--checkpoint-dir', 'ck'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    // Like `| head -1`: read the first line, then close the read end of the pipe.
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(readdirSync(join(dir, 'ck'))).toEqual(['ckpt-000000400.safetensors']);
  });

  it('eval into a pipe already closed: no stack trace, exit 0', async () => {
    const dir = workdir();
    const layout = paramLayout(parseConfig(spirals, 'c.json', dir).model);
    saveWeights(join(dir, 'w.safetensors'), layout, new Float32Array(layout.size).fill(0.1), { format: 'pt' });
    const child = spawn(process.execPath, [CLI, 'eval', '--config', 'c.json', '--weights', 'w.safetensors'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('a gzip bomb as an IDX file is refused after its declared size, not after inflating it all', () => {
    const dir = workdir();
    // A valid header for one 28×28 image (800 bytes in all), then 512 MiB of zeros as further gzip members.
    const header = Buffer.alloc(16);
    header.writeUInt32BE(0x803, 0);
    header.writeUInt32BE(1, 4);
    header.writeUInt32BE(28, 8);
    header.writeUInt32BE(28, 12);
    const zeros = gzipSync(Buffer.alloc(16 << 20), { level: 9 });
    writeFileSync(join(dir, 'bomb.gz'), Buffer.concat([gzipSync(header), ...Array.from({ length: 32 }, () => zeros)]));
    const labels = Buffer.from([0, 0, 8, 1, 0, 0, 0, 1, 3]);
    writeFileSync(join(dir, 'labels.idx'), labels);
    writeFileSync(join(dir, 'idx.json'), JSON.stringify({ ...spirals, model: { layers: [784, 10] }, data: { source: 'idx', images: 'bomb.gz', labels: 'labels.idx', test: 0 } }));
    const t0 = performance.now();
    const r = dptrain(['train', '--config', 'idx.json', '--workers', '1'], dir);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toMatch(/^dptrain: .*bomb\.gz: gzip stream: decompresses to more than the 800 bytes its IDX header declares \(stopped at \d+\)$/);
    expect(performance.now() - t0).toBeLessThan(20_000);
  });
});

describe('rough edges (item 7)', () => {
  const csvRows = (rows: number, badLine?: number): string => {
    // Line 1 is the header, so row r sits on line r + 2.
    const lines = ['a,b,label'];
    for (let r = 0; r < rows; r++) lines.push(`${(r % 7) / 7},${(r % 5) / 5},${r + 2 === badLine ? 7 : r % 3}`);
    return `${lines.join('\n')}\n`;
  };
  const csvConfig = { ...spirals, model: { layers: [2, 8, 3], hidden: 'relu', output: 'linear' }, data: { source: 'csv', path: 'data.csv', target: 'label', test: 0 } };

  it.each([
    ['csv', csvConfig],
    ['synthetic', { ...spirals, data: { ...spirals.data, test: 0 } }],
  ])('"test": 0 (%s) trains on every row; epochs and the summary say there is no test split, eval refuses', (_, config) => {
    const dir = workdir(config);
    writeFileSync(join(dir, 'data.csv'), csvRows(200));
    const r = dptrain(['train', '--config', 'c.json', '--workers', '2', '--plot', 'p.svg', '--save-weights', 'w.safetensors'], dir);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^dptrain: .* (200|400) train \/ 0 test samples/m);
    expect(r.stdout).toMatch(/^epoch 3\/3 {2}train loss \d+\.\d{4} {2}no test split {2}\d+ samples\/s/m);
    expect(r.stdout).toMatch(/^done: \d+ steps in [\d.]+ s \(stopped by epochs\), no test split, peak memory/m);
    expect(r.stdout).not.toMatch(/NaN/);
    const e = dptrain(['eval', '--config', 'c.json', '--weights', 'w.safetensors'], dir);
    expect(e.code).toBe(2);
    expect(oneLine(e.stderr)).toBe('dptrain: c.json: data.test: the config sets no test split aside: nothing to evaluate');
    const target = dptrain(['train', '--config', 'c.json', '--target-accuracy', '0.9'], dir);
    expect(target.code).toBe(2);
    expect(oneLine(target.stderr)).toBe('dptrain: training.targetAccuracy (--target-accuracy): needs a test split, and the data has none (data.test is 0)');
  });

  it('an out-of-range label names its file line, wherever the shuffle put the row', () => {
    const dir = workdir({ ...csvConfig, data: { ...csvConfig.data, test: 0.25 } });
    writeFileSync(join(dir, 'data.csv'), csvRows(200, 9));
    const r = dptrain(['train', '--config', 'c.json', '--workers', '1'], dir);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toMatch(new RegExp(`^dptrain: data set data\\.csv/(train|test): line 9 of ${join(dir, 'data.csv').replace(/[.]/g, '\\.')} \\(row \\d+\\) has class 7, the model has 3 outputs \\(0\\.\\.2\\)$`));
  });

  it.each([
    [['--set', 'foo.bar=1'], 'dptrain: --set foo.bar=1 (foo): unknown field foo'],
    [['--set', 'model.colour=1'], 'dptrain: --set model.colour=1 (model.colour): unknown field colour'],
    [['--max-steps', '0'], 'dptrain: --max-steps: expected a whole number ≥ 1, got 0'],
    [['--listen', '127.0.0.1:localhost'], 'dptrain: --listen: expected HOST:PORT, PORT (on 127.0.0.1) or HOST (on a free port), with PORT at most 65535, got 127.0.0.1:localhost'],
  ])('dptrain train %j: one line that names the flag', (args, line) => {
    const r = dptrain(['train', '--config', 'c.json', ...args], workdir());
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toBe(line);
  });

  it.each([
    ['localhost', /^listening for worker nodes on ws:\/\/localhost:\d+$/],
    ['0', /^listening for worker nodes on ws:\/\/127\.0\.0\.1:\d+$/],
  ])('--listen %s: a bare host or a bare port is accepted', (listen, pattern) => {
    const r = dptrain(['train', '--config', 'c.json', '--workers', '1', '--listen', listen, '--max-steps', '2'], workdir());
    expect(r.code).toBe(0);
    expect(r.stderr.trimEnd().split('\n')[0]).toMatch(pattern);
    expect(r.stdout).toMatch(/^done: 2 steps/m);
  });

  it('-h is --help, and every flag of train and eval has help text', () => {
    const top = dptrain(['-h'], workdir());
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/dptrain train/);
    const train = dptrain(['train', '-h'], workdir());
    expect(train.code).toBe(0);
    // A flag without text has its type right after the name: `--epochs   [number]`.
    for (const flag of ['epochs', 'batch-size', 'seed']) expect(train.stdout).toMatch(new RegExp(`--${flag} +[a-z]`));
    const evalHelp = dptrain(['eval', '-h'], workdir());
    expect(evalHelp.code).toBe(0);
    expect(evalHelp.stdout).toMatch(/--config +[a-z]/);
    expect(evalHelp.stdout).toMatch(/--kernels +kernel backend/);
  });

  it('the progress bar on a terminal shows the ETA of the epoch and of the run', () => {
    const dir = workdir({ ...spirals, data: { ...spirals.data, n: 20000 }, training: { ...spirals.training, epochs: 3, batchSize: 8 } });
    // `script` gives the CLI a terminal; the bar's frames land in its output.
    const r = spawnSync('script', ['-qfec', `${process.execPath} ${CLI} train --config c.json --workers 1`, '/dev/null'], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/epoch 1\/3 .*\| ETA epoch \S+, run \d+(s|m\d\ds)/);
  });
});
