// `dptrain train --dashboard`: the page and /metrics for a run in progress, assembled from the
// history, the run's own metrics registry, the feed and the server, so the train command needs only
// a few lines.

import type { Config } from '../../../core/config.js';
import type { Reporter } from '../../train/records.js';
import type { MembershipEvent } from '../../remote/server.js';
import { createFeed } from './feed.js';
import { RunHistory } from './history.js';
import { RunMetrics } from './metrics.js';
import { parseDashboardAddress, startDashboard } from './server.js';

export interface LiveDashboardOptions {
  /** The flag's text, [HOST:]PORT. */
  readonly address: string;
  readonly token?: string;
  readonly config: Config;
  readonly maxSteps?: number;
  readonly reporter: Reporter;
}

export interface LiveDashboard {
  readonly url: string;
  /** The reporter to hand to the trainer: it passes everything on to the one given. */
  readonly reporter: Reporter;
  readonly membership: (e: MembershipEvent) => void;
  /** Marks the run finished, tells open pages, stops serving. */
  close(): Promise<void>;
}

/** Listens before the run starts, so a port in use is a usage error and no training is lost. */
export async function openLiveDashboard(o: LiveDashboardOptions): Promise<LiveDashboard> {
  const { host, port } = parseDashboardAddress('--dashboard', o.address);
  const t = o.config.training;
  const history = new RunHistory({
    live: true, source: 'live run', config: o.config.raw,
    stop: { epochs: t.epochs, maxSteps: o.maxSteps ?? null, targetLoss: t.targetLoss ?? null, targetAccuracy: t.targetAccuracy ?? null },
    backend: null, threads: null, params: null, train: null, test: null, batchSize: t.batchSize, resumedAt: null,
  });
  const metrics = new RunMetrics();
  const server = await startDashboard({ host, port, token: o.token, history, metrics });
  const feed = createFeed(o.reporter, history, metrics);
  return {
    url: server.url,
    reporter: feed.reporter,
    membership: feed.membership,
    async close() {
      history.finish();
      await server.close();
    },
  };
}
