// The network emulator, measured through it on 127.0.0.1: latency and bandwidth both ways, bytes
// intact and in order, backpressure on a sender that outruns the receiver, nothing left open.

import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNet, startNetem } from '../src/coordinator/bench/net/netem.js';
import { leastSquares, median } from '../src/coordinator/bench/stats.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

const closeServer = (server: Server): Promise<void> => new Promise((resolve) => server.close(() => resolve()));

function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, noDelay: true }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Everything a socket reads until its end, and the pace at which it came. */
interface Received {
  bytes: Buffer;
  /**
   * Least-squares slope of bytes received against time over every chunk: the link's rate, and
   * unlike (last − first) / time not thrown off by one chunk that the event loop handled late.
   */
  bytesPerSec: number;
}

function receiveAll(s: Socket): Promise<Received> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const at: number[] = [];
    const total: number[] = [];
    let sum = 0;
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      at.push(performance.now() / 1000);
      total.push((sum += c.length));
    });
    s.once('error', reject);
    s.once('end', () => resolve({ bytes: Buffer.concat(chunks), bytesPerSec: leastSquares(at, total).slope }));
  });
}

/** Median round trip of one byte bounced off an echo server. */
async function roundTripMs(port: number, pings: number): Promise<number> {
  const s = await dial(port);
  const times: number[] = [];
  for (let i = 0; i < pings + 3; i++) {
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      s.once('data', () => resolve());
      s.write('p');
    });
    if (i >= 3) times.push(performance.now() - t0);
  }
  s.destroy();
  return median(times);
}

// Sockets and servers only: vitest keeps timers of its own running during a test.
const TCP_HANDLES = ['TCPSocketWrap', 'TCPServerWrap', 'TCPWRAP'];
const countHandles = (): number => process.getActiveResourcesInfo().filter((r) => TCP_HANDLES.includes(r)).length;
const baseline = countHandles();

const echo = createServer({ noDelay: true }, (s) => {
  s.on('error', () => {});
  s.pipe(s);
});

describe('parseNet', () => {
  it('knows the presets and LATENCYms:BANDWIDTHmbit', () => {
    expect(parseNet('loopback')).toBeNull();
    expect(parseNet('lan')).toEqual({ name: 'lan', latencyMs: 0.2, bandwidthMbit: 1000 });
    expect(parseNet('wan')).toEqual({ name: 'wan', latencyMs: 20, bandwidthMbit: 100 });
    expect(parseNet('5ms:200mbit')).toEqual({ name: '5ms:200mbit', latencyMs: 5, bandwidthMbit: 200 });
    expect(parseNet('0.5ms:1gbit')).toMatchObject({ latencyMs: 0.5, bandwidthMbit: 1000 });
  });

  it('names the bad text in one line', () => {
    for (const bad of ['fast', '5ms', '5ms:0mbit', 'ms:100mbit', '5s:100mbit']) {
      expect(() => parseNet(bad)).toThrow(new RegExp(`^--net: expected .*got "${bad}"$`));
    }
  });

  it('refuses impossible link parameters', async () => {
    await expect(startNetem({ target: { host: '127.0.0.1', port: 1 }, latencyMs: -1, bandwidthMbit: 10 })).rejects.toThrow(/latencyMs/);
    await expect(startNetem({ target: { host: '127.0.0.1', port: 1 }, latencyMs: 1, bandwidthMbit: 0 })).rejects.toThrow(/bandwidthMbit/);
  });
});

describe('startNetem', () => {
  let echoPort = 0;
  beforeAll(async () => {
    echoPort = await listen(echo);
  });
  afterAll(() => (echo.listening ? closeServer(echo) : undefined));

  it('adds the one-way latency in each direction: 20 ms → 40 ms round trip', async () => {
    const net = await startNetem({ target: { host: '127.0.0.1', port: echoPort }, latencyMs: 20, bandwidthMbit: 100 });
    const rtt = await roundTripMs(net.port, 15);
    await net.close();
    console.log(`netem: round trip ${rtt.toFixed(2)} ms for 2 × 20 ms`);
    expect(Math.abs(rtt - 40) / 40).toBeLessThan(0.1);
  });

  it('holds a sub-millisecond latency on average (lan: 0.2 ms one-way)', async () => {
    // Against the same proxy with no latency, so the proxy's own hops cancel out.
    const rttAt = async (latencyMs: number): Promise<number> => {
      const net = await startNetem({ target: { host: '127.0.0.1', port: echoPort }, latencyMs, bandwidthMbit: 1000 });
      const rtt = await roundTripMs(net.port, 300);
      await net.close();
      return rtt;
    };
    const zero = await rttAt(0);
    const lan = await rttAt(0.2);
    console.log(`netem: lan round trip ${lan.toFixed(3)} ms, same proxy at 0 ms ${zero.toFixed(3)} ms`);
    // Never early: a piece leaves no sooner than its due time. Late by no more than the proxy's own
    // hops plus 0.1 ms. (The difference lan − zero is not a clean measure: while a piece is due
    // within a millisecond the proxy polls, so the event loop of this one process, which also runs
    // the client and the echo server, stops sleeping in epoll and its own hops get faster.)
    expect(lan).toBeGreaterThanOrEqual(0.4);
    expect(lan).toBeLessThan(zero + 0.4 + 0.1);
  });

  it('shares one bandwidth among all its connections when shared (one NIC), and gives each its own when not', async () => {
    const payload = randomBytes(2 << 20);
    const rateWith = async (shared: boolean): Promise<number> => {
      const arrived: Promise<Received>[] = [];
      const sink = createServer((s) => {
        arrived.push(receiveAll(s));
        s.on('end', () => s.end());
      });
      const net = await startNetem({ target: { host: '127.0.0.1', port: await listen(sink) }, latencyMs: 1, bandwidthMbit: 100, shared });
      const t0 = performance.now();
      const senders = await Promise.all([dial(net.port), dial(net.port)]);
      for (const s of senders) {
        s.resume();
        s.end(payload);
      }
      await Promise.all(senders.map((s) => new Promise((resolve) => s.once('close', resolve))));
      const got = await Promise.all(arrived);
      const seconds = (performance.now() - t0) / 1000;
      await net.close();
      await closeServer(sink);
      for (const r of got) expect(sha(r.bytes)).toBe(sha(payload));
      return (2 * payload.length * 8) / 1e6 / seconds;
    };
    const together = await rateWith(true);
    const apart = await rateWith(false);
    console.log(`netem: two connections, ${together.toFixed(1)} Mbit/s in all shared, ${apart.toFixed(1)} apart, for 100 each`);
    expect(Math.abs(together - 100) / 100).toBeLessThan(0.15);
    expect(apart).toBeGreaterThan(1.6 * together);
  });

  it('enforces the bandwidth client → target and keeps the bytes intact', async () => {
    const payload = randomBytes(4 << 20);
    let arrived: Promise<Received> = Promise.reject(new Error('no connection'));
    arrived.catch(() => {});
    const sink = createServer((s) => {
      arrived = receiveAll(s);
      s.on('end', () => s.end());
    });
    const net = await startNetem({ target: { host: '127.0.0.1', port: await listen(sink) }, latencyMs: 5, bandwidthMbit: 100 });
    const s = await dial(net.port);
    s.resume();
    s.end(payload);
    await new Promise((resolve) => s.once('close', resolve));
    const r = await arrived;
    expect(net.stats().bytesUp).toBe(payload.length);
    await net.close();
    await closeServer(sink);
    console.log(`netem: up ${((r.bytesPerSec * 8) / 1e6).toFixed(1)} Mbit/s for 100`);
    expect(sha(r.bytes)).toBe(sha(payload));
    expect(Math.abs((r.bytesPerSec * 8) / 1e6 - 100) / 100).toBeLessThan(0.1);
  });

  it('enforces the bandwidth target → client and keeps the bytes intact', async () => {
    const payload = randomBytes(3 << 20);
    const source = createServer((s) => {
      s.on('error', () => {});
      s.end(payload);
    });
    const net = await startNetem({ target: { host: '127.0.0.1', port: await listen(source) }, latencyMs: 5, bandwidthMbit: 80 });
    const s = await dial(net.port);
    const r = await receiveAll(s);
    s.destroy();
    await new Promise((resolve) => s.once('close', resolve));
    expect(net.stats().bytesDown).toBe(payload.length);
    await net.close();
    await closeServer(source);
    console.log(`netem: down ${((r.bytesPerSec * 8) / 1e6).toFixed(1)} Mbit/s for 80`);
    expect(sha(r.bytes)).toBe(sha(payload));
    expect(Math.abs((r.bytesPerSec * 8) / 1e6 - 80) / 80).toBeLessThan(0.1);
  });

  it('pauses the sender instead of buffering when the receiver does not read', async () => {
    const stalled: Socket[] = [];
    const sink = createServer((s) => {
      s.pause();
      stalled.push(s);
    });
    const net = await startNetem({ target: { host: '127.0.0.1', port: await listen(sink) }, latencyMs: 0, bandwidthMbit: 10_000 });
    const s = await dial(net.port);
    s.on('error', () => {});
    const payload = Buffer.alloc(64 << 20, 7);
    s.write(payload);
    await new Promise((resolve) => setTimeout(resolve, 500));
    // Kernel socket buffers take a few MB; without backpressure the proxy would hold all 64 MB.
    const forwarded = net.stats().bytesUp;
    expect(s.writableLength).toBeGreaterThan(16 << 20);
    expect(forwarded).toBeLessThan(24 << 20);
    s.destroy();
    for (const t of stalled) t.destroy();
    await net.close();
    await closeServer(sink);
  });

  it('closes the other side when one side closes, and close() leaves no handle open', async () => {
    const net = await startNetem({ target: { host: '127.0.0.1', port: echoPort }, latencyMs: 2, bandwidthMbit: 100 });
    const s = await dial(net.port);
    const back = receiveAll(s);
    s.end('hello');
    const r = await back;
    expect(r.bytes.toString()).toBe('hello');
    // A connection refused upstream closes the client side too.
    const dead = await startNetem({ target: { host: '127.0.0.1', port: 1 }, latencyMs: 0, bandwidthMbit: 100 });
    const d = await dial(dead.port);
    d.on('error', () => {});
    await new Promise((resolve) => d.once('close', resolve));
    // An open connection is torn down by close().
    const open = await dial(net.port);
    open.on('error', () => {});
    const openClosed = new Promise((resolve) => open.once('close', resolve));
    await Promise.all([net.close(), dead.close()]);
    await openClosed;
    await closeServer(echo);
    // A closed handle is released on a later turn of the event loop: allow a few.
    for (let i = 0; i < 50 && countHandles() > baseline; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(process.getActiveResourcesInfo().filter((r) => TCP_HANDLES.includes(r))).toHaveLength(baseline);
  });
});
