// `dptrain worker --emulate-compute` (benchmarks only): the made-up gradient on its own, and a real
// node process in a real run: finite results of the model's size, the same bits twice, not a real
// node's weights, and every step at least as long as the compute it stands for.

import { afterAll, describe, expect, it } from 'vitest';
import { paramLayout } from '../src/core/layout.js';
import { layerSpan } from '../src/core/model.js';
import { train } from '../src/coordinator/train/trainer.js';
import { emulatedMs, emulateShard } from '../src/worker/node/emulate.js';
import { silentReporter } from './helpers.js';
import { exited, killAll, relDiff, remoteRun, sameBits, spawnNode, spiralsConfig, waitForLine } from './remote-helpers.js';

afterAll(killAll);

const config = spiralsConfig('emulate-test', 1);
const P = paramLayout(config.model).size;
const base = { config, kernels: 'auto' as const, skipEval: true, balance: 'static' as const, maxSteps: 6 };
const MS_PER_SAMPLE = 1.5;
const layout = paramLayout(config.model);
const layers = layout.dense.map((d, l) => ({ ...layerSpan(layout, l), cost: d.nIn * d.nOut }));
/** Weights all there, gradients unheard. */
const allIn = { weightsFor: async (): Promise<void> => {}, gradientReady: (): void => {} };

describe('the emulated shard', () => {
  const order = Int32Array.from({ length: 40 }, (_, i) => (i * 37) % 400);
  it('is the same bits for the same step and samples, another for another step, finite, and waits at least its time', async () => {
    const e = { msPerSample: 0.25, threads: 1 };
    const a = new Float32Array(P);
    const b = new Float32Array(P).fill(NaN);
    const t0 = performance.now();
    const ra = await emulateShard(e, 3, 40, 1, order, a, layers, allIn);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(40 * 0.25);
    const rb = await emulateShard(e, 3, 40, 1, order, b, layers, allIn);
    expect(sameBits(a, b)).toBe(true);
    expect(ra).toEqual(rb);
    expect(ra.count).toBe(40);
    expect(Number.isFinite(ra.lossSum) && ra.lossSum > 0).toBe(true);
    expect(a.every(Number.isFinite)).toBe(true);
    expect(a.some((x) => x !== 0)).toBe(true);
    await emulateShard(e, 4, 40, 1, order, b, layers, allIn);
    expect(sameBits(a, b)).toBe(false);
    // Other samples, same step: another gradient.
    await emulateShard(e, 3, 40, 1, order.map((i) => (i + 1) % 400), b, layers, allIn);
    expect(sameBits(a, b)).toBe(false);
  });
  it('a shard of twice the rows has a sum of about twice the norm (per-row norms stay comparable)', async () => {
    const e = { msPerSample: 0, threads: 1 };
    const norm = (g: Float32Array): number => Math.hypot(...g);
    const one = new Float32Array(P);
    const two = new Float32Array(P);
    await emulateShard(e, 5, 20, 1, order, one, layers, allIn);
    await emulateShard(e, 5, 40, 1, order, two, layers, allIn);
    const ratio = norm(two) / norm(one);
    expect(ratio).toBeGreaterThan(1.2);
    expect(ratio).toBeLessThan(4);
  });
  it('waits for each layer\'s weights and posts each layer\'s gradient as final, the last layer first', async () => {
    const e = { msPerSample: 0.5, threads: 1 };
    const events: string[] = [];
    let landed = 0;
    const waiting: (() => void)[] = [];
    const stream = {
      weightsFor: (end: number): Promise<void> => {
        events.push(`wait ${end}`);
        return end <= landed ? Promise.resolve() : new Promise<void>((r) => waiting.push(r));
      },
      gradientReady: (from: number): void => void events.push(`grad ${from}`),
    };
    const t0 = performance.now();
    const done = emulateShard(e, 3, 40, 1, order, new Float32Array(P), layers, stream);
    // Nothing has landed: forward waits at the first layer, however long.
    await new Promise((r) => setTimeout(r, 30));
    expect(events).toEqual([`wait ${layers[0].end}`]);
    landed = P;
    const tLanded = performance.now();
    waiting.splice(0).forEach((w) => w());
    await done;
    expect(performance.now() - tLanded).toBeGreaterThanOrEqual(40 * 0.5 - 1);
    expect(tLanded - t0).toBeGreaterThanOrEqual(29);
    expect(events).toEqual([...layers.map((l) => `wait ${l.end}`), ...[...layers].reverse().map((l) => `grad ${l.start}`)]);
  });
  it('takes the largest part\'s time once per wave of threads', () => {
    expect(emulatedMs({ msPerSample: 2, threads: 1 }, 32, 1)).toBe(64);
    expect(emulatedMs({ msPerSample: 2, threads: 2 }, 32, 2)).toBe(32);
    expect(emulatedMs({ msPerSample: 2, threads: 2 }, 33, 2)).toBe(34);
    expect(emulatedMs({ msPerSample: 2, threads: 1 }, 32, 2)).toBe(64);
  });
});

describe('dptrain worker --emulate-compute', () => {
  async function emulatedRun() {
    let node: ReturnType<typeof spawnNode> | null = null;
    const run = await remoteRun({ ...base, workers: 0, minExecutors: 1 }, (url) => {
      node = spawnNode(url, ['--emulate-compute', String(MS_PER_SAMPLE)]);
    });
    await exited(node!);
    return { ...run, log: node!.log };
  }

  it('joins a real coordinator: finite weights of the model\'s size, the same bits twice, no real node\'s, each step at least rows × ms', async () => {
    const once = await emulatedRun();
    expect(once.log).toMatch(/^dptrain worker: compute is EMULATED \(benchmark only\): each step waits 1\.5 ms per sample on each of 1 thread and answers with a made-up gradient; this node trains nothing$/m);
    await waitForLine(once.lines, /node node1 .* joined/);
    expect(once.result.steps).toBe(6);
    expect(once.result.params).toHaveLength(P);
    expect(once.result.params.every(Number.isFinite)).toBe(true);
    for (const s of once.steps) {
      expect(s.rows).toBe(32);
      // Lower bounds only: the node's own report, and the step around it.
      expect(s.shards[0].computeMs).toBeGreaterThanOrEqual(32 * MS_PER_SAMPLE);
      expect(s.stepMs).toBeGreaterThanOrEqual(32 * MS_PER_SAMPLE);
    }
    // One gradient frame of the model's size per step (the coordinator checks each one's length).
    const [n] = once.steps.at(-1)!.nodes;
    expect(n.bytesReceived).toBeGreaterThan(6 * 4 * P);
    expect(n.bytesReceived).toBeLessThan(6 * (4 * P + 200));

    const twice = await emulatedRun();
    expect(sameBits(twice.result.params, once.result.params)).toBe(true);

    // The gradients are made up: a real thread, same steps, ends elsewhere.
    const real = await train({ ...base, workers: 1, reporter: silentReporter() });
    expect(relDiff(once.result.params, real.params)).toBeGreaterThan(1e-3);
  });

  it('refuses a negative or non-numeric --emulate-compute with one line and exit 2', async () => {
    for (const bad of ['-1', 'abc']) {
      const child = spawnNode('ws://127.0.0.1:9', ['--emulate-compute', bad]);
      expect(await exited(child)).toBe(2);
      expect(child.log).toMatch(/^dptrain: --emulate-compute: expected milliseconds per sample, a finite number ≥ 0, got (-1|NaN)\n$/);
    }
  });
});
