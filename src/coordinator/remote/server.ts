// The coordinator's side of remote worker nodes: its door (core/protocol/door.ts: nothing is read
// from a peer that has not proven the token), a handshake (hello → welcome with the config, the
// chunk size of the shard recipe, the kernels and the data or how to load it), and membership: a
// node joins the scheduler at the next step boundary and leaves, with the reason logged, when it
// is dropped.

import type { WebSocket } from 'ws';
import type { KernelBackend } from '../../core/kernels/index.js';
import { DptrainError } from '../../core/errors.js';
import type { BucketOptions } from '../../core/protocol/admission.js';
import { openDoor } from '../../core/protocol/door.js';
import { decodeNodeFrame, encodeFrame, maxNodeFrameBytes, NAMED_SOURCES, PROTOCOL_VERSION, type Welcome, type WireFloat } from '../../core/protocol/wire.js';
import { RemoteNode, StepWeights } from './node-handle.js';
import type { RemoteAttachment, RunContext } from '../train/records.js';

export interface ListenOptions {
  readonly host: string;
  readonly port: number;
  /** Required unless host is a loopback address. */
  readonly token?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly deadlineMs: number;
  readonly heartbeatMs: number;
  /** Weights and gradients as bf16 on every node's link (sums and optimizer stay f32); f32 when absent. */
  readonly wire?: WireFloat;
  readonly log: (line: string) => void;
  /** Per-address limits on challenge and upgrade requests. */
  readonly buckets?: BucketOptions;
  /** Told where the server listens (the port when 0 was asked for). */
  readonly onListening?: (url: string) => void;
  /** Told of every join and drop (the dashboard's executors' table). */
  readonly onMembership?: (e: MembershipEvent) => void;
}

export type MembershipEvent =
  | { readonly kind: 'joined'; readonly id: string; readonly address: string; readonly threads: number }
  | { readonly kind: 'dropped'; readonly id: string; readonly address: string; readonly reason: string };

export interface NodeInfo {
  readonly id: string;
  readonly address: string;
  readonly threads: number;
  readonly traffic: { sent: number; received: number };
  lastSeen: number;
}

const HELLO_TIMEOUT_MS = 10_000;

export interface RemoteServer extends RemoteAttachment {
  readonly url: string;
  readonly nodes: ReadonlyMap<string, NodeInfo>;
}

export async function startRemoteServer(run: RunContext, o: ListenOptions): Promise<RemoteServer> {
  const paramCount = run.arena.layout.paramCount;
  const freeSlots = [...run.landingSlots];
  const nodes = new Map<string, NodeInfo>();
  const live = new Set<RemoteNode>();
  /** The backend each node was welcomed with, and its socket (to ask it to rejoin when that changes). */
  const welcomedWith = new Map<RemoteNode, { backend: KernelBackend; ws: WebSocket }>();
  let nextId = 1;
  const weights = new StepWeights(run.arena);

  const handshake = (ws: WebSocket, address: string): void => {
    const timer = setTimeout(() => {
      o.log(`dropped ${address}: no hello within ${HELLO_TIMEOUT_MS} ms`);
      ws.terminate();
    }, HELLO_TIMEOUT_MS);
    ws.once('message', (data: Buffer, isBinary: boolean) => {
      clearTimeout(timer);
      let threads: number;
      let best: KernelBackend;
      let listen: string | undefined;
      try {
        if (!isBinary) throw new DptrainError('WIRE_MALFORMED', `${address}: text frame, the protocol is binary`);
        const { msg } = decodeNodeFrame(data, address, { paramCount });
        if (msg.t !== 'hello') throw new DptrainError('WIRE_UNEXPECTED', `${address}: expected hello, got ${msg.t}`);
        threads = msg.threads;
        best = msg.best;
        listen = msg.listen;
      } catch (e) {
        o.log(`dropped ${address}: ${(e as Error).message}`);
        ws.terminate();
        return;
      }
      const slot = freeSlots.shift();
      if (slot === undefined) {
        o.log(`refused ${address}: all ${run.landingSlots.length} node places are taken (--max-nodes)`);
        ws.send(encodeFrame({ t: 'bye', reason: 'the coordinator is full' }), () => ws.close());
        return;
      }
      const id = `node${nextId++}`;
      const kernels = run.kernels.admit(best, `node ${id} (${address})`);
      const info: NodeInfo = { id, address, threads, traffic: { sent: 0, received: 0 }, lastSeen: Date.now() };
      const node: RemoteNode = new RemoteNode({
        id, threads, ws, arena: run.arena, order: run.order, weights, wire: o.wire ?? 'f32', deadlineMs: o.deadlineMs, heartbeatMs: o.heartbeatMs, traffic: info.traffic, listen,
        log: o.log,
        onGone: (reason) => {
          live.delete(node);
          welcomedWith.delete(node);
          nodes.delete(id);
          run.scheduler.leave(node);
          freeSlots.push(slot);
          freeSlots.sort((a, b) => a - b);
          o.log(`node ${id} (${address}) dropped: ${reason}`);
          o.onMembership?.({ kind: 'dropped', id, address, reason });
        },
      });
      ws.on('message', () => (info.lastSeen = Date.now()));
      ws.on('pong', () => (info.lastSeen = Date.now()));
      const welcome = welcomeFrame(run, id, kernels, o.wire ?? 'f32');
      info.traffic.sent += welcome.length;
      ws.send(welcome);
      live.add(node);
      welcomedWith.set(node, { backend: kernels, ws });
      nodes.set(id, info);
      run.scheduler.join(node, [slot]);
      o.log(`node ${id} (${address}, ${threads} thread${threads > 1 ? 's' : ''}${listen ? `, takes children on ${listen}` : ''}) joined; it takes part from step ${run.scheduler.nextStep}`);
      o.onMembership?.({ kind: 'joined', id, address, threads });
    });
  };

  const door = await openDoor(
    { flag: '--listen', host: o.host, port: o.port, token: o.token, tlsCert: o.tlsCert, tlsKey: o.tlsKey, maxPayload: maxNodeFrameBytes({ paramCount }), buckets: o.buckets, log: o.log },
    (ws, address) => handshake(ws, address),
  );
  const url = door.url;
  o.onListening?.(url);
  o.log(`listening for worker nodes on ${url}${door.tokenRequired ? ' (token required)' : ''}`);
  return {
    url,
    nodes,
    status: () =>
      [...nodes.values()].map((n) => ({
        id: n.id, address: n.address, threads: n.threads, bytesSent: n.traffic.sent, bytesReceived: n.traffic.received, lastSeenMsAgo: Date.now() - n.lastSeen,
      })),
    kernelsChanged(backend) {
      for (const [node, w] of welcomedWith) {
        if (w.backend === backend) continue;
        const reason = `the run now computes with ${backend}: rejoin`;
        // A bye that is not the end of training: the node reconnects and is welcomed anew.
        w.ws.send(encodeFrame({ t: 'bye', reason }), () => node.drop(reason));
      }
    },
    async close() {
      await Promise.all([...live].map((n) => n.close()));
      await door.close();
    },
  };
}

/**
 * The welcome: the config, the recipe's chunk rows, the kernels, and the data: inline (the config
 * then without its data section, whose paths are this machine's) unless the node can load it by name.
 */
function welcomeFrame(run: RunContext, nodeId: string, kernels: KernelBackend, wire: WireFloat): Buffer {
  const train = run.data.train;
  const inline = !NAMED_SOURCES.includes(run.config.data.source) || run.dataInline;
  const { data: _local, ...withoutData } = run.config.raw;
  const header: Welcome = {
    t: 'welcome', v: PROTOCOL_VERSION, nodeId, config: JSON.stringify(inline ? withoutData : run.config.raw), chunkRows: run.chunkRows, kernels,
    data: inline ? 'inline' : 'source', n: train.n, nIn: train.nIn, yWidth: train.yWidth, classes: train.classes, wire,
  };
  return inline ? encodeFrame(header, train.x, train.y) : encodeFrame(header);
}
