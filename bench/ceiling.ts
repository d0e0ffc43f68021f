// What this machine's cores give together: the reference forward GEMM (wasm) in one thread, then in
// two independent threads at once; the scaling benchmark reports its speedups beside this ceiling.

import { Worker } from 'node:worker_threads';
import { median } from '../src/coordinator/bench/stats.js';

const SECONDS = 1;
const ROUNDS = 5;

/** Medians over rounds that alternate one and two threads, so the host's drift hits both alike. */
export async function parallelCeiling(): Promise<{ one: number; two: number }> {
  const ones: number[] = [];
  const twos: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    ones.push(await gemmThread());
    twos.push((await Promise.all([gemmThread(), gemmThread()])).reduce((a, b) => a + b, 0));
  }
  return { one: median(ones), two: median(twos) };
}

function gemmThread(): Promise<number> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./ceiling-thread.js', import.meta.url), { workerData: { seconds: SECONDS } });
    w.once('message', (gflops: number) => {
      resolve(gflops);
      void w.terminate();
    });
    w.once('error', reject);
  });
}
