/** Sign-in with lockout, the account endpoints, devices, and the API basics every endpoint shares. */
import { startHarness, makeAccount, type Harness } from './support/harness';
import { deviceAttestation } from './support/scenarios';

let h: Harness;
beforeAll(async () => {
  h = await startHarness('accounts');
}, 120_000);
afterAll(async () => {
  await h?.stop();
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('sign-in', () => {
  test('wrong passwords give 401, then 423 after ten per identifier; unknown identifiers get the same answers', async () => {
    const acc = await makeAccount();
    const unknown = await h.api.post('/v1/sessions', { identifier: 'nobody-knows@example.com', password: 'whatever it may be' });
    const wrong = await h.api.post('/v1/sessions', { identifier: acc.email, password: 'not the password' });
    expect(unknown.status).toBe(401);
    expect(wrong.status).toBe(401);
    expect(unknown.body).toEqual(wrong.body);
    for (let i = 0; i < 10; i++) expect((await h.api.post('/v1/sessions', { identifier: acc.phone, password: `guess ${i}` })).status).toBe(401);
    for (let i = 0; i < 9; i++) expect((await h.api.post('/v1/sessions', { identifier: 'nobody-knows@example.com', password: `guess ${i}` })).status).toBe(401);
    const lockedUnknown = await h.api.post('/v1/sessions', { identifier: 'nobody-knows@example.com', password: 'whatever it may be' });
    expect(lockedUnknown.status).toBe(423);
    const locked = await h.api.post('/v1/sessions', { identifier: acc.phone, password: acc.password });
    expect(locked.status).toBe(423);
    expect({ ...locked.body, lockedUntil: undefined, detail: undefined }).toEqual({ ...lockedUnknown.body, lockedUntil: undefined, detail: undefined });
    expect(locked.body.code).toBe('account_locked');
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(800);
    expect(Date.parse(locked.body.lockedUntil)).toBeGreaterThan(Date.now() + 14 * 60_000);
  });

  test('sign in by email, phone or account id; sign out ends the session', async () => {
    const acc = await makeAccount();
    for (const identifier of [acc.email, acc.phone, acc.accountId]) {
      const r = await h.api.post('/v1/sessions', { identifier, password: acc.password });
      expect(r.status).toBe(201);
      expect(r.body).toMatchObject({ accountId: acc.accountId });
      expect(r.body.token.length).toBeGreaterThanOrEqual(43);
    }
    const s = await h.api.post('/v1/sessions', { identifier: acc.email, password: acc.password });
    const me = await h.api.get('/v1/me', bearer(s.body.token));
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ accountId: acc.accountId, hasSecurityQuestions: true, devices: [] });
    expect(me.body.email).toMatch(/^u\*\*\*@example\.com$/);
    expect(me.body.phone).toContain(acc.phone.slice(-4));
    expect(me.body.phone).not.toContain(acc.phone.slice(2, 8));
    expect((await h.api.call('DELETE', '/v1/sessions/current', undefined, bearer(s.body.token))).status).toBe(204);
    expect((await h.api.get('/v1/me', bearer(s.body.token))).status).toBe(401);
    expect((await h.api.call('DELETE', '/v1/sessions/current', undefined, bearer(s.body.token))).status).toBe(401);
  });

  test('tokens are stored hashed', async () => {
    const acc = await makeAccount();
    const s = await h.api.post('/v1/sessions', { identifier: acc.email, password: acc.password });
    const { Session } = await import('../db/models');
    expect(await Session.findById(s.body.token)).toBeNull();
    expect(await Session.countDocuments({ accountId: acc.accountId })).toBe(1);
  });
});

describe('security questions and devices', () => {
  test('set three distinct questions; bad sets are refused', async () => {
    const acc = await makeAccount({ questions: false });
    const s = await h.api.post('/v1/sessions', { identifier: acc.email, password: acc.password });
    const catalogue = await h.api.get('/v1/security-questions');
    expect(catalogue.body.length).toBeGreaterThanOrEqual(3);
    const ids = catalogue.body.slice(0, 3).map((q: { id: string }) => q.id);
    const twice = await h.api.call(
      'PUT',
      '/v1/me/security-questions',
      { answers: [ids[0], ids[0], ids[1]].map((questionId) => ({ questionId, answer: 'x' })), password: acc.password },
      bearer(s.body.token),
    );
    expect(twice.status).toBe(422);
    const unknown = await h.api.call(
      'PUT',
      '/v1/me/security-questions',
      { answers: ['a', 'b', 'c'].map((questionId) => ({ questionId, answer: 'x' })), password: acc.password },
      bearer(s.body.token),
    );
    expect(unknown.status).toBe(422);
    const answers = ids.map((questionId: string) => ({ questionId, answer: 'Rex' }));
    // v1.1: the password is asked again (a session alone does not change what opens a recovery)
    expect((await h.api.call('PUT', '/v1/me/security-questions', { answers }, bearer(s.body.token))).status).toBe(422);
    expect((await h.api.call('PUT', '/v1/me/security-questions', { answers, password: 'not the password' }, bearer(s.body.token))).body.code).toBe('invalid_credentials');
    const ok = await h.api.call('PUT', '/v1/me/security-questions', { answers, password: acc.password }, bearer(s.body.token));
    expect(ok.status).toBe(204);
    await h.api.waitForMessage(acc.email, { match: /security questions and answers of your account were changed/ });
    await h.api.waitForMessage(acc.phone, { match: /security questions and answers of your account were changed/ });
    expect((await h.api.get('/v1/me', bearer(s.body.token))).body.hasSecurityQuestions).toBe(true);
    expect((await h.api.call('PUT', '/v1/me/security-questions', { answers: [] })).status).toBe(401);
  });

  test('bind a device (Luhn-checked, one account per device), lock check, remove with the password', async () => {
    const a = await makeAccount();
    const b = await makeAccount();
    const sa = await h.api.post('/v1/sessions', { identifier: a.email, password: a.password });
    const sb = await h.api.post('/v1/sessions', { identifier: b.email, password: b.password });
    const imei = '356938035643809';
    const attestation = await deviceAttestation(h.api, imei);
    expect((await h.api.post('/v1/me/devices', { imei: '356938035643808', model: 'X', attestation }, bearer(sa.body.token))).body.code).toBe('imei_invalid');
    expect((await h.api.get(`/v1/devices/${imei}/lock`)).body).toEqual({ locked: false });
    // v1.1: only the device itself can bind it: its attestation is the maker's keyed tag of its IMEI
    expect((await h.api.post('/v1/me/devices', { imei, model: 'X', attestation: 'made-up' }, bearer(sa.body.token))).body.code).toBe('attestation_invalid');
    const bound = await h.api.post('/v1/me/devices', { imei, model: 'Redmi Note', attestation }, bearer(sa.body.token));
    expect(bound.status).toBe(201);
    expect(bound.body).toMatchObject({ model: 'Redmi Note', imeiHint: '*** 3809' });
    await h.api.waitForMessage(a.email, { match: /was bound to your account/ });
    expect((await h.api.post('/v1/me/devices', { imei, model: 'stolen', attestation }, bearer(sb.body.token))).body.code).toBe('device_bound');
    expect((await h.api.get(`/v1/devices/${imei}/lock`)).body).toEqual({ locked: true });
    expect((await h.api.get('/v1/devices/123/lock')).body.code).toBe('imei_invalid');
    const path = `/v1/me/devices/${bound.body.deviceId}`;
    expect((await h.api.call('DELETE', path, { password: 'wrong one' }, bearer(sa.body.token))).status).toBe(401);
    expect((await h.api.call('DELETE', path, { password: b.password }, bearer(sb.body.token))).body.code).toBe('device_not_found');
    expect((await h.api.call('DELETE', path, { password: a.password }, bearer(sa.body.token))).status).toBe(204);
    expect((await h.api.get(`/v1/devices/${imei}/lock`)).body).toEqual({ locked: false });
  });
});

describe('API basics', () => {
  const isProblem = (r: { headers: Headers; body: any }, status: number, code: string) => {
    expect(r.headers.get('content-type')).toContain('application/problem+json');
    expect(r.body).toMatchObject({ status, code });
    expect(typeof r.body.title).toBe('string');
    expect(typeof r.body.detail).toBe('string');
    expect(typeof r.body.type).toBe('string');
  };

  test('malformed JSON, wrong types, unknown fields, unknown routes, large bodies, other media types', async () => {
    isProblem(await h.api.call('POST', '/v1/sessions', '{"identifier":'), 400, 'malformed_json');
    isProblem(await h.api.post('/v1/sessions', { identifier: 5, password: [] }), 422, 'validation_failed');
    isProblem(await h.api.post('/v1/flows/password-reset', { identifier: 'a@b.co', extra: 1 }), 422, 'validation_failed');
    isProblem(await h.api.post('/v1/flows/password-reset', { identifier: 'not an identifier' }), 422, 'validation_failed');
    isProblem(await h.api.get('/v1/nope'), 404, 'not_found');
    isProblem(await h.api.post('/v1/sessions', { identifier: 'x'.repeat(20_000), password: 'y' }), 413, 'payload_too_large');
    const form = await fetch(`${h.baseUrl}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' });
    isProblem({ headers: form.headers, body: await form.json() }, 415, 'unsupported_media_type');
  });

  test('X-Request-Id is echoed or made; security headers are set', async () => {
    const given = await h.api.get('/healthz', { 'x-request-id': 'abc-123' });
    expect(given.headers.get('x-request-id')).toBe('abc-123');
    const made = await h.api.get('/healthz');
    expect(made.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(made.headers.get('referrer-policy')).toBe('no-referrer');
    expect(made.headers.get('strict-transport-security')).toContain('max-age=');
    expect(made.headers.get('x-powered-by')).toBeNull();
  });

  test('health, readiness, metrics, OpenAPI and docs', async () => {
    expect((await h.api.get('/healthz')).status).toBe(200);
    expect((await h.api.get('/readyz')).body).toMatchObject({ status: 'ready', checks: { mongodb: true, temporal: true } });
    // metrics are not on the public port, only on their own listener (METRICS_ADDR)
    expect((await h.api.get('/metrics')).status).toBe(404);
    const { startMetricsServer } = await import('../api/metrics');
    const listener = await startMetricsServer('127.0.0.1:0');
    try {
      expect(listener?.address).toMatch(/^127\.0\.0\.1:\d+$/);
      const scraped = await fetch(listener!.url);
      expect(scraped.status).toBe(200);
      expect(scraped.headers.get('content-type')).toContain('text/plain');
      expect(await scraped.text()).toContain('http_request_duration_seconds');
      expect((await fetch(listener!.url.replace(/\/metrics$/, '/'))).status).toBe(404);
    } finally {
      await listener?.close();
    }
    expect(await startMetricsServer('off')).toBeUndefined();
    const doc = (await h.api.get('/openapi.json')).body;
    expect(doc.openapi).toBe('3.0.3');
    for (const p of ['/v1/flows/password-reset', '/v1/flows/{flowId}/code', '/v1/sessions', '/v1/me/devices', '/v1/ops/support-cases']) expect(doc.paths[p]).toBeDefined();
    expect(doc.paths['/v1/flows/password-reset'].post.requestBody.content['application/json'].schema.properties.identifier).toBeDefined();
    expect((await h.api.get('/docs/')).status).toBe(200);
  });

  test('ops endpoints need the ops token', async () => {
    isProblem(await h.api.get('/v1/ops/support-cases'), 401, 'unauthorized');
    isProblem(await h.api.get('/v1/ops/support-cases', { authorization: 'Bearer wrong-token-here' }), 401, 'unauthorized');
    expect((await h.api.get('/v1/ops/support-cases', { authorization: 'Bearer dev-ops-token' })).status).toBe(200);
  });
});
