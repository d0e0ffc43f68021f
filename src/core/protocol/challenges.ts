// The listening side of the token handshake (the coordinator's, or a node's that takes children):
// stateless challenges (signed with a per-run random key and timestamped, so issuing one stores
// nothing an unauthenticated client could fill) and the check of a connecting node's proof, which
// answers with the listener's own proof for that node.

import { createHmac, randomBytes } from 'node:crypto';
import { coordinatorProof, isNonce, nodeProof, sameProof } from './auth.js';

const CHALLENGE_TTL_MS = 30_000;
/** Proven challenges remembered until they expire; only token holders can add to it. */
const MAX_PROVEN = 4096;
const CHALLENGE_FORMAT = /^([0-9a-z]{1,12})-([0-9a-f]{32})-([0-9a-f]{32})$/;

export type Verdict = { readonly ok: true; readonly coordinatorProof: string } | { readonly ok: false; readonly why: string };

export class Challenges {
  private readonly key = randomBytes(32);
  /** Challenges already answered with a valid proof, and when they expire: each is good once. */
  private readonly proven = new Map<string, number>();
  constructor(private readonly token: string) {}

  issue(now = Date.now()): string {
    const stamp = now.toString(36);
    const salt = randomBytes(16).toString('hex');
    return `${stamp}-${salt}-${this.sign(stamp, salt)}`;
  }

  /** Checks a node's proof header and nonce; a valid proof uses its challenge up. */
  verify(proofHeader: unknown, nodeNonce: unknown, now = Date.now()): Verdict {
    if (typeof proofHeader !== 'string') return { ok: false, why: 'no token proof' };
    if (!isNonce(nodeNonce)) return { ok: false, why: 'no node nonce (an older node?)' };
    const dot = proofHeader.lastIndexOf('.');
    const challenge = proofHeader.slice(0, Math.max(0, dot));
    const m = CHALLENGE_FORMAT.exec(challenge);
    if (!m || !sameProof(this.sign(m[1], m[2]), m[3])) return { ok: false, why: 'not a challenge this coordinator issued' };
    const age = now - parseInt(m[1], 36);
    if (!(age >= 0 && age <= CHALLENGE_TTL_MS)) return { ok: false, why: 'expired challenge' };
    if (!sameProof(nodeProof(this.token, challenge, nodeNonce), proofHeader)) return { ok: false, why: 'wrong token proof' };
    // Insertion order is expiry order: the expired ones are at the front.
    for (const [c, expires] of this.proven) {
      if (expires >= now) break;
      this.proven.delete(c);
    }
    if (this.proven.has(challenge)) return { ok: false, why: 'challenge already used' };
    if (this.proven.size >= MAX_PROVEN) return { ok: false, why: 'too many recent connections' };
    this.proven.set(challenge, now + CHALLENGE_TTL_MS);
    return { ok: true, coordinatorProof: coordinatorProof(this.token, challenge, nodeNonce) };
  }

  private sign(stamp: string, salt: string): string {
    return createHmac('sha256', this.key).update(`challenge ${stamp} ${salt}`).digest('hex').slice(0, 32);
  }
}
