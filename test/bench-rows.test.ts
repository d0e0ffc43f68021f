// The arithmetic of `dptrain bench scaling` rows, without running any: time dilation (which link a
// dilated row stands for, its times ÷ D), weak scaling's global batch and efficiency, and the
// scale-out model's inputs and predictions for weak sweeps and dilated rows.

import { describe, expect, it } from 'vitest';
import { computeLabel, dilatedNet, dilationText } from '../src/coordinator/bench/dilation.js';
import { fitBatchInputs, predictionCurve, type BatchInputs, type FrameCosts, type RowTimes } from '../src/coordinator/bench/measured-model.js';
import { combo, scalingRow, type Measured } from '../src/coordinator/bench/rows.js';
import { benchOptionsFromFlags, type BenchScalingFlags } from '../src/coordinator/commands/bench.js';
import { DEFAULT_CONFIG } from '../src/core/io/package-files.js';
import { predictRow } from '../src/coordinator/bench/scaling-report.js';
import { parseNet } from '../src/coordinator/bench/net/netem.js';

const tenGbit = parseNet('0.05ms:10000mbit')!;

function measured(c: ReturnType<typeof combo>, stepMs: number, emulation: Measured['emulation'] = null): Measured {
  return { combo: c, emulation, steps: 5, stepMs, computeMs: stepMs / 2, commMs: (stepMs * 9) / 20, hiddenMs: 0, updateMs: stepMs / 20, poolMs: (stepMs * 19) / 20, bytesSent: null, bytesReceived: null, maxLinkBytes: null, pids: [] };
}

describe('time dilation', () => {
  it('--dilate needs --emulate-compute and an emulated link, and is a factor ≥ 1', () => {
    const flags: BenchScalingFlags = { config: DEFAULT_CONFIG, threads: '1', nodes: '0,1', batch: '128', net: 'lan', steps: 3, warmup: 1, kernels: 'auto', netNamespaces: false };
    const options = (f: Partial<BenchScalingFlags>) => benchOptionsFromFlags({ ...flags, ...f }, () => {});
    expect(() => options({ dilate: 2 })).toThrow(/^--dilate: needs --emulate-compute/);
    expect(() => options({ dilate: 2, emulateCompute: true, net: 'loopback' })).toThrow(/^--dilate: needs an emulated link/);
    expect(() => options({ dilate: 0.5, emulateCompute: true })).toThrow(/^--dilate: expected a factor ≥ 1, got 0\.5$/);
    const ok = options({ dilate: 4, emulateCompute: true, scaling: 'both' });
    expect([ok.options.dilate, ok.options.emulateCompute, ok.options.scaling]).toEqual([4, true, ['strong', 'weak']]);
    expect(ok.out).toMatch(/scaling-lan-both-emulated-x4$/);
    expect(options({}).options).toMatchObject({ dilate: 1, emulateCompute: false, scaling: ['strong'] });
  });

  it('--net 0.05ms:10000mbit --dilate 4 emulates 2.5 Gbit/s at 0.2 ms, and says the rows stand for 10 Gbit/s at 0.05 ms', () => {
    const d = dilatedNet(tenGbit, 4);
    expect(d.bandwidthMbit).toBe(2500);
    expect(d.latencyMs).toBeCloseTo(0.2, 12);
    expect(dilatedNet(tenGbit, 1)).toBe(tenGbit);
    expect(dilationText(tenGbit, 4)).toBe('dilated ×4: emulated 2.5 Gbit/s, 0.2 ms and compute ×4, times ÷ 4: stands for 10 Gbit/s, 0.05 ms');
    expect(dilationText(parseNet('wan')!, 3)).toBe('dilated ×3: emulated 33.3333 Mbit/s, 60 ms and compute ×3, times ÷ 3: stands for 100 Mbit/s, 20 ms');
    expect(computeLabel({ compute: 'emulated', dilation: 4 })).toBe('emulated, dilated ×4');
    expect(computeLabel({ compute: 'emulated', dilation: 1 })).toBe('emulated');
    expect(computeLabel({ compute: 'real', dilation: 1 })).toBe('real');
  });

  it('a dilated row reports its clock times ÷ D and samples/s × D', () => {
    const c = combo('strong', 128, 1, 2);
    const row = scalingRow(measured(c, 40, { msPerSample: 0.1, dilation: 4 }), 12_800, 'proxy', { stepMs: 11, computeMs: 5, commMs: 5 });
    expect(row).toMatchObject({ compute: 'emulated', dilation: 4, emulatedMsPerSample: 0.1, wallStepMs: 40 });
    expect(row).toMatchObject({ stepMs: 10, computeMs: 5, commMs: 4.5, updateMs: 0.5, samplesPerSec: 12_800, speedup: 1, efficiency: 0.5 });
    expect(row.predictionErrorPct).toBeCloseTo(10, 10);
  });

  it('the model predicts a dilated row as it ran, ÷ D: with no CPU costs that is the link it stands for', () => {
    const free: FrameCosts = { frameBytes: 2_700_000, perMessageSec: 0, perByteSec: 0 };
    const b: BatchInputs = { scaling: 'weak', batch: 128, computeSecPerSample: 1e-4, threadEfficiency: { 1: 1 }, reduceSecPerNode: 0, updateSec: 0 };
    const c = combo('weak', 128, 1, 8);
    const dilated = predictRow(free, b, measured(c, 1, { msPerSample: 0.1, dilation: 4 }), tenGbit)!;
    const plain = predictRow(free, b, measured(c, 1, { msPerSample: 0.1, dilation: 1 }), tenGbit)!;
    expect(dilated.stepMs).toBeCloseTo(plain.stepMs, 9);
    expect(dilated.computeMs).toBeCloseTo(12.8, 9);
    // 2 × (0.05 ms + 2.7 MB at 1.25 GB/s) of link time on top of the compute.
    expect(plain.stepMs).toBeCloseTo(12.8 + 2 * (0.05 + 2.16), 9);
    // CPU costs are not dilated: they count ÷ D.
    const cpu: FrameCosts = { ...free, perMessageSec: 1e-3 };
    expect(predictRow(cpu, b, measured(c, 1, { msPerSample: 0.1, dilation: 4 }), tenGbit)!.stepMs).toBeLessThan(predictRow(cpu, b, measured(c, 1, { msPerSample: 0.1, dilation: 1 }), tenGbit)!.stepMs);
    expect(predictRow(free, b, measured(combo('weak', 128, 1, 0), 1), tenGbit)).toBeNull();
  });
});

describe('weak scaling', () => {
  it('the global batch is the per-worker batch × the workers (local threads, or nodes × threads)', () => {
    expect(combo('weak', 128, 1, 16)).toMatchObject({ sweepBatch: 128, batch: 2048 });
    expect(combo('weak', 128, 2, 4)).toMatchObject({ batch: 1024 });
    expect(combo('weak', 128, 2, 0)).toMatchObject({ batch: 256 });
    expect(combo('strong', 128, 2, 4)).toMatchObject({ sweepBatch: 128, batch: 128 });
  });

  it('efficiency = samples/s ÷ (workers × one worker\'s samples/s at the per-worker batch)', () => {
    // One worker: 128 samples in 10 ms = 12,800/s. Eight nodes: 1,024 samples in 16 ms = 64,000/s.
    const row = scalingRow(measured(combo('weak', 128, 1, 8), 16), 12_800, 'proxy', null);
    expect(row).toMatchObject({ scaling: 'weak', batch: 1024, sweepBatch: 128, workers: 8, samplesPerSec: 64_000, speedup: 5, efficiency: 0.625 });
  });

  it('the model\'s thread efficiency compares compute per sample, and its curve grows the batch with the workers', () => {
    const t = (kind: 'local' | 'nodes', threads: number, nodes: number, poolMs: number): RowTimes => {
      const c = combo('weak', 64, threads, nodes);
      return { kind, scaling: 'weak', sweepBatch: 64, batch: c.batch, threads, nodes, stepMs: poolMs + 1, updateMs: 1, poolMs };
    };
    // 0.1 ms per sample on one thread; two threads do 128 samples in 8 ms: 0.8 efficiency.
    const b = fitBatchInputs([t('local', 1, 0, 6.4), t('local', 2, 0, 8)], 'weak', 64)!;
    expect(b.computeSecPerSample).toBeCloseTo(1e-4, 12);
    expect(b.threadEfficiency[2]).toBeCloseTo(0.8, 12);
    expect(fitBatchInputs([t('local', 1, 0, 6.4)], 'strong', 64)).toBeNull();
    // With nothing but compute, weak scaling is perfect at every size: the batch grows with the nodes.
    const free: FrameCosts = { frameBytes: 1000, perMessageSec: 0, perByteSec: 0 };
    const ideal: BatchInputs = { ...b, threadEfficiency: { 1: 1 }, reduceSecPerNode: 0, updateSec: 0 };
    const curve = predictionCurve(free, ideal, 1, null, [1, 4, 16]);
    expect(curve.map((p) => p.scaling)).toEqual(['weak', 'weak', 'weak']);
    for (const p of curve) {
      expect(p.stepMs).toBeCloseTo(6.4, 9);
      expect(p.samplesPerSec).toBeCloseTo(10_000 * p.nodes, 6);
      expect(p.efficiency).toBeCloseTo(1, 12);
      expect(p.speedup).toBeCloseTo(p.nodes, 9);
    }
    // Strong at the same batch: each node's share shrinks, the step with it.
    const strong = predictionCurve(free, { ...ideal, scaling: 'strong' }, 1, null, [1, 4, 16]);
    expect(strong.map((p) => p.stepMs)).toEqual([6.4, 1.6, 0.4].map((x) => expect.closeTo(x, 9)));
  });
});
