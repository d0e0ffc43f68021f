// The connecting side of a link (a node to the coordinator, a child to its parent node): fetch a
// challenge, prove the token over it and a fresh nonce in the upgrade request, and check the
// listener's proof in the upgrade response before the socket is handed over: a peer that cannot
// prove the token gets nothing from us, and none of its frames is ever decoded.

import { WebSocket } from 'ws';
import { CHALLENGE_PATH, COORDINATOR_PROOF_HEADER, coordinatorProof, freshNonce, NODE_NONCE_HEADER, nodeProof, PROOF_HEADER, sameProof } from './auth.js';

export interface DialOptions {
  readonly url: string;
  readonly token?: string;
  /** PEM of a CA (or self-signed certificate) to trust for wss://. */
  readonly ca?: Buffer;
  readonly maxPayload: number;
}

/** An open, authenticated socket, paused until the caller resume()s it, or why not: `refused` when the peer failed authentication or refused ours. */
export type Dialed = { readonly ok: true; readonly ws: WebSocket } | { readonly ok: false; readonly kind: 'lost' | 'refused'; readonly why: string };

export async function dial(o: DialOptions): Promise<Dialed> {
  const headers: Record<string, string> = {};
  const nonce = freshNonce();
  let challenge = '';
  if (o.token) {
    try {
      challenge = await fetchChallenge(o.url, o.ca);
    } catch (e) {
      return { ok: false, kind: 'lost', why: `challenge failed: ${(e as Error).message}` };
    }
    headers[PROOF_HEADER] = nodeProof(o.token, challenge, nonce);
    headers[NODE_NONCE_HEADER] = nonce;
  }
  return new Promise<Dialed>((resolve) => {
    // A zero masking key: ws then skips masking, which in plain JavaScript (no native bufferutil)
    // is a slow pass over every gradient frame. Masking protects browsers' intermediaries from
    // script-crafted frames; this client is no browser and sends no script-chosen bytes.
    const ws = new WebSocket(o.url, { headers, maxPayload: o.maxPayload, ca: o.ca, perMessageDeflate: false, generateMask: (mask) => void mask.fill(0) });
    let settled = false;
    const settle = (d: Dialed): void => {
      if (settled) return;
      settled = true;
      if (!d.ok) ws.terminate();
      resolve(d);
    };
    ws.on('upgrade', (res) => {
      if (!o.token) return;
      const proof = res.headers[COORDINATOR_PROOF_HEADER];
      if (!sameProof(coordinatorProof(o.token, challenge, nonce), proof)) {
        res.socket.destroy();
        settle({ ok: false, kind: 'refused', why: proof === undefined ? 'it did not prove the token' : 'its token proof is wrong' });
      }
    });
    ws.on('unexpected-response', (_req, res) =>
      settle(res.statusCode === 401 ? { ok: false, kind: 'refused', why: 'it refused this node\'s token proof (HTTP 401)' } : { ok: false, kind: 'lost', why: `refused with HTTP ${res.statusCode}` }));
    ws.on('error', (e) => settle({ ok: false, kind: 'lost', why: e.message }));
    ws.on('close', () => settle({ ok: false, kind: 'lost', why: 'closed' }));
    // 'open' comes after 'upgrade': a peer whose proof failed never gets here. Paused: a frame the
    // peer sent at once must wait for the caller's handlers (resume() once they are on).
    ws.on('open', () => {
      ws.pause();
      settle({ ok: true, ws });
    });
  });
}

async function fetchChallenge(url: string, ca: Buffer | undefined): Promise<string> {
  const at = new URL(CHALLENGE_PATH, url.replace(/^ws/, 'http'));
  const mod = at.protocol === 'https:' ? await import('node:https') : await import('node:http');
  return new Promise((resolve, reject) => {
    const req = mod.get(at, { ca, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d.slice(0, 1000)));
      res.on('end', () => {
        try {
          const nonce = (JSON.parse(body) as { nonce?: unknown }).nonce;
          if (res.statusCode !== 200 || typeof nonce !== 'string') throw new Error(`HTTP ${res.statusCode}`);
          resolve(nonce);
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}
