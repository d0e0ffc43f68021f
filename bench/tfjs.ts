// The peers: the same MLP (784-512-512-10, ReLU, softmax cross-entropy, SGD) trained by TensorFlow.js
// with its pure-JS cpu backend and its WebAssembly backend, in this process, for side-by-side ratios.

import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Rng } from '../src/core/rng.js';

export type TfjsBackend = 'cpu' | 'wasm';

export interface TfjsRow {
  readonly backend: TfjsBackend;
  readonly batch: number;
  readonly samplesPerSec: number;
  readonly stepMsMedian: number;
}

/** Median-of-steps throughput of TF.js training the reference MLP on random data. */
export async function tfjsTrainingRow(backend: TfjsBackend, batch: number, steps: number, layers = [784, 512, 512, 10]): Promise<TfjsRow> {
  const tf = await import('@tensorflow/tfjs');
  if (backend === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const require = createRequire(import.meta.url);
    const dir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
    wasm.setWasmPaths(`${join(dir, '..', 'dist')}/`);
  }
  await tf.setBackend(backend);
  await tf.ready();
  const model = tf.sequential();
  for (let l = 1; l < layers.length; l++)
    model.add(tf.layers.dense({ units: layers[l], activation: l < layers.length - 1 ? 'relu' : 'linear', inputShape: l === 1 ? [layers[0]] : undefined }));
  model.compile({ optimizer: tf.train.sgd(0.01), loss: (y, p) => tf.losses.softmaxCrossEntropy(y, p) });
  const rng = new Rng(1);
  const x = tf.tensor2d(Float32Array.from({ length: batch * layers[0] }, () => rng.next()), [batch, layers[0]]);
  const labels = Array.from({ length: batch }, () => rng.int(layers[layers.length - 1]));
  const y = tf.oneHot(tf.tensor1d(labels, 'int32'), layers[layers.length - 1]);
  const times: number[] = [];
  for (let s = 0; s < steps + 2; s++) {
    const t0 = performance.now();
    await model.trainOnBatch(x, y);
    if (s >= 2) times.push(performance.now() - t0);
  }
  x.dispose();
  y.dispose();
  model.dispose();
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  return { backend, batch, samplesPerSec: (1000 * batch) / median, stepMsMedian: median };
}
