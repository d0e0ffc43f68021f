// bfloat16 on the wire: the rounding rules (round to nearest even, NaN stays NaN, bf16 values are
// fixed points), the bf16 landing of the one decoder, and a run whose node speaks bf16.

import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { bf16Bits, roundBf16, toBf16 } from '../src/core/bf16.js';
import { parseConfig } from '../src/core/config.js';
import { paramLayout } from '../src/core/layout.js';
import { decodeNodeFrame, encodeFrame, encodeWeights, landFloats, wirePayload } from '../src/core/protocol/wire.js';
import { Rng } from '../src/core/rng.js';
import { train } from '../src/coordinator/train/trainer.js';
import { silentReporter } from './helpers.js';
import { killAll, remoteRun, sameBits, spawnNode } from './remote-helpers.js';

afterAll(killAll);

const f32Bits = (x: number): number => new Uint32Array(new Float32Array([x]).buffer)[0];
const fromBits = (u: number): number => new Float32Array(new Uint32Array([u]).buffer)[0];

describe('bf16 rounding', () => {
  it('a bf16 value rounds to itself, and rounding twice is rounding once', () => {
    const rng = new Rng(5);
    for (let i = 0; i < 20_000; i++) {
      const x = fromBits((rng.nextU32() & 0xffff0000) >>> 0);
      if (Number.isNaN(x)) continue;
      expect(Object.is(roundBf16(x), x)).toBe(true);
      const y = rng.uniform(-1e6, 1e6) * 10 ** (rng.int(20) - 10);
      expect(roundBf16(roundBf16(y))).toBe(roundBf16(y));
    }
  });

  it('rounds to nearest, ties to even', () => {
    // bf16 keeps 7 mantissa bits: near 1 the step is 2^-7.
    expect(roundBf16(1 + 2 ** -8)).toBe(1); // tie, 1 is even
    expect(roundBf16(1 + 3 * 2 ** -8)).toBe(1 + 2 ** -6); // tie, 1 + 2^-7 is odd: up
    expect(roundBf16(1 + 2 ** -8 + 2 ** -20)).toBe(1 + 2 ** -7); // above the tie: up
    expect(roundBf16(-(1 + 2 ** -8))).toBe(-1);
    expect(bf16Bits(f32Bits(3.4028234663852886e38))).toBe(0x7f80); // past bf16's largest: +Inf
    expect(bf16Bits(f32Bits(Infinity))).toBe(0x7f80);
    expect(bf16Bits(f32Bits(-0))).toBe(0x8000);
    expect(bf16Bits(f32Bits(1e-45))).toBe(0); // the smallest subnormal rounds to zero
  });

  it('NaN stays NaN, even one whose payload is only in the low half', () => {
    for (const u of [0x7fc00000, 0x7f800001, 0xff800001, 0x7fffffff]) {
      const b = bf16Bits(u);
      expect(b & 0x7f80).toBe(0x7f80);
      expect(b & 0x7f).not.toBe(0);
      expect(b >>> 15).toBe(u >>> 31);
    }
    const out = toBf16(new Uint16Array(2), new Float32Array([NaN, fromBits(0x7f800001)]));
    for (const b of out) expect(Number.isNaN(fromBits(b << 16))).toBe(true);
  });

  it('the wire lands bf16 widened exactly, refuses non-finite bf16, and checks the bf16 length', () => {
    const g = new Float32Array([0.1, -3.3, 1e-20, 65504, -0]);
    const payload = wirePayload(g, 'bf16');
    expect(payload.byteLength).toBe(10);
    const frame = encodeFrame({ t: 'result', req: 1, step: 1, count: 1, lossSum: 0, computeMs: 0, leaving: false }, payload);
    const { gradient } = decodeNodeFrame(frame, 'n', { paramCount: 5, wire: 'bf16' });
    expect([...gradient!]).toEqual([...g].map(roundBf16));
    expect(() => decodeNodeFrame(frame, 'n', { paramCount: 5 })).toThrow(/gradient of 10 bytes, the model needs exactly 20 \(f32\)/);
    const nan = new Uint8Array(encodeWeights(new Float32Array([1, NaN]), 'bf16'));
    expect(() => landFloats(nan, 0, new Float32Array(2), 'c', 'weights', 'bf16')).toThrow(/^c: weights holds a non-finite value at index 1/);
  });
});

describe('a node on a bf16 link', () => {
  // config/spirals.json (Adam, 2-64-64-2), with a fixed epoch count so that both runs take the same steps.
  const raw = JSON.parse(readFileSync(new URL('../config/spirals.json', import.meta.url), 'utf8')) as { training: object };
  const config = parseConfig({ ...raw, training: { ...raw.training, epochs: 60, targetAccuracy: undefined } }, 'config/spirals.json', tmpdir());
  const short = parseConfig({ ...raw, training: { ...raw.training, epochs: 2, targetAccuracy: undefined } }, 'config/spirals.json', tmpdir());
  const P = paramLayout(config.model).size;
  const base = { kernels: 'auto' as const, balance: 'static' as const };

  it('f32 stays bit-identical to local training; bf16 does not', async () => {
    const local = await train({ ...base, config: short, workers: 1, skipEval: true, reporter: silentReporter() });
    const f32 = await remoteRun({ ...base, config: short, skipEval: true, workers: 0, minExecutors: 1 }, (url) => void spawnNode(url));
    const bf16 = await remoteRun({ ...base, config: short, skipEval: true, workers: 0, minExecutors: 1 }, (url) => void spawnNode(url), { wire: 'bf16' });
    expect(sameBits(f32.result.params, local.params)).toBe(true);
    expect(sameBits(bf16.result.params, local.params)).toBe(false);
  });

  it('trains the spirals config to the accuracy of f32 with half the bytes per step', async () => {
    const local = await train({ ...base, config, workers: 1, reporter: silentReporter() });
    const bf16 = await remoteRun({ ...base, config, workers: 0, minExecutors: 1 }, (url) => void spawnNode(url), { wire: 'bf16' });
    const accLocal = local.final!.accuracy!;
    const accBf16 = bf16.result.final!.accuracy!;
    expect(accLocal).toBeGreaterThan(0.95);
    expect(accBf16).toBeGreaterThan(accLocal - 0.03);
    const steps = bf16.result.steps;
    const [node] = bf16.steps.at(-1)!.nodes;
    expect(node.bytesReceived).toBeLessThan(steps * (2 * P + 200));
    expect(node.bytesSent).toBeLessThan(steps * (2 * P + 4 * 32 + 200) + 100_000);
  });
});
