// `dptrain worker`: flags → a node that joins the coordinator's runs.

import { availableParallelism } from 'node:os';
import { configError } from '../../core/errors.js';
import { readToken } from '../../core/protocol/auth.js';
import { parseListen } from '../../core/protocol/door.js';
import { isLinkUrl } from '../../core/protocol/wire.js';
import { runNode, type NodeCounters } from '../../worker/node/node.js';
import { emulationNotice, type EmulatedCompute } from '../../worker/node/emulate.js';
import { checkThreadCount } from '../../worker/pool/local-pool.js';

export interface WorkerFlags {
  connect: string;
  tokenFile?: string;
  threads?: number;
  tlsCa?: string;
  maxReconnects: number;
  maxAuthFailures: number;
  exitAtStep?: number;
  leaveAfterStep?: number;
  metricsPort?: string;
  listen?: string;
  tlsCert?: string;
  tlsKey?: string;
  advertise?: string;
  /** Benchmarks only (`dptrain bench scaling --emulate-compute`): ms per sample per thread. */
  emulateCompute?: number;
}

export async function runWorker(f: WorkerFlags): Promise<number> {
  if (!/^wss?:\/\/[^/]+/.test(f.connect)) throw configError('--connect', `expected ws://HOST:PORT or wss://HOST:PORT, got ${f.connect}`);
  const threads = f.threads ?? availableParallelism();
  if (!(Number.isInteger(threads) && threads >= 1)) throw configError('--threads', `expected a whole number ≥ 1, got ${f.threads}`);
  const threadWarning = checkThreadCount('--threads', threads);
  if (threadWarning) process.stderr.write(`dptrain worker: ${threadWarning}\n`);
  if (!(Number.isInteger(f.maxReconnects) && f.maxReconnects >= 0)) throw configError('--max-reconnects', `expected a whole number ≥ 0, got ${f.maxReconnects}`);
  if (!(Number.isInteger(f.maxAuthFailures) && f.maxAuthFailures >= 1)) throw configError('--max-auth-failures', `expected a whole number ≥ 1, got ${f.maxAuthFailures}`);
  const log = (l: string): void => void process.stderr.write(`dptrain worker: ${l}\n`);
  if (f.advertise !== undefined && !f.listen) throw configError('--advertise', 'names where children reach this node: it needs --listen');
  // What a hello may carry: anything else would get the node refused by the coordinator.
  if (f.advertise !== undefined && !isLinkUrl(f.advertise)) throw configError('--advertise', `expected ws://HOST:PORT or wss://HOST:PORT, got ${f.advertise}`);
  const listen = f.listen ? { ...parseListen(f.listen), tlsCert: f.tlsCert, tlsKey: f.tlsKey, advertise: f.advertise } : undefined;
  if ((f.tlsCert || f.tlsKey) && !listen) throw configError('--tls-cert', 'a node serves wss:// only to its children: it needs --listen');
  let emulate: EmulatedCompute | undefined;
  if (f.emulateCompute !== undefined) {
    if (!(Number.isFinite(f.emulateCompute) && f.emulateCompute >= 0)) throw configError('--emulate-compute', `expected milliseconds per sample, a finite number ≥ 0, got ${f.emulateCompute}`);
    emulate = { msPerSample: f.emulateCompute, threads };
    log(emulationNotice(emulate));
  }
  let counters: NodeCounters | undefined;
  if (f.metricsPort !== undefined) {
    // prom-client is loaded only by nodes that serve metrics.
    const m = await import('../output/dashboard/worker-metrics.js');
    const metrics = m.createWorkerMetrics(threads);
    log(`metrics on ${(await m.serveWorkerMetrics(String(f.metricsPort), metrics.registry)).url}`);
    counters = metrics.counters;
  }
  return runNode({
    connect: f.connect, token: f.tokenFile ? readToken(f.tokenFile) : undefined, threads, tlsCa: f.tlsCa,
    maxReconnects: f.maxReconnects, maxAuthFailures: f.maxAuthFailures, exitAtStep: f.exitAtStep, leaveAfterStep: f.leaveAfterStep,
    log, counters, listen, emulate,
  });
}
