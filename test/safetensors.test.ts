// Weights files: safetensors round trips with PyTorch's names and shapes, and the files refused.

import { readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initParams } from '../src/core/init.js';
import { paramLayout } from '../src/core/layout.js';
import { decodeSafetensors, loadWeights, saveWeights } from '../src/core/io/safetensors.js';
import { spec, workdir } from './helpers.js';

const s = spec([5, 4, 3], 'relu', 'identity', 'cross-entropy');
const layout = paramLayout(s);

describe('safetensors', () => {
  it('round-trips the weights with PyTorch names and shapes', () => {
    const dir = workdir('st');
    const params = new Float32Array(layout.size);
    initParams(params, layout, 'pytorch', 9);
    const file = join(dir, 'w.safetensors');
    saveWeights(file, layout, params, { format: 'pt' });
    const bytes = readFileSync(file);
    const headerLen = Number(bytes.readBigUInt64LE(0));
    expect((8 + headerLen) % 8).toBe(0);
    const header = JSON.parse(bytes.subarray(8, 8 + headerLen).toString());
    expect(header['0.weight']).toEqual({ dtype: 'F32', shape: [4, 5], data_offsets: [0, 80] });
    expect(header['0.bias']).toEqual({ dtype: 'F32', shape: [4], data_offsets: [80, 96] });
    expect(header['2.weight'].shape).toEqual([3, 4]);
    expect(header.__metadata__).toEqual({ format: 'pt' });
    const back = new Float32Array(layout.size);
    loadWeights(file, layout, back);
    expect(back).toEqual(params);
    // Only the final file is left: the temporary one was renamed.
    expect(readdirSync(dir)).toEqual(['w.safetensors']);
  });

  it('refuses truncated, mismatched and non-finite files with the file named', () => {
    const dir = workdir('st');
    const params = new Float32Array(layout.size).fill(0.5);
    const file = join(dir, 'w.safetensors');
    saveWeights(file, layout, params);
    const good = readFileSync(file);
    const truncated = join(dir, 'cut.safetensors');
    writeFileSync(truncated, good.subarray(0, good.length - 10));
    expect(() => loadWeights(truncated, layout, new Float32Array(layout.size))).toThrow(/cut\.safetensors: tensor 2\.bias: data .* runs past/);
    writeFileSync(truncated, good.subarray(0, 5));
    expect(() => loadWeights(truncated, layout, new Float32Array(layout.size))).toThrow(/cut\.safetensors: file is 5 bytes/);
    const other = paramLayout(spec([5, 6, 3], 'relu', 'identity', 'cross-entropy'));
    expect(() => loadWeights(file, other, new Float32Array(other.size))).toThrow(/w\.safetensors: tensor 0\.weight has shape \[4, 5\], the model needs \[6, 5\]/);
    const nan = new Float32Array(layout.size).fill(0.5);
    nan[3] = NaN;
    saveWeights(file, layout, nan);
    expect(() => loadWeights(file, layout, new Float32Array(layout.size))).toThrow(/tensor 0\.weight holds a non-finite value at index 3/);
    expect(() => loadWeights(join(dir, 'missing.safetensors'), layout, params)).toThrow(/missing\.safetensors: cannot read/);
    expect(() => decodeSafetensors(Buffer.from('\x04\x00\x00\x00\x00\x00\x00\x00{bad'), 'x.st')).toThrow(/x\.st: header is not valid JSON/);
  });
});
