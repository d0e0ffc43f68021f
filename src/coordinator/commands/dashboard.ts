// `dptrain dashboard --metrics run.jsonl`: the dashboard page for a finished run, rebuilt from its
// metrics file; serves until Ctrl-C.

import { readToken } from '../../core/protocol/auth.js';
import { historyFromMetrics } from '../output/dashboard/replay.js';
import { parseDashboardAddress, startDashboard } from '../output/dashboard/server.js';

export interface DashboardFlags {
  metrics: string;
  port: string;
  tokenFile?: string;
}

export async function runDashboard(f: DashboardFlags): Promise<number> {
  const { host, port } = parseDashboardAddress('--port', String(f.port));
  const history = historyFromMetrics(f.metrics);
  const server = await startDashboard({ host, port, token: f.tokenFile ? readToken(f.tokenFile) : undefined, history, metrics: null, flag: '--port' });
  process.stdout.write(`dashboard of ${f.metrics} (not live): ${server.url}  (Ctrl-C to stop)\n`);
  await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  await server.close();
  return 0;
}
