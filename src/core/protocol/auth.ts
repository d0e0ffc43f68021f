// The token and its proofs, shared by both sides of a link: the node proves knowledge of the token
// with HMAC-SHA256(token, nonce) in the HTTP upgrade, before any frame is decoded. The coordinator's
// side (issuing and checking nonces) is in coordinator/remote/challenges.ts.

import { readText } from '../io/files.js';
import { createHmac } from 'node:crypto';
import { DptrainError } from '../errors.js';

export const CHALLENGE_PATH = '/dptrain/challenge';
export const PROOF_HEADER = 'x-dptrain-proof';

export function readToken(file: string): string {
  const token = readText(file).trim();
  if (token.length < 16) throw new DptrainError('CONFIG_INVALID', `${file}: the token must be at least 16 characters (it has ${token.length})`);
  return token;
}

export function proofFor(token: string, nonce: string): string {
  return `${nonce}.${createHmac('sha256', token).update(`dptrain-v1:${nonce}`).digest('hex')}`;
}
