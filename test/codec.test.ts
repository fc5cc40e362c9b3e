/**
 * Payload encryption and the codec server, as the Temporal Web UI uses them: what the Temporal
 * server stores is ciphertext (no email, phone or contact address in clear), the codec server turns
 * it back into clear payloads for an operator (the UI's protocol: POST <endpoint>/decode, X-Namespace,
 * CORS preflight), and even decoded, a completed reset holds no password, code or answer.
 */
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Client, Connection } from '@temporalio/client';
import { startHarness, makeAccount, type Harness } from './support/harness';
import { startSmtpRelay, type SmtpRelay } from './support/smtp-relay';
import { OPS_TOKEN, bindDevice, contactEmail, decide, setPassword, sleep, submitSupport, waitForFlow } from './support/scenarios';
import { historyToJson } from '../ops/history-json';

const ROOT = path.resolve(__dirname, '..');
const UI_ORIGIN = 'http://localhost:8233';
const REFUSED = 'refused.example';

let h: Harness;
let relay: SmtpRelay;
let codecServer: Server;
let codecUrl: string;
let raw: Client;

beforeAll(async () => {
  relay = await startSmtpRelay([REFUSED]);
  h = await startHarness('codec', { OPS_TOKEN, SMTP_URL: relay.url });
  const { createCodecApp } = await import('../api/codec-server');
  codecServer = await new Promise((resolve) => {
    const s = createCodecApp().listen(0, '127.0.0.1', () => resolve(s));
  });
  codecUrl = `http://127.0.0.1:${(codecServer.address() as AddressInfo).port}`;
  // A client WITHOUT the codec: it sees what the Temporal server stores.
  raw = new Client({ connection: await Connection.connect({ address: process.env.TEMPORAL_ADDRESS }), namespace: process.env.TEMPORAL_NAMESPACE ?? 'default' });
}, 120_000);
afterAll(async () => {
  await raw?.connection.close();
  await new Promise((r) => codecServer?.close(r));
  await h?.stop();
  await relay?.close();
});

const b64 = (s: string) => Buffer.from(s).toString('base64');
const unb64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');

async function codec(op: 'decode' | 'encode', payloads: unknown[], route = `/${op}`, headers: Record<string, string> = {}) {
  return fetch(codecUrl + route, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-namespace': 'default', origin: UI_ORIGIN, ...headers },
    body: JSON.stringify({ payloads }),
  });
}

/** The stored history and description of a workflow, as JSON text, through the codec-less client. */
async function stored(workflowId: string): Promise<{ history: { events: unknown[] }; text: string }> {
  const handle = raw.workflow.getHandle(workflowId);
  const history = historyToJson(await handle.fetchHistory());
  const desc = await handle.describe();
  return { history, text: JSON.stringify(history) + JSON.stringify(desc.raw) };
}

/**
 * Decodes every encrypted payload in a history through the codec server (as the UI does) and renders
 * the history as text with each JSON payload's data spelled out, so a search finds what is in it.
 */
async function decodedText(history: { events: unknown[] }): Promise<string> {
  const found: Record<string, any>[] = [];
  const walk = (v: unknown) => {
    if (!v || typeof v !== 'object') return;
    const o = v as Record<string, any>;
    if (o.metadata && typeof o.metadata.encoding === 'string' && unb64(o.metadata.encoding) === 'binary/encrypted') found.push(o);
    else for (const x of Object.values(o)) walk(x);
  };
  walk(history);
  expect(found.length).toBeGreaterThan(2);
  const res = await codec('decode', found);
  expect(res.status).toBe(200);
  const { payloads } = (await res.json()) as { payloads: { metadata: Record<string, string>; data?: string }[] };
  payloads.forEach((p, i) => {
    const target = found[i]!;
    target.metadata = Object.fromEntries(Object.entries(p.metadata).map(([k, v]) => [k, unb64(v)]));
    target.data = p.data === undefined ? undefined : unb64(p.data);
  });
  return JSON.stringify(history);
}

/** `secret` as a whole token: a 6-digit code must not match inside a longer number. */
const appears = (text: string, secret: string) => new RegExp(`(?<![0-9A-Za-z])${secret.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![0-9A-Za-z])`, 'i').test(text);

describe('what the Temporal server stores', () => {
  test('a support reset: no email, phone or contact address in clear; the codec server decodes it; decoded, no password, code or answer', async () => {
    const acc = await makeAccount();
    const imei = await bindDevice(h.api, acc);
    const contact = contactEmail('codec');
    const password = `never-in-history ${crypto.randomBytes(4).toString('hex')}`;

    // code (a wrong one typed), not working, questions (a wrong answer, then the right ones), support
    const flow = await h.api.resetToCode(acc.email);
    const sent = await h.api.codeFor(acc.email);
    const typed = sent.code === '000000' ? '111111' : '000000';
    await h.api.post(`/v1/flows/${flow.flowId}/code`, { code: typed });
    await h.api.post(`/v1/flows/${flow.flowId}/not-working`);
    const wrongAnswer = `wrong-${crypto.randomBytes(3).toString('hex')}`;
    await h.api.post(`/v1/flows/${flow.flowId}/security-answers`, { answers: acc.answers.map((a) => ({ ...a, answer: wrongAnswer })) });
    await h.api.post(`/v1/flows/${flow.flowId}/security-answers`, { answers: acc.answers.map((a) => ({ ...a, answer: wrongAnswer })) });
    const { caseId } = await submitSupport(h.api, flow.flowId, { accountId: acc.accountId, imei, contactEmail: contact, message: 'my phone fell in the sea' });
    await decide(h.api, caseId, 'approve', 'codec-test', 'ok');
    await waitForFlow(h.api, flow.flowId, (f) => f.step === 'code');
    const second = await h.api.codeFor(contact);
    await h.api.post(`/v1/flows/${flow.flowId}/code`, { code: second.code });
    await setPassword(h.api, flow.flowId, password);
    await waitForFlow(h.api, flow.flowId, (f) => f.status === 'completed');
    await sleep(500);

    for (const workflowId of [`password-reset/${flow.flowId}`, `support-review/${caseId}`]) {
      const { history, text } = await stored(workflowId);
      for (const clear of [acc.email, acc.email.split('@')[0]!, acc.phone, acc.phone.slice(1), contact, contact.split('@')[0]!, imei, 'my phone fell in the sea']) {
        expect([workflowId, clear, text.includes(clear)]).toEqual([workflowId, clear, false]);
      }
      const decoded = await decodedText(history);
      for (const secret of [password, sent.code, second.code, typed, wrongAnswer, 'blue']) {
        expect([workflowId, secret, appears(decoded, secret)]).toEqual([workflowId, secret, false]);
      }
      if (workflowId.startsWith('password-reset/')) {
        // decoding works: the identifier and the contact address the flow was given are there
        expect(decoded).toContain(acc.email);
        expect(decoded).toContain(contact);
        expect(decoded.replace(/\\"/g, '"')).toContain('"status":"completed"');
      }
    }
  }, 90_000);

  test('the happy path: the code and the password are nowhere in the decoded history', async () => {
    const acc = await makeAccount();
    const password = `also never stored ${crypto.randomBytes(4).toString('hex')}`;
    const flow = await h.api.resetToCode(acc.phone);
    const { code } = await h.api.codeFor(acc.phone);
    await h.api.post(`/v1/flows/${flow.flowId}/code`, { code });
    await setPassword(h.api, flow.flowId, password);
    await sleep(500);
    const { history, text } = await stored(`password-reset/${flow.flowId}`);
    expect(text.includes(acc.phone.slice(1))).toBe(false);
    expect(text.includes(acc.email)).toBe(false);
    const decoded = await decodedText(history);
    expect(decoded).toContain(acc.phone);
    expect(appears(decoded, code)).toBe(false);
    expect(decoded.includes(password)).toBe(false);
  }, 60_000);

  // Failure messages are not payloads, so the codec does not encrypt them: an SMTP relay's
  // "550 <user@domain>: …" would land in clear in pending-activity info and history. The delivery
  // activity strips addresses from provider errors before they leave it (activities/delivery.ts).
  test('a failing delivery leaves no address in clear (failure messages encrypted too)', async () => {
    const acc = await makeAccount({ email: `leak-${crypto.randomBytes(3).toString('hex')}@${REFUSED}` });
    const flow = await h.api.resetToCode(acc.email);
    for (let i = 0; i < 60; i++) {
      const desc = await raw.workflow.getHandle(`password-reset/${flow.flowId}`).describe();
      if ((desc.raw.pendingActivities ?? []).some((a) => a.lastFailure)) break;
      await sleep(250);
    }
    const { text } = await stored(`password-reset/${flow.flowId}`);
    await h.api.call('DELETE', `/v1/flows/${flow.flowId}`);
    expect(text).not.toContain(acc.email);
  }, 60_000);
});

describe('the codec server speaks the Temporal UI protocol', () => {
  test('CORS preflight from the UI origin: allowed, with X-Namespace; other origins get no CORS grant', async () => {
    for (const route of ['/decode', '/codec/decode']) {
      const pre = await fetch(codecUrl + route, {
        method: 'OPTIONS',
        headers: { origin: UI_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-namespace' },
      });
      expect(pre.status).toBe(204);
      expect(pre.headers.get('access-control-allow-origin')).toBe(UI_ORIGIN);
      expect(pre.headers.get('access-control-allow-methods')).toContain('POST');
      const allowed = pre.headers.get('access-control-allow-headers')!.toLowerCase();
      expect(allowed).toContain('x-namespace');
      expect(allowed).toContain('content-type');
    }
    const evil = await fetch(codecUrl + '/decode', { method: 'OPTIONS', headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST' } });
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    const evilPost = await codec('decode', [], '/decode', { origin: 'http://evil.example' });
    expect(evilPost.headers.get('access-control-allow-origin')).toBeNull();
  });

  test('a request addressed to another host name (DNS rebinding) is refused: 421, nothing decoded', async () => {
    const http = await import('node:http');
    const { port } = new URL(codecUrl);
    const ask = (host: string) =>
      new Promise<number>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path: '/decode', method: 'POST', headers: { host, 'content-type': 'application/json' } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end(JSON.stringify({ payloads: [] }));
      });
    expect(await ask(`evil.example:${port}`)).toBe(421);
    expect(await ask(`127.0.0.1:${port}`)).toBe(200);
    expect(await ask(`localhost:${port}`)).toBe(200);
  });

  test('encode then decode round-trips through /encode, /decode and /codec/*; the key id travels in the metadata', async () => {
    const plain = { metadata: { encoding: b64('json/plain') }, data: b64(JSON.stringify({ hello: 'operator' })) };
    const enc = await codec('encode', [plain], '/codec/encode');
    expect(enc.status).toBe(200);
    const [sealed] = ((await enc.json()) as { payloads: any[] }).payloads;
    expect(unb64(sealed.metadata.encoding)).toBe('binary/encrypted');
    expect(unb64(sealed.metadata['encryption-key-id'])).toMatch(/\S/);
    expect(unb64(sealed.data)).not.toContain('operator');
    for (const route of ['/decode', '/codec/decode']) {
      const dec = await codec('decode', [sealed, plain], route);
      expect(dec.status).toBe(200);
      expect(dec.headers.get('access-control-allow-origin')).toBe(UI_ORIGIN);
      const { payloads } = (await dec.json()) as { payloads: any[] };
      expect(payloads).toEqual([plain, plain]); // a payload that is not ours passes through as it is
    }
  });

  test('a tampered payload or an unknown key id is refused (400), not decoded', async () => {
    const enc = await codec('encode', [{ metadata: { encoding: b64('json/plain') }, data: b64('"x"') }]);
    const [sealed] = ((await enc.json()) as { payloads: any[] }).payloads;
    const bytes = Buffer.from(sealed.data, 'base64');
    bytes[20] ^= 1;
    expect((await codec('decode', [{ ...sealed, data: bytes.toString('base64') }])).status).toBe(400);
    const unknown = await codec('decode', [{ ...sealed, metadata: { ...sealed.metadata, 'encryption-key-id': b64('retired-key') } }]);
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { error: string }).error).toMatch(/retired-key/);
  });

  test('key rotation: payloads written with the old key still decode once a new key is first', async () => {
    const { EncryptionCodec, parseKeys } = await import('../lib/codec');
    const key = () => crypto.randomBytes(32).toString('base64');
    const oldKey = `old:${key()}`;
    const before = new EncryptionCodec(parseKeys(oldKey));
    const after = new EncryptionCodec(parseKeys(`new:${key()},${oldKey}`));
    const payload = { metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from('"kept"') };
    const [sealedOld] = await before.encode([payload]);
    const [sealedNew] = await after.encode([payload]);
    expect(Buffer.from(sealedNew!.metadata!['encryption-key-id']!).toString()).toBe('new');
    for (const sealed of [sealedOld!, sealedNew!]) {
      const [back] = await after.decode([sealed]);
      expect(Buffer.from(back!.data!).toString()).toBe('"kept"');
    }
  });

  test('api/codec-server.ts binds 127.0.0.1 by default: not reachable on the machine’s other addresses', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const env: NodeJS.ProcessEnv = { ...process.env, CODEC_PORT: String(port) };
    delete env.CODEC_HOST;
    const child: ChildProcess = spawn(path.join(ROOT, 'node_modules', '.bin', 'tsx'), ['api/codec-server.ts'], { cwd: ROOT, env, stdio: 'ignore' });
    try {
      let up = false;
      for (let i = 0; i < 120 && !up; i++) {
        up = await fetch(`http://127.0.0.1:${port}/healthz`).then(
          (r) => r.ok,
          () => false,
        );
        if (!up) await sleep(250);
      }
      expect(up).toBe(true);
      const others = Object.values(os.networkInterfaces())
        .flat()
        .filter((i) => i && !i.internal)
        .map((i) => (i!.family === 'IPv6' ? `[${i!.address.split('%')[0]}]` : i!.address));
      for (const host of [...others, '[::1]']) {
        const reached = await fetch(`http://${host}:${port}/healthz`, { signal: AbortSignal.timeout(3_000) }).then(
          () => true,
          () => false,
        );
        expect([host, reached]).toEqual([host, false]);
      }
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  }, 60_000);
});
