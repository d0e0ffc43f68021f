// Feeds a run's records into the dashboard's history and metrics: a Reporter that passes every
// call on to the usual one (progress bar, --metrics file) and keeps a copy, plus the remote
// server's join/drop events.

import type { Reporter, StepRecord } from '../../train/records.js';
import type { MembershipEvent } from '../../remote/server.js';
import type { RunHistory } from './history.js';
import type { RunMetrics } from './metrics.js';

/** The step split of one record: compute is the slowest shard (the others ran beside it). */
export function stepSplit(r: Pick<StepRecord, 'shards' | 'stepMs' | 'updateMs'>): { computeMs: number; commMs: number; updateMs: number } {
  const computeMs = r.shards.reduce((m, s) => Math.max(m, s.computeMs), 0);
  return { computeMs, commMs: Math.max(0, r.stepMs - computeMs - r.updateMs), updateMs: r.updateMs };
}

export interface DashboardFeed {
  readonly reporter: Reporter;
  membership(e: MembershipEvent): void;
}

export function createFeed(inner: Reporter, history: RunHistory, metrics: RunMetrics): DashboardFeed {
  // StepRecord.loss is the epoch's running mean; the batch's own loss is the difference of sums.
  // count: rows of the epoch so far, null when the run resumed mid-epoch (the rows before are unknown).
  let prev: { epoch: number; loss: number; count: number | null } = { epoch: -1, loss: 0, count: null };
  const reporter: Reporter = {
    start(info) {
      inner.start(info);
      Object.assign(history.info, {
        backend: info.backend, threads: info.threads, params: info.params, train: info.train, test: info.test, batchSize: info.batchSize, resumedAt: info.resumedAt,
      });
      if (info.threads > 0) history.upsertExecutor({ id: 'local', kind: 'local', address: 'this process', threads: info.threads, bytesSent: 0, bytesReceived: 0, lastSeenMsAgo: null });
    },
    step(r) {
      inner.step(r);
      const split = stepSplit(r);
      const sameEpoch = r.epoch === prev.epoch;
      const before = sameEpoch ? prev.count : r.batch === 0 ? 0 : null;
      const count = before === null ? null : before + r.rows;
      const batchLoss = before === null ? null : (r.loss * (before + r.rows) - (sameEpoch ? prev.loss * before : 0)) / r.rows;
      prev = { epoch: r.epoch, loss: r.loss, count };
      const samplesPerSec = r.stepMs > 0 ? (1000 * r.rows) / r.stepMs : 0;
      history.addStep({ step: r.step, epoch: r.epoch + 1, loss: r.loss, batchLoss, samplesPerSec, ...split, batches: r.batches });
      for (const s of r.shards) history.addWork(s.by.split('/')[0], s.rows, s.computeMs);
      for (const n of r.nodes) {
        history.upsertExecutor({ id: n.id, kind: 'node', address: n.address, threads: n.threads, bytesSent: n.bytesSent, bytesReceived: n.bytesReceived, lastSeenMsAgo: n.lastSeenMsAgo });
      }
      metrics.step({ rows: r.rows, loss: r.loss, samplesPerSec, epoch: r.epoch + 1, ...split });
      metrics.nodes(r.nodes);
    },
    epoch(r) {
      inner.epoch(r);
      const e = {
        epoch: r.epoch + 1, step: r.step, trainLoss: r.trainLoss, testLoss: Number.isFinite(r.test.loss) ? r.test.loss : null,
        testAccuracy: r.test.accuracy, samplesPerSec: r.samplesPerSec, seconds: r.seconds,
      };
      history.addEpoch(e);
      metrics.epochEnd(e);
    },
    log(line) {
      inner.log(line);
      history.addLog(line);
    },
    close() {
      inner.close();
    },
  };
  return {
    reporter,
    membership(e) {
      if (e.kind === 'joined') {
        history.upsertExecutor({ id: e.id, kind: 'node', address: e.address, threads: e.threads, bytesSent: 0, bytesReceived: 0, lastSeenMsAgo: 0 });
      } else {
        history.dropExecutor(e.id, /said bye/.test(e.reason) ? 'left' : 'dropped', e.reason);
        metrics.nodeDropped(e.id, e.reason);
      }
      metrics.nodeCount(history.activeExecutors().filter((x) => x.kind === 'node').length);
    },
  };
}
