// Node authentication by challenge and response, done in the HTTP upgrade before any frame is
// decoded: the node fetches a one-time nonce, then upgrades with HMAC-SHA256(token, nonce). The token
// never crosses the wire, a proof is good for one connection only (the nonce is consumed), and the
// comparison is constant-time.

import { readText } from '../core/files.js';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { DptrainError } from '../core/errors.js';

export const CHALLENGE_PATH = '/dptrain/challenge';
export const PROOF_HEADER = 'x-dptrain-proof';
const NONCE_TTL_MS = 30_000;
const MAX_OUTSTANDING = 1024;

export function readToken(file: string): string {
  const token = readText(file).trim();
  if (token.length < 16) throw new DptrainError('CONFIG_INVALID', `${file}: the token must be at least 16 characters (it has ${token.length})`);
  return token;
}

export function proofFor(token: string, nonce: string): string {
  return `${nonce}.${createHmac('sha256', token).update(`dptrain-v1:${nonce}`).digest('hex')}`;
}

/** The coordinator's side: issues nonces and checks proofs. */
export class Challenges {
  private readonly outstanding = new Map<string, number>();
  constructor(private readonly token: string) {}

  issue(now = Date.now()): string | null {
    for (const [n, expires] of this.outstanding) if (expires < now) this.outstanding.delete(n);
    // Bound the memory an unauthenticated client can make us spend.
    if (this.outstanding.size >= MAX_OUTSTANDING) return null;
    const nonce = randomBytes(24).toString('hex');
    this.outstanding.set(nonce, now + NONCE_TTL_MS);
    return nonce;
  }

  /** True when the proof answers a live nonce with the right token; the nonce is used up either way. */
  verify(proof: string | undefined, now = Date.now()): boolean {
    if (typeof proof !== 'string') return false;
    const dot = proof.indexOf('.');
    if (dot <= 0) return false;
    const nonce = proof.slice(0, dot);
    const expires = this.outstanding.get(nonce);
    if (expires === undefined) return false;
    this.outstanding.delete(nonce);
    if (expires < now) return false;
    const want = Buffer.from(proofFor(this.token, nonce));
    const got = Buffer.from(proof);
    return want.length === got.length && timingSafeEqual(want, got);
  }
}
