// The scale-out model's arithmetic on hand-computed cases: compute-, bandwidth- and latency-bound
// steps of the star, the shared coordinator link, and the ring and tree all-reduce formulas; the
// node tree's shape, bytes and step against the star and against properties that must hold.

import { describe, expect, it } from 'vitest';
import { pairwiseSum } from '../src/core/pairwise.js';
import { predictCurve, predictStep, ringAllreduceSec, treeAllreduceSec, type ScaleoutInputs } from '../src/coordinator/bench/scaleout-model.js';
import { layerParams, predictTree, starInputs, treeShape, type TreeInputs, type TreeShape } from '../src/coordinator/bench/scaleout-tree.js';
import { formatScaleoutTable, REFERENCE_COSTS, scaleoutTable } from '../src/coordinator/bench/scaleout-table.js';
import { scaleoutInputs, treeScaleoutInputs } from '../src/coordinator/bench/measured-model.js';

/** The reference MLP at batch 128: 669,706 float32 parameters, about 2.68 MB per frame. */
const base: ScaleoutInputs = {
  computeSecPerSample: 100e-6,
  threadsPerNode: 1,
  threadEfficiency: 1,
  batch: 128,
  frameBytes: 669_706 * 4,
  latencySec: 0,
  bandwidthBytesPerSec: 1e15,
  perMessageSec: 0,
  perByteSec: 0,
  reduceSecPerNode: 0,
  updateSec: 0,
  coordinatorLinkShared: false,
};

describe('predictStep (coordinator star)', () => {
  it('compute-bound: free network, the step is the compute of batch/N on each node', () => {
    for (const n of [1, 2, 4, 8]) {
      const p = predictStep(base, n);
      // 1 PB/s still costs 2 · 2.7 ns per frame: equal to within 10 ns.
      expect(p.stepSec).toBeCloseTo((128 / n) * 100e-6, 7);
      expect(p.computeSec).toBeCloseTo((128 / n) * 100e-6, 12);
      expect(p.speedup).toBeCloseTo(n, 4);
      expect(p.efficiency).toBeCloseTo(1, 4);
    }
    // Threads inside a node divide the shard, less their measured inefficiency.
    const t = predictStep({ ...base, threadsPerNode: 2, threadEfficiency: 0.8 }, 4);
    expect(t.computeSec).toBeCloseTo((32 * 100e-6) / (2 * 0.8), 12);
    expect(t.efficiency).toBeCloseTo(0.8, 4);
    // Uneven shards: the largest one (⌈100/3⌉ = 34 samples) sets the pace.
    expect(predictStep({ ...base, batch: 100 }, 3).computeSec).toBeCloseTo(34 * 100e-6, 12);
  });

  it('bandwidth-bound: each node link carries the weights out and the gradient back, 2W/B', () => {
    const W = 1e6;
    const B = 1e6; // 1 MB/s: one second per frame, compute is noise beside it
    const p = predictStep({ ...base, frameBytes: W, bandwidthBytesPerSec: B }, 4);
    expect(p.commSec).toBeCloseTo(2 * (W / B), 9);
    expect(p.stepSec).toBeCloseTo(2 + 32 * 100e-6, 9);
    expect(p.commSec / p.stepSec).toBeGreaterThan(0.99);
  });

  it('bandwidth-bound on a shared coordinator link: the N weight frames serialize, (N + 1) · W/B', () => {
    const x = { ...base, frameBytes: 1e6, bandwidthBytesPerSec: 1e6, coordinatorLinkShared: true };
    for (const n of [1, 2, 4, 8]) expect(predictStep(x, n).commSec).toBeCloseTo((n + 1) * 1, 9);
  });

  it('latency-bound: small frames, long wire: 2 × latency + compute', () => {
    const p = predictStep({ ...base, frameBytes: 100, bandwidthBytesPerSec: 1e12, latencySec: 0.02 }, 2);
    expect(p.stepSec).toBeCloseTo(2 * 0.02 + 64 * 100e-6, 9);
    expect(p.commSec).toBeCloseTo(0.04, 9);
  });

  it('coordinator CPU: sends and receives take turns on one CPU, then reduce and update', () => {
    // s = 1 + 1000·0.001 = 2 ms per frame sent, r = 2 + 0.5 = 2.5 ms per gradient received.
    const x = { ...base, bandwidthBytesPerSec: Infinity, frameBytes: 1000, perMessageSec: 1e-3, perByteSec: 1e-6, reduceSecPerNode: 0.5e-3, updateSec: 3e-3 };
    const n = 4;
    const compute = 32 * 100e-6;
    // Flow: s + node (2s + compute) + r + (N − 1) · max(s, r); CPU: N(s + r). Here the flow wins.
    const flow = 2e-3 + (4e-3 + compute) + 2.5e-3 + 3 * 2.5e-3;
    const p = predictStep(x, n);
    expect(p.stepSec).toBeCloseTo(Math.max(flow, n * 4.5e-3) + 3e-3, 12);
    expect(p.reduceUpdateSec).toBeCloseTo(4 * 0.5e-3 + 3e-3, 12);
    expect(p.computeSec + p.commSec + p.reduceUpdateSec).toBeCloseTo(p.stepSec, 12);
    // With nothing to compute the coordinator's CPU is the bound.
    const idle = predictStep({ ...x, computeSecPerSample: 0 }, 16);
    expect(idle.stepSec).toBeCloseTo(16 * 4.5e-3 + 3e-3, 12);
  });

  it('efficiency falls with N when all nodes share the coordinator link', () => {
    const x = { ...base, bandwidthBytesPerSec: 125e6, latencySec: 0.2e-3, perMessageSec: 50e-6, perByteSec: 1e-9, coordinatorLinkShared: true };
    const curve = predictCurve(x, [1, 2, 4, 8, 16, 64]);
    expect(curve.map((p) => p.nodes)).toEqual([1, 2, 4, 8, 16, 64]);
    for (let i = 1; i < curve.length; i++) expect(curve[i].efficiency).toBeLessThan(curve[i - 1].efficiency);
    for (const p of curve) expect(p.samplesPerSec).toBeCloseTo(128 / p.stepSec, 6);
  });

  it('refuses inputs that make no sense, naming the field', () => {
    expect(() => predictStep(base, 0)).toThrow(/nodes must be a positive integer, got 0/);
    expect(() => predictStep({ ...base, bandwidthBytesPerSec: 0 }, 1)).toThrow(/bandwidthBytesPerSec/);
    expect(() => predictStep({ ...base, latencySec: NaN }, 1)).toThrow(/latencySec must be a finite number >= 0, got NaN/);
    expect(() => predictStep({ ...base, threadEfficiency: 1.5 }, 1)).toThrow(/threadEfficiency/);
  });
});

describe('all-reduce alternatives', () => {
  it('ring: 2(N−1)/N · W/B + 2(N−1) · L on a hand case', () => {
    // N = 4, W = 8 MB, B = 100 MB/s, L = 1 ms: 1.5 · 0.08 + 6 · 0.001 = 0.126 s.
    expect(ringAllreduceSec(4, 8e6, 1e-3, 100e6)).toBeCloseTo(0.126, 12);
    expect(ringAllreduceSec(1, 8e6, 1e-3, 100e6)).toBe(0);
  });

  it('tree: 2⌈log₂ N⌉ · (L + W/B)', () => {
    // N = 5: 3 levels, 6 hops of 1 ms + 80 ms.
    expect(treeAllreduceSec(5, 8e6, 1e-3, 100e6)).toBeCloseTo(6 * 0.081, 12);
    expect(treeAllreduceSec(8, 8e6, 1e-3, 100e6)).toBeCloseTo(6 * 0.081, 12);
  });

  it('the ring beats the shared-link star on bandwidth at large N, the star wins on latency at small W', () => {
    const W = 2.68e6;
    const B = 125e6;
    const star = predictStep({ ...base, frameBytes: W, bandwidthBytesPerSec: B, computeSecPerSample: 0, coordinatorLinkShared: true }, 16);
    expect(ringAllreduceSec(16, W, 0, B)).toBeLessThan(star.commSec / 4);
    const small = predictStep({ ...base, frameBytes: 100, bandwidthBytesPerSec: B, latencySec: 0.02, computeSecPerSample: 0 }, 16);
    expect(small.stepSec).toBeLessThan(ringAllreduceSec(16, 100, 0.02, B));
  });
});

/** The reference MLP on a 10 Gbit link with the frame costs, one thread per node, weak scaling at 128. */
const tree: TreeInputs = {
  computeSecPerSample: 21.6e-6,
  threadsPerNode: 1,
  threadEfficiency: 1,
  batch: 128,
  layers: [784, 512, 512, 10],
  wire: 'f32',
  headerBytes: 100,
  latencySec: 0.05e-3,
  bandwidthBytesPerSec: 10e9 / 8,
  perMessageSec: 104e-6,
  perByteSec: 1.12e-9,
  reduceSecPerNode: 0.15e-3,
  updateSec: 0.3e-3,
  coordinatorLinkShared: false,
  fanout: 1,
  chunkBytes: 256 * 1024,
  overlap: false,
};
const P = 669_706;
const weak = (x: TreeInputs, n: number): TreeInputs => ({ ...x, batch: 128 * n });
const free: Partial<TreeInputs> = { latencySec: 0, bandwidthBytesPerSec: Infinity, perMessageSec: 0, perByteSec: 0, reduceSecPerNode: 0, updateSec: 0 };

/** Σ values as the node tree adds them: each node its own value, then its children's sums, smallest sub-block first. */
function sumByTree(shape: TreeShape, values: readonly number[], i: number): number {
  let sum = Math.fround(values[i]);
  for (const c of [...shape.children[i]].reverse()) sum = Math.fround(sum + sumByTree(shape, values, c));
  return sum;
}

describe('treeShape (fan-out k over the pairwise tree of shard ids)', () => {
  it('binomial: the head of 2^j nodes has j children heading 2^(j−1), …, 2, 1 nodes; every node has log2 of its block', () => {
    for (const j of [0, 1, 2, 3, 6]) {
      const t = treeShape(2 ** j, 1);
      expect(t.blocks).toEqual([{ first: 0, size: 2 ** j }]);
      expect(t.children[0].map((c) => t.blockSize[c])).toEqual(Array.from({ length: j }, (_, i) => 2 ** (j - 1 - i)));
      t.children.forEach((c, i) => expect(c.length).toBe(Math.log2(t.blockSize[i])));
    }
    // 64 nodes, 4 heads: aligned blocks of 16, each head with 4 children.
    const t = treeShape(64, 4);
    expect(t.blocks.map((b) => [b.first, b.size])).toEqual([[0, 16], [16, 16], [32, 16], [48, 16]]);
    expect(t.blocks.map((b) => t.children[b.first].length)).toEqual([4, 4, 4, 4]);
    expect(t.parent.filter((p) => p === -1)).toHaveLength(4);
  });

  it('fan-out >= N is the star: every node a leaf of the coordinator', () => {
    for (const k of [8, 9, 1000]) {
      const t = treeShape(8, k);
      expect(t.parent).toEqual(new Array(8).fill(-1));
      expect(t.children.every((c) => c.length === 0)).toBe(true);
    }
  });

  it('any N and k: blocks are subtrees of the pairwise tree, and the tree adds a block exactly as pairwiseSum does', () => {
    // Values whose float32 sums depend on the order, so a different tree gives other bits.
    const values = Array.from({ length: 37 }, (_, i) => Math.fround((i % 2 ? 1e7 : 1) * (1 + i / 7)) * (i % 3 ? 1 : -1));
    for (const n of [1, 2, 3, 5, 6, 7, 12, 13, 37]) {
      for (const k of [1, 2, 3, 4, 5, 64]) {
        const t = treeShape(n, k);
        expect(t.blocks).toHaveLength(Math.min(k, n));
        expect(t.blocks.reduce((a, b) => a + b.size, 0)).toBe(n);
        for (const b of t.blocks) expect(sumByTree(t, values, b.first)).toBe(pairwiseSum(values, b.first, b.size));
      }
    }
  });
});

describe('predictTree (the node tree, pipelined broadcast, binomial reduction, overlap, bf16)', () => {
  it('fan-out >= N is the star of predictStep, on own and shared coordinator links, CPU- and link-bound', () => {
    const cases: Partial<TreeInputs>[] = [{}, { coordinatorLinkShared: true }, { bandwidthBytesPerSec: 1e8, latencySec: 2e-3 }, { perByteSec: 5e-9, computeSecPerSample: 0 }];
    for (const c of cases) {
      for (const n of [1, 2, 3, 8, 16, 33]) {
        const x = { ...weak(tree, n), ...c };
        const star = predictStep(starInputs(x), n);
        for (const k of [n, n + 1]) {
          const p = predictTree({ ...x, fanout: k }, n);
          expect(p.stepSec / star.stepSec).toBeCloseTo(1, 12);
          expect(p.efficiency / star.efficiency).toBeCloseTo(1, 12);
          expect(p.depth).toBe(1);
        }
      }
    }
  });

  it('fed the bench\'s measured costs, the tree at fan-out >= N predicts the bench\'s star rows', () => {
    const frame = { frameBytes: 4 * P + 112, perMessageSec: 150e-6, perByteSec: 2.5e-9 };
    const b = { batch: 128, computeSecPerSample: 30e-6, threadEfficiency: { 1: 1, 2: 0.85 }, reduceSecPerNode: 0.2e-3, updateSec: 0.4e-3 };
    const lan = { name: 'lan', latencyMs: 0.2, bandwidthMbit: 1000 };
    for (const threads of [1, 2]) for (const n of [1, 2, 4]) {
      const x = treeScaleoutInputs(frame, b, threads, lan, [784, 512, 512, 10], 'f32', { fanout: n, chunkBytes: 256 * 1024, overlap: false });
      expect(x.headerBytes).toBe(112);
      expect(predictTree(x, n).stepSec / predictStep(scaleoutInputs(frame, b, threads, lan), n).stepSec).toBeCloseTo(1, 12);
    }
  });

  it('bytes: the star\'s coordinator carries 2N frames, the tree 2k whatever N; a connection ≤ 2 × weights (f32), ≤ 1 × (bf16)', () => {
    const weights = 4 * P;
    for (const n of [1, 2, 8, 64]) {
      const star = predictTree({ ...weak(tree, n), fanout: n }, n).bytes;
      expect(star.coordinator).toBeCloseTo(2 * n * (weights + 100), 6);
      for (const k of [1, 2, 4]) {
        const f32 = predictTree({ ...weak(tree, n), fanout: k }, n).bytes;
        const bf16 = predictTree({ ...weak(tree, n), fanout: k, wire: 'bf16' }, n).bytes;
        expect(f32.coordinator).toBeCloseTo(2 * Math.min(k, n) * (weights + 100), 6);
        // Within the frames' headers (100 bytes each) of the payload bound.
        expect(f32.perConnection).toBeLessThanOrEqual(2 * weights + 200);
        expect(bf16.perConnection).toBeLessThanOrEqual(weights + 200);
        expect(f32.perConnection).toBeGreaterThan(2 * weights);
      }
    }
    // A binomial head's NIC is not a connection: with 6 children it sends 6 weights frames and takes 6 sums.
    expect(predictTree({ ...weak(tree, 64), fanout: 1 }, 64).bytes.busiestNode).toBeCloseTo(2 * 7 * (weights + 100), 6);
  });

  it('a zero-cost network leaves the thread efficiency, tree or star, with or without overlap', () => {
    for (const n of [1, 2, 4, 8, 64]) {
      for (const k of [1, 2, n]) {
        for (const overlap of [false, true]) {
          const p = predictTree({ ...weak(tree, n), ...free, threadsPerNode: 2, threadEfficiency: 0.8, fanout: k, overlap }, n);
          expect(p.efficiency).toBeCloseTo(0.8, 12);
          expect(p.stepSec).toBeCloseTo((128 * 21.6e-6) / (2 * 0.8), 12);
        }
      }
    }
  });

  it('hand case: 2 nodes, fan-out 1, link-bound: the child trails its head by one chunk, sums go up whole', () => {
    // No CPU, no compute: down W/B + L to the head, and the child one chunk C/B + L behind it (the
    // short last chunk queues behind a whole one on the head's out-link); up W/B + L twice.
    const x = { ...weak(tree, 2), ...free, computeSecPerSample: 0, latencySec: 1e-3, bandwidthBytesPerSec: 1e9 };
    const W = 4 * P + 100;
    expect(predictTree(x, 2).stepSec).toBeCloseTo(3 * (W / 1e9) + (256 * 1024) / 1e9 + 4e-3, 12);
    // Store-and-forward: the child waits for the whole frame.
    expect(predictTree({ ...x, chunkBytes: Infinity }, 2).stepSec).toBeCloseTo(4 * (W / 1e9) + 4e-3, 12);
  });

  it('pipelining beats store-and-forward where the tree is deeper than 1, and changes nothing on the star', () => {
    for (const link of [{}, { bandwidthBytesPerSec: 1e9 / 8, latencySec: 0.2e-3 }]) {
      for (const [n, k] of [[4, 1], [8, 1], [16, 2], [64, 1], [64, 4]]) {
        const x = { ...weak(tree, n), ...link, fanout: k };
        const pipelined = predictTree(x, n);
        expect(pipelined.depth).toBeGreaterThan(1);
        expect(pipelined.stepSec).toBeLessThan(predictTree({ ...x, chunkBytes: Infinity }, n).stepSec);
      }
      const star = { ...weak(tree, 8), ...link, fanout: 8 };
      expect(predictTree(star, 8).stepSec).toBe(predictTree({ ...star, chunkBytes: Infinity }, 8).stepSec);
    }
  });

  it('sending the largest sub-block\'s head the weights first is never slower than the smallest first', () => {
    for (const link of [{}, { bandwidthBytesPerSec: 1e9 / 8, latencySec: 0.2e-3 }, { perMessageSec: 0, perByteSec: 0 }]) {
      for (const [n, k] of [[4, 1], [8, 1], [64, 1], [64, 4]]) for (const chunkBytes of [256 * 1024, Infinity]) {
        const x = { ...weak(tree, n), ...link, fanout: k, chunkBytes };
        const largest = predictTree(x, n).stepSec;
        expect(largest).toBeLessThanOrEqual(predictTree({ ...x, childOrder: 'smallest-first' }, n).stepSec * (1 + 1e-12));
      }
    }
    // On the star there is nothing to order.
    expect(predictTree({ ...weak(tree, 8), fanout: 8, childOrder: 'smallest-first' }, 8).stepSec).toBe(predictTree({ ...weak(tree, 8), fanout: 8 }, 8).stepSec);
  });

  it('overlap never predicts a slower step, over links, costs, fan-outs, wires and node counts', () => {
    const links = [{}, { bandwidthBytesPerSec: 1e9 / 8, latencySec: 0.2e-3 }, { bandwidthBytesPerSec: Infinity, latencySec: 0 }, { bandwidthBytesPerSec: 1e7, latencySec: 5e-3 }];
    const costs = [{ perMessageSec: 0, perByteSec: 0 }, {}, { perMessageSec: 1e-3, perByteSec: 5e-9, reduceSecPerNode: 1e-3 }];
    let faster = 0;
    let cases = 0;
    for (const link of links) for (const cost of costs) for (const computeSecPerSample of [0, 21.6e-6, 1e-3]) {
      for (const n of [1, 3, 8, 16]) for (const fanout of [1, 2, n]) for (const wire of ['f32', 'bf16'] as const) for (const coordinatorLinkShared of [false, true]) {
        cases++;
        const x: TreeInputs = { ...weak(tree, n), ...link, ...cost, computeSecPerSample, fanout, wire, coordinatorLinkShared };
        const without = predictTree(x, n).stepSec;
        const withOverlap = predictTree({ ...x, overlap: true }, n).stepSec;
        expect(withOverlap).toBeLessThanOrEqual(without * (1 + 1e-12));
        if (withOverlap < without * 0.99) faster++;
      }
    }
    // And it hides something in many of them (not a switch that does nothing).
    expect(faster).toBeGreaterThan(cases / 4);
  });

  it('the tree\'s step grows like log N where the star\'s grows like N (weak scaling, 10 Gbit)', () => {
    const at = (n: number, fanout: number): number => predictTree({ ...weak(tree, n), fanout }, n).stepSec;
    expect(at(64, 64) / at(8, 8)).toBeGreaterThan(6);
    expect(at(64, 1) / at(8, 1)).toBeLessThan(2);
    expect(at(64, 1)).toBeLessThan(at(64, 64) / 4);
  });

  it('bf16 halves the bytes and never slows a step; per-layer sizes add up to the model', () => {
    expect(layerParams([784, 512, 512, 10])).toEqual([401_920, 262_656, 5_130]);
    expect(layerParams([784, 512, 512, 10]).reduce((a, b) => a + b, 0)).toBe(P);
    for (const n of [1, 8, 64]) for (const k of [1, 4, n]) {
      const f32 = predictTree({ ...weak(tree, n), fanout: k }, n);
      const bf16 = predictTree({ ...weak(tree, n), fanout: k, wire: 'bf16' }, n);
      expect(bf16.stepSec).toBeLessThan(f32.stepSec);
      expect(bf16.bytes.perConnection - 200).toBeCloseTo((f32.bytes.perConnection - 200) / 2, 6);
    }
  });

  it('refuses inputs that make no sense, naming the field', () => {
    expect(() => predictTree(tree, 0)).toThrow(/nodes must be a positive integer, got 0/);
    expect(() => predictTree({ ...tree, fanout: 0 }, 4)).toThrow(/fanout must be a positive integer, got 0/);
    expect(() => predictTree({ ...tree, chunkBytes: 0 }, 4)).toThrow(/chunkBytes must be > 0, got 0/);
    expect(() => predictTree({ ...tree, layers: [784] }, 4)).toThrow(/layers must be two or more positive integers/);
    expect(() => predictTree({ ...tree, perByteSec: NaN }, 4)).toThrow(/perByteSec must be a finite number >= 0, got NaN/);
  });
});

describe('scaleoutTable', () => {
  it('covers 1–64 nodes for every layout, link and scaling, labelled as a prediction with its inputs', () => {
    const blocks = scaleoutTable(REFERENCE_COSTS);
    expect(blocks).toHaveLength(4);
    for (const b of blocks) for (const r of b.rows) expect(r.predictions.map((p) => p.nodes)).toEqual([1, 2, 4, 8, 16, 32, 64]);
    const text = formatScaleoutTable(blocks, REFERENCE_COSTS);
    expect(text).toMatch(/^PREDICTED by the scale-out model .*not measured/);
    expect(text).toMatch(/10 Gbit\/s, 0\.05 ms, weak scaling, 128 samples per node/);
    expect(text).toMatch(/1 Gbit\/s, 0\.2 ms, strong scaling, global batch 512/);
    expect(text).toContain(REFERENCE_COSTS.source);
  });
});
