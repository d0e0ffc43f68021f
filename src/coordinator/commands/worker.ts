// `dptrain worker`: flags → a node that joins the coordinator's runs.

import { availableParallelism } from 'node:os';
import { configError } from '../../core/errors.js';
import { readToken } from '../../core/protocol/auth.js';
import { runNode } from '../../worker/node/node.js';

export interface WorkerFlags {
  connect: string;
  tokenFile?: string;
  threads?: number;
  tlsCa?: string;
  maxReconnects: number;
  exitAtStep?: number;
  leaveAfterStep?: number;
}

export async function runWorker(f: WorkerFlags): Promise<number> {
  if (!/^wss?:\/\/[^/]+/.test(f.connect)) throw configError('--connect', `expected ws://HOST:PORT or wss://HOST:PORT, got ${f.connect}`);
  const threads = f.threads ?? availableParallelism();
  if (!(Number.isInteger(threads) && threads >= 1 && threads <= 1024)) throw configError('--threads', `expected a whole number from 1 to 1024, got ${f.threads}`);
  if (!(Number.isInteger(f.maxReconnects) && f.maxReconnects >= 0)) throw configError('--max-reconnects', `expected a whole number ≥ 0, got ${f.maxReconnects}`);
  return runNode({
    connect: f.connect, token: f.tokenFile ? readToken(f.tokenFile) : undefined, threads, tlsCa: f.tlsCa,
    maxReconnects: f.maxReconnects, exitAtStep: f.exitAtStep, leaveAfterStep: f.leaveAfterStep,
    log: (l) => process.stderr.write(`dptrain worker: ${l}\n`),
  });
}
