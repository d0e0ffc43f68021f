// npm run bench:wire — encode + decode of the reference weights frame (669,706 floats) with tinybench:
// the coordinator's per-node cost of a step request and of validating a result, in GB/s of payload.

import { Bench } from 'tinybench';
import { Rng } from '../src/core/rng.js';
import { decodeNodeFrame, encodeFrame } from '../src/core/protocol/wire.js';
import { fmt, table } from '../src/coordinator/bench/stats.js';

const P = 669_706;
const rng = new Rng(1);
const weights = new Float32Array(P).map(() => rng.uniform(-0.1, 0.1));
const indices = Int32Array.from({ length: 128 }, (_, i) => i);
const result = encodeFrame({ t: 'result', req: 1, step: 1, count: 128, lossSum: 1.5, computeMs: 3, leaving: false }, weights);

const bench = new Bench({ time: 2000, warmup: true });
bench
  .add('encode step request (weights + 128 indices)', () => {
    encodeFrame({ t: 'step', req: 1, step: 1, parts: 2, rows: 128 }, weights, indices);
  })
  .add('decode + validate result (gradient)', () => {
    decodeNodeFrame(result, 'bench', { paramCount: P });
  })
  .add('encode + decode round', () => {
    const f = encodeFrame({ t: 'result', req: 1, step: 1, count: 128, lossSum: 1.5, computeMs: 3, leaving: false }, weights);
    decodeNodeFrame(f, 'bench', { paramCount: P });
  });
await bench.run();

const bytes = 4 * P;
console.log(`frames of ${P.toLocaleString('en-US')} floats (${(bytes / 1e6).toFixed(2)} MB payload); median times`);
console.log(table(
  ['operation', 'median ms', 'GB/s of payload'],
  bench.tasks.map((t) => {
    const r = t.result;
    const ms = r && r.state === 'completed' ? (r.latency.p50 ?? NaN) : NaN;
    return [t.name, fmt(ms, 3), fmt(bytes / (ms * 1e6), 2)];
  }),
));
