// The token and its proofs, shared by both sides of a link. Authentication is mutual and happens in
// the HTTP upgrade, before any frame is decoded: the node proves the token over the coordinator's
// challenge and its own fresh nonce, and the coordinator answers with a proof over the same two
// values under another label, so neither proof can be reflected back as the other. The token never
// crosses the wire. Issuing and checking challenges is the listening side's (challenges.ts).

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readText } from '../io/files.js';
import { DptrainError } from '../errors.js';

export const CHALLENGE_PATH = '/dptrain/challenge';
/** Upgrade request: the node's proof, `challenge.hmac`. */
export const PROOF_HEADER = 'x-dptrain-proof';
/** Upgrade request: the nonce the node chose for this connection. */
export const NODE_NONCE_HEADER = 'x-dptrain-node-nonce';
/** Upgrade response: the coordinator's proof over the node's nonce. */
export const COORDINATOR_PROOF_HEADER = 'x-dptrain-coordinator-proof';

/** Nonces are hex of this many random bytes; anything else in the header is refused unread. */
const NONCE_BYTES = 24;
const NONCE_FORMAT = new RegExp(`^[0-9a-f]{${2 * NONCE_BYTES}}$`);

export function readToken(file: string): string {
  const token = readText(file).trim();
  if (token.length < 16) throw new DptrainError('CONFIG_INVALID', `${file}: the token must be at least 16 characters (it has ${token.length})`);
  return token;
}

export function freshNonce(): string {
  return randomBytes(NONCE_BYTES).toString('hex');
}

export function isNonce(text: unknown): text is string {
  return typeof text === 'string' && NONCE_FORMAT.test(text);
}

// Domain separation: the two directions MAC different labels, and both bind the coordinator's
// challenge and the node's nonce, so a proof is good for one direction of one connection only.
const mac = (token: string, label: string, challenge: string, nodeNonce: string): string =>
  createHmac('sha256', token).update(`dptrain-v2 ${label}\n${challenge}\n${nodeNonce}`).digest('hex');

/** The node's proof header: the challenge it answers, then its MAC. */
export function nodeProof(token: string, challenge: string, nodeNonce: string): string {
  return `${challenge}.${mac(token, 'node', challenge, nodeNonce)}`;
}

export function coordinatorProof(token: string, challenge: string, nodeNonce: string): string {
  return mac(token, 'coordinator', challenge, nodeNonce);
}

/** Constant-time comparison of two proofs (a length difference is not secret). */
export function sameProof(want: string, got: unknown): boolean {
  if (typeof got !== 'string') return false;
  const a = Buffer.from(want);
  const b = Buffer.from(got);
  return a.length === b.length && timingSafeEqual(a, b);
}
