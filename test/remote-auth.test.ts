// Letting no one in, with real `dptrain worker` processes and real sockets on loopback: a fake
// coordinator gets nothing from a node it cannot prove the token to, and reads no file through one
// it can; a flood of unauthenticated requests neither locks out a genuine node nor floods the log.

import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/core/config.js';
import { decodeNodeFrame, encodeFrame, PROTOCOL_VERSION } from '../src/core/protocol/wire.js';
import { workdir } from './helpers.js';
import { exited, fakeCoordinator, killAll, remoteRun, spawnNode, tokenFile, track } from './remote-helpers.js';

afterAll(killAll);

const TOKEN = 'the-shared-secret-of-this-test';
const MARKER = 'SECRET-MARKER-7f3a9c';
const model = { layers: [2, 8, 2], hidden: 'tanh' };

/** A file the fake coordinator would like to read, with the marker on its first line. */
function secretCsv(): string {
  const f = join(workdir('secret'), 'secret.csv');
  writeFileSync(f, `${MARKER},root:x:0:0\n1,2\n`);
  return f;
}

function welcome(config: object, data: 'source' | 'inline' = 'source'): Buffer {
  return encodeFrame({
    t: 'welcome', v: PROTOCOL_VERSION, nodeId: 'node1', config: JSON.stringify(config), chunkRows: 8, kernels: 'ts', data, n: 0, nIn: 2, yWidth: 1, classes: 2, wire: 'f32',
  });
}

const carries = (frames: readonly Buffer[], text: string): boolean => frames.some((f) => f.includes(text));

describe('a fake coordinator (item 8)', () => {
  it.each([
    ['does not prove the token', undefined, /it did not prove the token/],
    ['proves a wrong token', 'not-the-secret-but-long-enough', /its token proof is wrong/],
  ])('that %s gets no frame at all, and the node gives up with exit 1', async (_name, proveWith, why) => {
    const fake = await fakeCoordinator({
      proveWith,
      onConnection: (ws) => ws.send(welcome({ model, loss: 'cross-entropy', optimizer: { name: 'sgd', lr: 0.1 }, data: { source: 'csv', path: secretCsv(), target: 'y' } })),
    });
    try {
      const node = spawnNode(fake.url, ['--token-file', await tokenFile(TOKEN), '--max-auth-failures', '3']);
      expect(await exited(node), node.log).toBe(1);
      expect(fake.received).toHaveLength(0);
      expect(node.log).toMatch(why);
      expect(node.log).toMatch(/giving up: ws:\/\/127\.0\.0\.1:\d+ failed authentication or was refused 3 times in a row/);
      expect(node.log).not.toContain(MARKER);
    } finally {
      await fake.close();
    }
  });

  const csv = secretCsv();
  const base = { model, loss: 'cross-entropy', optimizer: { name: 'sgd', lr: 0.1 } };
  it.each([
    ['a csv source', welcome({ ...base, data: { source: 'csv', path: csv, target: 'y' } }), /file path field \(data\.path\)/],
    ['an idx source', welcome({ ...base, data: { source: 'idx', images: csv, labels: csv } }), /file path field \(data\.images\)/],
    ['inline rows beside a csv path', welcome({ ...base, data: { source: 'csv', path: csv, target: 'y' } }, 'inline'), /file path field \(data\.path\)/],
    ['a source it cannot load by name', welcome({ ...base, data: { source: 'http', url: 'x' } }), /load data source "http"; a node loads only mnist, synthetic by name/],
  ])('that knows the token but names a file (%s) is refused: nothing it is sent holds the file', async (_name, frame, why) => {
    const fake = await fakeCoordinator({ proveWith: TOKEN, onConnection: (ws) => ws.send(frame) });
    try {
      const node = spawnNode(fake.url, ['--token-file', await tokenFile(TOKEN), '--max-auth-failures', '2']);
      expect(await exited(node), node.log).toBe(1);
      expect(node.log).toMatch(why);
      expect(node.log).toMatch(/giving up: .* refused 2 times in a row/);
      // It said hello (the coordinator had proven the token) and nothing else.
      expect(fake.received.length).toBeGreaterThan(0);
      for (const f of fake.received) expect(decodeNodeFrame(f, 'node', { paramCount: 1 }).msg.t).toBe('hello');
      expect(carries(fake.received, MARKER)).toBe(false);
      expect(node.log).not.toContain(MARKER);
    } finally {
      await fake.close();
    }
  });

  it('a node\'s error tells its peer a code, not the local message', async () => {
    // A config the node cannot use: the layers do not fit the synthetic data's width.
    const bad = welcome({ ...base, model: { layers: [5, 8, 2] }, data: { source: 'synthetic', name: 'xor', n: 16 } });
    const fake = await fakeCoordinator({ proveWith: TOKEN, onConnection: (ws) => ws.send(bad) });
    try {
      const node = spawnNode(fake.url, ['--token-file', await tokenFile(TOKEN), '--max-reconnects', '2']);
      expect(await exited(node), node.log).toBe(1);
      const errors = fake.received.map((f) => decodeNodeFrame(f, 'node', { paramCount: 1 }).msg).filter((m) => m.t === 'error');
      expect(errors.length).toBeGreaterThan(0);
      for (const e of errors) expect(e).toMatchObject({ code: 'SHAPE_MISMATCH', message: 'the node failed (SHAPE_MISMATCH); details are in its own log' });
      expect(node.log).toMatch(/error: .*(input|width|5)/);
    } finally {
      await fake.close();
    }
  });
});

describe('a flood of unauthenticated requests (item 9)', () => {
  const config = parseConfig(
    { model: { layers: [2, 16, 2], hidden: 'tanh' }, loss: 'cross-entropy', optimizer: { name: 'sgd', lr: 0.1 }, data: { source: 'synthetic', name: 'spirals', n: 200 }, training: { epochs: 2, batchSize: 32, seed: 3 } },
    'flood-test',
    tmpdir(),
  );

  it('does not keep a genuine node out, and is summed up in the log instead of a line per request', async () => {
    let floodDone: Promise<string> = Promise.resolve('');
    const r = await remoteRun({ config, kernels: 'auto', skipEval: true, balance: 'static', workers: 0, minExecutors: 1 }, (url) => {
      // From other loopback addresses, as other machines would: 1,100 challenges from 64 of them
      // (more than the old table of outstanding nonces held), then 400 upgrades with made-up proofs
      // from one, for at most 15 s in all.
      // The genuine node starts once the challenges are done, during the upgrades.
      const flood = track(spawn(process.execPath, ['-e', FLOOD, url.replace(/^ws/, 'http')], { stdio: ['ignore', 'pipe', 'inherit'] }));
      let out = '';
      let started = false;
      flood.stdout!.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (!started && out.includes('challenges done')) {
          started = true;
          void tokenFile(TOKEN).then((f) => spawnNode(url, ['--token-file', f]));
        }
      });
      floodDone = exited(flood).then(() => out.trim().split('\n').at(-1)!);
    }, { token: TOKEN });
    const stats = JSON.parse(await floodDone) as { challenges: number; upgrades: number; statuses: Record<string, number> };
    expect(r.result.steps).toBe(10);
    expect(r.lines.some((l) => /node node1 \(127\.0\.0\.1:\d+, 1 thread\) joined/.test(l))).toBe(true);
    expect(stats.challenges + stats.upgrades, JSON.stringify(stats)).toBe(1500);
    // More challenges were issued than the old table held (stateless: nothing to fill), each
    // address's bucket turned the rest away, and the made-up proofs were refused.
    expect(stats.statuses['200'], JSON.stringify(stats)).toBeGreaterThan(1024);
    expect(stats.statuses['429'], JSON.stringify(stats)).toBeGreaterThan(100);
    // Every made-up proof was refused: by the proof check, or first by the address's bucket (how
    // many reach the check depends on the bucket's refill during the flood).
    expect(stats.statuses['401'], JSON.stringify(stats)).toBeGreaterThan(0);
    expect(stats.statuses['401'] + stats.statuses['429'] + stats.statuses['200'], JSON.stringify(stats)).toBe(1500);
    const refusals = r.lines.filter((l) => /^refused /.test(l));
    expect(refusals.length, refusals.join('\n')).toBeLessThan(20);
    expect(r.lines.some((l) => /^refused \d+ more unauthenticated requests from \d+ address(es)? in the last \d+ s$/.test(l)), r.lines.join('\n')).toBe(true);
  });
});

/** The flood, run as its own process: bounded in count and time, to loopback only. */
const FLOOD = `
const http = require('node:http');
const base = new URL(process.argv[1]);
if (!/^127\\./.test(base.hostname)) process.exit(2);
let sent = 0;
const statuses = {};
let challenges = 0, upgrades = 0;
const until = Date.now() + 15000;
const one = (path, headers, addresses) => new Promise((resolve) => {
  const localAddress = '127.0.0.' + (2 + (sent++ % addresses));
  const req = http.request({ host: base.hostname, port: base.port, path, headers, localAddress, agent: false }, (res) => {
    statuses[res.statusCode] = (statuses[res.statusCode] || 0) + 1;
    res.resume();
    res.on('end', resolve);
    res.on('error', resolve);
  });
  req.on('upgrade', (res, socket) => { statuses[101] = (statuses[101] || 0) + 1; socket.destroy(); resolve(); });
  req.on('error', () => { statuses.error = (statuses.error || 0) + 1; resolve(); });
  req.setTimeout(5000, () => req.destroy());
  req.end();
});
async function lanes(n, total, make) {
  let left = total;
  await Promise.all(Array.from({ length: n }, async () => { while (left-- > 0 && Date.now() < until) await make(); }));
}
(async () => {
  const t0 = Date.now();
  await lanes(32, 1100, () => (challenges++, one('/dptrain/challenge', {}, 64)));
  const challengesMs = Date.now() - t0;
  process.stdout.write('challenges done\\n');
  await lanes(16, 400, () => (upgrades++, one('/', {
    connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
    'x-dptrain-proof': 'a-b-c.' + 'f'.repeat(64), 'x-dptrain-node-nonce': '0'.repeat(48),
  }, 1)));
  process.stdout.write(JSON.stringify({ challenges, upgrades, statuses, challengesMs, totalMs: Date.now() - t0 }) + '\\n');
})();
`;
