// The scale-out model's arithmetic on hand-computed cases: compute-, bandwidth- and latency-bound
// steps of the star, the shared coordinator link, and the ring and tree all-reduce formulas.

import { describe, expect, it } from 'vitest';
import { predictCurve, predictStep, ringAllreduceSec, treeAllreduceSec, type ScaleoutInputs } from '../src/coordinator/bench/scaleout-model.js';

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
