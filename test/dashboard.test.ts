// The dashboard without a browser: the bounded history, the feed's step split and batch loss,
// /metrics as strict Prometheus text (one registry per run), who may read the page, the page's
// files (no external address), and the CLI's flags (a port in use, a replayed metrics file).

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RunHistory, type RunInfo } from '../src/coordinator/output/dashboard/history.js';
import { RunMetrics } from '../src/coordinator/output/dashboard/metrics.js';
import { createFeed } from '../src/coordinator/output/dashboard/feed.js';
import { startDashboard, type DashboardServer } from '../src/coordinator/output/dashboard/server.js';
import { sessionValue } from '../src/coordinator/output/dashboard/access.js';
import type { Reporter, StepRecord } from '../src/coordinator/train/records.js';
import { parsePrometheusText, sampleValue } from './prometheus-text.js';
import { CLI, killAll, track } from './remote-helpers.js';

afterAll(killAll);

const TOKEN = 'dashboard-test-token-0123456789';
const info = (): RunInfo => ({
  live: true, source: 'live run', config: { training: { epochs: 3 } }, stop: { epochs: 3, maxSteps: null, targetLoss: null, targetAccuracy: 0.9 },
  backend: null, threads: null, params: null, train: null, test: null, batchSize: 4, resumedAt: null,
});
const silent: Reporter = { start() {}, step() {}, epoch() {}, log() {}, close() {} };

function record(step: number, epoch: number, batch: number, loss: number, rows = 4, nodes: StepRecord['nodes'] = []): StepRecord {
  return {
    step, epoch, batch, batches: 10, rows, loss, stepMs: 10, updateMs: 2, plan: [], nodes,
    shards: [{ by: 'local/wasm', rows: rows / 2, computeMs: 5 }, { by: 'node1', rows: rows / 2, computeMs: 6 }],
  };
}

const servers: DashboardServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

describe('the history', () => {
  it('stays bounded and keeps the whole run at a coarser grain', () => {
    const h = new RunHistory(info(), 100);
    const mark = h.mark();
    for (let s = 1; s <= 10_000; s++) {
      h.addStep({ step: s, epoch: 1, loss: 1 / s, batchLoss: null, samplesPerSec: 100, computeMs: 1, commMs: 0.5, updateMs: 0.2, batches: 10_000 });
    }
    const snap = h.snapshot();
    expect(snap.points.length).toBeLessThanOrEqual(100);
    expect(snap.points.length).toBeGreaterThanOrEqual(50);
    expect(snap.points[0].step).toBe(snap.stride);
    expect(snap.points.at(-1)!.step).toBeGreaterThan(10_000 - snap.stride);
    // Merged meanwhile: the server must send a snapshot, not a delta.
    expect(h.deltaSince(mark)).toBeNull();
    const now = h.mark();
    h.addLog('a line');
    const d = h.deltaSince(now)!;
    expect(d.log.map((l) => l.text)).toEqual(['a line']);
    expect(d.points).toHaveLength(0);
  });

  it('the feed recovers each batch\'s loss from the epoch means and splits the step', () => {
    const h = new RunHistory(info());
    const feed = createFeed(silent, h, new RunMetrics());
    feed.reporter.start({ backend: 'wasm', threads: 2, params: 10, train: 40, test: 8, epochs: 3, batchSize: 4, resumedAt: null });
    // Batch losses 2, 4, 6: running means 2, 3, 4.
    feed.reporter.step(record(1, 0, 0, 2));
    feed.reporter.step(record(2, 0, 1, 3));
    feed.reporter.step(record(3, 0, 2, 4));
    const pts = h.snapshot().points;
    expect(pts.map((p) => p.batchLoss)).toEqual([2, 4, 6]);
    expect(pts[0]).toMatchObject({ step: 1, epoch: 1, computeMs: 6, updateMs: 2, commMs: 2, samplesPerSec: 400 });
    feed.membership({ kind: 'joined', id: 'node1', address: '127.0.0.1:5000', threads: 1 });
    feed.membership({ kind: 'dropped', id: 'node1', address: '127.0.0.1:5000', reason: 'disconnected' });
    const rows = h.snapshot().executors;
    expect(rows.find((r) => r.id === 'local')).toMatchObject({ state: 'active', threads: 2 });
    expect(rows.find((r) => r.id === 'node1')).toMatchObject({ state: 'dropped', reason: 'disconnected' });
  });

  it('keeps the table bounded when nodes come and go', () => {
    const h = new RunHistory(info());
    for (let i = 1; i <= 80; i++) {
      h.upsertExecutor({ id: `node${i}`, kind: 'node', address: `10.0.0.1:${i}`, threads: 1, bytesSent: 0, bytesReceived: 0, lastSeenMsAgo: 0 });
      if (i < 80) h.dropExecutor(`node${i}`, 'dropped', 'disconnected');
    }
    const rows = h.snapshot().executors;
    expect(rows.filter((r) => r.state === 'dropped')).toHaveLength(50);
    expect(rows.at(-1)).toMatchObject({ id: 'node80', state: 'active' });
    expect(rows[0].id).toBe('node30');
  });
});

describe('/metrics', () => {
  it('is strict Prometheus text, per run, and its counters move between scrapes', async () => {
    const runs = [0, 1].map(() => {
      const history = new RunHistory(info());
      const metrics = new RunMetrics();
      return { history, metrics, feed: createFeed(silent, history, metrics) };
    });
    const dash = await Promise.all(runs.map((r) => startDashboard({ host: '127.0.0.1', port: 0, history: r.history, metrics: r.metrics })));
    servers.push(...dash);
    const scrape = async (i: number) => {
      const res = await fetch(`${dash[i].url}metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      return parsePrometheusText(await res.text());
    };
    const node = { id: 'node1', address: '127.0.0.1:5000', threads: 1, bytesSent: 1000, bytesReceived: 800, lastSeenMsAgo: 3 };
    runs[0].feed.reporter.step(record(1, 0, 0, 2, 4, [node]));
    const first = await scrape(0);
    runs[0].feed.reporter.step(record(2, 0, 1, 3, 4, [{ ...node, bytesSent: 2500, bytesReceived: 1700 }]));
    const mid = await scrape(0);
    expect(sampleValue(mid, 'dptrain_node_bytes_total', { node: 'node1', direction: 'sent' })).toBe(2500);
    expect(sampleValue(mid, 'dptrain_node_bytes_total', { node: 'node1', direction: 'received' })).toBe(1700);
    runs[0].feed.membership({ kind: 'dropped', id: 'node1', address: node.address, reason: 'no result for step 3 within the 30000 ms deadline' });
    runs[0].feed.reporter.epoch({ epoch: 0, step: 2, trainLoss: 3, test: { loss: 2.5, accuracy: 0.75, confusion: null, n: 8 }, samplesPerSec: 400, seconds: 0.02, stopping: false });
    const second = await scrape(0);
    expect(sampleValue(first, 'dptrain_steps_total')).toBe(1);
    expect(sampleValue(second, 'dptrain_steps_total')).toBe(2);
    expect(sampleValue(second, 'dptrain_samples_total')).toBe(8);
    // A dropped node's byte series go (a reconnect comes back under a new id).
    expect(sampleValue(second, 'dptrain_node_bytes_total', { node: 'node1', direction: 'sent' })).toBeUndefined();
    expect(sampleValue(second, 'dptrain_node_drops_total', { reason: 'deadline' })).toBe(1);
    expect(sampleValue(second, 'dptrain_test_accuracy')).toBe(0.75);
    expect(sampleValue(second, 'dptrain_step_phase_seconds_count', { phase: 'compute' })).toBe(2);
    expect(second.get('dptrain_step_phase_seconds')?.type).toBe('histogram');
    // The other run's registry saw none of it.
    const other = await scrape(1);
    expect(sampleValue(other, 'dptrain_steps_total')).toBe(0);
  });

  it('dptrain worker --metrics-port with a bad address: one line, exit 2 (the served counters are checked in the browser test)', () => {
    const r = spawnSync(process.execPath, [CLI, 'worker', '--connect', 'ws://127.0.0.1:9', '--metrics-port', 'x:y'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual(['dptrain: --metrics-port: expected [HOST:]PORT, got x:y']);
  });
});

async function get(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { redirect: 'manual', ...init });
}

function nonLoopbackIPv4(): string | null {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return null;
}

describe('who may read the dashboard', () => {
  it('off loopback, the token is required: refused without it (401), a cookie once shown', async () => {
    const ip = nonLoopbackIPv4();
    // With a non-loopback address on this machine, bind all interfaces and come in through it;
    // without one, force the non-loopback policy on 127.0.0.1.
    const host = ip ? '0.0.0.0' : '127.0.0.1';
    const dash = await startDashboard({ host, port: 0, token: TOKEN, history: new RunHistory(info()), metrics: new RunMetrics(), requireToken: ip === null });
    servers.push(dash);
    const base = `http://${ip ?? '127.0.0.1'}:${new URL(dash.url).port}/`;
    for (const path of ['', 'metrics', 'api/events', 'api/snapshot', 'static/app.js', 'vendor/uPlot.esm.js']) expect((await get(base + path)).status).toBe(401);
    expect((await get(`${base}?token=wrong-token-wrong-token`)).status).toBe(401);
    expect((await get(base, { headers: { cookie: 'dptrain_dashboard=0000' } })).status).toBe(401);
    const login = await get(`${base}?token=${TOKEN}`);
    expect(login.status).toBe(303);
    expect(login.headers.get('location')).toBe('/');
    const cookie = login.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^dptrain_dashboard=[0-9a-f]{64}; HttpOnly; SameSite=Strict; Path=\/$/);
    expect(cookie).not.toContain(TOKEN);
    const page = await get(base, { headers: { cookie: cookie.split(';')[0] } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>dptrain dashboard</title>');
    expect((await get(`${base}metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect((await get(`${base}api/snapshot`, { headers: { cookie: `dptrain_dashboard=${sessionValue(TOKEN)}` } })).status).toBe(200);
    // Read-only: nothing but GET and HEAD.
    expect((await get(`${base}api/snapshot`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: '{}' })).status).toBe(405);
  });

  it('without a token it will not serve off loopback; on loopback it wants a loopback Host', async () => {
    await expect(startDashboard({ host: '0.0.0.0', port: 0, history: new RunHistory(info()), metrics: null })).rejects.toThrow(/--dashboard 0\.0\.0\.0:0: a --token-file is required/);
    const dash = await startDashboard({ host: '127.0.0.1', port: 0, history: new RunHistory(info()), metrics: null });
    servers.push(dash);
    expect((await get(dash.url)).status).toBe(200);
    // A page on another site that rebinds its name to 127.0.0.1 still sends its own Host.
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      request(dash.url, { headers: { host: 'attacker.example:80' } }, (res) => resolve(res.statusCode ?? 0)).on('error', reject).end();
    });
    expect(status).toBe(403);
  });

  it('the page loads nothing from anywhere but its server', async () => {
    const dash = await startDashboard({ host: '127.0.0.1', port: 0, history: new RunHistory(info()), metrics: null });
    servers.push(dash);
    const res = await get(dash.url);
    expect(res.headers.get('content-security-policy')).toMatch(/default-src 'none'; script-src 'self'/);
    const html = await res.text();
    const refs = [...html.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((m) => m[1]);
    expect(refs.length).toBeGreaterThanOrEqual(4);
    for (const r of refs) expect(r).toMatch(/^(\/(?!\/)|data:)/);
    expect(html).not.toMatch(/https?:\/\//);
    for (const path of ['static/app.js', 'static/style.css']) {
      const text = await (await get(dash.url + path)).text();
      expect(text).not.toMatch(/https?:\/\/|url\(|@import/);
    }
    // uPlot names addresses only in comments; its code imports and fetches nothing.
    const uplot = await (await get(`${dash.url}vendor/uPlot.esm.js`)).text();
    expect(uplot).toMatch(/export \{ uPlot as default \}/);
    expect(uplot).not.toMatch(/\bimport\s*[({'"]|\bfetch\(|XMLHttpRequest|new WebSocket|EventSource/);
  });
});

function dptrain(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const xor = {
  model: { layers: [2, 8, 1], hidden: 'tanh', output: 'sigmoid' }, loss: 'bce', optimizer: { name: 'adam', lr: 0.05 },
  data: { source: 'synthetic', name: 'xor', n: 64 }, training: { epochs: 6, batchSize: 8, seed: 1 },
};

describe('dptrain train --dashboard and dptrain dashboard', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dptrain-dash-'));
  writeFileSync(join(dir, 'c.json'), JSON.stringify(xor));

  it('a port in use, a malformed address, or another address without a token: one line, exit 2, no training', async () => {
    const busy: Server = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    const port = (busy.address() as { port: number }).port;
    try {
      const r = dptrain(['train', '--config', 'c.json', '--workers', '1', '--checkpoint-dir', 'ck-busy', '--dashboard', String(port)], dir);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toEqual([`dptrain: --dashboard 127.0.0.1:${port}: listen EADDRINUSE: address already in use 127.0.0.1:${port}`]);
      expect(r.stdout).toBe('');
      expect(existsSync(join(dir, 'ck-busy'))).toBe(false);
    } finally {
      busy.close();
    }
    const bad = dptrain(['train', '--config', 'c.json', '--dashboard', 'localhost:http'], dir);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toEqual(['dptrain: --dashboard: expected [HOST:]PORT, got localhost:http']);
    const open = dptrain(['train', '--config', 'c.json', '--dashboard', '0.0.0.0:0'], dir);
    expect(open.code).toBe(2);
    expect(open.stderr.trim().split('\n')).toEqual(['dptrain: --dashboard 0.0.0.0:0: a --token-file is required to serve the dashboard on an address other than loopback']);
  });

  it('shows a finished run from its metrics file, marked not live', async () => {
    const r = dptrain(['train', '--config', 'c.json', '--workers', '1', '--checkpoint-dir', 'ck', '--metrics', 'm.jsonl', '--metrics-every', '2'], dir);
    expect(r.code).toBe(0);
    const lines = readFileSync(join(dir, 'm.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; stepMs?: number });
    expect(lines.filter((l) => l.type === 'step').every((l) => typeof l.stepMs === 'number')).toBe(true);
    const child = track(spawn(process.execPath, [CLI, 'dashboard', '--metrics', 'm.jsonl', '--port', '0'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    const t0 = Date.now();
    while (!/http:\/\/\S+/.test(out)) {
      if (Date.now() - t0 > 30_000 || child.exitCode !== null) throw new Error(`no URL from dptrain dashboard: ${out}`);
      await new Promise((res) => setTimeout(res, 50));
    }
    const url = /(http:\/\/\S+)/.exec(out)![1];
    const snap = (await (await fetch(`${url}api/snapshot`)).json()) as { info: { live: boolean }; status: { finished: boolean; step: number }; epochs: unknown[]; points: { commMs: number | null }[] };
    expect(snap.info.live).toBe(false);
    expect(snap.status.finished).toBe(true);
    expect(snap.epochs).toHaveLength(6);
    expect(snap.status.step).toBe(48);
    expect(snap.points.length).toBeGreaterThan(10);
    expect(snap.points.every((p) => p.commMs !== null)).toBe(true);
    expect((await fetch(`${url}metrics`)).status).toBe(404);
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  });

  it('a metrics file with a bad line is one line naming the file and line, exit 2', () => {
    writeFileSync(join(dir, 'bad.jsonl'), '{"type":"epoch","epoch":1,"step":2,"trainLoss":1,"testLoss":null,"testAccuracy":null,"samplesPerSec":1,"seconds":1}\n{"type":"step"}\n');
    const r = dptrain(['dashboard', '--metrics', 'bad.jsonl', '--port', '0'], dir);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^dptrain: bad\.jsonl: line 2: /);
  });
});
