// One authenticated node cannot wreck the model: a finite but huge gradient is refused by the
// gradient guard, its node dropped with the reason and its shard recomputed by the recipe, so the
// weights are those of a run where the node answered honestly and left (invariants 4 and 6).

import { tmpdir } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/core/config.js';
import { paramLayout } from '../src/core/layout.js';
import { killAll, remoteRun, resultFrame, rogue, sameBits, spawnNode } from './remote-helpers.js';

afterAll(killAll);

const config = parseConfig(
  {
    model: { layers: [2, 24, 16, 2], hidden: 'tanh' },
    loss: 'cross-entropy',
    optimizer: { name: 'sgd', lr: 0.1, momentum: 0.9 },
    data: { source: 'synthetic', name: 'spirals', n: 400 },
    training: { epochs: 1, batchSize: 32, seed: 9 },
  },
  'guard-test',
  tmpdir(),
);
const P = paramLayout(config.model).size;
const base = { config, kernels: 'auto' as const, skipEval: true, balance: 'static' as const, workers: 1, minExecutors: 2 };

describe('the gradient guard (item 10)', () => {
  let reference: Float32Array;
  it('reference: an honest node answers step 1 and leaves', async () => {
    const r = await remoteRun(base, (url) => spawnNode(url, ['--leave-after-step', '1']));
    expect(r.steps[0].plan.map((p) => p.member)).toEqual(['local', 'node1']);
    expect(r.lines.some((l) => /gradient norm/.test(l)), r.lines.join('\n')).toBe(false);
    reference = r.result.params;
  });

  it.each([
    ['filled with 3e38', 3e38],
    ['scaled far past the others', 1e3],
  ])('a finite gradient %s is refused: the node is dropped, its shard recomputed, the weights the reference\'s', async (_name, value) => {
    const r = await remoteRun(base, (url) => {
      void rogue(url, { onStep: (q, _p, ws) => ws.send(resultFrame(q, new Float32Array(P).fill(value))) });
    });
    expect(r.lines.some((l) => /^node node1 dropped during step 1 \(gradient norm per row \S+ is \S+ × the reference \S+ \(bound 100 ×, --max-grad-ratio\)\); recomputing its shard elsewhere$/.test(l)), r.lines.join('\n')).toBe(true);
    expect(r.lines.some((l) => /^node node1 \(127\.0\.0\.1:\d+\) dropped: gradient norm per row/.test(l))).toBe(true);
    expect(r.result.steps).toBe(10);
    expect(sameBits(r.result.params, reference)).toBe(true);
  });

  it('--max-grad-ratio 0 turns it off (the poison is then applied)', async () => {
    const r = await remoteRun({ ...base, maxGradRatio: 0 }, (url) => {
      void rogue(url, { onStep: (q, _p, ws) => ws.send(resultFrame(q, new Float32Array(P).fill(1e3))) });
    });
    expect(r.lines.some((l) => /gradient norm per row/.test(l))).toBe(false);
    expect(sameBits(r.result.params, reference)).toBe(false);
  });
});
