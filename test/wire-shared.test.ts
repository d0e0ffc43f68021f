// The step's shared weights payload and the one-pass landing of floats: aligned payloads, exact
// bits, non-finite values refused with the peer named, sample indices range-checked.

import { describe, expect, it } from 'vitest';
import { decodeCoordinatorFrame, decodeNodeFrame, encodeFrame, encodeStepRequest, encodeWeights, landFloats, landStepPayload, WireError, type StepRequest } from '../src/core/protocol/wire.js';
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
      landFloats(bytes, shift, dest, 'p', 'gradient');
      expect(bitsOf(dest)).toEqual(bitsOf(values));
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

  it('the weights of a step are encoded once and shared by every node\'s request; a node lands them and its indices', () => {
    let params = new Float32Array([1, 2, 3, 4, 5]);
    const arena = { get params() { return params; } } as unknown as ArenaViews;
    const weights = new StepWeights(arena);
    const a = weights.of(4);
    expect(weights.of(4)).toBe(a);
    params = new Float32Array([9, 9, 9, 9, 9]);
    expect(weights.of(4)).toBe(a); // the step's snapshot
    expect(new Float32Array(weights.of(5).buffer, weights.of(5).byteOffset, 5)[0]).toBe(9);

    const [own, shared] = encodeStepRequest({ req: 1, step: 4, parts: 2, rows: 3 }, new Int32Array([4, 0, 2]), a);
    expect(shared).toBe(a);
    const frame = decodeCoordinatorFrame(Buffer.concat([own, shared]), 'c');
    const w = new Float32Array(5);
    const order = new Int32Array(8);
    const limits = { paramCount: 5, samples: 5, maxRows: 8, wire: 'f32' as const };
    landStepPayload(frame.header as StepRequest, frame.payload, 'c', limits, w, order);
    expect([...w]).toEqual([1, 2, 3, 4, 5]);
    expect([...order.subarray(0, 3)]).toEqual([4, 0, 2]);

    const [badOwn] = encodeStepRequest({ req: 2, step: 4, parts: 1, rows: 1 }, new Int32Array([5]), a);
    const bad = decodeCoordinatorFrame(Buffer.concat([badOwn, a]), 'c');
    expect(() => landStepPayload(bad.header as StepRequest, bad.payload, 'c', limits, w, order)).toThrow(/^c: step 4: sample index 5 out of range/);
    const nan = encodeWeights(new Float32Array([1, NaN, 3, 4, 5]));
    const [own2] = encodeStepRequest({ req: 3, step: 4, parts: 1, rows: 1 }, new Int32Array([1]), nan);
    const withNan = decodeCoordinatorFrame(Buffer.concat([own2, nan]), 'c');
    expect(() => landStepPayload(withNan.header as StepRequest, withNan.payload, 'c', limits, w, order)).toThrow(/weights holds a non-finite value at index 1/);
  });
});
