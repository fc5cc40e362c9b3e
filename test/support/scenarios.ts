/**
 * Walks through recovery flows over HTTP, the way a client would: shared by the support-review, ops
 * and codec tests and by scripts/record-histories.ts (which records the histories these walks leave).
 */
import crypto from 'node:crypto';
import type { Api } from './harness';

export const OPS_TOKEN = 'ops-token-for-tests-only';
export const ops = { authorization: `Bearer ${OPS_TOKEN}` };

/** A random 15-digit IMEI with a valid Luhn check digit. */
export function randomImei(): string {
  const body = Array.from({ length: 14 }, (_, i) => (i === 0 ? 1 + crypto.randomInt(9) : crypto.randomInt(10))).join('');
  let sum = 0;
  for (let i = 0; i < 14; i++) {
    // from the right, the check digit is position 0: positions 1, 3, … of the body are doubled
    let d = Number(body[13 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return body + String((10 - (sum % 10)) % 10);
}

/** The attestation a phone with `imei` presents when it binds itself, from the dev endpoint (not in production). */
export async function deviceAttestation(api: Api, imei: string): Promise<string> {
  const r = await api.get(`/v1/dev/device-attestation?imei=${encodeURIComponent(imei)}`);
  if (r.status !== 200 || typeof r.body?.attestation !== 'string') throw new Error(`device attestation: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.attestation;
}

/** Signs in and binds a device with `imei` to the account (factory-reset protection), through the API. */
export async function bindDevice(api: Api, acc: { email: string; password: string }, imei = randomImei()): Promise<string> {
  const session = await api.post('/v1/sessions', { identifier: acc.email, password: acc.password });
  if (session.status !== 201) throw new Error(`sign-in: ${session.status} ${JSON.stringify(session.body)}`);
  const attestation = await deviceAttestation(api, imei);
  const bound = await api.post('/v1/me/devices', { imei, model: 'Redmi Note 13', attestation }, { authorization: `Bearer ${session.body.token}` });
  if (bound.status !== 201) throw new Error(`bind device: ${bound.status} ${JSON.stringify(bound.body)}`);
  return imei;
}

/** Starts a reset for `identifier` and says "not working" twice: the flow is at `support`. */
export async function resetToSupport(api: Api, identifier: string): Promise<string> {
  const flow = await api.resetToCode(identifier);
  for (let i = 0; i < 2; i++) {
    const r = await api.post(`/v1/flows/${flow.flowId}/not-working`);
    if (r.status !== 200) throw new Error(`not-working: ${r.status} ${JSON.stringify(r.body)}`);
  }
  return flow.flowId;
}

export interface SupportForm {
  accountId: string;
  imei: string;
  contactEmail: string;
  message?: string;
}

/** Submits the support form: the flow is at `support_review` with a case id. */
export async function submitSupport(api: Api, flowId: string, form: SupportForm): Promise<{ caseId: string; flow: any }> {
  const r = await api.post(`/v1/flows/${flowId}/support`, form);
  if (r.status !== 200 || r.body.step !== 'support_review') throw new Error(`support: ${r.status} ${JSON.stringify(r.body)}`);
  return { caseId: r.body.supportCaseId, flow: r.body };
}

export function decide(api: Api, caseId: string, verdict: 'approve' | 'reject', reviewer: string, note: string) {
  return api.post(`/v1/ops/support-cases/${caseId}/${verdict}`, { reviewer, note }, ops);
}

/** Polls the flow until `done(flow)` holds. */
export async function waitForFlow(api: Api, flowId: string, done: (flow: any) => boolean, timeoutMs = 20_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await api.get(`/v1/flows/${flowId}`);
    if (r.status === 200 && done(r.body)) return r.body;
    if (Date.now() > deadline) throw new Error(`flow ${flowId} did not get there: ${JSON.stringify(r.body)}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function setPassword(api: Api, flowId: string, password: string) {
  return api.post(`/v1/flows/${flowId}/password`, { password, confirmation: password });
}

/** A contact address of the user's own (not the account's email), unique per call. */
export function contactEmail(tag = 'me'): string {
  return `${tag}-${crypto.randomBytes(4).toString('hex')}@elsewhere.example`;
}
