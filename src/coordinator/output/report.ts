// What a run tells its user: a progress bar on a TTY (cli-progress), one plain line per epoch
// otherwise (CI, pipes), nothing but errors with --quiet; and the --metrics JSONL file, one line per
// step interval and per epoch (on resume, the lines up to the checkpoint's step are kept and the
// rest appended).

import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { ioReason } from '../../core/io/atomic-file.js';
import { writeFailed } from '../../core/errors.js';
import cliProgress from 'cli-progress';
import type { EpochRecord, Reporter, StepRecord } from '../train/records.js';

export interface ReporterOptions {
  readonly quiet: boolean;
  readonly tty: boolean;
  readonly metrics?: string;
  /** Steps per metrics line. */
  readonly metricsEvery?: number;
  readonly write?: (line: string) => void;
}

export function formatEpoch(r: EpochRecord, epochs: number): string {
  const acc = r.test.accuracy === null ? '' : `  test acc ${(100 * r.test.accuracy).toFixed(2)}%`;
  const test = r.test.n === 0 ? 'no test split' : `test loss ${r.test.loss.toFixed(4)}${acc}`;
  return `epoch ${r.epoch + 1}/${epochs}  train loss ${r.trainLoss.toFixed(4)}  ${test}  ${Math.round(r.samplesPerSec)} samples/s  ${r.seconds.toFixed(1)} s`;
}

/** A duration for the progress bar: 45s, 3m05s, 2h07m. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '-';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function createReporter(opts: ReporterOptions): Reporter {
  const write = opts.write ?? ((l: string) => process.stdout.write(`${l}\n`));
  const every = opts.metricsEvery ?? 10;
  let epochs = 0;
  let bar: cliProgress.SingleBar | null = null;
  // Per-interval accumulation for the metrics file.
  let interval = { steps: 0, rows: 0, ms: 0, updateMs: 0, compute: new Map<string, number>() };
  // Each node's byte totals at the last metrics line, for per-step averages.
  const lastBytes = new Map<string, { sent: number; received: number }>();
  let lastNodes: StepRecord['nodes'] = [];
  // Rows and compute time per executor over the epoch, for each node's samples/s.
  const epochWork = new Map<string, { rows: number; ms: number }>();
  let lastRate = 0;
  // The run's ETA: its remaining steps at the pace of this process's steps so far (evaluation included).
  let runStart = { ms: NaN, steps: 0 };
  const metric = (o: object): void => {
    if (!opts.metrics) return;
    try {
      appendFileSync(opts.metrics, `${JSON.stringify(o)}\n`);
    } catch (e) {
      throw writeFailed('metrics to', opts.metrics, ioReason(e), 'the run stops here; its last checkpoint is kept');
    }
  };
  const stopBar = (): void => {
    bar?.stop();
    bar = null;
  };

  return {
    start(info) {
      epochs = info.epochs;
      if (opts.metrics) openMetrics(opts.metrics, info.resumedAt);
      if (opts.quiet) return;
      write(`dptrain: ${info.params.toLocaleString('en-US')} parameters, ${info.train} train / ${info.test} test samples, batch ${info.batchSize}, ${info.threads} worker thread${info.threads === 1 ? '' : 's'}, kernels ${info.backend}`);
    },
    step(r: StepRecord) {
      interval.steps++;
      interval.rows += r.rows;
      interval.ms += r.stepMs;
      interval.updateMs += r.updateMs;
      for (const s of r.shards) interval.compute.set(s.by, (interval.compute.get(s.by) ?? 0) + s.computeMs);
      if (interval.steps >= every || r.batch === r.batches - 1) {
        lastRate = (1000 * interval.rows) / interval.ms;
        const steps = interval.steps;
        const nodes = r.nodes.map((n) => {
          const before = lastBytes.get(n.id) ?? { sent: 0, received: 0 };
          lastBytes.set(n.id, { sent: n.bytesSent, received: n.bytesReceived });
          return { id: n.id, address: n.address, threads: n.threads, bytesSentPerStep: (n.bytesSent - before.sent) / steps, bytesReceivedPerStep: (n.bytesReceived - before.received) / steps, lastSeenMsAgo: n.lastSeenMsAgo };
        });
        metric({
          type: 'step', step: r.step, epoch: r.epoch + 1, loss: r.loss, samplesPerSec: lastRate,
          computeMs: Object.fromEntries(interval.compute), reduceUpdateMs: interval.updateMs, stepMs: interval.ms, steps, plan: r.plan, ...(nodes.length ? { nodes } : {}),
        });
        interval = { steps: 0, rows: 0, ms: 0, updateMs: 0, compute: new Map() };
      }
      lastNodes = r.nodes;
      for (const sh of r.shards) {
        const w = epochWork.get(sh.by) ?? { rows: 0, ms: 0 };
        w.rows += sh.rows;
        w.ms += sh.computeMs;
        epochWork.set(sh.by, w);
      }
      const now = performance.now();
      if (Number.isNaN(runStart.ms)) runStart = { ms: now - r.stepMs, steps: r.epoch * r.batches + r.batch };
      const done = r.epoch * r.batches + r.batch + 1;
      const runEta = ((now - runStart.ms) / 1000 / (done - runStart.steps)) * (epochs * r.batches - done);
      if (opts.quiet || !opts.tty) return;
      if (!bar) {
        bar = new cliProgress.SingleBar({
          format: `epoch ${r.epoch + 1}/${epochs} {bar} {percentage}% | loss {loss} | {rate} samples/s | ETA epoch {eta_formatted}, run {runEta}`,
          hideCursor: true,
          clearOnComplete: true,
        }, cliProgress.Presets.shades_classic);
        bar.start(r.batches, r.batch, { loss: '-', rate: '-', runEta: '-' });
      }
      bar.update(r.batch + 1, { loss: r.loss.toFixed(4), rate: Math.round(lastRate), runEta: formatDuration(runEta) });
    },
    epoch(r) {
      stopBar();
      metric({
        type: 'epoch', epoch: r.epoch + 1, step: r.step, trainLoss: r.trainLoss, testLoss: r.test.loss,
        testAccuracy: r.test.accuracy, samplesPerSec: r.samplesPerSec, seconds: r.seconds,
      });
      // Long runs of tiny models would print thousands of lines: about 20 epoch lines per run.
      const every = Math.max(1, Math.floor(epochs / 20));
      if (!opts.quiet && ((r.epoch + 1) % every === 0 || r.epoch + 1 === epochs || r.stopping)) {
        write(formatEpoch(r, epochs));
        for (const n of lastNodes) {
          const w = epochWork.get(n.id);
          const rate = w && w.ms > 0 ? `${Math.round((1000 * w.rows) / w.ms)} samples/s` : 'idle';
          write(`  ${n.id}  ${n.address}  ${n.threads} thread${n.threads === 1 ? '' : 's'}  ${rate}  sent ${(n.bytesSent / 1e6).toFixed(1)} MB  received ${(n.bytesReceived / 1e6).toFixed(1)} MB  last seen ${n.lastSeenMsAgo} ms ago`);
        }
      }
      epochWork.clear();
    },
    log(line) {
      stopBar();
      process.stderr.write(`${line}\n`);
    },
    close: stopBar,
  };
}

/**
 * A fresh run starts the file empty; a resumed one keeps the lines of steps up to the checkpoint's
 * (those after it are run again) and appends.
 */
function openMetrics(path: string, resumedAt: number | null): void {
  try {
    if (resumedAt === null || !existsSync(path)) {
      writeFileSync(path, '');
      return;
    }
    const kept = readFileSync(path, 'utf8').split('\n').filter((line) => {
      try {
        const step = (JSON.parse(line) as { step?: unknown }).step;
        return typeof step === 'number' && step <= resumedAt;
      } catch {
        return false;
      }
    });
    writeFileSync(path, kept.map((l) => `${l}\n`).join(''));
  } catch (e) {
    throw writeFailed('metrics to', path, ioReason(e), 'nothing was trained');
  }
}
