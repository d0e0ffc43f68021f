// The frame decoder against random and mutated frames: it returns a validated message or throws a
// WireError, never anything else, never hangs, never allocates past the frame's size bound.

import { describe, expect, it } from 'vitest';
import { Rng } from '../src/core/rng.js';
import { decodeCoordinatorFrame, decodeNodeFrame, encodeFrame, encodeWeightChunks, landWeightsChunk, maxNodeFrameBytes, PROTOCOL_VERSION, WireError, wirePayload } from '../src/core/protocol/wire.js';

const P = 1000;
const limits = { paramCount: P };

function validFrames(rng: Rng): Buffer[] {
  const g = new Float32Array(P).map(() => rng.uniform(-1, 1));
  return [
    encodeFrame({ t: 'hello', v: PROTOCOL_VERSION, threads: 4, best: 'wasm' }),
    encodeFrame({ t: 'result', req: 3, step: 7, count: 32, lossSum: 12.5, computeMs: 3.25, leaving: false }, g),
    encodeFrame({ t: 'bye', reason: 'done' }),
    encodeFrame({ t: 'heartbeat' }),
    encodeFrame({ t: 'error', message: 'x'.repeat(100) }),
  ];
}

function mutate(rng: Rng, f: Buffer): Buffer {
  const out = Buffer.from(f);
  switch (rng.int(5)) {
    case 0: // flip a few bytes, mostly in the header
      for (let i = 0, n = 1 + rng.int(4); i < n; i++) out[rng.int(Math.min(out.length, 64))] = rng.int(256);
      return out;
    case 1: // truncate
      return out.subarray(0, rng.int(out.length));
    case 2: // extend
      return Buffer.concat([out, Buffer.from(Array.from({ length: 1 + rng.int(16) }, () => rng.int(256)))]);
    case 3: // lie about the header length
      out.writeUInt32LE(rng.nextU32(), 0);
      return out;
    default: // msgpack type bytes that must be refused: ext, bin, map32, array32
      out[4 + rng.int(Math.min(8, out.length - 4))] = [0xc4, 0xc5, 0xc6, 0xc7, 0xd4, 0xd8, 0xdd, 0xdf, 0xc1][rng.int(9)];
      return out;
  }
}

describe('frame decoder fuzz', () => {
  it('survives 20,000 seeded random and mutated frames', () => {
    const rng = new Rng(2024);
    const valid = validFrames(rng);
    let accepted = 0;
    let refused = 0;
    const t0 = performance.now();
    for (let i = 0; i < 20_000; i++) {
      const frame = i % 4 === 0
        ? Buffer.from(Array.from({ length: rng.int(200) }, () => rng.int(256)))
        : mutate(rng, valid[rng.int(valid.length)]);
      const heap0 = process.memoryUsage().heapUsed;
      try {
        const { msg, gradient } = decodeNodeFrame(frame, 'fuzz', limits);
        accepted++;
        expect(['hello', 'result', 'bye', 'heartbeat', 'error']).toContain(msg.t);
        if (gradient) expect(gradient.every(Number.isFinite)).toBe(true);
      } catch (e) {
        if (!(e instanceof WireError)) throw new Error(`case ${i}: ${String(e)} is not a WireError`);
        expect(e.message).toMatch(/^fuzz: /);
        refused++;
      }
      // Nothing decoded may cost more than the frame bound (a generous heap slack for GC noise).
      expect(process.memoryUsage().heapUsed - heap0).toBeLessThan(maxNodeFrameBytes(limits) + 8 * 1024 * 1024);
    }
    expect(accepted).toBeGreaterThan(100);
    expect(refused).toBeGreaterThan(10_000);
    expect(performance.now() - t0).toBeLessThan(30_000);
  });

  it('bf16 results and weights chunks: every mutation lands finite values or is refused with a WireError', () => {
    const rng = new Rng(77);
    const g = new Float32Array(P).map(() => rng.uniform(-1, 1));
    const result = encodeFrame({ t: 'result', req: 3, step: 7, count: 32, lossSum: 1, computeMs: 1, leaving: false }, wirePayload(g, 'bf16'));
    // A model of one chunk: the step's weights are one message.
    const step = encodeWeightChunks(2, g, 'bf16')[0];
    let landed = 0;
    for (let i = 0; i < 4000; i++) {
      const frame = mutate(rng, i % 2 === 0 ? result : step);
      // Mutations of the payload too, where a flipped exponent makes NaN or Inf.
      if (rng.int(4) === 0 && frame.length > 64) frame[64 + rng.int(frame.length - 64)] = 0x7f | rng.int(256);
      try {
        if (i % 2 === 0) {
          const { gradient } = decodeNodeFrame(frame, 'fuzz', { paramCount: P, wire: 'bf16' });
          if (gradient) expect(gradient.every(Number.isFinite)).toBe(true);
        } else {
          const f = decodeCoordinatorFrame(frame, 'fuzz');
          if (f.header.t !== 'weights') continue;
          const w = new Float32Array(P);
          landWeightsChunk(f.header, f.payload, 'fuzz', f.header.step, { paramCount: P, samples: 8, maxRows: 8, wire: 'bf16' }, w, 0);
          expect(w.every(Number.isFinite)).toBe(true);
        }
        landed++;
      } catch (e) {
        if (!(e instanceof WireError)) throw new Error(`case ${i}: ${String(e)} is not a WireError`);
      }
    }
    expect(landed).toBeGreaterThan(10); // most mutations break the frame; some land, and those must be finite
  });

  it('refuses frames over the model\'s bound before decoding anything', () => {
    const big = Buffer.alloc(maxNodeFrameBytes(limits) + 1);
    expect(() => decodeNodeFrame(big, 'peer 1', limits)).toThrow(/peer 1: frame of \d+ bytes exceeds the bound/);
  });

  it('refuses msgpack records, extensions and binaries in the header', () => {
    // 0x81 map of 1: key fixstr "t", value ext8 — msgpackr would decode an extension here.
    const header = Buffer.from([0x81, 0xa1, 0x74, 0xc7, 0x01, 0x72, 0x00]);
    const frame = Buffer.concat([Buffer.from([header.length, 0, 0, 0]), header]);
    expect(() => decodeNodeFrame(frame, 'p', limits)).toThrow(/header is not a plain msgpack map/);
    const nested = encodeFrame({ t: 'hello', v: 1, threads: 1, x: [[[[[1]]]]] });
    expect(() => decodeNodeFrame(nested, 'p', limits)).toThrow(/too deep or too large/);
  });

  it('the coordinator-side decoder refuses garbage too', () => {
    const rng = new Rng(7);
    let refused = 0;
    for (let i = 0; i < 2000; i++) {
      const frame = Buffer.from(Array.from({ length: rng.int(100) }, () => rng.int(256)));
      try {
        decodeCoordinatorFrame(frame, 'c');
      } catch (e) {
        if (!(e instanceof WireError)) throw new Error(`case ${i}: ${String(e)} is not a WireError`);
        expect(e.message).toMatch(/^c: /);
        refused++;
      }
    }
    // Random bytes are never a well-formed frame: an accept-everything decoder fails here.
    expect(refused).toBe(2000);
  });
});
