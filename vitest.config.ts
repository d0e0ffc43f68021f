import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests that start thread pools and child processes each use both cores; run files one at a time
    // so that timing-dependent parts (deadlines, heartbeats) are not starved.
    fileParallelism: false,
  },
});
