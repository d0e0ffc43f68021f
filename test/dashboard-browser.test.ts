// The dashboard in a real browser (Debian's chromium, driven by playwright-core) on a real
// `dptrain train` child process with real `dptrain worker` nodes: charts that grow, a node joining
// and one killed showing as dropped with its reason, a reload that keeps the history, /metrics that
// moves, nothing fetched from anywhere else, and no console errors. Leaves a screenshot in
// test-artifacts/.

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { parsePrometheusText, sampleValue } from './prometheus-text.js';
import { CLI, killAll, spawnNode, track, waitForLine } from './remote-helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(import.meta.dirname, '..', 'test-artifacts');

let browser: Browser | null = null;
afterAll(async () => {
  await browser?.close();
  killAll();
});

const config = {
  model: { layers: [2, 64, 64, 2], hidden: 'relu', output: 'linear' },
  loss: 'cross-entropy',
  optimizer: { name: 'adam', lr: 0.01 },
  data: { source: 'synthetic', name: 'spirals', n: 800, test: 0.25 },
  // Far more epochs than the test waits for: the run is killed at the end.
  training: { epochs: 200_000, batchSize: 32, seed: 3 },
};

async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const chartAttr = (page: Page, id: string, attr: string): Promise<number> =>
  page.$eval(`#${id}`, (el, a) => Number((el as unknown as { dataset: Record<string, string | undefined> }).dataset[a] || 0), attr);

/** A page with its console errors and the requests it made anywhere but `origin`. */
async function openPage(origin: string): Promise<{ page: Page; errors: string[]; foreign: string[] }> {
  browser ??= await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors: string[] = [];
  const foreign: string[] = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => !r.url().startsWith(origin) && !r.url().startsWith('data:') && foreign.push(r.url()));
  await page.goto(origin);
  return { page, errors, foreign };
}

async function scrape(url: string) {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return parsePrometheusText(await res.text());
}

describe('the dashboard in a browser', () => {
  it('follows a live run with nodes joining and dying, survives a reload, and loads only its own files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dptrain-dash-browser-'));
    writeFileSync(join(dir, 'c.json'), JSON.stringify(config));
    const coordinator = track(spawn(process.execPath, [
      CLI, 'train', '--config', 'c.json', '--workers', '1', '--checkpoint-dir', 'ck',
      '--listen', '127.0.0.1:0', '--dashboard', '127.0.0.1:0',
      // Static shares: every node takes part in every step (measured balance starves slow nodes).
      '--balance', 'static',
    ], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] }));
    const lines: string[] = [];
    coordinator.stderr!.setEncoding('utf8').on('data', (d: string) => lines.push(...d.split('\n').filter(Boolean)));
    const dashUrl = (await waitForLine(lines, /^dashboard: http:\/\//, 60_000)).slice('dashboard: '.length);
    const wsUrl = /(ws:\/\/\S+)/.exec(await waitForLine(lines, /listening for worker nodes on ws:\/\//, 60_000))![1];

    const { page, errors, foreign } = await openPage(dashUrl);
    await page.waitForSelector('#mode.live', { timeout: 60_000 });

    // The charts gain points as steps pass.
    const firstLast = await until('step points', async () => (await chartAttr(page, 'chart-loss-step', 'lastStep')) || null);
    await until('more steps', async () => (await chartAttr(page, 'chart-loss-step', 'lastStep')) > firstLast + 20);
    await until('an epoch point', async () => (await chartAttr(page, 'chart-accuracy', 'points')) >= 1);
    expect(await page.locator('#s-stop').textContent()).toBe('200000 epochs');
    expect(await page.locator('tr[data-id="local"] td').first().textContent()).toBe('local');

    // /metrics moves between two scrapes.
    const before = await scrape(`${dashUrl}metrics`);
    await new Promise((r) => setTimeout(r, 700));
    const after = await scrape(`${dashUrl}metrics`);
    expect(sampleValue(after, 'dptrain_steps_total')!).toBeGreaterThan(sampleValue(before, 'dptrain_steps_total')!);
    expect(sampleValue(after, 'dptrain_samples_total')!).toBeGreaterThan(sampleValue(before, 'dptrain_samples_total')!);

    // A node that joins shows in the table; one killed shows as dropped, with its reason.
    const a = spawnNode(wsUrl, ['--metrics-port', '0']);
    const aId = /joined as (node\d+)/.exec(await until('node A to join', async () => /joined as node\d+/.test(a.log) && a.log))![1];
    await page.waitForSelector(`tr[data-id="${aId}"][data-state="active"]`, { timeout: 60_000 });
    const b = spawnNode(wsUrl);
    const bId = /joined as (node\d+)/.exec(await until('node B to join', async () => /joined as node\d+/.test(b.log) && b.log))![1];
    await page.waitForSelector(`tr[data-id="${bId}"][data-state="active"]`, { timeout: 60_000 });
    // Both nodes take steps before B dies.
    await until('node B to have computed', async () => Number(await page.locator(`tr[data-id="${bId}"] td`).nth(3).textContent().then((t) => (t ?? '').replace(/,/g, ''))) > 0);
    b.kill('SIGKILL');
    await page.waitForSelector(`tr[data-id="${bId}"][data-state="dropped"]`, { timeout: 60_000 });
    expect(await page.locator(`tr[data-id="${bId}"] td`).last().textContent()).toMatch(/^dropped: (disconnected|socket error|missed heartbeats)/);
    // The survivor stays: its row's last cell would name the reason it was dropped.
    expect(await page.locator(`tr[data-id="${aId}"] td`).last().textContent()).not.toMatch(/^dropped/);
    expect(await page.locator(`tr[data-id="${aId}"]`).getAttribute('data-state')).toBe('active');

    const coord = await scrape(`${dashUrl}metrics`);
    expect(sampleValue(coord, 'dptrain_nodes_connected')).toBe(1);
    const drops = coord.get('dptrain_node_drops_total')!.samples.reduce((s, x) => s + x.value, 0);
    expect(drops).toBe(1);
    expect(sampleValue(coord, 'dptrain_node_bytes_total', { node: aId, direction: 'received' })!).toBeGreaterThan(0);
    const aMetrics = /metrics on (http:\/\/\S+)/.exec(a.log)![1];
    const node = await until('node A\'s steps in its metrics', async () => {
      const m = await scrape(aMetrics);
      return (sampleValue(m, 'dptrain_worker_steps_total') ?? 0) > 0 && m;
    });
    expect(sampleValue(node, 'dptrain_worker_bytes_total', { direction: 'received' })!).toBeGreaterThan(0);
    expect(sampleValue(node, 'dptrain_worker_compute_seconds_total')!).toBeGreaterThan(0);

    // A reload mid-run shows the earlier points: every epoch so far, and steps from the start.
    const epochsBefore = await chartAttr(page, 'chart-loss-epoch', 'points');
    const lastBefore = await chartAttr(page, 'chart-loss-step', 'lastStep');
    await page.reload();
    await page.waitForSelector('#mode.live', { timeout: 60_000 });
    await until('points after the reload', async () => (await chartAttr(page, 'chart-loss-step', 'points')) > 0);
    expect(await chartAttr(page, 'chart-loss-epoch', 'points')).toBeGreaterThanOrEqual(epochsBefore);
    expect(await chartAttr(page, 'chart-loss-epoch', 'firstStep')).toBe(19);
    expect(await chartAttr(page, 'chart-loss-step', 'lastStep')).toBeGreaterThanOrEqual(lastBefore);
    expect(await chartAttr(page, 'chart-loss-step', 'firstStep')).toBeLessThan(lastBefore / 10);
    await page.waitForSelector(`tr[data-id="${bId}"][data-state="dropped"]`, { timeout: 10_000 });

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  }, 240_000);

  it('shows a finished run from its metrics file, saying it is not live', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dptrain-dash-replay-'));
    writeFileSync(join(dir, 'c.json'), JSON.stringify({ ...config, training: { epochs: 8, batchSize: 32, seed: 3 } }));
    const r = spawnSync(process.execPath, [CLI, 'train', '--config', 'c.json', '--workers', '1', '--checkpoint-dir', 'ck', '--metrics', 'm.jsonl', '--metrics-every', '3'], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    expect(r.status).toBe(0);
    const child = track(spawn(process.execPath, [CLI, 'dashboard', '--metrics', 'm.jsonl', '--port', '127.0.0.1:0'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    const url = /(http:\/\/\S+)/.exec(await until('the dashboard\'s address', async () => /http:\/\/\S+/.test(out) && out))![1];
    const { page, errors, foreign } = await openPage(url);
    await page.waitForSelector('#mode.replay', { timeout: 60_000 });
    expect(await page.locator('#mode').textContent()).toMatch(/^not live/);
    expect(await page.locator('#source').textContent()).toBe('m.jsonl');
    await until('the epochs drawn', async () => (await chartAttr(page, 'chart-loss-epoch', 'points')) === 8);
    expect(await chartAttr(page, 'chart-loss-step', 'lastStep')).toBe(8 * 19);
    expect(await page.locator('#s-eta').textContent()).toBe('done');
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-replay.png'), fullPage: true });
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
    child.kill('SIGINT');
  }, 120_000);
});
