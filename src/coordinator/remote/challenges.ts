// The coordinator's side of the node handshake: one-time nonces issued before the upgrade and the
// proofs checked against them (constant-time; a nonce is consumed by its first use).

import { randomBytes, timingSafeEqual } from 'node:crypto';
import { proofFor } from '../../core/protocol/auth.js';

const NONCE_TTL_MS = 30_000;
const MAX_OUTSTANDING = 1024;

/** Issues nonces and checks proofs. */
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
