// A node's children in a reduction tree (`dptrain worker --listen`): its door (the same token proofs,
// TLS and rate limits as the coordinator's), each child's join, and one step request at a time per
// child, whose result (its subtree's ONE gradient sum, validated like any peer's) lands in the slot
// the parent gave it. A child that leaves, sends anything invalid or answers another request fails
// the request naming it, so that the coordinator knows whom to drop and which shards to recompute.

import type { WebSocket } from 'ws';
import { DptrainError } from '../../core/errors.js';
import { openDoor, type Door } from '../../core/protocol/door.js';
import { SumChunks } from '../../core/protocol/sum-chunks.js';
import { decodeNodeFrame, encodeFrame, maxNodeFrameBytes, requestRows, WireError, type BlockEntries, type GradChunk, type ResultHeader, type StepRequest, type WireFloat } from '../../core/protocol/wire.js';

export interface ChildDoorOptions {
  readonly host: string;
  readonly port: number;
  readonly token?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  /** The address children are told (default: the door's own). */
  readonly advertise?: string;
  readonly log: (line: string) => void;
}

/** What a child's request comes back with: its subtree's loss sums and compute times, in shard order. */
export interface ChildAnswer {
  readonly entries: BlockEntries;
}

/** A request failed because these nodes (the child, or nodes under it) failed. */
export class SubtreeLost extends DptrainError {
  constructor(readonly ids: readonly string[], why: string) {
    super('WORKER_FAILED', why);
  }
}

/** A request to a child: its answer, and the way the step's weights chunks reach it. */
export interface ChildRequest {
  readonly answer: Promise<ChildAnswer>;
  /** Whether chunk k of the child's sum is in (it sends its sum in chunks, in any order, before its answer). */
  has(k: number): boolean;
  forward(frame: Buffer): void;
}

/** How long a parent waits for a child the coordinator placed under it to connect. */
const JOIN_WAIT_MS = 10_000;
const HELLO_TIMEOUT_MS = 10_000;

interface Open {
  readonly req: number;
  readonly step: number;
  readonly rows: number;
  readonly size: number;
  readonly slot: Float32Array;
  /** The chunks of the sum landed so far. */
  readonly chunks: SumChunks;
  readonly onLanded: () => void;
  readonly resolve: (a: ChildAnswer) => void;
  readonly reject: (e: Error) => void;
}

class Child {
  open: Open | null = null;
  constructor(readonly id: string, readonly ws: WebSocket) {}

  fail(why: string, ids: readonly string[] = [this.id]): void {
    const o = this.open;
    this.open = null;
    o?.reject(new SubtreeLost(ids, why));
  }
}

export class ChildLinks {
  private door: Door | null = null;
  private readonly children = new Map<string, Child>();
  private readonly waiting = new Map<string, (() => void)[]>();
  /** The model's size and the float encoding, set by the coordinator's welcome. */
  private paramCount = 0;
  private wire: WireFloat = 'f32';

  constructor(private readonly o: ChildDoorOptions) {}

  /** Where children connect: the advertised address, or the door's own. */
  get url(): string | null {
    return this.door ? this.o.advertise ?? this.door.url : null;
  }

  async open(): Promise<string> {
    this.door = await openDoor(
      // A child's frames are gradients of the model, whose size is known only after the welcome:
      // until then the door takes the largest frame a node accepts at all (children connect after
      // it, when the coordinator places them); each frame is checked against the model anyway.
      { flag: '--listen', host: this.o.host, port: this.o.port, token: this.o.token, tlsCert: this.o.tlsCert, tlsKey: this.o.tlsKey, maxPayload: 2 ** 31 - 1, log: this.o.log },
      (ws, address) => this.accept(ws, address),
    );
    return this.url!;
  }

  /** The model the children compute (from the coordinator's welcome): it also bounds their frames. */
  configure(paramCount: number, wire: WireFloat): void {
    this.paramCount = paramCount;
    this.wire = wire;
    this.door?.limitFrames(maxNodeFrameBytes({ paramCount }));
  }

  private accept(ws: WebSocket, address: string): void {
    const timer = setTimeout(() => ws.terminate(), HELLO_TIMEOUT_MS);
    ws.once('message', (data: Buffer) => {
      clearTimeout(timer);
      let id: string;
      try {
        const { msg } = decodeNodeFrame(data, `child ${address}`, { paramCount: this.paramCount });
        if (msg.t !== 'join') throw new WireError('WIRE_UNEXPECTED', `child ${address}: expected join, got ${msg.t}`);
        id = msg.nodeId;
      } catch (e) {
        this.o.log(`dropped child ${address}: ${(e as Error).message}`);
        ws.terminate();
        return;
      }
      // The same node reconnecting replaces its old link.
      this.children.get(id)?.ws.terminate();
      const child = new Child(id, ws);
      this.children.set(id, child);
      ws.on('message', (d: Buffer, isBinary: boolean) => this.onFrame(child, d, isBinary));
      ws.on('close', () => this.gone(child, `child ${id} disconnected`));
      ws.on('error', (e) => this.gone(child, `child ${id}: socket error: ${e.message}`));
      this.o.log(`child ${id} (${address}) connected`);
      for (const wake of [...(this.waiting.get(id) ?? [])]) wake();
    });
  }

  private gone(child: Child, why: string): void {
    if (this.children.get(child.id) === child) this.children.delete(child.id);
    child.fail(why);
  }

  private onFrame(child: Child, data: Buffer, isBinary: boolean): void {
    try {
      if (!isBinary) throw new WireError('WIRE_MALFORMED', `child ${child.id}: text frame, the protocol is binary`);
      const { msg } = decodeNodeFrame(data, `child ${child.id}`, { paramCount: this.paramCount, wire: this.wire }, (r) => this.landing(child, r));
      if (msg.t === 'grad') {
        const o = child.open;
        if (!o || o.req !== msg.req) return;
        o.onLanded();
      } else if (msg.t === 'result') {
        const o = child.open;
        if (!o) return; // a late answer to a request given up: nothing waits for it
        if (msg.chunked && !o.chunks.complete) throw new WireError('WIRE_LENGTH_MISMATCH', `child ${child.id}: result after ${o.chunks.received} chunks of its sum`);
        child.open = null;
        o.resolve({ entries: msg.entries ?? { loss: [msg.lossSum], ms: [msg.computeMs] } });
      } else if (msg.t === 'lost') {
        if (child.open?.req === msg.req) child.fail(`nodes under child ${child.id} failed: ${msg.ids.join(', ')}`, msg.ids);
      } else if (msg.t === 'bye' || msg.t === 'error') {
        throw new WireError('WIRE_UNEXPECTED', `child ${child.id} said ${msg.t === 'bye' ? `bye (${msg.reason})` : `error ${msg.code}`}`);
      } else if (msg.t !== 'heartbeat') {
        throw new WireError('WIRE_UNEXPECTED', `child ${child.id}: unexpected ${msg.t}`);
      }
    } catch (e) {
      this.o.log(`dropped child ${child.id}: ${(e as Error).message}`);
      child.ws.terminate();
      this.gone(child, (e as Error).message);
    }
  }

  /**
   * Where a child's result (or a chunk of its sum) lands: the slot of its open request, once the
   * header answers it; null: a late answer, skipped.
   */
  private landing(child: Child, r: ResultHeader | GradChunk): Float32Array | null {
    const o = child.open;
    if (!o || r.req !== o.req) return null;
    if (r.step !== o.step) throw new WireError('WIRE_STALE', `child ${child.id}: result for step ${r.step}, expected step ${o.step}`);
    if (r.t === 'grad') {
      o.chunks.claim(r, `child ${child.id}`);
      return o.slot.subarray(r.at, r.at + r.count);
    }
    if (r.count !== o.rows) throw new WireError('WIRE_LENGTH_MISMATCH', `child ${child.id}: result counts ${r.count} samples, its block has ${o.rows}`);
    if ((r.entries?.loss.length ?? 1) !== o.size) throw new WireError('WIRE_LENGTH_MISMATCH', `child ${child.id}: result for ${r.entries?.loss.length ?? 1} nodes, its block has ${o.size}`);
    // The parent adds a child's sum chunk by chunk as it streams its own up: a whole one would never be added.
    if (!r.chunked) throw new WireError('WIRE_MALFORMED', `child ${child.id}: a whole sum; a child sends its sum in chunks`);
    return null;
  }

  /**
   * Sends child `id` its request ([header][indices]; the step's weights chunks follow through
   * `forward`, as they come) once it has connected, and resolves when its subtree's sum is in `slot`.
   */
  request(id: string, header: StepRequest, indices: Int32Array, slot: Float32Array, cancelled: Promise<never>, onLanded: () => void = () => undefined): ChildRequest {
    const size = header.block?.ids.length ?? 1;
    const rows = requestRows(header);
    // Frames wait here until the child is there (it may connect after the step came).
    let outbox: Buffer[] | null = [encodeFrame(header, indices)];
    let child: Child | null = null;
    let open: Open | null = null;
    const answer = (async () => {
      child = await Promise.race([this.connected(id), cancelled]);
      const c = child;
      c.fail('superseded by a new request');
      const answered = new Promise<ChildAnswer>((resolve, reject) => (open = c.open = { req: header.req, step: header.step, rows, size, slot, resolve, reject, chunks: new SumChunks(slot.length), onLanded }));
      for (const f of outbox!) c.ws.send(f);
      outbox = null;
      return Promise.race([answered, cancelled]);
    })();
    // Looked at once the node's own shard is done; a failure before that is not unhandled.
    answer.catch(() => undefined);
    return {
      answer,
      has: (k) => open?.chunks.has(k) ?? false,
      forward(frame) {
        if (outbox) outbox.push(frame);
        else child!.ws.send(frame, (err) => err && child!.fail(`send to child ${id} failed: ${err.message}`));
      },
    };
  }

  private async connected(id: string): Promise<Child> {
    const t0 = Date.now();
    for (;;) {
      const c = this.children.get(id);
      if (c) return c;
      const left = JOIN_WAIT_MS - (Date.now() - t0);
      if (left <= 0) throw new SubtreeLost([id], `child ${id} did not connect within ${JOIN_WAIT_MS} ms`);
      await new Promise<void>((resolve) => {
        const list = this.waiting.get(id) ?? [];
        const wake = (): void => {
          clearTimeout(timer);
          // Not left behind when the child never comes.
          const rest = (this.waiting.get(id) ?? []).filter((w) => w !== wake);
          if (rest.length > 0) this.waiting.set(id, rest);
          else this.waiting.delete(id);
          resolve();
        };
        const timer = setTimeout(wake, left);
        timer.unref();
        list.push(wake);
        this.waiting.set(id, list);
      });
    }
  }

  /** Ends every child link (the run is over, or this node leaves). */
  async close(): Promise<void> {
    for (const c of this.children.values()) {
      c.fail('closing');
      c.ws.terminate();
    }
    this.children.clear();
    await this.door?.close();
  }
}
