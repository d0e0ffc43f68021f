// The library API from the package root: train on the caller's arrays, runs side by side, an
// aborted run that resumes to the same weights, validation errors, self-describing weights files,
// and a child process that must exit on its own (no thread or socket left behind).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { DptrainError, loadModel, train, type ConfigInput, type StepRecord } from '../src/index.js';
import type { configSchema } from '../src/core/config.js';
import { decodeSafetensors, encodeSafetensors } from '../src/core/io/safetensors.js';

// ConfigInput is written out by hand for the public declarations: it must accept what the schema does.
type SchemaInput = z.input<typeof configSchema>;
const sameShape = (c: SchemaInput): ConfigInput => c;
void sameShape;

const XOR_X = new Float32Array([0, 0, 0, 1, 1, 0, 1, 1]);
const XOR_Y = new Int32Array([0, 1, 1, 0]);
const xorConfig: ConfigInput = {
  model: { layers: [2, 8, 2], hidden: 'tanh' },
  loss: 'cross-entropy',
  optimizer: { name: 'adam', lr: 0.05 },
  training: { epochs: 300, batchSize: 4, shuffle: false, seed: 3 },
};
const xorData = { train: { x: XOR_X, y: XOR_Y, rows: 4 }, test: { x: XOR_X, y: XOR_Y, rows: 4 } };

function metadataOf(file: string): Record<string, string> {
  const buf = readFileSync(file);
  const len = Number(buf.readBigUInt64LE(0));
  return (JSON.parse(buf.subarray(8, 8 + len).toString('utf8')) as { __metadata__: Record<string, string> }).__metadata__;
}

const tmp = (): string => mkdtempSync(join(tmpdir(), 'dptrain-api-'));

describe('train() on the caller\'s arrays', () => {
  it('learns XOR on 2 threads; predict gives probabilities, classify the classes; two runs at once both finish', async () => {
    const [a, b] = await Promise.all([
      train({ config: xorConfig, data: xorData, workers: 2 }),
      train({ config: { ...xorConfig, training: { ...xorConfig.training, seed: 4 } }, data: xorData, workers: 2 }),
    ]);
    for (const r of [a, b]) {
      expect(r.history).toHaveLength(300);
      expect(r.history.at(-1)!.test.accuracy).toBe(1);
      expect([...r.model.classify(XOR_X, 4)]).toEqual([0, 1, 1, 0]);
      const p = r.model.predict(XOR_X, 4);
      for (let i = 0; i < 4; i++) expect(p[2 * i] + p[2 * i + 1]).toBeCloseTo(1, 5);
      expect(r.model.evaluate({ x: XOR_X, y: XOR_Y, rows: 4 }).accuracy).toBe(1);
    }
    // Different seeds, different weights: the two runs shared nothing.
    expect(a.model.weights()).not.toEqual(b.model.weights());
    // In sequence, the same seed gives the same bits.
    const again = await train({ config: xorConfig, data: xorData, workers: 2 });
    expect(again.model.weights()).toEqual(a.model.weights());
  });

  it('takes a config data source as options.data, in place of config.data', async () => {
    const r = await train({ config: xorConfig, data: { source: 'synthetic', name: 'xor', n: 8 }, workers: 1 });
    expect(r.history.at(-1)!.test.n).toBe(4);
    expect(r.model.description.data).toEqual({ source: { source: 'synthetic', name: 'xor', n: 8 }, seed: 3 });
    expect([...r.model.classify(XOR_X, 4)]).toEqual([0, 1, 1, 0]);
  });

  it('rejects a NaN in the data, naming the row and column', async () => {
    const x = Float32Array.from(XOR_X);
    x[5] = NaN;
    await expect(train({ config: xorConfig, data: { train: { x, y: XOR_Y, rows: 4 } }, workers: 1 })).rejects.toThrow(
      /^data\.train\.x: row 2, column 1: value NaN is NaN or infinite$/,
    );
    const err = await train({ config: xorConfig, data: { train: { x: XOR_X, y: new Int32Array([0, 1, 2, 0]), rows: 4 } }, workers: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DptrainError);
    expect((err as DptrainError).code).toBe('LABEL_OUT_OF_RANGE');
    expect((err as DptrainError).message).toMatch(/^data\.train\.y: row 2: class 2, the model has 2 classes \(0\.\.1\)$/);
    await expect(train({ config: xorConfig, data: { train: { x: XOR_X, y: XOR_Y, rows: 3 } } })).rejects.toThrow(/^data\.train\.x: 8 values, 3 rows × 2 inputs/);
  });

  it('validates the config as a config file, one line with a code', async () => {
    const bad = { ...xorConfig, loss: 'hinge' } as unknown as ConfigInput;
    const e = await train({ config: bad, data: xorData }).catch((x: unknown) => x);
    expect((e as DptrainError).code).toBe('CONFIG_INVALID');
    expect((e as Error).message).toMatch(/^options\.config: loss: /);
    expect((e as Error).message).not.toContain('\n');
    await expect(train({ config: xorConfig, data: xorData, wrokers: 2 } as never)).rejects.toThrow(/^options\.wrokers: unknown option$/);
    await expect(train({ config: xorConfig })).rejects.toThrow(/^options\.config: data: required unless options\.data gives the data$/);
    // Output paths are checked before the first step, named as the options that gave them.
    const file = join(tmp(), 'a-file');
    writeFileSync(file, '');
    await expect(train({ config: xorConfig, data: xorData, checkpointDir: join(file, 'ck') })).rejects.toThrow(/^options\.checkpointDir .*a-file\/ck: cannot write there/);
  });
});

describe('AbortSignal, checkpoints and resume', () => {
  const spirals: ConfigInput = {
    model: { layers: [2, 16, 2], hidden: 'relu' },
    loss: 'cross-entropy',
    optimizer: { name: 'sgd', lr: 0.05, momentum: 0.9 },
    data: { source: 'synthetic', name: 'spirals', n: 200 },
    training: { epochs: 4, batchSize: 16, seed: 9 },
  };

  it('stops at a step boundary with a checkpoint, and the resumed run ends with the weights of one never stopped', async () => {
    const whole = await train({ config: spirals, workers: 2 });
    const dir = tmp();
    const ac = new AbortController();
    const steps: StepRecord[] = [];
    const stopped = await train({
      config: spirals, workers: 2, checkpointDir: dir, signal: ac.signal,
      onStep: (r) => {
        steps.push(r);
        if (r.step === 15) ac.abort();
      },
    });
    expect(stopped.stoppedBy).toBe('interrupted');
    expect(stopped.steps).toBeGreaterThanOrEqual(15);
    expect(stopped.steps).toBeLessThan(20);
    expect(stopped.checkpoint && existsSync(stopped.checkpoint)).toBe(true);
    // A checkpoint is a model file too, describing its model in its own metadata.
    expect(metadataOf(stopped.checkpoint!)['dptrain.model']).toBe(JSON.stringify(stopped.model.description));
    expect(loadModel(stopped.checkpoint!).description).toEqual(stopped.model.description);
    const resumed = await train({ config: spirals, workers: 2, checkpointDir: dir, resume: true });
    expect(resumed.stoppedBy).toBe('epochs');
    expect(resumed.steps).toBe(whole.steps);
    expect(resumed.model.weights()).toEqual(whole.model.weights());
  });
});

describe('self-describing weights', () => {
  it('model.save writes the description; loadModel needs no config; a file without it needs one', async () => {
    const dir = tmp();
    const { model } = await train({ config: xorConfig, data: xorData, workers: 1 });
    const file = join(dir, 'xor.safetensors');
    model.save(file);
    const loaded = loadModel(file);
    expect(loaded.description).toEqual(model.description);
    expect(loaded.predict(XOR_X, 4)).toEqual(model.predict(XOR_X, 4));
    expect(loaded.classes).toBe(2);

    // The same tensors without metadata, as PyTorch's save_file would write them.
    const bare = join(dir, 'bare.safetensors');
    writeFileSync(bare, Buffer.concat(encodeSafetensors(decodeSafetensors(readFileSync(file), file))));
    const e = (() => {
      try {
        loadModel(bare);
      } catch (x) {
        return x;
      }
    })();
    expect((e as DptrainError).code).toBe('WEIGHTS_UNDESCRIBED');
    expect(loadModel(bare, { config: xorConfig }).predict(XOR_X, 4)).toEqual(model.predict(XOR_X, 4));
    expect(() => loadModel(file, { config: { ...xorConfig, model: { layers: [2, 8, 2], hidden: 'relu' } } })).toThrow(/describes layers \[2, 8, 2\] tanh\/linear/);
  });

  it('regression models predict raw outputs and refuse classify', async () => {
    const { model } = await train({
      config: { model: { layers: [1, 8, 1], hidden: 'tanh' }, loss: 'mse', optimizer: { name: 'adam', lr: 0.01 }, data: { source: 'synthetic', name: 'sine', n: 64 }, training: { epochs: 2 } },
      workers: 1,
    });
    expect(model.classes).toBe(0);
    expect(model.predict(new Float32Array([0.5, -0.5]), 2)).toHaveLength(2);
    expect(() => model.classify(new Float32Array([0.5]), 1)).toThrow(/regression/);
    expect(() => model.predict(new Float32Array([NaN, 1]), 2)).toThrow(/^x: row 0, column 0: value NaN is NaN or infinite$/);
  });
});

describe('nothing left behind', () => {
  it('a process that trains in sequence, at once, and through a failing run exits on its own', () => {
    const script = `
      import { train } from ${JSON.stringify(join(import.meta.dirname, '..', 'dist', 'src', 'index.js'))};
      const x = new Float32Array([0,0,0,1,1,0,1,1]), y = new Int32Array([0,1,1,0]);
      const config = { model: { layers: [2, 8, 2], hidden: 'tanh' }, loss: 'cross-entropy', optimizer: { name: 'adam', lr: 0.05 }, training: { epochs: 20, batchSize: 4 } };
      const data = { train: { x, y, rows: 4 } };
      await train({ config, data, workers: 2 });
      await Promise.all([train({ config, data, workers: 2 }), train({ config, data, workers: 2, listen: { port: 0 } })]);
      const failed = await train({ config, data, workers: 2, listen: { port: 0 }, onEpoch: () => { throw new Error('callback failed'); } }).catch((e) => e.message);
      // stdout and stderr are pipes or TTYs here; anything else (a Worker, a server, a timer) is a leak.
      const left = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap' && r !== 'PipeWrap');
      console.log(JSON.stringify({ failed, left }));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    // It ended by itself (no process.exit), within the timeout.
    expect(r.signal).toBe(null);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ failed: 'callback failed', left: [] });
  });
});
