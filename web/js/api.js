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
  return data;
}

export const get = (path, opts) => call('GET', path, undefined, opts);
export const post = (path, body, opts) => call('POST', path, body, opts);
export const put = (path, body, opts) => call('PUT', path, body, opts);
export const del = (path, body, opts) => call('DELETE', path, body, opts);
