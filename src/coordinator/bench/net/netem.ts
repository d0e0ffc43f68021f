// A network emulator without root: a TCP proxy on 127.0.0.1 giving each direction of a connection a
// token bucket (bandwidth) and a delay line (latency). It connects nowhere but the given target.

import { createConnection, createServer, type Socket } from 'node:net';
import { configError } from '../../../core/errors.js';

export interface NetProfile {
  readonly name: string;
  /** One-way latency added to every byte, in each direction. */
  readonly latencyMs: number;
  /** Link rate in each direction, 10^6 bits per second. */
  readonly bandwidthMbit: number;
}

export interface NetemOptions {
  readonly target: { readonly host: string; readonly port: number };
  readonly latencyMs: number;
  readonly bandwidthMbit: number;
  readonly listenHost?: string;
  /**
   * One token bucket per direction for all of the proxy's connections, like one NIC that all its
   * peers reach it through (a coordinator's, a parent node's); false: one per connection.
   */
  readonly shared?: boolean;
}

export interface Netem {
  readonly port: number;
  close(): Promise<void>;
  /** Bytes delivered so far: client → target (up) and target → client (down). */
  stats(): { bytesUp: number; bytesDown: number };
  /** The same per open connection (one link between two peers), by a number unique in this proxy. */
  connections(): { readonly id: number; readonly bytesUp: number; readonly bytesDown: number }[];
}

const PRESETS: Record<string, NetProfile> = {
  lan: { name: 'lan', latencyMs: 0.2, bandwidthMbit: 1000 },
  wan: { name: 'wan', latencyMs: 20, bandwidthMbit: 100 },
};

/** `loopback` (null: connect directly), `lan`, `wan` or `LATENCYms:BANDWIDTHmbit` such as `5ms:200mbit`. */
export function parseNet(text: string): NetProfile | null {
  const t = text.trim().toLowerCase();
  if (t === 'loopback') return null;
  if (t in PRESETS) return PRESETS[t];
  const m = /^(\d+(?:\.\d+)?)ms:(\d+(?:\.\d+)?)(mbit|gbit)$/.exec(t);
  const latencyMs = m ? Number(m[1]) : NaN;
  const bandwidthMbit = m ? Number(m[2]) * (m[3] === 'gbit' ? 1000 : 1) : NaN;
  if (!(latencyMs >= 0 && bandwidthMbit > 0)) {
    throw configError('--net', `expected loopback, lan, wan or LATENCYms:BANDWIDTHmbit (e.g. 5ms:200mbit), got "${text}"`);
  }
  return { name: t, latencyMs, bandwidthMbit };
}

interface Piece {
  readonly bytes: Buffer;
  /** performance.now() at which the piece leaves the far end of the link. */
  readonly due: number;
}

/**
 * One direction of one connection. Every piece gets its delivery time when it is read, from a
 * virtual-time token bucket: the bucket is full again at `paidUntil`, a piece of s bytes may leave
 * once the debt left fits the burst minus s, and leaving adds s/rate to the debt. Delivery is that
 * departure plus the latency. Departures never go backwards, so one FIFO holds both stages and byte
 * order is kept.
 */
/** When a direction's token bucket is full again: a connection's own, or shared by a proxy's connections. */
interface Bucket {
  paidUntil: number;
}

class Link {
  private readonly queue: Piece[] = [];
  private head = 0;
  private queuedBytes = 0;
  private timer: { kind: 'timeout'; handle: NodeJS.Timeout } | { kind: 'immediate'; handle: NodeJS.Immediate } | null = null;
  private sourceEnded = false;
  private paused = false;
  delivered = 0;

  constructor(
    private readonly src: Socket,
    private readonly dst: Socket,
    private readonly latencyMs: number,
    private readonly bytesPerMs: number,
    private readonly burstBytes: number,
    private readonly highWater: number,
    private readonly bucket: Bucket = { paidUntil: -Infinity },
  ) {
    src.on('data', (chunk: Buffer) => this.accept(chunk));
    src.on('end', () => {
      this.sourceEnded = true;
      if (this.timer === null) this.pump();
    });
    dst.on('drain', () => this.maybeResume());
  }

  private accept(chunk: Buffer): void {
    const now = performance.now();
    for (let off = 0; off < chunk.length; off += this.burstBytes) {
      const bytes = chunk.subarray(off, Math.min(chunk.length, off + this.burstBytes));
      const serializeMs = bytes.length / this.bytesPerMs;
      const depart = Math.max(now, this.bucket.paidUntil - (this.burstBytes - bytes.length) / this.bytesPerMs);
      this.bucket.paidUntil = Math.max(this.bucket.paidUntil, depart) + serializeMs;
      this.queue.push({ bytes, due: depart + this.latencyMs });
      this.queuedBytes += bytes.length;
    }
    // The peer's TCP window, not our memory, should absorb a sender that outruns the link.
    if (!this.paused && this.backlog() > this.highWater) {
      this.paused = true;
      this.src.pause();
    }
    if (this.timer === null) this.pump();
  }

  private backlog(): number {
    return this.queuedBytes + this.dst.writableLength;
  }

  private maybeResume(): void {
    if (this.paused && this.backlog() <= this.highWater / 2 && !this.src.destroyed) {
      this.paused = false;
      this.src.resume();
    }
  }

  /** Deliver every piece that is due, then sleep until the next one. */
  private pump(): void {
    this.timer = null;
    if (this.dst.destroyed) return this.drop();
    const now = performance.now();
    while (this.head < this.queue.length && this.queue[this.head].due <= now) {
      const { bytes } = this.queue[this.head++];
      this.queuedBytes -= bytes.length;
      this.delivered += bytes.length;
      this.dst.write(bytes);
    }
    // Let go of delivered pieces soon: each may hold a whole 64 KiB socket read.
    if (this.head === this.queue.length || this.head >= 64) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    this.maybeResume();
    if (this.head === this.queue.length) {
      if (this.sourceEnded && !this.dst.writableEnded) this.dst.end();
      return;
    }
    // setTimeout fires whole milliseconds late or early, so sleep to about 1 ms before the due time
    // and poll with setImmediate for the rest: sub-millisecond latencies stay right on average,
    // and the loop only spins while a piece is less than a millisecond away.
    const waitMs = this.queue[this.head].due - now;
    this.timer = waitMs >= 2
      ? { kind: 'timeout', handle: setTimeout(() => this.pump(), Math.floor(waitMs - 1)) }
      : { kind: 'immediate', handle: setImmediate(() => this.pump()) };
  }

  /** Forget what is queued (the receiving side is gone). */
  drop(): void {
    if (this.timer?.kind === 'timeout') clearTimeout(this.timer.handle);
    if (this.timer?.kind === 'immediate') clearImmediate(this.timer.handle);
    this.timer = null;
    this.queue.length = 0;
    this.head = 0;
    this.queuedBytes = 0;
  }
}

export async function startNetem(opts: NetemOptions): Promise<Netem> {
  const { target, latencyMs, bandwidthMbit } = opts;
  if (!(Number.isFinite(latencyMs) && latencyMs >= 0)) throw configError('netem', `latencyMs must be a finite number >= 0, got ${latencyMs}`);
  if (!(bandwidthMbit > 0)) throw configError('netem', `bandwidthMbit must be > 0, got ${bandwidthMbit}`);
  const bytesPerMs = (bandwidthMbit * 1e6) / 8 / 1000;
  // A small burst: one typical socket read, or one millisecond of the rate on fast links.
  const burstBytes = Math.max(64 * 1024, Math.ceil(bytesPerMs));
  // Room for two bandwidth-delay products, so pausing the reader never caps the throughput.
  const highWater = Math.max(1 << 20, Math.ceil(2 * bytesPerMs * latencyMs) + 4 * burstBytes);

  const links = new Set<{ id: number; up: Link; down: Link; client: Socket; upstream: Socket }>();
  let nextId = 0;
  let upDone = 0;
  let downDone = 0;
  const shared = opts.shared ? { up: { paidUntil: -Infinity }, down: { paidUntil: -Infinity } } : null;

  const server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    // Half-open on both sockets: an end from one side must wait until the other direction's queue
    // has been delivered before it closes anything.
    const upstream = createConnection({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true });
    const up = new Link(client, upstream, latencyMs, bytesPerMs, burstBytes, highWater, shared?.up);
    const down = new Link(upstream, client, latencyMs, bytesPerMs, burstBytes, highWater, shared?.down);
    const conn = { id: nextId++, up, down, client, upstream };
    links.add(conn);
    const onClose = (other: Socket, hadError: boolean): void => {
      if (hadError) other.destroy();
      if (client.destroyed && upstream.destroyed && links.delete(conn)) {
        up.drop();
        down.drop();
        upDone += up.delivered;
        downDone += down.delivered;
      }
    };
    // An error (reset, refused) tears down the pair at once; 'close' with hadError follows it.
    client.on('error', () => {});
    upstream.on('error', () => {});
    client.on('close', (hadError) => onClose(upstream, hadError));
    upstream.on('close', (hadError) => onClose(client, hadError));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, opts.listenHost ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('netem: server has no TCP address');

  return {
    port: address.port,
    stats() {
      let bytesUp = upDone;
      let bytesDown = downDone;
      for (const c of links) {
        bytesUp += c.up.delivered;
        bytesDown += c.down.delivered;
      }
      return { bytesUp, bytesDown };
    },
    connections() {
      return [...links].map((c) => ({ id: c.id, bytesUp: c.up.delivered, bytesDown: c.down.delivered }));
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const sockets = [...links].flatMap((c) => [c.client, c.upstream]);
      // Wait for each socket's 'close', which fires once its handle is released.
      const released = sockets.map((s) => (s.closed ? Promise.resolve() : new Promise((resolve) => s.once('close', resolve))));
      for (const c of links) {
        c.up.drop();
        c.down.drop();
      }
      for (const s of sockets) s.destroy();
      await Promise.all([closed, ...released]);
    },
  };
}
