// Seeded randomness: parameter initialization (PyTorch's bounds, xavier, he) and the PRNG itself.

import { describe, expect, it } from 'vitest';
import { initParams } from '../src/core/init.js';
import { paramLayout } from '../src/core/layout.js';
import { Rng } from '../src/core/rng.js';
import { spec } from './helpers.js';

const s = spec([5, 4, 3], 'relu', 'identity', 'cross-entropy');
const layout = paramLayout(s);

describe('seeded initialization', () => {
  it('gives the same weights for the same seed and PyTorch\'s bounds', () => {
    const a = new Float32Array(layout.size);
    const b = new Float32Array(layout.size);
    initParams(a, layout, 'pytorch', 42);
    initParams(b, layout, 'pytorch', 42);
    expect(a).toEqual(b);
    initParams(b, layout, 'pytorch', 43);
    expect(a).not.toEqual(b);
    const w0 = a.subarray(0, 20);
    const bound = 1 / Math.sqrt(5);
    expect(Math.max(...w0.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...w0.map(Math.abs))).toBeGreaterThan(bound * 0.6);
  });
  it('xavier and he have zero biases and their scales', () => {
    const big = paramLayout(spec([400, 300, 10], 'relu', 'identity', 'cross-entropy'));
    const p = new Float32Array(big.size);
    initParams(p, big, 'xavier', 1);
    const w = p.subarray(0, 120000);
    expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(Math.sqrt(6 / 700));
    expect(p.subarray(120000, 120300).every((v) => v === 0)).toBe(true);
    initParams(p, big, 'he', 1);
    let sq = 0;
    for (let i = 0; i < 120000; i++) sq += p[i] * p[i];
    expect(Math.sqrt(sq / 120000)).toBeCloseTo(Math.sqrt(2 / 400), 3);
  });
});

describe('the seeded PRNG', () => {
  it('is deterministic, resumable from its state, and uniform enough', () => {
    const a = new Rng(123);
    const first = Array.from({ length: 5 }, () => a.nextU32());
    const b = new Rng(123);
    expect(Array.from({ length: 5 }, () => b.nextU32())).toEqual(first);
    const c = new Rng(b.state());
    expect(c.next()).toBe(b.next());
    const r = new Rng(5);
    const counts = new Array(10).fill(0);
    for (let i = 0; i < 100000; i++) counts[r.int(10)]++;
    for (const k of counts) expect(Math.abs(k - 10000)).toBeLessThan(500);
  });

  it('is xoshiro128**: the reference sequence from the state (1, 2, 3, 4), and states above 2³¹ kept', () => {
    // The first outputs of xoshiro128**'s reference implementation from s = {1, 2, 3, 4}.
    const r = new Rng([1, 2, 3, 4]);
    expect(Array.from({ length: 10 }, () => r.nextU32())).toEqual([
      11520, 0, 5927040, 70819200, 2031721883, 1637235492, 1287239034, 3734860849, 3729100597, 4258142804,
    ]);
    // State words round-trip as uint32, whatever the representation inside.
    const high: [number, number, number, number] = [0xffffffff, 0x80000000, 0x7fffffff, 1];
    expect(new Rng(high).state()).toEqual(high);
    for (const w of r.state()) expect(w >>> 0).toBe(w);
  });
});
