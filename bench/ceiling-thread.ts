// One thread of the ceiling measurement: GFLOP/s of the wasm forward GEMM over its own memory.

import { parentPort, workerData } from 'node:worker_threads';
import { createWasmKernels } from '../src/core/kernels/wasm.js';

const M = 128;
const N = 512;
const K = 784;
const memory = new WebAssembly.Memory({ initial: 256, maximum: 256, shared: true });
let at = 65536;
const take = (n: number): Float32Array => {
  const v = new Float32Array(memory.buffer, at, n);
  at += n * 4;
  return v;
};
const a = take(M * K).fill(0.5);
const b = take(N * K).fill(0.25);
const c = take(M * N);
const kernels = createWasmKernels(memory, take(1_500_000));
for (let i = 0; i < 10; i++) kernels.gemmNT(c, a, b, M, N, K, false);
const t0 = performance.now();
let reps = 0;
while (performance.now() - t0 < (workerData as { seconds: number }).seconds * 1000) {
  kernels.gemmNT(c, a, b, M, N, K, false);
  reps++;
}
parentPort!.postMessage((2 * M * N * K * reps) / ((performance.now() - t0) * 1e6));
