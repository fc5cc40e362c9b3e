/**
 * The web pages (web/), driven in Debian's Chromium (/usr/bin/chromium, installed by scripts/ensure-chromium.sh)
 * through playwright-core, against the real in-process API + worker of the harness. Each wizard step is
 * screenshotted under test-results/screenshots/. A test fails on any page error or console error; the one
 * console line tolerated is Chromium's own "Failed to load resource: … status of 4xx" for an API call the
 * contract answers with a 4xx (a wrong code, a wrong password): the page turns those into sentences, and the
 * tests check the sentences.
 */
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startHarness, makeAccount, type Harness } from './support/harness';
import { PROBLEMS } from '../api/problem';

// Callbacks passed to page.evaluate/waitForFunction run in the page; the project compiles without the DOM
// library, so the few browser names they use are declared here, for this file only.
declare const document: any;
declare const sessionStorage: any;
declare const localStorage: any;
declare const window: any;
declare const Event: any;
declare const location: any;
type HTMLImageElement = { naturalWidth: number };
type HTMLInputElement = { labels: { length: number } | null };

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = path.join(__dirname, '..', 'test-results', 'screenshots');
const OPS_TOKEN = 'browser-test-ops-token';
const SCRIPT_BUDGET = 100 * 1024;
/** Sign-up and change phone/email land with api/routes/account-flows.ts; until then their page tests are skipped. */
const ACCOUNT_FLOWS = fs.existsSync(path.join(__dirname, '..', 'api', 'routes', 'account-flows.ts'));
const withAccountFlows = ACCOUNT_FLOWS ? test : test.skip;

const VIEWPORTS = {
  desktop: { width: 1280, height: 860 },
  mobile: { width: 360, height: 740 },
} as const;
type Viewport = keyof typeof VIEWPORTS;

let h: Harness;
let browser: Browser;

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run "bash scripts/ensure-chromium.sh" (apt-get install -y chromium)`);
  // A hold long enough to open the veto link while the reset waits, short enough to watch one end.
  h = await startHarness('browser', { OPS_TOKEN, RECOVERY_HOLD: '15s' });
  fs.mkdirSync(SHOTS, { recursive: true });
  // launch() runs Chromium with a fresh temporary user-data-dir (removed on close): nothing carries over.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await h?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Session {
  context: BrowserContext;
  page: Page;
  /** Console errors and page errors seen so far, on every page of the context. */
  problems: string[];
  /** JS bytes loaded per document URL. */
  scriptBytes: Map<string, number>;
  shot(name: string): Promise<void>;
  newPage(): Promise<Page>;
}

/** A fresh browser context (its own storage) with error and script-size tracking. */
async function open(viewport: Viewport, prefix: string): Promise<Session> {
  const context = await browser.newContext({ viewport: VIEWPORTS[viewport], locale: 'en-GB', timezoneId: 'UTC' });
  const problems: string[] = [];
  const scriptBytes = new Map<string, number>();
  const watch = (page: Page) => {
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() !== 'error') return;
      const text = msg.text();
      const url = msg.location()?.url ?? '';
      if (/^Failed to load resource: the server responded with a status of 4\d\d/.test(text) && new URL(url, h.baseUrl).pathname.startsWith('/v1/')) return;
      problems.push(`console.error: ${text} (${url})`);
    });
    page.on('response', async (res) => {
      if (res.request().resourceType() !== 'script') return;
      const doc = res.request().frame()?.url() ?? '?';
      const body = await res.body().catch(() => Buffer.alloc(0));
      scriptBytes.set(doc, (scriptBytes.get(doc) ?? 0) + body.length);
    });
  };
  context.on('page', watch);
  if (process.env.DEBUG_BROWSER) {
    context.on('request', (r) => process.stderr.write(`> ${Date.now() % 100000} ${r.method()} ${r.url()}\n`));
    context.on('requestfinished', (r) => process.stderr.write(`< ${Date.now() % 100000} ${r.method()} ${r.url()}\n`));
  }
  const page = await context.newPage();
  let n = 0;
  return {
    context,
    page,
    problems,
    scriptBytes,
    async shot(name) {
      n += 1;
      await page.screenshot({ path: path.join(SHOTS, `${prefix}-${String(n).padStart(2, '0')}-${name}-${viewport}.png`), fullPage: true });
    },
    newPage: () => context.newPage(),
  };
}

/** Runs a browser test in its own context; fails on any console or page error. */
function browserTest(name: string, viewport: Viewport, fn: (s: Session) => Promise<void>, run = test, timeout = 120_000) {
  const prefix = name
    .replace(/[^a-z0-9]+/gi, '-')
    .replace(/^-|-$/g, '')
    .toLowerCase()
    .slice(0, 40);
  run(
    name,
    async () => {
      const s = await open(viewport, prefix);
      try {
        await fn(s);
        await sleep(100);
        expect(s.problems).toEqual([]);
        if (viewport === 'mobile') {
          // nothing wider than the phone
          expect(await s.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(VIEWPORTS.mobile.width);
        }
      } catch (err) {
        await s.page.screenshot({ path: path.join(SHOTS, `${prefix}-FAILED-${viewport}.png`), fullPage: true }).catch(() => undefined);
        throw err;
      } finally {
        await s.context.close();
      }
    },
    timeout,
  );
}

// ------------------------------------------------------------------------------------------------ helpers

/** Waits for the wizard screen of `step`; checks focus moved into it; screenshots it. */
async function atStep(s: Session, step: string, opts: { focus?: string; timeout?: number; shot?: boolean } = {}) {
  await s.page.waitForSelector(`.screen[data-step="${step}"]`, { timeout: opts.timeout ?? 15_000 });
  await s.page.waitForFunction(() => document.activeElement && document.activeElement.closest('.screen, dialog'), undefined, { timeout: 5_000 });
  if (opts.focus) expect(await s.page.evaluate(() => document.activeElement?.id)).toBe(opts.focus);
  if (opts.shot !== false) await s.shot(step);
}

async function waitText(page: Page, selector: string, re: RegExp, timeout = 15_000) {
  try {
    await page.waitForFunction(([sel, src, flags]) => new RegExp(src, flags).test(document.querySelector(sel)?.textContent ?? ''), [selector, re.source, re.flags] as const, {
      timeout,
    });
  } catch {
    throw new Error(`${selector} never matched ${re}; it says: ${JSON.stringify(await page.textContent(selector).catch(() => null))}`);
  }
}

/** The captcha step as a person does it: wait for the picture, type what it shows, Enter. */
async function passCaptcha(s: Session, shot = false) {
  await atStep(s, 'captcha', { focus: 'answer', shot });
  await s.page.waitForFunction(() => (document.querySelector('img.captcha') as HTMLImageElement | null)?.naturalWidth);
  await typeAndEnter(s.page, 'test');
}
const flowParam = (page: Page) => new URL(page.url()).searchParams.get('flow');

/** The flow secret this browser keeps for the flow in the address bar (v1.1: localStorage "flowSecret:<id>"). */
async function secretOf(page: Page, flowId = flowParam(page)): Promise<string | null> {
  return page.evaluate((id) => {
    try {
      return JSON.parse(localStorage.getItem(`flowSecret:${id}`) ?? 'null')?.secret ?? null;
    } catch {
      return null;
    }
  }, flowId);
}

/** The Flow of the page's address bar, read by the test with the page's secret (the harness Api is a stranger). */
async function flowOf(page: Page): Promise<any> {
  const secret = await secretOf(page);
  const r = await h.api.get(`/v1/flows/${flowParam(page)}`, secret ? { 'Flow-Secret': secret } : {});
  expect(r.status).toBe(200);
  return r.body;
}

/** Types into the focused field and presses Enter: the keyboard-only way through a step. */
/** Reloads the page at `code` (it must resume the same flow there), then opens the same address in a second tab, which resumes too. */
async function reloadThenSecondTab(s: Session, flowId: string): Promise<Page> {
  await s.page.reload();
  await atStep(s, 'code', { focus: 'code', shot: false });
  expect(flowParam(s.page)).toBe(flowId);
  const second = await s.newPage();
  await second.goto(s.page.url());
  await second.waitForSelector('.screen[data-step="code"] #code:focus');
  return second;
}

/** Opens the reset page, starts a reset for `identifier` and passes the captcha: the page shows the code step. */
async function resetPageAtCode(s: Session, identifier: string): Promise<void> {
  await s.page.goto(`${h.baseUrl}/reset.html`);
  await typeAndEnter(s.page, identifier);
  await passCaptcha(s);
  await atStep(s, 'code', { shot: false });
}

async function typeAndEnter(page: Page, text: string) {
  await page.keyboard.type(text);
  await page.keyboard.press('Enter');
}

async function signInThroughPage(s: Session, identifier: string, password: string) {
  await s.page.goto(`${h.baseUrl}/`);
  await s.page.fill('#identifier', identifier);
  await s.page.fill('#password', password);
  await s.page.click('button[type=submit]');
  await s.page.waitForURL(/account\.html/);
  await s.page.waitForSelector('#me-account');
}

// ------------------------------------------------------------------------------------------------ tests

describe('forgot password', () => {
  browserTest('by email: captcha, a wrong code, a reload, the right code, a new password', 'desktop', async (s) => {
    const acc = await makeAccount();
    const { page } = s;
    await page.goto(`${h.baseUrl}/reset.html`);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('identifier');
    await s.shot('identifier');
    await typeAndEnter(page, acc.email);

    await atStep(s, 'captcha', { focus: 'answer' });
    expect(flowParam(page)).toMatch(/^rst_/);
    await page.waitForFunction(() => (document.querySelector('img.captcha') as HTMLImageElement | null)?.naturalWidth);
    await page.click('text=New picture');
    await page.waitForFunction(() => (document.querySelector('img.captcha') as HTMLImageElement | null)?.naturalWidth);
    await page.fill('#answer', 'wrong');
    await page.keyboard.press('Enter');
    await waitText(page, '#alert', /did not match the picture/);
    await page.waitForFunction(() => (document.querySelector('img.captcha') as HTMLImageElement | null)?.naturalWidth);
    await page.fill('#answer', 'test');
    await page.keyboard.press('Enter');

    await atStep(s, 'code', { focus: 'code' });
    const codeInput = page.locator('#code');
    expect(await codeInput.getAttribute('autocomplete')).toBe('one-time-code');
    expect(await codeInput.getAttribute('inputmode')).toBe('numeric');
    await waitText(page, '.screen', new RegExp(`by email to ${acc.email[0]}\\*\\*\\*@example\\.com`));
    await waitText(page, '#code-expiry', /The code expires in 0:\d\d\./);
    await waitText(page, '#resend-info', /ask for a new code in 0:0\d|Did not get it/);

    const { code, sentAt } = await h.api.codeFor(acc.email);
    const wrong = code === '000000' ? '111111' : '000000';
    await typeAndEnter(page, wrong);
    await waitText(page, '#alert', /That code is not right\. 2 attempts left\./);
    expect(await page.getAttribute('#code', 'aria-invalid')).toBe('true');
    await s.shot('code-wrong');

    // a reload resumes the same flow at the same step (the flow secret waits in localStorage, never in the URL); so does a second tab
    const flowId = flowParam(page);
    const secret = await secretOf(page);
    expect(secret).toMatch(/^[A-Za-z0-9_-]{22,}$/);
    expect(page.url()).not.toContain(secret!);
    await (await reloadThenSecondTab(s, flowId!)).close();

    // resend after the cooldown: a new code, the old one void
    await page.waitForSelector('.resend button:not([disabled])', { timeout: 10_000 });
    await page.click('.resend button');
    await waitText(page, '#status', /We sent a new code/);
    const resent = await h.api.codeFor(acc.email, sentAt);
    await page.fill('#code', resent.code);
    await page.keyboard.press('Enter');

    await atStep(s, 'new_password', { focus: 'password' });
    await page.keyboard.type('short');
    await waitText(page, '#password-strength', /Too short/);
    await page.fill('#password', 'password123');
    await page.fill('#confirmation', 'password123');
    await page.keyboard.press('Enter');
    await waitText(page, '#alert', /too easy to guess/);
    await page.fill('#password', 'copper kettle under moonlight');
    await waitText(page, '#password-strength', /Strong|Good/);
    await page.fill('#confirmation', 'copper kettle under moonlight!');
    await page.keyboard.press('Enter');
    await waitText(page, '#alert', /The two passwords differ/);
    await page.fill('#confirmation', 'copper kettle under moonlight');
    await s.shot('new-password-filled');
    await page.keyboard.press('Enter');

    await atStep(s, 'completed');
    await waitText(page, 'h2', /Your password was changed/);
    expect(await secretOf(page, flowId)).toBeNull(); // the flow ended: its secret is gone from the browser
    expect((await h.api.post('/v1/sessions', { identifier: acc.email, password: 'copper kettle under moonlight' })).status).toBe(201);
  });

  browserTest('by phone at 360 px, keyboard only: the code comes by SMS', 'mobile', async (s) => {
    const acc = await makeAccount();
    const { page } = s;
    await page.goto(`${h.baseUrl}/`);
    await s.shot('sign-in');
    // Tab from the top of the page to "Forgot password?" and follow it
    await page.keyboard.press('Tab'); // skip link
    let guard = 0;
    while ((await page.evaluate(() => document.activeElement?.textContent)) !== 'Forgot password?' && guard++ < 20) await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.waitForURL(/reset\.html/);
    await page.waitForSelector('#identifier:focus');
    await typeAndEnter(page, acc.phone);
    await atStep(s, 'captcha', { focus: 'answer' });
    await page.waitForFunction(() => (document.querySelector('img.captcha') as HTMLImageElement | null)?.naturalWidth);
    await typeAndEnter(page, 'TEST');
    await atStep(s, 'code', { focus: 'code' });
    await waitText(page, '.screen', new RegExp(`by text message to \\+1 \\*\\*\\* \\*\\*\\* ${acc.phone.slice(-4)}`));
    const { code } = await h.api.codeFor(acc.phone);
    await typeAndEnter(page, code);
    await atStep(s, 'new_password', { focus: 'password' });
    await page.keyboard.type('seven quiet harbour lanterns');
    await page.keyboard.press('Tab'); // the strength text is not focusable; next: Show password
    await page.keyboard.press('Tab');
    await page.keyboard.type('seven quiet harbour lanterns');
    await page.keyboard.press('Enter');
    await atStep(s, 'completed');
    expect((await h.api.post('/v1/sessions', { identifier: acc.phone, password: 'seven quiet harbour lanterns' })).status).toBe(201);
  });

  browserTest('"Not working?" → security questions → hold; the veto link cancels it and the waiting tab shows it', 'mobile', async (s) => {
    const acc = await makeAccount();
    const { page } = s;
    await resetPageAtCode(s, acc.email);
    await page.click('text=Not working?');
    await atStep(s, 'security_questions', { focus: 'answer-q-first-pet' });
    const inputs = page.locator('.screen input[type=text]');
    expect(await inputs.count()).toBe(3);
    for (let i = 0; i < 3; i++) await inputs.nth(i).fill('green');
    await page.keyboard.press('Enter');
    await waitText(page, '#alert', /At least one answer is not right\. 1 attempt left\./);
    await waitText(page, '#tries', /You have 1 try left\./);
    await s.shot('questions-wrong');
    for (let i = 0; i < 3; i++) await inputs.nth(i).fill(' Blue');
    await page.keyboard.press('Enter');
    await atStep(s, 'new_password', { focus: 'password' });
    // told before the password is chosen: a hold follows, and every channel on file can cancel it
    await waitText(
      page,
      '#hold-notice',
      /security questions .*takes effect only after a hold of 15 seconds\. Every phone number and email address on the account will be told and can cancel it/,
    );
    await page.fill('#password', 'marble falcon drinks tea');
    await page.fill('#confirmation', 'marble falcon drinks tea');
    await s.shot('new-password-hold-notice');
    await page.keyboard.press('Enter');
    await atStep(s, 'hold');
    await waitText(page, '.screen', /takes effect at \d\d:\d\d \(in 0:\d\d\)/);

    const notice = await h.api.waitForMessage(acc.email, { match: /takes effect/ });
    const link = new URL(/https?:\/\/\S+\/veto\?\S+/.exec(notice.text)![0]);
    const veto = await s.newPage();
    await veto.goto(`${h.baseUrl}${link.pathname}${link.search}`);
    await veto.waitForSelector('#veto');
    await veto.screenshot({ path: path.join(SHOTS, 'veto-01-ask-mobile.png'), fullPage: true });
    await veto.click('#veto');
    await waitText(veto, 'h2', /The reset is cancelled/);
    await veto.screenshot({ path: path.join(SHOTS, 'veto-02-cancelled-mobile.png'), fullPage: true });

    // the waiting tab polls and shows the end by itself
    await atStep(s, 'cancelled', { timeout: 10_000 });
    await waitText(page, '.screen', /cancelled with the link/);
    expect((await h.api.post('/v1/sessions', { identifier: acc.email, password: acc.password })).status).toBe(201);
  });

  browserTest(
    'support form → review page polls → ops approve → code to the contact email → hold → done',
    'desktop',
    async (s) => {
      const acc = await makeAccount({ questions: false });
      const { page } = s;
      const contact = `helper-${Date.now()}@elsewhere.example`;
      await resetPageAtCode(s, acc.accountId);
      await page.click('text=Not working?');
      await atStep(s, 'security_questions', { shot: false });
      await page.click('text=Not working?');
      await atStep(s, 'support', { focus: 'accountId' });
      await page.keyboard.type(acc.accountId);
      await page.fill('#imei', '12345');
      await page.fill('#contactEmail', contact);
      await page.keyboard.press('Enter');
      await waitText(page, '#alert', /not a valid IMEI/);
      expect(await page.evaluate(() => document.activeElement?.id)).toBe('imei');
      await page.fill('#imei', '490154203237518');
      await page.fill('#message', 'I lost my phone on the train.');
      await s.shot('support-filled');
      await page.click('button[type=submit]');
      await atStep(s, 'support_review');
      await waitText(page, '.screen', /case_/);
      await waitText(page, '#last-checked', /Last checked at/, 10_000);

      const flow = await flowOf(page);
      const approve = await h.api.post(`/v1/ops/support-cases/${flow.supportCaseId}/approve`, { reviewer: 'browser-test', note: 'ok' }, { authorization: `Bearer ${OPS_TOKEN}` });
      expect(approve.status).toBe(200);
      await atStep(s, 'code', { timeout: 15_000 });
      await waitText(page, '#status', /We sent a code to h\*\*\*@elsewhere\.example/);
      const { code } = await h.api.codeFor(contact);
      await page.fill('#code', code);
      await page.keyboard.press('Enter');
      await atStep(s, 'new_password', { shot: false });
      await waitText(page, '#hold-notice', /with the help of support.*after a hold of 15 seconds/);
      await page.fill('#password', 'support found my account');
      await page.fill('#confirmation', 'support found my account');
      await page.keyboard.press('Enter');
      await atStep(s, 'hold');
      // nobody vetoes: the page follows the flow to its end
      await atStep(s, 'completed', { timeout: 30_000 });
      expect((await h.api.post('/v1/sessions', { identifier: acc.accountId, password: 'support found my account' })).status).toBe(201);
    },
    test,
    150_000,
  );

  browserTest('the flow secret: a reload and a second tab resume, another browser with the same address starts over', 'mobile', async (s) => {
    const acc = await makeAccount();
    const { page } = s;
    const sent: { url: string; secret?: string }[] = [];
    s.context.on('request', (r) => {
      if (new URL(r.url()).pathname.startsWith('/v1/flows/')) sent.push({ url: r.url(), secret: r.headers()['flow-secret'] });
    });
    await resetPageAtCode(s, acc.email);
    const flowId = flowParam(page)!;
    const secret = await secretOf(page);
    expect(secret).toMatch(/^[A-Za-z0-9_-]{22,}$/);
    // every request on the flow carried it in the header; none has it in the address
    const onFlow = sent.filter((r) => new URL(r.url).pathname.startsWith(`/v1/flows/${flowId}`));
    expect(onFlow.length).toBeGreaterThanOrEqual(2);
    for (const r of onFlow) expect([r.url, r.secret]).toEqual([r.url, secret]);
    for (const r of sent) expect(r.url).not.toContain(secret!);
    expect(page.url()).not.toContain(secret!);

    // a reload mid-flow resumes at the same step; a second tab on the same address resumes too, and drives the flow
    const second = await reloadThenSecondTab(s, flowId);
    await second.click('text=Not working?');
    await second.waitForSelector('.screen[data-step="security_questions"]');
    await page.bringToFront();
    await page.evaluate(() => window.dispatchEvent(new Event('focus')));
    await atStep(s, 'security_questions', { shot: false });

    // another browser (no secret) with the same address: "not found", as for an unknown flow, and starts over
    const stranger = await browser.newContext({ viewport: VIEWPORTS.mobile });
    try {
      const other = await stranger.newPage();
      await other.goto(`${h.baseUrl}/reset.html?flow=${flowId}`);
      await waitText(other, '#alert', /This request was not found/);
      expect(new URL(other.url()).searchParams.get('flow')).toBeNull();
      await other.waitForSelector('#identifier:focus');
    } finally {
      await stranger.close();
    }

    // cancelled here: the ended flow's secret leaves the browser; the other tab follows
    await page.click('.cancel button');
    await atStep(s, 'cancelled', { shot: false });
    expect(await secretOf(page, flowId)).toBeNull();
    await second.evaluate(() => window.dispatchEvent(new Event('focus')));
    await second.waitForSelector('.screen[data-step="cancelled"]');
    await second.close();
  });

  browserTest('a reset replaced by a newer one says so, without naming the newer flow', 'mobile', async (s) => {
    const acc = await makeAccount();
    const { page } = s;
    await resetPageAtCode(s, acc.email);
    const newer = await h.api.resetToCode(acc.email);
    await page.reload();
    await atStep(s, 'cancelled');
    await waitText(page, '.screen', /A newer request replaced this one/);
    expect(await page.textContent('main')).not.toContain(newer.flowId);
    expect(await page.textContent('main')).not.toMatch(/rst_/);
  });

  browserTest('a link to an unknown flow starts over with a sentence, not an error dump', 'mobile', async (s) => {
    await s.page.goto(`${h.baseUrl}/reset.html?flow=rst_AAAAAAAAAAAAAAAAAAAAAA`);
    await waitText(s.page, '#alert', /This request was not found/);
    expect(flowParam(s.page)).toBeNull();
    expect(await s.page.evaluate(() => document.activeElement?.id)).toBe('identifier');
  });
});

describe('sign in and the account page', () => {
  browserTest('wrong password, lockout with the time left, then signed in', 'mobile', async (s) => {
    const acc = await makeAccount();
    const locked = await makeAccount();
    for (let i = 0; i < 10; i++) await h.api.post('/v1/sessions', { identifier: locked.email, password: 'not the password at all' });
    const { page } = s;
    await page.goto(`${h.baseUrl}/`);
    await page.fill('#identifier', acc.email);
    await page.fill('#password', 'wrong password');
    await page.keyboard.press('Enter');
    await waitText(page, '#alert', /The account or the password is not right\./);
    await s.shot('invalid');
    await page.fill('#identifier', locked.email);
    await page.fill('#password', locked.password);
    await page.keyboard.press('Enter');
    await waitText(page, '#alert', /locked for a while .* Try again in 1[45] minutes \(after \d\d:\d\d\), or reset your password\./);
    await s.shot('locked');
    await page.fill('#identifier', acc.email);
    await page.fill('#password', acc.password);
    await page.keyboard.press('Enter');
    await page.waitForURL(/account\.html/);
    await page.waitForSelector('#me-account');
    expect(await page.evaluate(() => JSON.parse(sessionStorage.getItem('account.session') ?? '{}').token)).toMatch(/.{20,}/);
    await s.shot('account');
  });

  browserTest('account: security questions, bind a device, remove it with the password, sign out', 'desktop', async (s) => {
    const acc = await makeAccount({ questions: false });
    const { page } = s;
    await page.goto(`${h.baseUrl}/account.html`);
    await page.waitForURL(/\/\?next=account\.html|\/index\.html\?next=/); // not signed in: to sign-in first
    await signInThroughPage(s, acc.email, acc.password);
    await waitText(page, '#me-email', new RegExp(`^${acc.email[0]}\\*\\*\\*@example\\.com$`));
    await waitText(page, '#me-phone', new RegExp(`${acc.phone.slice(-4)}$`));
    await waitText(page, '#questions-state', /Not set/);
    await s.shot('overview');

    await page.click('text=Set up security questions');
    await page.waitForSelector('#q0:focus');
    await page.selectOption('#q1', 'q-first-pet');
    await page.fill('#a0', 'one');
    await page.fill('#a1', 'two');
    await page.fill('#a2', 'three');
    await page.click('text=Save questions');
    await waitText(page, '#alert', /three different questions/);
    await page.selectOption('#q1', 'q-birth-city');
    await page.click('text=Save questions');
    await waitText(page, '#alert', /Enter your password/);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('questions-password');
    await page.keyboard.type('not my password');
    await page.click('text=Save questions');
    await waitText(page, '#alert', /That password is not right/);
    await page.fill('#questions-password', acc.password);
    await s.shot('questions-form');
    await page.click('text=Save questions');
    await waitText(page, '#status', /security questions are saved/);
    await waitText(page, '#questions-state', /^Set$/);

    await page.click('text=Bind a device');
    await page.waitForSelector('#imei:focus');
    await page.keyboard.type('490154203237517');
    await page.fill('#model', 'Xiaomi 14');
    await page.keyboard.press('Enter');
    await waitText(page, '#alert', /not a valid IMEI/);
    await page.fill('#imei', '490154203237518');
    await page.fill('#attestation', 'bm90IHRoZSBhdHRlc3RhdGlvbiBvZiB0aGlzIHBob25l');
    await page.keyboard.press('Enter');
    await waitText(page, '#alert', /device attestation does not match/);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('attestation');
    const { attestation } = (await h.api.get('/v1/dev/device-attestation?imei=490154203237518')).body;
    await page.fill('#attestation', attestation);
    await page.keyboard.press('Enter');
    await waitText(page, '#status', /Xiaomi 14 is now bound/);
    await waitText(page, '.devices', /Xiaomi 14.*IMEI \*\*\* 7518/);
    expect((await h.api.get('/v1/devices/490154203237518/lock')).body.locked).toBe(true);
    await s.shot('device-bound');

    await page.click('.devices button.danger');
    await page.waitForSelector('dialog[open] #remove-password:focus');
    await page.keyboard.type('not my password');
    await page.keyboard.press('Enter');
    await waitText(page, 'dialog .dlg-alert', /That password is not right/);
    await s.shot('remove-device-dialog');
    await page.fill('#remove-password', acc.password);
    await page.keyboard.press('Enter');
    await waitText(page, '#status', /was removed from this account/);
    expect((await h.api.get('/v1/devices/490154203237518/lock')).body.locked).toBe(false);

    await page.click('#signout');
    await page.waitForURL(/signedout=1/);
    await waitText(page, '#status', /You are signed out/);
    expect(await page.evaluate(() => sessionStorage.getItem('account.session'))).toBeNull();
  });
});

describe('sign up and change phone', () => {
  browserTest(
    'sign up by email: code, captcha, consent with both documents, password → signed in',
    'mobile',
    async (s) => {
      const email = `new-${Date.now()}@example.com`;
      const { page } = s;
      await page.goto(`${h.baseUrl}/signup.html`);
      await page.check('#by-email');
      await page.fill('#contact', email);
      await s.shot('start');
      await page.keyboard.press('Enter');
      await atStep(s, 'code', { focus: 'code' });
      await waitText(page, '.screen', /by email to n\*\*\*@example\.com/);
      const { code } = await h.api.codeFor(email);
      await typeAndEnter(page, code);
      await atStep(s, 'captcha', { focus: 'answer' });
      await page.waitForFunction(() => (document.querySelector('img.captcha') as HTMLImageElement | null)?.naturalWidth);
      await typeAndEnter(page, 'test');
      await atStep(s, 'consent');
      const flow = await flowOf(page);
      for (const d of flow.documents as { id: string; version: string }[]) {
        const href = await page.getAttribute(`a[href^="legal/${d.id}.html"]`, 'href');
        expect(href).toBe(`legal/${d.id}.html?version=${d.version}`);
        const doc = await h.api.get(`/${href}`);
        expect([doc.status, String(doc.body)]).toEqual([200, expect.stringContaining(`Version <strong id="doc-version">${d.version}</strong>`)]);
      }
      await page.click('button[type=submit]');
      await waitText(page, '#alert', /accept both the Privacy Policy and the User Agreement/);
      await page.check('#accept');
      await page.click('#sync'); // sync off
      await s.shot('consent-filled');
      await page.click('button[type=submit]');
      await atStep(s, 'password', { focus: 'password' });
      await page.keyboard.type('lemon tree by the river');
      await page.fill('#confirmation', 'lemon tree by the river');
      await page.keyboard.press('Enter');
      await atStep(s, 'completed');
      const stored = await page.evaluate(() => JSON.parse(sessionStorage.getItem('account.session') ?? 'null'));
      expect(stored?.token).toBeTruthy();
      await page.click('text=Go to your account');
      await page.waitForSelector('#me-account');
      await waitText(page, '#me-email', /^n\*\*\*@example\.com$/);
      const me = await h.api.get('/v1/me', { authorization: `Bearer ${stored.token}` });
      expect(me.body.consent).toMatchObject({ syncEnabled: false });
    },
    withAccountFlows,
  );

  browserTest(
    'change phone: verify, new number, the confirmation pop-up, the code sent to it, done',
    'desktop',
    async (s) => {
      const acc = await makeAccount();
      const newPhone = `+1415556${String(Math.floor(Math.random() * 10_000)).padStart(4, '0')}`;
      const { page } = s;
      await signInThroughPage(s, acc.email, acc.password);
      await page.click('#change-phone');
      await atStep(s, 'code', { focus: 'code' });
      expect(flowParam(page)).toMatch(/^chp_/);
      await waitText(page, 'h1', /Change phone number/);
      const first = await h.api.codeFor(acc.phone);
      await typeAndEnter(page, first.code);
      await atStep(s, 'new_phone', { focus: 'phone' });
      await typeAndEnter(page, newPhone.replace(/^(\+1)(\d{3})(\d{3})(\d{4})$/, '$1 $2 $3-$4'));
      await page.waitForSelector('dialog[open]');
      const grouped = `+1 ${newPhone.slice(2, 5)} ${newPhone.slice(5, 8)} ${newPhone.slice(8)}`;
      await waitText(page, 'dialog[open]', new RegExp(`Is \\${grouped} right\\?`));
      await s.shot('confirm-dialog');
      // "No, change it" goes back to typing the number
      await page.click('dialog[open] button[value=no]');
      await page.waitForSelector('#phone:focus');
      await typeAndEnter(page, newPhone);
      await page.waitForSelector('dialog[open] button[value=yes]:focus');
      await page.keyboard.press('Enter');
      await atStep(s, 'code', { focus: 'code' });
      await waitText(page, 'h2', /Confirm your new phone number/);
      await waitText(page, '.screen', /valid for one day/);
      const second = await h.api.codeFor(newPhone);
      // a reload in the middle resumes at the same step
      await page.reload();
      await atStep(s, 'code', { focus: 'code', shot: false });
      await typeAndEnter(page, second.code);
      await atStep(s, 'completed');
      await page.click('text=Back to your account');
      await waitText(page, '#me-phone', new RegExp(`${newPhone.slice(-4)}$`));
    },
    withAccountFlows,
  );

  browserTest(
    'change phone via security questions: told of the hold first, the hold screen, the old phone cancels it',
    'desktop',
    async (s) => {
      const acc = await makeAccount();
      const newPhone = `+1415557${String(Math.floor(Math.random() * 10_000)).padStart(4, '0')}`;
      const { page } = s;
      await signInThroughPage(s, acc.email, acc.password);
      await page.click('#change-phone');
      await atStep(s, 'code', { shot: false });
      await page.click('text=Not working?');
      await atStep(s, 'security_questions', { shot: false });
      const inputs = page.locator('.screen input[type=text]');
      for (let i = 0; i < 3; i++) await inputs.nth(i).fill('blue');
      await page.keyboard.press('Enter');
      await atStep(s, 'new_phone', { focus: 'phone' });
      await waitText(
        page,
        '#hold-notice',
        /security questions .*the new phone number replaces the old one only after a hold of 15 seconds\. Every phone number and email address on the account, the old phone number included, will be told and can cancel/,
      );
      await typeAndEnter(page, newPhone);
      await page.waitForSelector('dialog[open] button[value=yes]:focus');
      await waitText(page, 'dialog[open]', /waits 15 seconds before it takes effect/);
      await page.keyboard.press('Enter');
      await atStep(s, 'code', { focus: 'code' });
      await waitText(page, '#hold-notice', /after a hold of 15 seconds/);
      await typeAndEnter(page, (await h.api.codeFor(newPhone)).code);
      await atStep(s, 'hold');
      await waitText(page, 'h2', /Your new phone number is waiting/);
      await waitText(page, '.screen', /replaces the old one at \d\d:\d\d \(in 0:\d\d\)/);
      await waitText(page, '.screen', /your old phone number too\. Each message has a link that cancels the change/);

      // the old phone got the cancel link; it opens without a session or a secret
      const notice = await h.api.waitForMessage(acc.phone, { match: /\/veto\?/ });
      const link = new URL(/https?:\/\/\S+\/veto\?\S+/.exec(notice.text)![0]);
      const stranger = await browser.newContext({ viewport: VIEWPORTS.mobile });
      try {
        const veto = await stranger.newPage();
        await veto.goto(`${h.baseUrl}${link.pathname}${link.search}`);
        await veto.waitForSelector('#veto');
        await waitText(veto, 'h1', /Cancel a phone number change/);
        await veto.screenshot({ path: path.join(SHOTS, 'veto-change-01-ask-mobile.png'), fullPage: true });
        await veto.click('#veto');
        await waitText(veto, 'h2', /The change is cancelled/);
      } finally {
        await stranger.close();
      }
      await atStep(s, 'cancelled', { timeout: 10_000 });
      await waitText(page, '.screen', /phone number did not change/);
      const me = await h.api.post('/v1/sessions', { identifier: acc.phone, password: acc.password });
      expect(me.status).toBe(201);
    },
    withAccountFlows,
  );

  browserTest(
    'change email at 360 px: verify, new address, the pop-up, the code sent to it, done',
    'mobile',
    async (s) => {
      const acc = await makeAccount();
      const newEmail = `moved-${Date.now()}@example.org`;
      const { page } = s;
      await signInThroughPage(s, acc.phone, acc.password);
      await page.click('#change-email');
      await atStep(s, 'code', { focus: 'code' });
      expect(flowParam(page)).toMatch(/^che_/);
      await waitText(page, '.screen', new RegExp(`by email to ${acc.email[0]}\\*\\*\\*@example\\.com`));
      await typeAndEnter(page, (await h.api.codeFor(acc.email)).code);
      await atStep(s, 'new_email', { focus: 'email' });
      await typeAndEnter(page, acc.email);
      await waitText(page, '#alert', /already the one on your account/);
      await page.fill('#email', newEmail);
      await page.keyboard.press('Enter');
      await page.waitForSelector('dialog[open] button[value=yes]:focus');
      await waitText(page, 'dialog[open]', new RegExp(`Is ${newEmail.replace(/[.]/g, '\\.')} right\\?`));
      await s.shot('confirm-dialog');
      await page.keyboard.press('Enter');
      await atStep(s, 'code', { focus: 'code' });
      await waitText(page, 'h2', /Confirm your new email address/);
      await typeAndEnter(page, (await h.api.codeFor(newEmail)).code);
      await atStep(s, 'completed');
      await page.click('text=Back to your account');
      await waitText(page, '#me-email', /^m\*\*\*@example\.org$/);
    },
    withAccountFlows,
  );

  browserTest(
    'change email with an old session: 403 reauth_required offers "Sign in again"',
    'mobile',
    async (s) => {
      const acc = await makeAccount();
      const { Session } = await import('../db/models');
      const { randomToken, sha256 } = await import('../lib/secrets');
      const token = randomToken();
      await Session.create({ _id: sha256(token), accountId: acc.accountId, authenticatedAt: new Date(Date.now() - 3 * 3_600_000), expiresAt: new Date(Date.now() + 3_600_000) });
      const { page } = s;
      await page.goto(`${h.baseUrl}/`);
      await page.evaluate((t) => sessionStorage.setItem('account.session', JSON.stringify({ token: t })), token);
      await page.goto(`${h.baseUrl}/account.html`);
      await page.click('#change-email');
      await waitText(page, '#alert', /sign in again before you change/);
      await page.waitForSelector('.reauth a:focus');
      await s.shot('reauth');
      await page.click('.reauth a');
      await waitText(page, '#status', /sign in again to continue/);
    },
    withAccountFlows,
  );
});

describe('the pages as a whole', () => {
  browserTest('every error code of the API has a sentence; none shows raw JSON', 'desktop', async (s) => {
    await s.page.goto(`${h.baseUrl}/`);
    // a string, not a function: the test's transpiler would turn import() into require()
    const result = (await s.page.evaluate(`(async (codes) => {
      const m = await import('/js/errors.js');
      const sentences = {};
      for (const code of codes) sentences[code] = m.describe({ code, body: { attemptsLeft: 2, lockedUntil: new Date(Date.now() + 600000).toISOString(), reasons: ['too_short'] }, retryAfter: 30 });
      return { known: Object.keys(m.MESSAGES), sentences };
    })(${JSON.stringify(Object.keys(PROBLEMS))})`)) as { known: string[]; sentences: Record<string, string> };
    for (const code of Object.keys(PROBLEMS)) {
      expect([code, result.known.includes(code)]).toEqual([code, true]);
      expect(result.sentences[code]).toMatch(/^[A-Z].*[.!?]$/);
      expect(result.sentences[code]).not.toMatch(/[{}]|undefined|NaN/);
    }
    expect(result.sentences.code_invalid).toContain('2 attempts left');
    expect(result.sentences.resend_too_soon).toContain('30 seconds');
    expect(result.sentences.account_locked).toMatch(/10 minutes/);
  });

  browserTest('no page loads more than 100 KB of script; every page has a main landmark, a title and labelled fields', 'mobile', async (s) => {
    // signed in, so the account page stays (and loads all of its script)
    const acc = await makeAccount();
    const signedIn = (await h.api.post('/v1/sessions', { identifier: acc.email, password: acc.password })).body;
    await s.context.addInitScript((v) => {
      if (location.protocol === 'http:') sessionStorage.setItem('account.session', v);
    }, JSON.stringify(signedIn));
    for (const name of ['index.html', 'reset.html', 'signup.html', 'account.html', 'veto.html', 'legal/privacy-policy.html', 'legal/user-agreement.html']) {
      const page = await s.newPage();
      await page.goto(`${h.baseUrl}/${name}`);
      await page.waitForLoadState('networkidle');
      const audit = await page.evaluate(() => ({
        title: document.title,
        main: !!document.querySelector('main'),
        unlabelled: [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
          .filter((el) => !(el as HTMLInputElement).labels?.length && !el.getAttribute('aria-label'))
          .map((el) => el.id),
      }));
      expect([name, audit.main, audit.unlabelled]).toEqual([name, true, []]);
      expect(audit.title).toMatch(/Account Center/);
      await page.close();
    }
    for (const [doc, bytes] of s.scriptBytes) expect([doc, bytes <= SCRIPT_BUDGET]).toEqual([doc, true]);
    expect(s.scriptBytes.size).toBeGreaterThanOrEqual(5);
  });
});
