// The stand-in nodes of bench/coordinator-cost.ts, in their own process so that their CPU is not
// counted: each connects, and answers every step request with one fixed, valid result frame (bf16
// when the request's weights came as bf16).

import { WebSocket } from 'ws';
import { encodeFrame, wirePayload } from '../src/core/protocol/wire.js';

const [url, countText, paramText] = process.argv.slice(2);
const P = Number(paramText);
const gradient = new Float32Array(P).map((_, i) => Math.sin(i) * 1e-3);
const header = { t: 'result', req: 1, step: 1, count: 128, lossSum: 1, computeMs: 1, leaving: false };
const f32 = encodeFrame(header, gradient);
const bf16 = encodeFrame(header, wirePayload(gradient, 'bf16'));
for (let i = 0; i < Number(countText); i++) {
  const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 2 ** 30, generateMask: (m) => void m.fill(0) });
  ws.on('message', (data: Buffer) => ws.send(data.length < 3 * P ? bf16 : f32));
  ws.on('close', () => process.exit(0));
}
