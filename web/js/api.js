/** The HTTP contract of shared/API.md as the pages use it: JSON in and out, problem+json errors as ApiError. */

const SESSION_KEY = 'account.session';

/** The session token lives in sessionStorage: this tab only, gone when the tab closes. */
export const session = {
  get() {
    try {
      const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? 'null');
      return s && typeof s.token === 'string' && (!s.expiresAt || Date.parse(s.expiresAt) > Date.now()) ? s : null;
    } catch {
      return null;
    }
  },
  set(s) {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify({ token: s.token, expiresAt: s.expiresAt, accountId: s.accountId }));
  },
  clear() {
    sessionStorage.removeItem(SESSION_KEY);
  },
};

/**
 * v1.1 flow secrets: a password reset or sign-up answers its start with a `flowSecret`; every later request on
 * /v1/flows/<flowId>… carries it as the `Flow-Secret` header. It is kept in localStorage under
 * `flowSecret:<flowId>` (so a reload or a second tab of this browser resumes, while the address bar holds only
 * the flow id) and in memory (so a tab keeps working after another tab ended the flow and removed it).
 * Never in the URL.
 */
const SECRET_PREFIX = 'flowSecret:';
const SECRET_MAX_AGE_MS = 7 * 24 * 3600 * 1000; // longer than any flow: support review (72 h) + hold
const known = new Map();
const FLOW_PATH = /^\/v1\/flows\/([a-z]{3}_[^/?#]+)/;

export const flowSecrets = {
  get(flowId) {
    if (known.has(flowId)) return known.get(flowId);
    try {
      const s = JSON.parse(localStorage.getItem(SECRET_PREFIX + flowId) ?? 'null');
      if (s && typeof s.secret === 'string') {
        known.set(flowId, s.secret);
        return s.secret;
      }
    } catch {
      /* no storage or a damaged entry: no secret */
    }
    return undefined;
  },
  set(flowId, secret) {
    known.set(flowId, secret);
    try {
      localStorage.setItem(SECRET_PREFIX + flowId, JSON.stringify({ secret, at: Date.now() }));
    } catch {
      /* private mode: this tab still has it in memory */
    }
  },
  /** The flow has ended: this browser no longer needs its secret (this tab keeps it in memory for a last look). */
  forget(flowId) {
    try {
      localStorage.removeItem(SECRET_PREFIX + flowId);
    } catch {
      /* ignore */
    }
  },
};

/** Drops the secrets of flows abandoned long ago (a tab closed mid-flow never saw the end). */
try {
  for (let i = localStorage.length - 1; i >= 0; i--) {
    const k = localStorage.key(i);
    if (!k?.startsWith(SECRET_PREFIX)) continue;
    let at = 0;
    try {
      at = Number(JSON.parse(localStorage.getItem(k) ?? 'null')?.at) || 0;
    } catch {
      /* damaged: drop */
    }
    if (Date.now() - at > SECRET_MAX_AGE_MS) localStorage.removeItem(k);
  }
} catch {
  /* no storage */
}

export class ApiError extends Error {
  constructor(status, body, headers) {
    const b = body && typeof body === 'object' ? body : {};
    const code = typeof b.code === 'string' ? b.code : status === 0 ? 'network' : 'unknown';
    super(code);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.body = b;
    const ra = Number(headers?.get?.('retry-after'));
    this.retryAfter = Number.isFinite(ra) && ra > 0 ? ra : typeof b.retryAfterSeconds === 'number' ? b.retryAfterSeconds : undefined;
    /** The Flow after a refused action (flow endpoints send it along). */
    this.flow = b.flow && typeof b.flow === 'object' && b.flow.flowId ? b.flow : undefined;
  }
}

/**
 * One API call. Resolves with the parsed JSON (or text for SVG, null for 204); rejects with ApiError.
 * The bearer token is sent when the tab has a session (change flows need it; others ignore it).
 */
export async function call(method, path, body, { auth = true, text = false } = {}) {
  const headers = { accept: text ? 'image/svg+xml' : 'application/json, application/problem+json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const s = auth ? session.get() : null;
  if (s) headers.authorization = `Bearer ${s.token}`;
  const flowId = FLOW_PATH.exec(path)?.[1];
  const secret = flowId ? flowSecrets.get(decodeURIComponent(flowId)) : undefined;
  if (secret) headers['flow-secret'] = secret;
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store', credentials: 'same-origin' });
  } catch {
    throw new ApiError(0, null, null);
  }
  const type = res.headers.get('content-type') ?? '';
  let data = null;
  if (res.status !== 204) {
    try {
      data = type.includes('json') ? await res.json() : await res.text();
    } catch {
      data = null;
    }
  }
  if (!res.ok) throw new ApiError(res.status, data, res.headers);
  if (text) return typeof data === 'string' ? data : '';
  if (res.status !== 204 && (data === null || typeof data !== 'object')) throw new ApiError(res.status, null, res.headers);
  // the start of a reset or sign-up (or its retry): keep the secret, and keep it out of the Flow the pages hold
  if (data && typeof data.flowId === 'string' && typeof data.flowSecret === 'string') {
    flowSecrets.set(data.flowId, data.flowSecret);
    delete data.flowSecret;
  }
  return data;
}

export const get = (path, opts) => call('GET', path, undefined, opts);
export const post = (path, body, opts) => call('POST', path, body, opts);
export const put = (path, body, opts) => call('PUT', path, body, opts);
export const del = (path, body, opts) => call('DELETE', path, body, opts);
