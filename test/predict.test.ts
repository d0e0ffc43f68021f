// `dptrain predict` and `dptrain eval` on self-describing weights, as a user runs them (the compiled
// CLI), on the shipped configs' data: predicted classes agree exactly with eval's confusion matrix;
// and PyTorch loading every kind of file dptrain writes with load_state_dict(strict=True).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, loadConfigData } from '../src/core/config.js';
import type { Dataset } from '../src/core/data/types.js';
import { loadModel, train } from '../src/index.js';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
const PYTHON = '/usr/bin/python3';

function dptrain(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', timeout: 180_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const tmp = (): string => mkdtempSync(join(tmpdir(), 'dptrain-predict-'));

/** Rows of a data set as CSV inputs (no target column: predict takes one but does not need it). */
function inputsCsv(d: Dataset): string {
  const lines = [Array.from({ length: d.nIn }, (_, j) => `x${j}`).join(',')];
  for (let r = 0; r < d.n; r++) lines.push(Array.from(d.x.subarray(r * d.nIn, (r + 1) * d.nIn), (v) => String(v)).join(','));
  return `${lines.join('\n')}\n`;
}

/** IDX images of a [0, 1]-scaled data set, back as the bytes they were read from. */
function idxImages(d: Dataset): Buffer {
  const head = Buffer.alloc(16);
  head.writeUInt32BE(0x00000803, 0);
  head.writeUInt32BE(d.n, 4);
  head.writeUInt32BE(28, 8);
  head.writeUInt32BE(28, 12);
  return Buffer.concat([head, Buffer.from(Array.from(d.x, (v) => Math.round(v * 255)))]);
}

/** eval's confusion matrix: the diagonal is the count of correct predictions. */
function evalCounts(stdout: string): { n: number; correct: number; accuracy: string } {
  const lines = stdout.trim().split('\n');
  const m = /^test samples (\d+)\s+loss [\d.]+\s+accuracy ([\d.]+)%$/.exec(lines[0]);
  expect(m, stdout).not.toBeNull();
  const rows = lines.slice(3).map((l) => l.trim().split(/\s+/).slice(1).map(Number));
  return { n: Number(m![1]), correct: rows.reduce((a, row, i) => a + row[i], 0), accuracy: m![2] };
}

function predictedClasses(csv: string, classes: number): number[] {
  const lines = csv.trim().split('\n');
  expect(lines[0]).toBe(['class', ...Array.from({ length: classes }, (_, j) => `p${j}`)].join(','));
  return lines.slice(1).map((l) => Number(l.split(',')[0]));
}

describe('dptrain predict agrees with dptrain eval on the shipped configs', () => {
  const cases: [string, string[], number][] = [
    ['spirals.json', ['--epochs', '15'], 2],
    ['xor.json', ['--epochs', '300'], 2],
    ['mnist-mlp.json', ['--epochs', '1', '--set', 'data.train=1000', '--set', 'data.test=300'], 10],
  ];
  for (const [name, args, classes] of cases) {
    it(`${name}: classes and accuracy match exactly, without a config`, () => {
      const dir = tmp();
      const config = join(ROOT, 'config', name);
      const t = dptrain(['train', '--config', config, ...args, '--workers', '2', '--quiet', '--save-weights', 'w.safetensors', '--checkpoint-dir', 'ck'], dir);
      expect(t.stderr).toBe('');
      expect(t.code).toBe(0);
      const e = dptrain(['eval', '--weights', 'w.safetensors'], dir);
      expect(e.stderr).toBe('');
      const counts = evalCounts(e.stdout);

      const cfg = loadConfig(config, (args.includes('--set') ? [{ path: 'data', value: { source: 'mnist', train: 1000, test: 300 }, flag: '--set' }] : []));
      const test = loadConfigData(cfg).test;
      const isImages = test.nIn === 784;
      writeFileSync(join(dir, 'in'), isImages ? gzipSync(idxImages(test)) : inputsCsv(test));
      const p = dptrain(['predict', '--weights', 'w.safetensors', '--input', 'in', '--output', 'out.csv'], dir);
      expect(p.stderr).toBe('');
      expect(p.code).toBe(0);
      const predicted = predictedClasses(readFileSync(join(dir, 'out.csv'), 'utf8'), classes);
      expect(predicted).toHaveLength(counts.n);
      const labels = Array.from(test.y.subarray(0, test.n), (v, i) => (test.yWidth === 1 ? v : i));
      const correct = predicted.filter((c, i) => c === labels[i]).length;
      expect(correct).toBe(counts.correct);
      expect(((100 * correct) / counts.n).toFixed(2)).toBe(counts.accuracy);

      // The checkpoint is a model file for eval and predict too.
      const ckpt = readdirSync(join(dir, 'ck')).filter((f) => f.endsWith('.safetensors')).sort().at(-1)!;
      expect(dptrain(['eval', '--weights', join('ck', ckpt)], dir).stdout).toBe(e.stdout);
      expect(dptrain(['predict', '--weights', join('ck', ckpt), '--input', 'in'], dir).stdout).toBe(readFileSync(join(dir, 'out.csv'), 'utf8'));
    });
  }

  it('lecture-3-3-3.json (CSV regression): outputs named after the target columns, target columns in the input ignored', () => {
    const dir = tmp();
    const config = join(ROOT, 'config', 'lecture-3-3-3.json');
    expect(dptrain(['train', '--config', config, '--epochs', '20', '--workers', '1', '--quiet', '--save-weights', 'w.safetensors', '--checkpoint-dir', 'ck'], dir).code).toBe(0);
    const p = dptrain(['predict', '--weights', 'w.safetensors', '--input', join(ROOT, 'config', 'lecture-3-3-3.csv')], dir);
    expect(p.stderr).toBe('');
    const lines = p.stdout.trim().split('\n');
    expect(lines[0]).toBe('y1,y2,y3');
    const rows = readFileSync(join(ROOT, 'config', 'lecture-3-3-3.csv'), 'utf8').trim().split('\n').length - 1;
    expect(lines).toHaveLength(rows + 1);
    // The same numbers as the library's predict on the same inputs.
    const csv = readFileSync(join(ROOT, 'config', 'lecture-3-3-3.csv'), 'utf8').trim().split('\n');
    const header = csv[0].split(',');
    const inputs = header.map((h, j) => [h, j] as const).filter(([h]) => !['y1', 'y2', 'y3'].includes(h)).map(([, j]) => j);
    const x = Float32Array.from(csv.slice(1).flatMap((l) => inputs.map((j) => Number(l.split(',')[j]))));
    const out = loadModel(join(dir, 'w.safetensors')).predict(x, rows);
    // Written as the shortest decimals that read back as the same float32s.
    expect(lines.slice(1).map((l) => l.split(',').map((v) => Math.fround(Number(v))))).toEqual(Array.from({ length: rows }, (_, r) => Array.from(out.subarray(r * 3, r * 3 + 3))));
  });

  it('bad input: one line, exit code 2, no stack trace', () => {
    const dir = tmp();
    const config = join(ROOT, 'config', 'xor.json');
    dptrain(['train', '--config', config, '--epochs', '2', '--workers', '1', '--quiet', '--save-weights', 'w.safetensors', '--checkpoint-dir', 'ck'], dir);
    writeFileSync(join(dir, 'bad.csv'), 'a,b\n1,2\n3,nan\n');
    const r = dptrain(['predict', '--weights', 'w.safetensors', '--input', 'bad.csv'], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^dptrain: .*bad\.csv: line 3, column 2 \("b"\): value "nan" is NaN or infinite\n$/);
    writeFileSync(join(dir, 'narrow.csv'), 'a\n1\n');
    expect(dptrain(['predict', '--weights', 'w.safetensors', '--input', 'narrow.csv'], dir).stderr).toMatch(/^dptrain: .*narrow\.csv: line 1 \(header\): 1 input columns, the model takes 2\n$/);
    expect(dptrain(['predict', '--weights', 'missing.safetensors', '--input', 'bad.csv'], dir).stderr).toMatch(/^dptrain: .*missing\.safetensors: cannot read: /);
  });
});

const torchAvailable = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;

// Builds nn.Sequential from the file's own description, loads it with strict=True (a checkpoint's
// optimizer state is not part of the model and is left out), and prints the model's outputs.
const TORCH_SCRIPT = String.raw`
import json, struct, sys, torch
path, xs = sys.argv[1], json.loads(sys.argv[2])
raw = open(path, 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
header = json.loads(raw[8:8 + n])
meta = header.pop('__metadata__', {})
d = json.loads(meta['dptrain.model'])
sd = {}
for name, t in header.items():
    a, b = t['data_offsets']
    sd[name] = torch.frombuffer(bytearray(raw[8 + n + a:8 + n + b]), dtype=torch.float32).reshape(t['shape'])
sd = {k: v for k, v in sd.items() if not k.startswith('optimizer.')}
acts = {'identity': torch.nn.Identity, 'linear': torch.nn.Identity, 'softmax': torch.nn.Identity, 'relu': torch.nn.ReLU,
        'leaky-relu': lambda: torch.nn.LeakyReLU(0.01), 'sigmoid': torch.nn.Sigmoid, 'tanh': torch.nn.Tanh}
L = d['layers']
mods = []
for i in range(len(L) - 1):
    mods.append(torch.nn.Linear(L[i], L[i + 1], bias=d['bias']))
    mods.append(acts[d['hidden'] if i < len(L) - 2 else d['output']]())
model = torch.nn.Sequential(*mods)
model.load_state_dict(sd, strict=True)
with torch.no_grad():
    out = model(torch.tensor(xs, dtype=torch.float32).reshape(-1, L[0]))
    if d['loss'] == 'cross-entropy':
        out = torch.softmax(out, dim=1)
print(json.dumps(out.reshape(-1).tolist()))
`;

describe('PyTorch loads every file dptrain writes', () => {
  // .ci/run installs Debian's python3-torch where it is missing: a missing torch fails, never skips.
  it(`PyTorch is importable from ${PYTHON}`, () => expect(torchAvailable).toBe(true));

  it('--save-weights, model.save and a checkpoint: load_state_dict(strict=True), same predictions', async () => {
    const dir = tmp();
    const x = new Float32Array([0, 0, 0, 1, 1, 0, 1, 1, 0.3, 0.7]);
    const r = await train({
      config: { model: { layers: [2, 5, 3], hidden: 'leaky-relu', output: 'softmax' }, loss: 'cross-entropy', optimizer: { name: 'adam', lr: 0.01 }, data: { source: 'synthetic', name: 'spirals', n: 100 }, training: { epochs: 2 } },
      workers: 2, saveWeights: join(dir, 'cli-style.safetensors'), checkpointDir: join(dir, 'ck'),
    });
    r.model.save(join(dir, 'saved.safetensors'));
    const files = [join(dir, 'cli-style.safetensors'), join(dir, 'saved.safetensors'), r.checkpoint!];
    const expected = Array.from(r.model.predict(x, 5));
    for (const f of files) {
      const py = spawnSync(PYTHON, ['-c', TORCH_SCRIPT, f, JSON.stringify(Array.from(x))], { encoding: 'utf8', timeout: 120_000 });
      expect(py.stderr, f).toBe('');
      const got = JSON.parse(py.stdout) as number[];
      got.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 5));
    }
    // Without a description PyTorch's own layout (sigmoid regression, no bias) loads too.
    const reg = await train({
      config: { model: { layers: [3, 3, 3], hidden: 'sigmoid', output: 'sigmoid', bias: false }, loss: 'half-sse', optimizer: { name: 'sgd', lr: 0.5 }, data: { source: 'csv', path: join(ROOT, 'config', 'lecture-3-3-3.csv'), target: ['y1', 'y2', 'y3'] }, training: { epochs: 3 } },
      workers: 1,
    });
    reg.model.save(join(dir, 'reg.safetensors'));
    const py = spawnSync(PYTHON, ['-c', TORCH_SCRIPT, join(dir, 'reg.safetensors'), JSON.stringify([0.1, 0.2, 0.3])], { encoding: 'utf8' });
    expect(py.stderr).toBe('');
    (JSON.parse(py.stdout) as number[]).forEach((v, i) => expect(v).toBeCloseTo(reg.model.predict(new Float32Array([0.1, 0.2, 0.3]), 1)[i], 5));
  });
});
