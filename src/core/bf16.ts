// bfloat16, the upper half of a float32: conversion with round to nearest, ties to even, as the
// wire's 16-bit encoding. NaN stays NaN (quieted, sign kept); a value past bf16's largest rounds
// to ±Inf, as RNE says. Sums and the optimizer never see bf16: it exists only on the wire.

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/** The bf16 bits of float32 bits `u` (round to nearest even). */
export function bf16Bits(u: number): number {
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x0040) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** The float32 value of a number rounded through bf16. */
export function roundBf16(x: number): number {
  scratch[0] = x;
  scratchBits[0] = bf16Bits(scratchBits[0]) << 16;
  return scratch[0];
}

/** `src` rounded to bf16 into `dst` (same length). */
export function toBf16(dst: Uint16Array, src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) {
    const u = bits[i];
    dst[i] = (u & 0x7fffffff) > 0x7f800000 ? (u >>> 16) | 0x0040 : (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
  }
  return dst;
}
