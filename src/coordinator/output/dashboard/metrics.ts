// The run's Prometheus metrics (prom-client), in a Registry of its own: two runs in one process
// (tests, the library) each get theirs, and nothing lands in prom-client's global registry.

import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { NodeStatus } from '../../train/records.js';

// Step phases from well under a millisecond (tiny models, local threads) to seconds (slow links).
const PHASE_BUCKETS = [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10];

/** Classes of drop reasons for the `reason` label (the full text goes to the log and the page). */
export function dropReasonClass(reason: string): string {
  const classes: readonly [RegExp, string][] = [
    [/deadline/, 'deadline'],
    [/heartbeat/, 'heartbeat'],
    [/^disconnected|socket error|send failed/, 'disconnected'],
    [/not reading/, 'not-reading'],
    [/said bye/, 'left'],
    [/reported an error/, 'node-error'],
  ];
  for (const [re, name] of classes) if (re.test(reason)) return name;
  return 'invalid-message';
}

export class RunMetrics {
  readonly registry = new Registry();
  private readonly steps: Counter;
  private readonly samples: Counter;
  private readonly loss: Gauge;
  private readonly epochTrainLoss: Gauge;
  private readonly testLoss: Gauge;
  private readonly testAccuracy: Gauge;
  private readonly rate: Gauge;
  private readonly epoch: Gauge;
  private readonly phase: Histogram<'phase'>;
  private readonly nodeBytes: Counter<'node' | 'direction'>;
  private readonly connected: Gauge;
  private readonly drops: Counter<'reason'>;
  // Byte totals already counted per node: NodeStatus carries totals, counters take increments.
  private readonly counted = new Map<string, { sent: number; received: number }>();

  constructor() {
    const registers = [this.registry];
    this.steps = new Counter({ name: 'dptrain_steps_total', help: 'Optimizer steps taken', registers });
    this.samples = new Counter({ name: 'dptrain_samples_total', help: 'Training samples processed', registers });
    this.loss = new Gauge({ name: 'dptrain_train_loss', help: 'Mean train loss of the current epoch so far', registers });
    this.epochTrainLoss = new Gauge({ name: 'dptrain_epoch_train_loss', help: 'Train loss of the last finished epoch', registers });
    this.testLoss = new Gauge({ name: 'dptrain_test_loss', help: 'Test loss after the last finished epoch', registers });
    this.testAccuracy = new Gauge({ name: 'dptrain_test_accuracy', help: 'Test accuracy (0..1) after the last finished epoch', registers });
    this.rate = new Gauge({ name: 'dptrain_samples_per_second', help: 'Training samples per second over the last step', registers });
    this.epoch = new Gauge({ name: 'dptrain_epoch', help: 'Current epoch (1-based)', registers });
    this.phase = new Histogram({
      name: 'dptrain_step_phase_seconds', help: 'Step split: compute (slowest shard), communication (the rest of the wait), update (reduce + optimizer)',
      labelNames: ['phase'], buckets: PHASE_BUCKETS, registers,
    });
    this.nodeBytes = new Counter({ name: 'dptrain_node_bytes_total', help: 'Bytes exchanged with each remote node', labelNames: ['node', 'direction'], registers });
    this.connected = new Gauge({ name: 'dptrain_nodes_connected', help: 'Remote worker nodes connected now', registers });
    this.drops = new Counter({ name: 'dptrain_node_drops_total', help: 'Remote nodes dropped, by reason', labelNames: ['reason'], registers });
  }

  step(s: { rows: number; loss: number; samplesPerSec: number; epoch: number; computeMs: number; commMs: number; updateMs: number }): void {
    this.steps.inc();
    this.samples.inc(s.rows);
    this.loss.set(s.loss);
    this.rate.set(s.samplesPerSec);
    this.epoch.set(s.epoch);
    this.phase.observe({ phase: 'compute' }, s.computeMs / 1000);
    this.phase.observe({ phase: 'communication' }, s.commMs / 1000);
    this.phase.observe({ phase: 'update' }, s.updateMs / 1000);
  }

  epochEnd(e: { trainLoss: number; testLoss: number | null; testAccuracy: number | null }): void {
    this.epochTrainLoss.set(e.trainLoss);
    if (e.testLoss !== null && Number.isFinite(e.testLoss)) this.testLoss.set(e.testLoss);
    if (e.testAccuracy !== null) this.testAccuracy.set(e.testAccuracy);
  }

  nodes(status: readonly NodeStatus[]): void {
    this.connected.set(status.length);
    for (const n of status) {
      const before = this.counted.get(n.id) ?? { sent: 0, received: 0 };
      // A reconnecting node gets a new id, so totals only grow; the guard keeps a counter monotonic anyway.
      if (n.bytesSent > before.sent) this.nodeBytes.inc({ node: n.id, direction: 'sent' }, n.bytesSent - before.sent);
      if (n.bytesReceived > before.received) this.nodeBytes.inc({ node: n.id, direction: 'received' }, n.bytesReceived - before.received);
      this.counted.set(n.id, { sent: Math.max(before.sent, n.bytesSent), received: Math.max(before.received, n.bytesReceived) });
    }
  }

  /** Counts the drop and forgets the node's byte series: reconnects come back under new ids. */
  nodeDropped(id: string, reason: string): void {
    this.drops.inc({ reason: dropReasonClass(reason) });
    this.nodeBytes.remove({ node: id, direction: 'sent' });
    this.nodeBytes.remove({ node: id, direction: 'received' });
    this.counted.delete(id);
  }

  nodeCount(n: number): void {
    this.connected.set(n);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
