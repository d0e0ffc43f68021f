// Reduction trees among real `dptrain worker --listen` processes (`--fanout`): the same bits as the
// star whatever the tree's shape, the coordinator sending to its heads only, and failures of inner
// nodes recomputed to the same bits.

import { tmpdir } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/core/config.js';
import { paramLayout } from '../src/core/layout.js';
import { killAll, remoteRun, sameBits, spawnNode } from './remote-helpers.js';

afterAll(killAll);

const config = parseConfig(
  {
    model: { layers: [2, 24, 16, 2], hidden: 'tanh' },
    loss: 'cross-entropy',
    optimizer: { name: 'sgd', lr: 0.1, momentum: 0.9 },
    data: { source: 'synthetic', name: 'spirals', n: 400 },
    training: { epochs: 2, batchSize: 40, seed: 9 },
  },
  'remote-tree-test',
  tmpdir(),
);
const P = paramLayout(config.model).size;
const base = { config, kernels: 'auto' as const, skipEval: true, balance: 'static' as const, workers: 0, maxNodes: 8 };

/** A run with `n` listening nodes (`args` for node i from `extra(i)`), and the star or a tree. */
function run(n: number, fanout: number | undefined, extra: (i: number) => string[] = () => []) {
  return remoteRun({ ...base, minExecutors: n, fanout }, (url) => {
    for (let i = 0; i < n; i++) spawnNode(url, ['--listen', '127.0.0.1:0', ...extra(i)]);
  });
}

describe('a reduction tree among nodes', () => {
  it('gives the star\'s weights bit for bit at every fan-out, and the coordinator sends each step to its heads only', async () => {
    const star = await run(5, undefined);
    const steps = star.result.steps;
    expect(steps).toBe(16); // 320 training rows in batches of 40, two epochs
    for (const fanout of [1, 2]) {
      const tree = await run(5, fanout);
      expect(sameBits(tree.result.params, star.result.params)).toBe(true);
      // Every step's weights went to `fanout` heads (blocks of T(5): [0,4) and [4,5), split to two
      // at fan-out 2); every other node's link carried control messages only.
      const nodes = tree.steps.at(-1)!.nodes;
      const carried = nodes.filter((x) => x.bytesSent > steps * 4 * P);
      expect(carried).toHaveLength(fanout);
      for (const x of nodes) expect(x.bytesReceived).toBeLessThan(steps * (4 * P + 400) + 4096);
      expect(tree.lines.some((l) => /takes children on ws:\/\/127\.0\.0\.1:\d+/.test(l))).toBe(true);
    }
  }, 120_000);
});
