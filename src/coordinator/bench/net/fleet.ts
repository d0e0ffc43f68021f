// The worker nodes of one benchmark row: `dptrain worker` processes, each behind its own link, and
// the one place that stops all of them, politely or at once.

import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DptrainError } from '../../../core/errors.js';
import { createNetnsLink, type NetnsLink } from './netns.js';
import { startNetem, type Netem, type NetProfile } from './netem.js';
import { PACKAGE_ROOT } from '../../../core/io/package-files.js';

/** How a node reaches the coordinator. */
export type LinkMode = 'loopback' | 'proxy' | 'namespace';

export interface NodeProcess {
  readonly index: number;
  readonly pid: number;
  readonly exited: Promise<void>;
  /** The last lines it wrote to stderr, for error messages. */
  stderrTail: string;
}

export const CLI = join(PACKAGE_ROOT, 'dist', 'src', 'cli.js');

// In a namespace tbf shapes the bandwidth, so the proxy only delays: a rate it never reaches.
const UNSHAPED_MBIT = 100_000;
const STDERR_TAIL_CHARS = 2000;

/**
 * A port free on 127.0.0.1 now, below the kernel's usual ephemeral range (32768 and up): a port the
 * system handed out for us would soon go to some outgoing connection (a proxy's) before the node
 * that is to listen on it has started.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const srv = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (ok) {
      await new Promise<void>((r) => srv.close(() => r()));
      return port;
    }
    if (attempt >= 50) throw new Error('no free port found in 20000–31999');
  }
}

export class Fleet {
  readonly nodes: NodeProcess[] = [];
  private readonly children: ChildProcess[] = [];
  private readonly proxies: Netem[] = [];
  private readonly links: NetnsLink[] = [];
  private stopping = false;
  private coordinatorLink: Promise<Netem> | null = null;
  private stopped: Promise<void> | null = null;

  constructor(
    private readonly mode: LinkMode,
    private readonly net: NetProfile | null,
    /** Told when a node exits before stop() was called: the row cannot finish without it. */
    private readonly onEarlyExit: (e: Error) => void,
    /** Emulated links as one NIC per listener: all nodes reach the coordinator (and a parent's children it) through one link. */
    private readonly sharedLinks = false,
  ) {
    if (!existsSync(CLI)) throw new DptrainError('FILE_UNREADABLE', `${CLI} is missing: build dptrain first (npm run build)`);
  }

  /**
   * Starts node `index` (0-based) with `threads` threads, connected to the coordinator on
   * 127.0.0.1:port; given `emulateMsPerSample`, with emulated compute (`--emulate-compute`). With
   * `tree`, the node takes children (`--listen`), behind an emulated link of its own when the
   * fleet's links are emulated: its children reach it through that link, as they would its NIC.
   */
  async add(index: number, coordinatorPort: number, threads: number, emulateMsPerSample?: number, tree = false): Promise<NodeProcess> {
    if (this.stopping) throw new Error('fleet: add() after stop()');
    const target = { host: '127.0.0.1', port: coordinatorPort };
    let url = `ws://127.0.0.1:${coordinatorPort}`;
    let prefix: readonly string[] = [];
    let proxy: Netem | null = null;
    let link: NetnsLink | null = null;
    if (this.mode === 'namespace') {
      try {
        link = createNetnsLink(index + 1, this.net?.bandwidthMbit ?? null);
      } catch (e) {
        throw new DptrainError('WORKER_FAILED', `--net-namespaces: node ${index + 1}: ${(e as Error).message}`);
      }
      this.links.push(link);
      proxy = await startNetem({ target, latencyMs: this.net?.latencyMs ?? 0, bandwidthMbit: UNSHAPED_MBIT, listenHost: link.hostAddress });
      url = `ws://${link.hostAddress}:${proxy.port}`;
      prefix = link.exec;
    } else if (this.mode === 'proxy' && this.net && this.sharedLinks) {
      // The coordinator's one link, made by the first node and taken by the others.
      this.coordinatorLink ??= startNetem({ target, latencyMs: this.net.latencyMs, bandwidthMbit: this.net.bandwidthMbit, shared: true });
      const shared = await this.coordinatorLink;
      if (!this.proxies.includes(shared)) proxy = shared;
      url = `ws://127.0.0.1:${shared.port}`;
    } else if (this.mode === 'proxy' && this.net) {
      proxy = await startNetem({ target, latencyMs: this.net.latencyMs, bandwidthMbit: this.net.bandwidthMbit });
      url = `ws://127.0.0.1:${proxy.port}`;
    }
    if (proxy) this.proxies.push(proxy);
    let listen: string[] = [];
    if (tree) {
      if (this.mode === 'namespace') throw new DptrainError('CONFIG_INVALID', '--fanout with --net-namespaces: a tree\'s links between nodes are emulated by proxies only');
      const port = await freePort();
      listen = ['--listen', `127.0.0.1:${port}`];
      if (this.mode === 'proxy' && this.net) {
        const inbound = await startNetem({ target: { host: '127.0.0.1', port }, latencyMs: this.net.latencyMs, bandwidthMbit: this.net.bandwidthMbit, shared: this.sharedLinks });
        this.proxies.push(inbound);
        listen.push('--advertise', `ws://127.0.0.1:${inbound.port}`);
      }
    }
    // stop() may have come while the proxy was starting, and may be past closing proxies: undo here.
    if (this.stopping) {
      await proxy?.close();
      link?.remove();
      throw new Error('fleet: stopped while adding a node');
    }
    const emulate = emulateMsPerSample === undefined ? [] : ['--emulate-compute', String(emulateMsPerSample)];
    const argv = [process.execPath, CLI, 'worker', '--connect', url, '--threads', String(threads), '--max-reconnects', '3', ...emulate, ...listen];
    const cmd = [...prefix, ...argv];
    const child = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    this.children.push(child);
    // A process that could not be started emits 'error' and may never emit 'exit'.
    const exited = new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', () => resolve());
    });
    const node: NodeProcess = { index, pid: child.pid ?? -1, exited, stderrTail: '' };
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (node.stderrTail = (node.stderrTail + d).slice(-STDERR_TAIL_CHARS)));
    child.once('error', (e) => this.early(node, `could not start: ${e.message}`));
    child.once('exit', (code, signal) => this.early(node, `exited (${signal ?? `code ${code}`})`));
    this.nodes.push(node);
    return node;
  }

  /**
   * Bytes each emulated link (a connection through one of the row's proxies: a node's link to the
   * coordinator or to its parent) has carried so far, each way, by a key stable while it is open.
   * Empty without emulated links.
   */
  linkBytes(): Map<string, { up: number; down: number }> {
    const out = new Map<string, { up: number; down: number }>();
    this.proxies.forEach((p, i) => {
      for (const c of p.connections()) out.set(`${i}:${c.id}`, { up: c.bytesUp, down: c.bytesDown });
    });
    return out;
  }

  private early(node: NodeProcess, what: string): void {
    if (this.stopping) return;
    const said = node.stderrTail.trim().split('\n').slice(-2).join(' | ');
    this.onEarlyExit(new DptrainError('WORKER_FAILED', `worker node ${node.index + 1} (pid ${node.pid}) ${what} before its row finished${said ? `: ${said}` : ''}`));
  }

  /**
   * Gives the nodes `graceMs` to leave on their own (the coordinator said bye), kills the rest,
   * then closes the proxies and removes the namespaces. Idempotent.
   */
  stop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.stopped ??= (async () => {
      const all = Promise.all(this.nodes.map((n) => n.exited));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([all, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
      for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await all;
      await Promise.all(this.proxies.map((p) => p.close()));
      for (const l of this.links) l.remove();
    })();
    return this.stopped;
  }

  /** At once and synchronously, for an exit handler: kill every node, remove the namespaces. */
  stopNow(): void {
    this.stopping = true;
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const l of this.links) l.remove();
  }
}
