// Who may read the dashboard. On loopback: anyone on this machine, but only through a loopback Host
// name (a web page elsewhere cannot reach it by DNS rebinding). On any other address: whoever shows
// the run's token, once, as ?token= (answered with a session cookie and a redirect that drops the
// token from the address bar) or as `Authorization: Bearer` (Prometheus' scrape config).

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export const SESSION_COOKIE = 'dptrain_dashboard';
const LOOPBACK_HOST = /^(127\.\d+\.\d+\.\d+|\[::1\]|::1|localhost)$/i;

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_HOST.test(host);
}

export interface AccessPolicy {
  /** Null: open to loopback clients only. */
  readonly token: string | null;
}

export type Access =
  | { readonly ok: true }
  /** The token came in the URL: set the cookie, send the browser to `location` without it. */
  | { readonly ok: 'redirect'; readonly location: string; readonly cookie: string }
  | { readonly ok: false; readonly status: 401 | 403; readonly why: string };

/** Equal-time comparison: both sides hashed first, so neither length nor content leaks by timing. */
export function sameSecret(a: string, b: string): boolean {
  const h = (s: string): Buffer => createHash('sha256').update(s).digest();
  return timingSafeEqual(h(a), h(b));
}

/** The cookie's value: derived from the token, so the token itself never sits in the browser. */
export function sessionValue(token: string): string {
  return createHmac('sha256', token).update('dptrain-dashboard-session-v1').digest('hex');
}

function cookie(req: IncomingMessage, name: string): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

export function checkAccess(req: IncomingMessage, url: URL, policy: AccessPolicy): Access {
  if (policy.token === null) {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    return isLoopbackHost(host) ? { ok: true } : { ok: false, status: 403, why: `Host ${host || '(none)'} is not a loopback name` };
  }
  const token = policy.token;
  const session = cookie(req, SESSION_COOKIE);
  if (session !== null && sameSecret(session, sessionValue(token))) return { ok: true };
  const auth = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
  if (auth && sameSecret(auth[1], token)) return { ok: true };
  const given = url.searchParams.get('token');
  if (given !== null && sameSecret(given, token)) {
    url.searchParams.delete('token');
    const rest = url.searchParams.toString();
    return {
      ok: 'redirect', location: `${url.pathname}${rest ? `?${rest}` : ''}`,
      cookie: `${SESSION_COOKIE}=${sessionValue(token)}; HttpOnly; SameSite=Strict; Path=/`,
    };
  }
  return { ok: false, status: 401, why: given !== null || session !== null || auth ? 'wrong token' : 'token required: open the page as /?token=… (the run\'s --token-file)' };
}
