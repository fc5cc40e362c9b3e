/**
 * A script that guesses codes as fast as the API lets it, with rate limits on (RATE_LIMITS=on,
 * api/rate-limit.ts):
 *   - within one flow it gets at most MAX_CODE_ATTEMPTS × (MAX_RESENDS + 1) guesses checked against a
 *     code, however many requests it sends (and past 20 a minute it is refused outright, 429);
 *   - across flows: restarting buys nothing for long, since starts are limited per identifier and per
 *     client address (429 rate_limited with Retry-After), and wrong guesses count per account across
 *     flows until recovery pauses (429 too_many_attempts).
 */
import { startHarness, makeAccount, type Harness, type Reply } from './support/harness';

const MAX_CODE_ATTEMPTS = 3;
const MAX_RESENDS = 2;
const COOLDOWN_MS = 1000;

let h: Harness;
beforeAll(async () => {
  h = await startHarness('brute', { RATE_LIMITS: 'on', MAX_CODE_ATTEMPTS: String(MAX_CODE_ATTEMPTS), MAX_RESENDS: String(MAX_RESENDS), RESEND_COOLDOWN: '1s' });
}, 120_000);
afterAll(async () => {
  await h?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Attacks one flow at `code` until the API stops checking guesses; returns how many guesses were checked
 * against a code (each one used up an attempt: attemptsLeft went down) and what the answers were.
 */
async function attack(
  flowId: string,
  avoid: Set<string>,
  attemptsLeft: number,
  maxRequests = 80,
): Promise<{ checked: number; requests: number; statuses: Record<string, number> }> {
  let checked = 0;
  let requests = 0;
  let left = attemptsLeft;
  const statuses: Record<string, number> = {};
  let guess = 0;
  const nextGuess = () => {
    let g: string;
    do g = String(guess++).padStart(6, '0');
    while (avoid.has(g));
    return g;
  };
  while (requests < maxRequests) {
    requests += 1;
    const r = await h.api.post(`/v1/flows/${flowId}/code`, { code: nextGuess() });
    const code = String(r.body?.code ?? r.status);
    statuses[code] = (statuses[code] ?? 0) + 1;
    expect(r.status).not.toBe(200); // never right
    if (code === 'code_invalid' || code === 'code_exhausted') {
      const now = Number(r.body.attemptsLeft ?? 0);
      if (now < left) checked += left - now; // this guess used up an attempt
      left = now;
    }
    if (code === 'code_exhausted') {
      // burned: ask for a new code as soon as the cooldown allows, until the resends run out
      await sleep(COOLDOWN_MS + 50);
      const resend = await h.api.post(`/v1/flows/${flowId}/resend`);
      if (resend.status !== 200) {
        statuses[`resend:${resend.body?.code}`] = 1;
        break;
      }
      left = resend.body.attemptsLeft;
    }
    if (code === 'rate_limited' || code === 'too_many_attempts') break;
  }
  return { checked, requests, statuses };
}

test('one flow: at most MAX_CODE_ATTEMPTS × (MAX_RESENDS + 1) guesses are ever checked', async () => {
  const acc = await makeAccount();
  const flow = await h.api.resetToCode(acc.email);
  const { code } = await h.api.codeFor(acc.email);
  // the attacker does not know the code; leaving it out just keeps the test deterministic
  const result = await attack(flow.flowId, new Set([code]), flow.attemptsLeft);
  process.stderr.write(`brute force, one flow: ${JSON.stringify(result)}\n`);
  expect(result.checked).toBeGreaterThan(0);
  expect(result.checked).toBeLessThanOrEqual(MAX_CODE_ATTEMPTS * (MAX_RESENDS + 1));
  expect(result.statuses['resend:resend_limit']).toBe(1);
  // after that, nothing more gets through: only refusals
  const more = await attack(flow.flowId, new Set([code]), 0, 25);
  expect(more.checked).toBe(0);
  expect((more.statuses.rate_limited ?? 0) + (more.statuses.code_exhausted ?? 0)).toBeGreaterThan(0);
}, 120_000);

test('submissions per flow are rate limited: 20 a minute, then 429 with Retry-After', async () => {
  const acc = await makeAccount();
  const flow = await h.api.resetToCode(acc.email);
  let limited: Reply | undefined;
  for (let i = 0; i < 30 && !limited; i++) {
    const r = await h.api.post(`/v1/flows/${flow.flowId}/code`, { code: '000000' });
    if (r.status === 429 && r.body.code === 'rate_limited') limited = r;
  }
  expect(limited).toBeDefined();
  expect(limited!.headers.get('content-type')).toContain('application/problem+json');
  expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
}, 60_000);

test('across flows: starts are limited per identifier and per address; wrong guesses count per account', async () => {
  const acc = await makeAccount();
  const avoid = new Set<string>();
  let checked = 0;
  let startsAccepted = 0;
  let startLimited: Reply | undefined;
  let accountPaused = false;
  let pausedAtFlow = 0;
  for (let i = 0; i < 15 && !startLimited; i++) {
    const start = await h.api.post('/v1/flows/password-reset', { identifier: acc.email });
    if (start.status === 429) {
      startLimited = start;
      break;
    }
    expect(start.status).toBe(201);
    startsAccepted += 1;
    const id = start.body.flowId;
    await h.api.get(`/v1/flows/${id}/captcha`);
    await h.api.post(`/v1/flows/${id}/captcha`, { answer: 'test' });
    const { code } = await h.api.codeFor(acc.email, new Date(Date.now() - 1000).toISOString()).catch(() => ({ code: '' }));
    if (code) avoid.add(code);
    // as fast as allowed, no resends: a fresh flow is the attacker's way to a fresh code
    for (let k = 0; k < MAX_CODE_ATTEMPTS + 1; k++) {
      const r = await h.api.post(`/v1/flows/${id}/code`, { code: String(100000 + checked + k * 7).slice(0, 6) });
      if (r.body?.code === 'code_invalid' || (r.body?.code === 'code_exhausted' && k === MAX_CODE_ATTEMPTS - 1)) checked += 1;
      if (r.body?.code === 'too_many_attempts') {
        if (!accountPaused) pausedAtFlow = startsAccepted;
        accountPaused = true;
      }
    }
  }
  process.stderr.write(`brute force, across flows: ${startsAccepted} starts accepted, ${checked} guesses checked, account paused from flow ${pausedAtFlow}\n`);
  // startPerIdentifier: 10 per 10 minutes
  expect(startsAccepted).toBeLessThanOrEqual(10);
  expect(startLimited?.body.code).toBe('rate_limited');
  expect(Number(startLimited!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  // RECOVERY_FAILURE_LIMIT (activities/recovery.ts): 20 wrong guesses per account per hour, across flows.
  // Known gap: a flow learns of the pause from its own first failure, so every flow started after the
  // pause still gets one guess checked (bounded by the start limit above).
  expect(accountPaused).toBe(true);
  expect(checked).toBeLessThanOrEqual(20 + (startsAccepted - pausedAtFlow));

  // per client address: 30 starts per 10 minutes, whatever the identifiers
  let perIp: Reply | undefined;
  for (let i = 0; i < 35 && !perIp; i++) {
    const r = await h.api.post('/v1/flows/password-reset', { identifier: `someone-${i}-${Date.now()}@example.com` });
    if (r.status === 429) perIp = r;
  }
  expect(perIp?.body.code).toBe('rate_limited');
}, 180_000);
