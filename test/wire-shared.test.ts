// The step's shared weights payload and the one-pass landing of floats: aligned payloads, exact
// bits, non-finite values refused with the peer named, sample indices range-checked.

import { describe, expect, it } from 'vitest';
import { SumChunks } from '../src/core/protocol/sum-chunks.js';
import { CHUNK_FLOATS, decodeCoordinatorFrame, decodeNodeFrame, encodeFrame, encodeWeightChunks, landFloats, landStepIndices, landWeightsChunk, WireError, type StepRequest, type WeightsChunk } from '../src/core/protocol/wire.js';
import { StepWeights } from '../src/coordinator/remote/node-handle.js';
import type { ArenaViews } from '../src/core/arena.js';

const bitsOf = (a: Float32Array): number[] => [...new Uint32Array(a.buffer, a.byteOffset, a.length)];

describe('shared step payload and one-pass landing', () => {
  it('every frame\'s payload starts 4-byte aligned, whatever the header', () => {
    for (let k = 0; k < 40; k++) {
      const f = encodeFrame({ t: 'bye', reason: 'x'.repeat(k) }, new Float32Array(3));
      expect((4 + f.readUInt32LE(0)) % 4).toBe(0);
      expect(f.length - 4 - f.readUInt32LE(0)).toBe(12);
    }
  });

  it('lands the exact bits (−0, subnormals, extremes) in one pass, aligned or not', () => {
    const values = new Float32Array([0, -0, 1e-45, -1e-40, 3.4028234e38, -1.5, 0.1]);
    for (const shift of [0, 1, 2, 3]) {
      const bytes = new Uint8Array(4 * values.length + shift);
      bytes.set(new Uint8Array(values.buffer), shift);
      const dest = new Float32Array(values.length);
      const squares = landFloats(bytes, shift, dest, 'p', 'gradient');
      expect(bitsOf(dest)).toEqual(bitsOf(values));
      // The guard's norm comes out of the same pass: Σ x², in doubles (no overflow at 3.4e38²).
      expect(squares).toBeCloseTo(Array.from(values).reduce((a, x) => a + x * x, 0), -70);
    }
  });

  it('a result\'s sum of squares comes back with it, for odd lengths too (the tail of the four lanes)', () => {
    for (const n of [1, 3, 4, 7, 1001]) {
      const g = Float32Array.from({ length: n }, (_, i) => (i % 5) - 2.5);
      const { sumSquares } = decodeNodeFrame(encodeFrame({ t: 'result', req: 1, step: 1, count: 1, lossSum: 0, computeMs: 0, leaving: false }, g), 'node 9', { paramCount: n }, () => new Float32Array(n));
      expect(sumSquares).toBe(Array.from(g).reduce((a, x) => a + x * x, 0));
    }
  });

  it('refuses NaN and ±Inf with WIRE_NOT_FINITE naming the peer', () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const g = new Float32Array([1, 2, bad, 4]);
      let err: unknown;
      try {
        decodeNodeFrame(encodeFrame({ t: 'result', req: 1, step: 1, count: 1, lossSum: 0, computeMs: 0, leaving: false }, g), 'node 9', { paramCount: 4 }, () => new Float32Array(4));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(WireError);
      expect((err as WireError).code).toBe('WIRE_NOT_FINITE');
      expect((err as Error).message).toMatch(/^node 9: gradient holds a non-finite value at index 2/);
    }
  });

  it('a result lands straight in the slot its header is matched to', () => {
    const g = new Float32Array([0.5, -2, 3e-39]);
    const slot = new Float32Array(3);
    const seen: number[] = [];
    const { gradient } = decodeNodeFrame(encodeFrame({ t: 'result', req: 7, step: 2, count: 1, lossSum: 0, computeMs: 0, leaving: false }, g), 'n', { paramCount: 3 }, (h) => (seen.push(h.req), slot));
    expect(gradient).toBe(slot);
    expect(seen).toEqual([7]);
    expect(bitsOf(slot)).toEqual(bitsOf(g));
  });

  it('the weights of a step are encoded once, as chunks shared by every node\'s request; a node lands them and its indices', () => {
    const P = CHUNK_FLOATS + 5;
    let params = new Float32Array(P).map((_, i) => i);
    const arena = { get params() { return params; } } as unknown as ArenaViews;
    const weights = new StepWeights(arena);
    const of = (step: number): Buffer[] => Array.from({ length: weights.count }, (_, k) => weights.chunk(step, k));
    const a = of(4);
    expect(a).toHaveLength(2);
    expect(of(4)).toEqual(a);
    expect(weights.chunk(4, 1)).toBe(a[1]); // the same bytes, not a copy
    params = new Float32Array(P).fill(9);
    expect(of(4)).toEqual(a); // the step's snapshot
    const five = of(5);
    expect(decodeCoordinatorFrame(five[1], 'c').payload.length).toBe(5 * 4);

    const limits = { paramCount: P, samples: 5, maxRows: 8, wire: 'f32' as const };
    const request = decodeCoordinatorFrame(encodeFrame({ t: 'step', req: 1, step: 4, parts: 2, rows: 3 }, new Int32Array([4, 0, 2])), 'c');
    expect([...landStepIndices(request.header as StepRequest, request.payload, 'c', limits)]).toEqual([4, 0, 2]);
    const w = new Float32Array(P);
    let at = 0;
    for (const c of a) {
      const f = decodeCoordinatorFrame(c, 'c');
      at = landWeightsChunk(f.header as WeightsChunk, f.payload, 'c', 4, limits, w, at);
    }
    expect(at).toBe(P);
    expect(w[CHUNK_FLOATS + 4]).toBe(CHUNK_FLOATS + 4);
    // Out of order, of another step, or not finite: refused.
    const second = decodeCoordinatorFrame(a[1], 'c');
    expect(() => landWeightsChunk(second.header as WeightsChunk, second.payload, 'c', 4, limits, w, 0)).toThrow(/^c: step 4: weights chunk \[65536, \+5\), expected \[0, \+65536\)/);
    const first = decodeCoordinatorFrame(a[0], 'c');
    expect(() => landWeightsChunk(first.header as WeightsChunk, first.payload, 'c', 5, limits, w, 0)).toThrow(/weights for step 4, the step in hand is 5/);
    const nan = decodeCoordinatorFrame(encodeWeightChunks(4, new Float32Array([1, NaN, 3]), 'f32')[0], 'c');
    expect(() => landWeightsChunk(nan.header as WeightsChunk, nan.payload, 'c', 4, { ...limits, paramCount: 3 }, new Float32Array(3), 0)).toThrow(/weights holds a non-finite value at index 1/);

    const bad = decodeCoordinatorFrame(encodeFrame({ t: 'step', req: 2, step: 4, parts: 1, rows: 1 }, new Int32Array([5])), 'c');
    expect(() => landStepIndices(bad.header as StepRequest, bad.payload, 'c', limits)).toThrow(/^c: step 4: sample index 5 out of range/);
  });

  it('a sum in chunks: each chunk lands exactly its values; a chunked result carries nothing', () => {
    const limits = { paramCount: 10, wire: 'f32' as const };
    const chunk = encodeFrame({ t: 'grad', req: 3, step: 2, at: 4, count: 3 }, new Float32Array([1, 2, 3]));
    const slot = new Float32Array(10);
    const { msg } = decodeNodeFrame(chunk, 'child', limits, (m) => (m.t === 'grad' ? slot.subarray(m.at, m.at + m.count) : null));
    expect(msg).toEqual({ t: 'grad', req: 3, step: 2, at: 4, count: 3 });
    expect([...slot]).toEqual([0, 0, 0, 0, 1, 2, 3, 0, 0, 0]);
    const beyond = encodeFrame({ t: 'grad', req: 3, step: 2, at: 8, count: 3 }, new Float32Array([1, 2, 3]));
    expect(() => decodeNodeFrame(beyond, 'child', limits)).toThrow(/grad beyond the model's parameters/);
    const nan = encodeFrame({ t: 'grad', req: 3, step: 2, at: 0, count: 2 }, new Float32Array([1, NaN]));
    expect(() => decodeNodeFrame(nan, 'child', limits)).toThrow(/gradient holds a non-finite value at index 1/);
    const head = { t: 'result', req: 3, step: 2, count: 8, lossSum: 1, computeMs: 1, leaving: false, chunked: true };
    expect(decodeNodeFrame(encodeFrame(head), 'child', limits).msg).toMatchObject({ t: 'result', chunked: true });
    expect(() => decodeNodeFrame(encodeFrame(head, new Float32Array(10)), 'child', limits)).toThrow(/gradient of 40 bytes, the model needs exactly 0 \(f32, sent ahead in chunks\)/);
  });

  it('a sum in chunks takes each chunk of the chunking once, in any order, and knows when it is whole', () => {
    const total = 2 * CHUNK_FLOATS + 5;
    const sum = new SumChunks(total);
    const grad = (at: number, count: number): { t: 'grad'; req: number; step: number; at: number; count: number } => ({ t: 'grad', req: 1, step: 1, at, count });
    sum.claim(grad(2 * CHUNK_FLOATS, 5), 'p');
    expect(sum.has(2) && !sum.has(0) && !sum.complete).toBe(true);
    expect(() => sum.claim(grad(2 * CHUNK_FLOATS, 5), 'p')).toThrow(/^p: sum chunk \[131072, \+5\) came twice/);
    expect(() => sum.claim(grad(1, CHUNK_FLOATS), 'p')).toThrow(/is not a chunk/);
    expect(() => sum.claim(grad(0, 5), 'p')).toThrow(/is not a chunk/);
    expect(() => sum.claim(grad(3 * CHUNK_FLOATS, 5), 'p')).toThrow(/is not a chunk/);
    sum.claim(grad(0, CHUNK_FLOATS), 'p');
    sum.claim(grad(CHUNK_FLOATS, CHUNK_FLOATS), 'p');
    expect(sum.complete).toBe(true);
    expect(sum.received).toBe(3);
  });
});
