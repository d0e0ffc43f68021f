// The stand-in nodes of bench/coordinator-cost.ts, in their own process so that their CPU is not
// counted: each connects, and answers every step (a request with the weights inline, or the last
// weights chunk) with one fixed, valid result frame (bf16 when the weights came as bf16).

import { WebSocket } from 'ws';
import { decodeCoordinatorFrame, encodeFrame, wirePayload } from '../src/core/protocol/wire.js';

const [url, countText, paramText] = process.argv.slice(2);
const P = Number(paramText);
const gradient = new Float32Array(P).map((_, i) => Math.sin(i) * 1e-3);
const header = { t: 'result', req: 1, step: 1, count: 128, lossSum: 1, computeMs: 1, leaving: false };
const f32 = encodeFrame(header, gradient);
const bf16 = encodeFrame(header, wirePayload(gradient, 'bf16'));
for (let i = 0; i < Number(countText); i++) {
  const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 2 ** 30, generateMask: (m) => void m.fill(0) });
  ws.on('message', (data: Buffer) => {
    const { header: h, payload } = decodeCoordinatorFrame(data, 'coordinator');
    if (h.t === 'step' && payload.length > 4 * P) ws.send(f32);
    else if (h.t === 'weights' && h.at + h.count === P) ws.send(payload.length === 2 * h.count ? bf16 : f32);
  });
  ws.on('close', () => process.exit(0));
}
