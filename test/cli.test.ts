// `dptrain` as a user runs it: a real child process of the compiled CLI; and its bad-input
// messages, the config's checked in this process, the command line's own through the CLI.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { paramLayout } from '../src/core/layout.js';
import { loadWeights } from '../src/core/io/safetensors.js';
import { parseConfig } from '../src/core/config.js';
import { isDptrainError } from '../src/core/errors.js';
import { DEFAULT_CONFIG } from '../src/core/io/package-files.js';
import { runTrain, type TrainFlags } from '../src/coordinator/commands/train.js';
import { CLI, workdir } from './helpers.js';

function dptrain(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const spirals = {
  model: { layers: [2, 32, 2], hidden: 'relu', output: 'linear' },
  loss: 'cross-entropy',
  optimizer: { name: 'adam', lr: 0.02 },
  data: { source: 'synthetic', name: 'spirals', n: 400 },
  training: { epochs: 30, batchSize: 32, seed: 5 },
};

const runDir = (config: object = spirals): string => workdir('cli', config);

describe('dptrain train, end to end', () => {
  it('trains, prints epoch lines and a summary, writes weights, checkpoint and metrics', () => {
    const dir = runDir();
    const r = dptrain(['train', '--config', 'c.json', '--workers', '2', '--save-weights', 'w.safetensors', '--metrics', 'm.jsonl', '--metrics-every', '5', '--plot', 'curves.svg'], dir);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^dptrain: 162 parameters, 320 train \/ 80 test samples, batch 32, 2 worker threads, kernels (native-avx512|native-avx2|wasm|ts)$/);
    expect(lines.filter((l) => /^epoch \d+\/30 {2}train loss \d\.\d{4} {2}test loss \d\.\d{4} {2}test acc \d+\.\d\d% {2}\d+ samples\/s/.test(l)).length).toBeGreaterThanOrEqual(15);
    const done = lines.find((l) => l.startsWith('done: '));
    expect(done).toMatch(/^done: 300 steps in [\d.]+ s \(stopped by epochs\), test loss [\d.]+, test accuracy [\d.]+%, peak memory \d+ MB$/);
    const acc = Number(/test accuracy ([\d.]+)%/.exec(done!)![1]);
    expect(acc).toBeGreaterThan(80);
    // The default checkpoint folder is the run's own: checkpoints/CONFIG-RUNID.
    expect(lines.find((l) => l.startsWith('checkpoint: '))).toMatch(new RegExp(`^checkpoint: ${join(dir, 'checkpoints')}/c-[0-9a-f]{8}/ckpt-000000300\\.safetensors$`));
    // The training curves: an SVG with the train and test series.
    const svg = readFileSync(join(dir, 'curves.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toMatch(/train/);
    expect(svg).toMatch(/test/);
    expect(svg).toMatch(/accuracy/i);
    // The weights load back into the model they came from.
    const config = parseConfig(spirals, 'c.json', dir);
    const layout = paramLayout(config.model);
    const params = new Float32Array(layout.size);
    loadWeights(join(dir, 'w.safetensors'), layout, params);
    expect(params.some((v) => v !== 0)).toBe(true);
    // Metrics: one JSON object a line, step intervals and epochs.
    const metrics = readFileSync(join(dir, 'm.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const epochs = metrics.filter((m) => m.type === 'epoch');
    const steps = metrics.filter((m) => m.type === 'step');
    expect(epochs).toHaveLength(30);
    expect(steps.length).toBeGreaterThanOrEqual(60);
    expect(steps[0]).toMatchObject({ step: 5, epoch: 1, steps: 5 });
    expect(Object.keys(steps[0].computeMs as object).length).toBeGreaterThan(0);
    expect(typeof steps[0].reduceUpdateMs).toBe('number');
    expect(epochs[29]).toMatchObject({ epoch: 30, step: 300 });

    // And dptrain eval reads the same weights back and reports on the test split.
    const e = dptrain(['eval', '--weights', 'w.safetensors', '--config', 'c.json'], dir);
    expect(e.code).toBe(0);
    expect(e.stdout).toContain(`test samples 80  loss`);
    expect(Number(/accuracy ([\d.]+)%/.exec(e.stdout)![1])).toBeCloseTo(acc, 2);
    expect(e.stdout).toMatch(/confusion matrix \(rows: actual, columns: predicted\)\n\s+0\s+1\n\s+0\s+\d+\s+\d+\n\s+1\s+\d+\s+\d+/);
  });

  it('stops at --target-accuracy and continues with --resume', () => {
    const dir = runDir();
    const r = dptrain(['train', '--config', 'c.json', '--workers', '1', '--target-accuracy', '0.7', '--epochs', '200'], dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/stopped by target-accuracy/);
    const steps = Number(/done: (\d+) steps/.exec(r.stdout)![1]);
    expect(steps).toBeLessThan(2000);
    const again = dptrain(['train', '--config', 'c.json', '--workers', '1', '--resume', '--epochs', `${steps / 10 + 1}`], dir);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(new RegExp(`resuming from .*ckpt-0*${steps}\\.safetensors at step ${steps}`));
    // --epochs may change on resume: said, not warned about.
    expect(again.stderr).toMatch(/training\.epochs changed on resume: 200 → \d+/);
    expect(again.stderr).not.toMatch(/warning/);
    expect(again.stdout).toMatch(new RegExp(`done: ${steps + 10} steps`));
  });

  it('Ctrl-C finishes the step, writes a checkpoint and exits 130 with a line saying where', async () => {
    const dir = runDir({ ...spirals, training: { ...spirals.training, epochs: 100000 } });
    const child = spawn(process.execPath, [CLI, 'train', '--config', 'c.json', '--workers', '2'], { cwd: dir });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    let sent = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      // Interrupt once training is under way (the start line is printed before the first step).
      if (!sent && d.includes('dptrain: ')) {
        sent = true;
        setTimeout(() => child.kill('SIGINT'), 500);
      }
    });
    const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    expect(code).toBe(130);
    const m = /dptrain: interrupted at step (\d+); checkpoint (\S+) \(continue with --resume\)/.exec(stderr);
    expect(m, stderr).not.toBeNull();
    expect(existsSync(m![2])).toBe(true);
  });
});

describe('bad input: one line naming what and where', () => {
  const good = runDir();
  writeFileSync(join(good, 'broken.json'), '{ "model": ');
  writeFileSync(join(good, 'extra.json'), JSON.stringify({ ...spirals, model: { ...spirals.model, colour: 'red' } }));
  writeFileSync(join(good, 'bce.json'), JSON.stringify({ ...spirals, loss: 'bce' }));
  writeFileSync(join(good, 'nolayers.json'), JSON.stringify({ ...spirals, model: { ...spirals.model, layers: [2] } }));
  writeFileSync(join(good, 'data.csv'), 'a,b,label\n1,2,0\n3,x,1\n');
  writeFileSync(join(good, 'csv.json'), JSON.stringify({ ...spirals, data: { source: 'csv', path: 'data.csv', target: 'label' } }));
  writeFileSync(join(good, 'w.safetensors'), 'not a weights file at all');

  // Config and flag values, checked in this process by the code `dptrain train` runs (the flags as
  // yargs hands them over); the CLI prints the message after "dptrain: " and exits 2.
  const defaults: TrainFlags = {
    config: DEFAULT_CONFIG, kernels: 'auto', checkpointDir: 'checkpoints', checkpointEvery: 0, resume: false, metricsEvery: 10, quiet: true,
    maxNodes: 8, stepDeadline: 30000, heartbeat: 1000, maxNodeFailures: 10, minNodes: 0,
  };
  const configCases: [string, Partial<TrainFlags>, RegExp][] = [
    ['--workers 0', { workers: 0 }, /^--workers: expected a whole number ≥ 1 \(0 only with --listen\), got 0$/],
    ['--lr -1', { config: 'c.json', lr: -1 }, /^--lr \(optimizer\.lr\): Too small: expected number to be >0$/],
    ['--batch-size 1.5', { config: 'c.json', batchSize: 1.5 }, /^--batch-size \(training\.batchSize\): Invalid input: expected int, received number$/],
    ['--config missing.json', { config: 'missing.json' }, /^missing\.json: cannot read: ENOENT/],
    ['--config broken.json', { config: 'broken.json' }, /^broken\.json: not valid JSON \(/],
    ['--config bce.json', { config: 'bce.json' }, /^bce\.json: model\.output: loss bce takes probabilities: the output must be sigmoid$/],
    ['--config nolayers.json', { config: 'nolayers.json' }, /^nolayers\.json: model\.layers: needs at least an input and an output width$/],
    ['--set model.hidden=swish', { config: 'c.json', set: ['model.hidden=swish'] }, /^--set model\.hidden=swish \(model\.hidden\): Invalid option: expected one of "identity"\|"relu"/],
    ['--config csv.json', { config: 'csv.json' }, /^.*data\.csv: line 3, column 2 \("b"\): non-numeric value "x"$/],
    ['--init-weights w.safetensors', { config: 'c.json', initWeights: 'w.safetensors' }, /^w\.safetensors: header length \d+ runs past the end/],
  ];
  it.each(configCases)('dptrain train %s', async (_flags, flags, pattern) => {
    const cwd = process.cwd();
    process.chdir(good);
    try {
      const error = await runTrain({ ...defaults, ...flags }).then(() => null, (e: unknown) => e);
      expect(isDptrainError(error), String(error)).toBe(true);
      const message = (error as Error).message;
      expect(message.split('\n')).toHaveLength(1);
      expect(message).toMatch(pattern);
    } finally {
      process.chdir(cwd);
    }
  });

  // What only the command line sees (yargs' own checks), and one config error end to end.
  const table: [string[], RegExp][] = [
    [['train', '--bogus'], /^dptrain: Unknown argument: bogus$/],
    [['train', '--config', 'c.json', '--epochs'], /^dptrain: Not enough arguments following: epochs$/],
    [['train', '--kernels', 'gpu'], /^dptrain: Invalid values: Argument: kernels, Given: "gpu", Choices: "auto", "native", "wasm", "ts"$/],
    [['train', '--config', 'extra.json'], /^dptrain: extra\.json: model: unknown field colour$/],
    [['eval', '--config', 'c.json'], /^dptrain: Missing required argument: weights$/],
    [[], /^dptrain: name a command: train, eval/],
  ];
  it.each(table)('dptrain %j exits 2 with one line', (args, pattern) => {
    const r = dptrain(args, good);
    expect(r.code).toBe(2);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(pattern);
  });
});
