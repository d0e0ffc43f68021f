// `dptrain worker --metrics-port`: the node's own counters (steps served, compute time, bytes,
// reconnects) in a Registry of its own, served as GET /metrics on loopback or any address given.

import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Registry } from 'prom-client';
import { configError } from '../../../core/errors.js';
import type { NodeCounters } from '../../../worker/node/node.js';
import { parseDashboardAddress } from './server.js';

export interface WorkerMetrics {
  readonly counters: NodeCounters;
  readonly registry: Registry;
}

export function createWorkerMetrics(threads: number): WorkerMetrics {
  const registry = new Registry();
  const registers = [registry];
  const steps = new Counter({ name: 'dptrain_worker_steps_total', help: 'Steps this node computed and answered', registers });
  const compute = new Counter({ name: 'dptrain_worker_compute_seconds_total', help: 'Time spent computing gradients for answered steps', registers });
  const bytes = new Counter({ name: 'dptrain_worker_bytes_total', help: 'Bytes received from the coordinator and sent back as results', labelNames: ['direction'], registers });
  const reconnects = new Counter({ name: 'dptrain_worker_reconnects_total', help: 'Times the node lost its coordinator and tried again', registers });
  new Gauge({ name: 'dptrain_worker_threads', help: 'Worker threads of this node', registers }).set(threads);
  return {
    registry,
    counters: {
      stepServed(computeMs, resultBytes) {
        steps.inc();
        compute.inc(computeMs / 1000);
        bytes.inc({ direction: 'sent' }, resultBytes);
      },
      received: (n) => bytes.inc({ direction: 'received' }, n),
      reconnecting: () => reconnects.inc(),
    },
  };
}

/** Serves GET /metrics; anything else is 404. Listening errors are usage errors naming the flag. */
export async function serveWorkerMetrics(address: string, registry: Registry): Promise<{ url: string; server: Server }> {
  const { host, port } = parseDashboardAddress('--metrics-port', address);
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (e: unknown) => res.writeHead(500).end(String(e)),
      );
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(configError(`--metrics-port ${address}`, e.message)));
    server.listen(port, host, () => resolve());
  });
  // The node's life is the coordinator's; a metrics listener must not keep it running after.
  server.unref();
  const addr = server.address();
  return { url: `http://${host}:${typeof addr === 'object' && addr ? addr.port : port}/metrics`, server };
}
