// A mixed cluster: a node that cannot run the coordinator's kernel backend moves the whole run to
// the best backend they share, at a step boundary, and nodes welcomed with the old one rejoin.

import { tmpdir } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/core/config.js';
import { resolveKernels } from '../src/core/kernels/index.js';
import { killAll, remoteRun, sameBits, spawnNode, spiralsConfig } from './remote-helpers.js';

const config = spiralsConfig('remote-kernels-test', 2);
const base = { config, skipEval: true, balance: 'static' as const };
// A node process whose native addon cannot be loaded: its best backend is wasm.
const WASM_ONLY = { ...process.env, DPTRAIN_NATIVE_PATH: '/nonexistent/dptrain_kernels.node' };

afterAll(killAll);

describe('kernels in a mixed cluster', () => {
  it('this machine runs native kernels (else the cases below would not mix anything)', () => {
    expect(resolveKernels('auto').backend).toMatch(/^native-/);
  });

  it('a node without native kernels moves the run to wasm before the first step: the bits of a wasm run', async () => {
    const mixed = await remoteRun({ ...base, kernels: 'auto', workers: 1, minExecutors: 2 }, (url) => void spawnNode(url, [], WASM_ONLY));
    const line = mixed.lines.find((l) => l.startsWith('kernels: '));
    expect(line).toMatch(/^kernels: node node\d+ \(.*\) runs at best wasm; the run computes with wasm instead of native-avx(2|512) from step 1 on/);
    expect(mixed.steps.every((s) => s.shards.every((sh) => !sh.by.includes('native')))).toBe(true);
    const wasm = await remoteRun({ ...base, kernels: 'wasm', workers: 1, minExecutors: 2 }, (url) => void spawnNode(url));
    expect(wasm.lines.some((l) => l.startsWith('kernels: '))).toBe(false);
    expect(sameBits(mixed.result.params, wasm.result.params)).toBe(true);
  });

  it('a weaker node joining mid-run: the native node is asked to rejoin and the run ends on wasm', async () => {
    let url = '';
    let late = false;
    let switchedAt = 0;
    const stop = { requested: false };
    // Long enough for the late node to join whatever the machine's speed; stopped a few steps after the switch.
    const longer = parseConfig({ ...config.raw, training: { ...config.raw.training, epochs: 500 } }, 't', tmpdir());
    const r = await remoteRun(
      { ...base, config: longer, kernels: 'auto', workers: 1, minExecutors: 2, stop },
      (u) => {
        url = u;
        spawnNode(u);
      },
      {
        onStep: (s) => {
          if (switchedAt > 0 && s.step >= switchedAt + 5) stop.requested = true;
          if (s.step !== 5 || late) return;
          late = true;
          spawnNode(url, [], WASM_ONLY);
        },
        onLog: (l) => {
          const m = /from step (\d+) on/.exec(l);
          if (l.startsWith('kernels: ') && m) switchedAt = Number(m[1]);
        },
      },
    );
    expect(r.lines.find((l) => l.startsWith('kernels: '))).toMatch(/runs at best wasm; the run computes with wasm instead of native-avx(2|512) from step \d+ on/);
    expect(r.lines.some((l) => /dropped: the run now computes with wasm: rejoin/.test(l))).toBe(true);
    const last = r.steps[r.steps.length - 1];
    expect(last.shards.some((s) => s.by.startsWith('local/'))).toBe(true);
    expect(last.shards.map((s) => s.by).join(' ')).not.toMatch(/native/);
  });
});
