// node dist/bench/coordinator-cost.js [nodes] [steps] — the coordinator's CPU per node per step on
// its send/receive path (process.cpuUsage around it), the per-node encoding (`per-node`: a fresh
// frame with its own copy of the weights per node; a result decoded into a fresh array, then copied
// into its slot) against the shared one (`shared`: the weights encoded once per step as chunk
// messages sent to every node; a result checked and copied into its slot in one pass), and the
// shared one on bf16 links (`shared-bf16`). They alternate in blocks of steps within one run, so
// the machine's drift hits all alike.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';
import { decodeNodeFrame, encodeFrame, encodeWeightChunks } from '../src/core/protocol/wire.js';
import { fmt, median, table } from '../src/coordinator/bench/stats.js';

const nodes = Number(process.argv[2] ?? 4);
const steps = Number(process.argv[3] ?? 60);
const P = 669_706;
const BLOCK = 5;
const params = new Float32Array(P).map((_, i) => Math.cos(i) * 0.05);
const indices = Int32Array.from({ length: 128 }, (_, i) => i);
const slots = Array.from({ length: nodes }, () => new Float32Array(P));
type Mode = 'per-node' | 'shared' | 'shared-bf16';
const MODES: readonly Mode[] = ['per-node', 'shared', 'shared-bf16'];

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 2 ** 30 });
await new Promise<void>((r) => wss.once('listening', () => r()));
const port = (wss.address() as { port: number }).port;
const child = spawn(process.execPath, [fileURLToPath(new URL('./coordinator-cost-nodes.js', import.meta.url)), `ws://127.0.0.1:${port}`, String(nodes), String(P)], { stdio: 'inherit' });
const sockets: WebSocket[] = [];
await new Promise<void>((r) => wss.on('connection', (ws) => sockets.push(ws) === nodes && r()));

let waiting: (() => void) | null = null;
let answered = 0;
let mode: Mode = 'per-node';
sockets.forEach((ws, i) =>
  ws.on('message', (data: Buffer) => {
    if (mode === 'per-node') slots[i].set(decodeNodeFrame(data, `node ${i}`, { paramCount: P }).gradient!);
    else decodeNodeFrame(data, `node ${i}`, { paramCount: P, wire: mode === 'shared' ? 'f32' : 'bf16' }, () => slots[i]);
    if (++answered === nodes) waiting?.();
  }),
);

async function step(s: number): Promise<number> {
  answered = 0;
  const done = new Promise<void>((r) => (waiting = r));
  const c0 = process.cpuUsage();
  if (mode === 'per-node') {
    for (const ws of sockets) ws.send(encodeFrame({ t: 'step', req: s, step: s, parts: 1, rows: 128 }, params, indices));
  } else {
    const chunks = encodeWeightChunks(s, params, mode === 'shared' ? 'f32' : 'bf16');
    for (const ws of sockets) {
      ws.send(encodeFrame({ t: 'step', req: s, step: s, parts: 1, rows: 128 }, indices));
      for (const c of chunks) ws.send(c);
    }
  }
  await done;
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / nodes;
}

const per: Record<Mode, number[]> = { 'per-node': [], shared: [], 'shared-bf16': [] };
const rounds = MODES.length * BLOCK;
for (let s = 1; s <= MODES.length * steps + rounds; s++) {
  mode = MODES[Math.floor((s - 1) / BLOCK) % MODES.length];
  const us = await step(s);
  if (s > rounds) per[mode].push(us); // the first round of each is warm-up
}
child.kill();
wss.close();
const base = median(per['per-node']);
console.log(`coordinator CPU per node per step, ${nodes} nodes, ${P.toLocaleString('en-US')} weights, median of ${per.shared.length} steps each, interleaved in blocks of ${BLOCK}`);
console.log(table(['encoding', 'µs / node / step', 'ratio'], MODES.map((m) => [m, fmt(median(per[m])), fmt(median(per[m]) / base, 2)])));
