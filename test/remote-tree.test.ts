// Reduction trees among real `dptrain worker --listen` processes (`--fanout`): the same bits as the
// star whatever the tree's shape, the coordinator sending to its heads only, and failures of inner
// nodes recomputed to the same bits.

import { tmpdir } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/core/config.js';
import { paramLayout } from '../src/core/layout.js';
import { CLI, killAll, remoteRun, sameBits, spawnNode, tokenFile, waitForLine } from './remote-helpers.js';

afterAll(killAll);

const config = parseConfig(
  {
    model: { layers: [2, 24, 16, 2], hidden: 'tanh' },
    loss: 'cross-entropy',
    optimizer: { name: 'sgd', lr: 0.1, momentum: 0.9 },
    data: { source: 'synthetic', name: 'spirals', n: 400 },
    training: { epochs: 1, batchSize: 40, seed: 9 },
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
    const star = await run(4, undefined);
    const steps = star.result.steps;
    expect(steps).toBe(8); // 320 training rows in batches of 40
    for (const fanout of [1, 2]) {
      const tree = await run(4, fanout);
      expect(sameBits(tree.result.params, star.result.params)).toBe(true);
      // Every step's weights went to `fanout` heads (T(4), split into [0,2) and [2,4) at fan-out 2);
      // every other node's link carried control messages only.
      const nodes = tree.steps.at(-1)!.nodes;
      const carried = nodes.filter((x) => x.bytesSent > steps * 4 * P);
      expect(carried).toHaveLength(fanout);
      for (const x of nodes) expect(x.bytesReceived).toBeLessThan(steps * (4 * P + 400) + 4096);
      expect(tree.lines.some((l) => /takes children on ws:\/\/127\.0\.0\.1:\d+/.test(l))).toBe(true);
    }
  }, 120_000);
});

describe('a node of a tree failing', () => {
  // Four nodes joining in turn: with fan-out 1 node1 heads T(4); its children are node2 and node3
  // (heading node4). node3, an inner node, dies on receiving step 5 in one run; in the other (the
  // star) it answers step 5 and leaves. The block is recomputed by its recipes and the three left
  // form the tree from step 6: the weights must be the star's.
  async function four(fanout: number | undefined, flag: string, heartbeatMs = 500) {
    return remoteRun({ ...base, minExecutors: 4, fanout }, (url, lines) => {
      const join = (i: number): void => {
        if (i > 4) return;
        spawnNode(url, ['--listen', '127.0.0.1:0', ...(i === 3 ? [flag, '5'] : [])]);
        void waitForLine(lines, new RegExp(`node node${i} .* joined`)).then(() => join(i + 1));
      };
      join(1);
    }, { heartbeatMs });
  }

  it('an inner node killed mid-step: its parent names it, the block is recomputed, and the weights are the star\'s', async () => {
    const killed = await four(1, '--exit-at-step');
    const left = await four(undefined, '--leave-after-step');
    expect(killed.lines.some((l) => /node node3 dropped during step 5 \(.*node3.*\); recomputing its block of 4 shards elsewhere/.test(l)), killed.lines.join('\n')).toBe(true);
    expect(killed.steps[4].plan.map((p) => p.member)).toEqual(['node1', 'node2', 'node3', 'node4']);
    expect(killed.steps[5].plan.map((p) => p.member)).toEqual(['node1', 'node2', 'node4']);
    expect(killed.result.steps).toBe(8);
    expect(sameBits(killed.result.params, left.result.params)).toBe(true);
    // After the failure the tree was rebuilt: the three nodes still answer through one head.
    const last = killed.steps.at(-1)!;
    expect(last.shards.map((s) => s.by)).toEqual(['node1', 'node2', 'node4']);
  }, 120_000);
});

describe('a node\'s door for children', () => {
  it('refuses a peer without the token before reading anything, and needs a token off loopback', async () => {
    const { spawnSync } = await import('node:child_process');
    const { dial } = await import('../src/core/protocol/dial.js');
    const token = await tokenFile('a-shared-secret-of-some-length');
    const node = spawnNode('ws://127.0.0.1:9', ['--listen', '127.0.0.1:0', '--token-file', token, '--max-reconnects', '50']);
    const url = /taking children in a reduction tree on (ws:\/\/\S+) \(token required\)/.exec(await until(() => /taking children .* \(token required\)/.test(node.log) && node.log))![1];
    const wrong = await dial({ url, token: 'not-the-secret-but-long-enough', maxPayload: 1 << 20 });
    expect(wrong).toMatchObject({ ok: false, kind: 'refused' });
    const none = await dial({ url, maxPayload: 1 << 20 });
    expect(none).toMatchObject({ ok: false, kind: 'refused', why: expect.stringMatching(/HTTP 401/) });
    expect(node.log).toMatch(/refused a connection from 127\.0\.0\.1:\d+: wrong token proof/);
    const open = spawnSync(process.execPath, [CLI, 'worker', '--connect', 'ws://127.0.0.1:9', '--listen', '0.0.0.0:0'], { encoding: 'utf8' });
    expect(open.status).toBe(2);
    expect(open.stderr.trim().split('\n')).toEqual([expect.stringMatching(/--listen 0\.0\.0\.0:0: a --token-file is required to listen on an address other than loopback/)]);
    const adrift = spawnSync(process.execPath, [CLI, 'worker', '--connect', 'ws://127.0.0.1:9', '--advertise', 'ws://10.0.0.1:7800'], { encoding: 'utf8' });
    expect(adrift.status).toBe(2);
    expect(adrift.stderr).toMatch(/--advertise: names where children reach this node: it needs --listen/);
  });
});

async function until<T>(probe: () => T | false, timeoutMs = 20_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}
