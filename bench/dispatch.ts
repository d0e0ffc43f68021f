// npm run bench:dispatch — what a Piscina task costs a step, for each `atomics` mode: rounds of one
// task per thread (empty or a 64-row MNIST shard), task start and finish latencies, round overhead.

import { Piscina } from 'piscina';
import { arenaLayout, arenaViews, createArenaMemory } from '../src/core/arena.js';
import { loadConfig, loadConfigData } from '../src/core/config.js';
import { DEFAULT_CONFIG } from '../src/core/io/package-files.js';
import { fmt, median, table } from '../src/coordinator/bench/stats.js';
import { initParams } from '../src/core/init.js';
import { paramLayout } from '../src/core/layout.js';
import type { DispatchTask } from './dispatch-worker.js';

const THREADS = 2;
const ROWS = 64;
const ROUNDS_PER_RUN = 60;
const WARMUP = 10;
const REPEATS = 3;
const PAUSE_MS = 1.2;
const MODES = ['sync', 'async', 'disabled'] as const;

const config = loadConfig(DEFAULT_CONFIG);
const spec = config.model;
const data = loadConfigData(config).train;
const layout = arenaLayout(spec, { shards: THREADS, maxRows: ROWS, stateVectors: 0 });
const memory = createArenaMemory(layout);
initParams(arenaViews(memory, layout).params, paramLayout(spec), 'pytorch', 42);
const now = (): number => performance.timeOrigin + performance.now();
const busyWait = (ms: number): void => {
  const end = performance.now() + ms;
  while (performance.now() < end);
};

interface Figures { startMs: number; collectMs: number; overheadMs: number }

async function measure(atomics: (typeof MODES)[number], shards: boolean): Promise<Figures> {
  const pool = new Piscina<DispatchTask, { start: number; end: number }>({
    filename: new URL('./dispatch-worker.js', import.meta.url).href,
    workerData: { spec, layout, memory, data, rows: ROWS },
    minThreads: THREADS, maxThreads: THREADS, idleTimeout: Infinity, atomics, recordTiming: false,
  });
  const start: number[] = [];
  const collect: number[] = [];
  const overhead: number[] = [];
  for (let round = 0; round < ROUNDS_PER_RUN; round++) {
    const t0 = now();
    const r = await Promise.all(Array.from({ length: THREADS }, (_, slot) => pool.run({ slot, lo: shards ? slot * ROWS : -1 })));
    const t1 = now();
    if (round >= WARMUP) {
      start.push(Math.max(...r.map((x) => x.start)) - t0);
      collect.push(t1 - Math.max(...r.map((x) => x.end)));
      overhead.push(t1 - t0 - Math.max(...r.map((x) => x.end - x.start)));
    }
    busyWait(PAUSE_MS);
  }
  await pool.destroy();
  return { startMs: median(start), collectMs: median(collect), overheadMs: median(overhead) };
}

const runs = new Map<string, Figures[]>();
for (let r = 0; r < REPEATS; r++)
  for (const mode of MODES)
    for (const shards of [false, true]) {
      const k = `${mode}/${shards}`;
      runs.set(k, [...(runs.get(k) ?? []), await measure(mode, shards)]);
    }
const rows = [...runs.entries()].map(([k, xs]) => {
  const [mode, shards] = k.split('/');
  const m = (f: keyof Figures): string => fmt(median(xs.map((x) => x[f])), 3);
  return [mode, shards === 'true' ? `${ROWS}-row shard` : 'empty', m('startMs'), m('collectMs'), m('overheadMs')];
});
console.log(`${THREADS} threads, one task each per round, ${PAUSE_MS} ms busy between rounds; medians of ${REPEATS} runs × ${ROUNDS_PER_RUN - WARMUP} rounds`);
console.log(table(['atomics', 'task', 'later start ms', 'collect ms', 'overhead per round ms'], rows));
