import { defineConfig } from 'vitest/config';

// Files that run their code in this process, with no child processes, sockets or timing-dependent
// parts: they run side by side first. Everything else starts thread pools and child processes that
// each use both cores, so those files run one at a time afterwards, and timing-dependent parts
// (deadlines, heartbeats) are not starved.
const IN_PROCESS = [
  'test/bench-rows.test.ts', 'test/charts.test.ts', 'test/data.test.ts', 'test/gradient-guard.test.ts', 'test/kernels.test.ts',
  'test/kernels-native.test.ts', 'test/mnist-learns.test.ts', 'test/model.test.ts', 'test/optim.test.ts', 'test/pairwise-blocks.test.ts',
  'test/partition.test.ts', 'test/rng-init.test.ts', 'test/safetensors.test.ts', 'test/scaleout-model.test.ts', 'test/wire-fuzz.test.ts',
  'test/wire-shared.test.ts',
];

// Files with child processes but nothing that depends on timing (no deadlines, heartbeats or
// terminals): two at a time, after the in-process files and before the timed ones.
const SIDE_BY_SIDE = ['test/predict.test.ts', 'test/package-consumer.test.ts', 'test/remote-stream.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: 'in-process', include: IN_PROCESS, maxWorkers: 2, sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'processes, side by side', include: SIDE_BY_SIDE, maxWorkers: 2, sequence: { groupOrder: 1 } } },
      { extends: true, test: { name: 'processes', include: ['test/**/*.test.ts'], exclude: [...IN_PROCESS, ...SIDE_BY_SIDE], fileParallelism: false, sequence: { groupOrder: 2 } } },
    ],
  },
});
