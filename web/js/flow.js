/**
 * The wizard engine shared by reset, sign-up and the change-phone/email wizards. The Flow object from the API
 * decides the screen: `status` when the flow has ended, else `step`. The flow id lives in the address bar
 * (?flow=…) and a reset's or sign-up's flow secret in localStorage (api.js sends it), so a reload or a second
 * tab of this browser resumes where the flow is; another browser with the same address gets "not found" and
 * starts over. Waiting screens poll, and any tab that comes back into view re-reads the flow.
 */
import * as api from './api.js';
import { MESSAGES, PASSWORD_REASONS, clock, describe, duration } from './errors.js';
import {
  alertText, busy, clearTimers, countdown, estimateStrength, every, field, focusFirst, h, markInvalid, param,
  revealButton, say, secondsUntil, setFlowParam,
} from './ui.js';

export const POLL_MS = 3000;
const keyOf = (flow) => (flow.status === 'active' ? flow.step : flow.status);
const FIELD_OF = { code: 'code', 'new-phone': 'phone', 'new-email': 'email', consent: 'accept', password: 'password', captcha: 'answer' };

export class FlowController {
  /**
   * view: the element the screens go in; screens: { key: (flow, ctl) => Node } overriding/adding to the shared
   * ones; start: () => Node, the screen before a flow exists.
   */
  constructor({ view, screens = {}, start }) {
    this.view = view;
    this.screens = { ...SHARED, ...screens };
    this.startScreen = start;
    this.flow = null;
    this.shown = null;
    this.refreshing = false;
    const recheck = () => {
      if (document.visibilityState === 'visible' && this.flow && this.flow.status === 'active') this.refresh({ quiet: true });
    };
    document.addEventListener('visibilitychange', recheck);
    window.addEventListener('focus', recheck);
  }

  get id() {
    return this.flow?.flowId;
  }

  /** Opens the flow named in the address bar, else the start screen. */
  async open() {
    const flowId = param('flow');
    if (!flowId) return this.restart({ keepMessages: true });
    say('Loading…');
    try {
      const flow = await api.get(`/v1/flows/${encodeURIComponent(flowId)}`);
      say('');
      this.show(flow);
    } catch (err) {
      say('');
      if (err.code === 'flow_not_found' || err.code === 'validation_failed') {
        api.flowSecrets.forget(flowId); // unknown, or not this browser's: start over
        this.restart();
        alertText(MESSAGES.flow_not_found());
      } else if (err.code === 'unauthorized') {
        alertText(describe(err));
      } else {
        this.restart();
        alertText(describe(err));
      }
    }
  }

  /** Back to the start screen, forgetting the flow. */
  restart({ keepMessages = false } = {}) {
    clearTimers();
    this.flow = null;
    this.shown = 'start';
    setFlowParam(null);
    if (!keepMessages) alertText('');
    const node = this.startScreen();
    this.view.replaceChildren(node);
    focusFirst(node);
  }

  /** Shows the screen for `flow` and focuses its first field. */
  show(flow, { keepAlert = false, as } = {}) {
    clearTimers();
    this.onRefused = undefined;
    this.flow = flow;
    this.shown = as ?? keyOf(flow);
    setFlowParam(flow.flowId);
    if (flow.status !== 'active') api.flowSecrets.forget(flow.flowId); // ended: a reload need not resume it
    if (!keepAlert) alertText('');
    say('');
    const screen = this.screens[this.shown] ?? this.screens.unknown;
    const node = h('div', { class: 'screen', dataset: { step: this.shown } }, screen(flow, this));
    if (flow.status === 'active' && this.screens.footer) node.append(this.screens.footer(flow, this));
    this.view.replaceChildren(node);
    focusFirst(node);
    this.onShow?.(flow);
  }

  /** Starts a flow (POST `path`), then shows its first step. */
  async start(form, path, body, fieldName) {
    try {
      const flow = await busy(form, () => api.post(path, body));
      this.show(flow);
      return flow;
    } catch (err) {
      alertText(describe(err));
      markInvalid(form, invalidField(err) ?? fieldName);
      return undefined;
    }
  }

  /** Drives the flow: POST /v1/flows/{id}/{action}; shows the next step, or says why not. */
  async act(form, action, body, { field: fieldName, announce } = {}) {
    const id = this.id;
    try {
      const flow = await busy(form, () => api.post(`/v1/flows/${id}/${action}`, body));
      this.show(flow);
      if (announce) say(announce(flow));
      return flow;
    } catch (err) {
      await this.failed(err, form, invalidField(err) ?? fieldName ?? FIELD_OF[action]);
      return undefined;
    }
  }

  /** Says what went wrong; follows the flow when the refusal moved it (answers used up → support). */
  async failed(err, form, fieldName) {
    alertText(describe(err));
    if (err.code === 'step_mismatch' || err.code === 'document_outdated') {
      await this.refresh({ keepAlert: true, force: err.code === 'document_outdated' });
      return;
    }
    if (err.code === 'flow_not_found') {
      this.restart({ keepMessages: true });
      return;
    }
    if (err.flow) {
      if (keyOf(err.flow) !== this.shown) {
        this.show(err.flow, { keepAlert: true });
        return;
      }
      this.flow = { ...this.flow, ...err.flow };
    }
    if (form?.isConnected) {
      this.onRefused?.(err, form);
      markInvalid(form, fieldName);
    }
  }

  /** Re-reads the flow; shows it when it moved on (or always with force). */
  async refresh({ keepAlert = false, quiet = false, force = false } = {}) {
    if (!this.id || this.refreshing) return;
    this.refreshing = true;
    try {
      const flow = await api.get(`/v1/flows/${this.id}`);
      if (force || keyOf(flow) !== this.shown) {
        this.show(flow, { keepAlert });
        if (quiet) say(movedOnText(flow));
      } else this.flow = flow;
    } catch (err) {
      if (!quiet) alertText(describe(err));
    } finally {
      this.refreshing = false;
    }
  }

  /** While a screen waits for something outside the page (a reviewer, the hold), re-reads the flow regularly. */
  poll(onTick) {
    const started = this.shown;
    let last = Date.now();
    every(POLL_MS, async () => {
      if (Date.now() - last < POLL_MS - 100 || this.shown !== started) return;
      last = Date.now();
      try {
        const flow = await api.get(`/v1/flows/${this.id}`);
        if (this.shown !== started) return;
        if (keyOf(flow) !== started) {
          this.show(flow);
          say(movedOnText(flow));
        } else {
          this.flow = flow;
          onTick?.(flow, null);
        }
      } catch (err) {
        onTick?.(this.flow, err);
      }
    });
  }

  /** Cancels the flow (DELETE). */
  async cancel(button) {
    const id = this.id;
    try {
      button.disabled = true;
      this.show(await api.del(`/v1/flows/${id}`));
    } catch (err) {
      button.disabled = false;
      await this.failed(err);
    }
  }
}

function invalidField(err) {
  const path = err?.body?.errors?.[0]?.path;
  return typeof path === 'string' ? path.split('.').pop() : undefined;
}

/** What to announce when the flow moved on by itself (a reviewer decided, the hold ended). */
function movedOnText(flow) {
  if (flow.status === 'completed') return 'Done.';
  if (flow.status !== 'active') return 'This request has ended.';
  if (flow.step === 'code' && flow.destinationHint) return `We sent a code to ${flow.destinationHint}.`;
  return '';
}

// ---------------------------------------------------------------- building blocks

export const form = (onSubmit, ...children) => {
  const f = h('form', { novalidate: true }, ...children);
  f.addEventListener('submit', (e) => {
    e.preventDefault();
    onSubmit(f);
  });
  return f;
};
export const actions = (...buttons) => h('div', { class: 'actions' }, ...buttons);
export const primary = (label) => h('button', { type: 'submit', class: 'primary' }, label);
export const secondary = (label, onclick) => h('button', { type: 'button', class: 'secondary', onclick }, label);
export const linkButton = (label, onclick) => h('button', { type: 'button', class: 'link', onclick }, label);
export const value = (f, name) => String(f.elements.namedItem(name)?.value ?? '').trim();

/** Refuses locally, before any request, with the same sentence style as the API's errors. */
export function refuse(f, name, sentence) {
  alertText(sentence);
  markInvalid(f, name);
}

const KIND_TITLE = { password_reset: 'password reset', sign_up: 'sign-up', change_phone: 'phone number change', change_email: 'email address change' };
const hasFallback = (flow) => flow.kind !== 'sign_up';
const isChange = (flow) => flow.kind === 'change_phone' || flow.kind === 'change_email';
const contactWord = (flow) => (flow.kind === 'change_email' ? 'email address' : 'phone number');

/** A change flow's second code goes to the new phone/email: the flow says so, or this tab remembers confirming. */
export function isNewContactCode(flow) {
  if (!isChange(flow)) return false;
  if (flow.target === 'new' || flow.purpose === 'confirm_new_contact' || flow.newDestinationHint) return true;
  try {
    if (sessionStorage.getItem(`confirmed:${flow.flowId}`) === '1') return true;
  } catch {
    /* no storage: judge by the code's lifetime */
  }
  // The identity code lives minutes; the one to the new phone/email a day (CHANGE_PHONE_CODE_TTL).
  return !!flow.codeExpiresAt && secondsUntil(flow.codeExpiresAt) > 3600;
}

/**
 * v1.1: the Flow carries `holdSeconds` on the steps after which a hold will follow (identity proven with security
 * questions or support, not with a code to a channel on file). Said before the step is done, not after.
 */
export function holdNotice(flow) {
  if (!(flow.holdSeconds > 0)) return null;
  const how = 'Because you confirmed it is you with security questions or with the help of support, not with a code sent to ';
  const hold = h('strong', {}, `a hold of ${duration(flow.holdSeconds)}`);
  return h('p', { class: 'notice', id: 'hold-notice' }, isChange(flow)
    ? [how, `your current phone or email, the new ${contactWord(flow)} replaces the old one only after `, hold,
      `. Every phone number and email address on the account, the old ${contactWord(flow)} included, will be told and can cancel the change until then.`]
    : [how, 'your phone or email, your new password takes effect only after ', hold,
      '. Every phone number and email address on the account will be told and can cancel it until then. Your old password keeps working meanwhile.']);
}

// ---------------------------------------------------------------- the shared screens

function captchaScreen(flow, ctl) {
  let loading;
  const img = h('img', { class: 'captcha', alt: 'Picture with characters to type', width: 150, height: 50 });
  const load = async () => {
    img.removeAttribute('src');
    img.setAttribute('aria-busy', 'true');
    try {
      const svg = await api.get(`/v1/flows/${ctl.id}/captcha`, { text: true });
      const bytes = new TextEncoder().encode(svg);
      let bin = '';
      for (const b of bytes) bin += String.fromCharCode(b);
      img.src = `data:image/svg+xml;base64,${btoa(bin)}`;
    } catch (err) {
      await ctl.failed(err);
    } finally {
      img.removeAttribute('aria-busy');
    }
  };
  ctl.onRefused = (err, f) => {
    if (err.code === 'captcha_invalid') {
      f.elements.namedItem('answer').value = '';
      loading = load();
    }
  };
  const f = form(
    async (f) => {
      const answer = value(f, 'answer');
      if (!answer) return refuse(f, 'answer', 'Type the characters you see in the picture.');
      await loading; // an answer belongs to the picture on screen
      await ctl.act(f, 'captcha', { answer }, { field: 'answer' });
    },
    h('div', { class: 'captcha-row' }, img, secondary('New picture', () => {
      loading = load();
      f.elements.namedItem('answer').focus();
      say('Here is a new picture.');
    })),
    field({ id: 'answer', label: 'Characters in the picture', hint: 'Capital letters or not, it does not matter.', autocomplete: 'off', autocapitalize: 'off', spellcheck: 'false', required: true, maxlength: 64 }),
    actions(primary('Next')),
  );
  loading = load();
  return [h('h2', {}, 'Show us you are a person'), h('p', {}, 'Type the characters you see in the picture. This keeps robots out.'), f];
}

function codeScreen(flow, ctl) {
  const second = isNewContactCode(flow);
  const how = flow.channel === 'sms' ? 'by text message' : 'by email';
  const title = second ? `Confirm your new ${contactWord(flow)}` : isChange(flow) ? 'Verify it is you' : 'Enter the code';
  const expiry = h('p', { class: 'hint', id: 'code-expiry' });
  const resendInfo = h('p', { class: 'hint', id: 'resend-info' });
  const resend = secondary('Send a new code', () =>
    ctl.act(f, 'resend', undefined, { field: 'code', announce: (fl) => `We sent a new code to ${fl.destinationHint ?? 'you'}. The old code no longer works.` }),
  );
  const f = form(
    async (f) => {
      const code = value(f, 'code').replace(/\D/g, '');
      if (code.length !== 6) return refuse(f, 'code', 'Enter the 6 digits of the code.');
      await ctl.act(f, 'code', { code }, { field: 'code' });
    },
    h('div', { class: 'field' },
      h('label', { for: 'code' }, '6-digit code'),
      h('input', { id: 'code', name: 'code', type: 'text', autocomplete: 'one-time-code', inputmode: 'numeric', pattern: '[0-9 ]*', maxlength: 9, required: true, spellcheck: 'false', class: 'code-input', 'aria-describedby': 'code-expiry' }),
      expiry),
    actions(primary(second ? 'Verify' : 'Next')),
    h('div', { class: 'resend' }, resendInfo, resend),
    hasFallback(flow) && !second ? h('p', { class: 'not-working' }, linkButton('Not working?', () => ctl.act(f, 'not-working'))) : null,
  );
  every(1000, () => {
    const fl = ctl.flow;
    if (fl.codeExpiresAt) {
      const left = secondsUntil(fl.codeExpiresAt);
      expiry.textContent = left > 0 ? `The code expires in ${countdown(left)}.` : 'The code has expired. Ask for a new one.';
    }
    if (fl.resendsLeft === 0) {
      resend.hidden = true;
      resendInfo.textContent = 'No more codes can be sent for this request.';
      return;
    }
    const wait = fl.resendAvailableAt ? secondsUntil(fl.resendAvailableAt) : 0;
    resend.disabled = wait > 0;
    resendInfo.textContent = wait > 0 ? `You can ask for a new code in ${countdown(wait)}.` : 'Did not get it?';
  });
  const dest = h('strong', { class: flow.channel === 'sms' ? 'nowrap' : 'addr' }, flow.destinationHint ?? 'you');
  return [
    h('h2', {}, title),
    h('p', {}, `We sent a 6-digit code ${how} to `, dest, '.', second ? ` It is valid for ${validity(flow)}.` : ''),
    isChange(flow) ? holdNotice(flow) : null,
    f,
  ];
}

function validity(flow) {
  const s = flow.codeExpiresAt ? secondsUntil(flow.codeExpiresAt) : 0;
  if (s > 20 * 3600) return 'one day';
  if (s > 3600) return `${Math.round(s / 3600)} hours`;
  return `${Math.max(1, Math.round(s / 60))} minutes`;
}

function questionsScreen(flow, ctl) {
  const qs = flow.questions ?? [];
  const tries = h('p', { class: 'hint', id: 'tries' });
  const showTries = (n) => {
    tries.textContent = `${typeof n === 'number' ? `You have ${n} tr${n === 1 ? 'y' : 'ies'} left. ` : ''}Capitals and extra spaces do not matter.`;
  };
  showTries(flow.attemptsLeft);
  ctl.onRefused = () => showTries(ctl.flow.attemptsLeft);
  const f = form(
    async (f) => {
      const answers = qs.map((q) => ({ questionId: q.id, answer: value(f, `answer-${q.id}`) }));
      const empty = answers.find((a) => !a.answer);
      if (empty) return refuse(f, `answer-${empty.questionId}`, 'Answer every question.');
      await ctl.act(f, 'security-answers', { answers }, { field: qs[0] && `answer-${qs[0].id}` });
    },
    ...qs.map((q) => field({ id: `answer-${q.id}`, label: q.text, autocomplete: 'off', required: true, maxlength: 200 })),
    tries,
    actions(primary('Submit')),
    h('p', { class: 'not-working' }, linkButton('Not working?', () => ctl.act(f, 'not-working'))),
  );
  return [h('h2', {}, 'Answer your security questions'), h('p', {}, 'Answer the questions you chose when you set up the account.'), f];
}

function supportScreen(flow, ctl) {
  const f = form(
    async (f) => {
      const accountId = value(f, 'accountId').replace(/\s/g, '');
      const imei = value(f, 'imei').replace(/[\s-]/g, '');
      const contactEmail = value(f, 'contactEmail');
      const message = value(f, 'message');
      if (!/^[1-9]\d{9}$/.test(accountId)) return refuse(f, 'accountId', 'Enter the account ID: 10 digits.');
      if (!/^\d{15}$/.test(imei)) return refuse(f, 'imei', MESSAGES.imei_invalid());
      if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(contactEmail)) return refuse(f, 'contactEmail', 'Enter an email address we can answer to.');
      await ctl.act(f, 'support', { accountId, imei, contactEmail, ...(message ? { message } : {}) }, { field: 'accountId' });
    },
    field({ id: 'accountId', label: 'Account ID', hint: '10 digits. It is in the messages we sent you, and under Settings › Account on your phone.', inputmode: 'numeric', autocomplete: 'off', maxlength: 12, required: true }),
    field({ id: 'imei', label: 'IMEI of a phone bound to the account', hint: '15 digits. Dial *#06# on that phone to see it.', inputmode: 'numeric', autocomplete: 'off', maxlength: 20, required: true }),
    field({ id: 'contactEmail', label: 'Email we can answer to', type: 'email', autocomplete: 'email', maxlength: 254, required: true }),
    field({ id: 'message', label: 'Anything else we should know (optional)', type: 'textarea', rows: 3, maxlength: 2000 }),
    actions(primary('Send to support')),
  );
  return [h('h2', {}, 'Ask support for help'), h('p', {}, 'A person will check that the account is yours. Tell us the account ID and the IMEI of a phone bound to it.'), f];
}

function reviewScreen(flow, ctl) {
  const checked = h('p', { class: 'hint', id: 'last-checked' });
  ctl.poll((_fl, err) => {
    checked.textContent = err ? 'We could not check just now; we will keep trying.' : `Last checked at ${new Date().toLocaleTimeString()}.`;
  });
  return [
    h('h2', {}, 'Waiting for review'),
    h('p', {}, 'We received your request', flow.supportCaseId ? [' ', h('strong', { class: 'nowrap' }, flow.supportCaseId)] : '', '. A person is checking that the account is yours. We will also write to the email you gave.'),
    h('p', {}, 'This page updates itself. You can close it and come back to this same address later.'),
    h('div', { class: 'spinner', 'aria-hidden': 'true' }),
    checked,
  ];
}

function passwordScreen(flow, ctl) {
  const pw = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'new-password', required: true, maxlength: 1024, 'aria-describedby': 'password-rules password-strength' });
  const bar = h('span', { class: 'bar' });
  const strength = h('p', { class: 'hint strength', id: 'password-strength' });
  const meter = h('div', { class: 'meter', 'aria-hidden': 'true' }, bar);
  pw.addEventListener('input', () => {
    const { score, label } = estimateStrength(pw.value);
    bar.style.width = pw.value ? `${Math.max(10, score * 25)}%` : '0';
    bar.dataset.score = String(score);
    strength.textContent = label ? `Strength: ${label}` : '';
  });
  const confirm = h('input', { id: 'confirmation', name: 'confirmation', type: 'password', autocomplete: 'new-password', required: true, maxlength: 1024 });
  const f = form(
    async (f) => {
      if (!pw.value) return refuse(f, 'password', 'Choose a password.');
      if ([...pw.value].length < 8) return refuse(f, 'password', PASSWORD_REASONS.too_short);
      if (pw.value !== confirm.value) return refuse(f, 'confirmation', MESSAGES.password_mismatch());
      await ctl.act(f, 'password', { password: pw.value, confirmation: confirm.value }, { field: 'password' });
    },
    h('div', { class: 'field' },
      h('label', { for: 'password' }, flow.kind === 'sign_up' ? 'Password' : 'New password'),
      h('p', { class: 'hint', id: 'password-rules' }, 'At least 8 characters. A few unrelated words make a strong password that is easy to remember.'),
      pw, meter, strength, revealButton(pw)),
    h('div', { class: 'field' }, h('label', { for: 'confirmation' }, 'Type it again'), confirm),
    actions(primary(flow.kind === 'sign_up' ? 'Create account' : 'Change password')),
  );
  return [h('h2', {}, flow.kind === 'sign_up' ? 'Choose a password' : 'Choose a new password'), holdNotice(flow), f];
}

function holdScreen(flow, ctl) {
  const left = h('strong', { id: 'hold-left' });
  every(1000, () => {
    const s = secondsUntil(ctl.flow.holdUntil ?? flow.holdUntil);
    left.textContent = s > 0 ? countdown(s) : 'any moment now';
  });
  ctl.poll();
  const at = [h('strong', {}, clock(flow.holdUntil)), ' (in ', left, ')'];
  if (isChange(flow)) {
    const what = contactWord(flow);
    return [
      h('h2', {}, `Your new ${what} is waiting`),
      h('p', {}, `For your safety, your new ${what} replaces the old one at `, at, `, because you did not confirm it is you with a code sent to your current phone or email.`),
      h('p', {}, `We told every phone number and email address on the account, your old ${what} too. Each message has a link that cancels the change until then.`),
      h('p', {}, `Until then your old ${what} stays on the account. This page updates itself.`),
    ];
  }
  return [
    h('h2', {}, 'Your new password is waiting'),
    h('p', {}, 'For your safety, your new password takes effect at ', at, ', because this reset did not use a code sent to your phone or email.'),
    h('p', {}, 'We told every phone number and email address on the account. If the reset was not you, the owner can cancel it until then with the link in that message.'),
    h('p', {}, 'Until then your old password still works. This page updates itself.'),
  ];
}

function consentScreen(flow, ctl) {
  const docs = flow.documents ?? [];
  const version = (id) => docs.find((d) => d.id === id)?.version;
  const link = (id, name) =>
    h('li', {}, h('a', { href: `legal/${id}.html${version(id) ? `?version=${encodeURIComponent(version(id))}` : ''}`, target: '_blank', rel: 'noopener' }, name), ` (version ${version(id) ?? '–'}, opens in a new tab)`);
  const f = form(
    async (f) => {
      if (!f.elements.namedItem('accept').checked) return refuse(f, 'accept', MESSAGES.consent_required());
      const versions = Object.fromEntries(docs.map((d) => [d.id, d.version]));
      await ctl.act(f, 'consent', { accept: true, syncEnabled: f.elements.namedItem('sync').checked, versions }, { field: 'accept' });
    },
    h('ul', { class: 'docs' }, link('privacy-policy', 'Privacy Policy'), link('user-agreement', 'User Agreement')),
    h('div', { class: 'check' }, h('input', { type: 'checkbox', id: 'accept', name: 'accept', required: true }), h('label', { for: 'accept' }, 'I have read and accept the Privacy Policy and the User Agreement')),
    h('div', { class: 'check switch' },
      h('input', { type: 'checkbox', id: 'sync', name: 'sync', role: 'switch', checked: true, 'aria-describedby': 'sync-hint' }),
      h('label', { for: 'sync' }, 'Sync my data to the cloud')),
    h('p', { class: 'hint', id: 'sync-hint' }, 'Backs up contacts, photos and notes. You can turn it off later.'),
    actions(primary('Agree and continue')),
  );
  return [h('h2', {}, 'Privacy and terms'), h('p', {}, 'Please read both documents before you continue.'), f];
}

/** New phone / new email: the address, then a confirmation pop-up before the code is sent. */
function newContactScreen(which) {
  return (flow, ctl) => {
    const isPhone = which === 'phone';
    const f = form(
      async (f) => {
        let v = value(f, which);
        if (isPhone) {
          v = v.replace(/[\s\-().]/g, '').replace(/^00/, '+');
          if (!/^\+[1-9]\d{6,14}$/.test(v)) return refuse(f, 'phone', 'Enter the number with its country code, for example +86 138 0013 8000.');
        } else if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v)) return refuse(f, 'email', 'Enter an email address like name@example.com.');
        try {
          sessionStorage.setItem(`newContact:${ctl.id}`, v);
        } catch {
          /* private mode: the pop-up shows the masked form */
        }
        await ctl.act(f, isPhone ? 'new-phone' : 'new-email', isPhone ? { phone: v } : { email: v }, { field: which });
      },
      isPhone
        ? field({ id: 'phone', label: 'New phone number', hint: 'With the country code, for example +86 138 0013 8000.', type: 'tel', autocomplete: 'tel', inputmode: 'tel', maxlength: 24, required: true })
        : field({ id: 'email', label: 'New email address', type: 'email', autocomplete: 'email', maxlength: 254, required: true }),
      actions(primary('Next')),
    );
    return [h('h2', {}, isPhone ? 'Your new phone number' : 'Your new email address'), h('p', {}, `We will send a code to the new ${isPhone ? 'number' : 'address'} to check it is yours.`), holdNotice(flow), f];
  };
}

/** "+8613800138000" grouped like its masked hint "+86 *** **** 8000" → "+86 138 0013 8000" (else as typed). */
export function groupLike(e164, hint) {
  const parts = String(hint ?? '').trim().split(/\s+/);
  if (parts.length < 2 || !/^\+\d+$/.test(parts[0]) || !e164.startsWith(parts[0])) return e164;
  const sizes = parts.slice(1).map((p) => p.length);
  let rest = e164.slice(parts[0].length);
  if (sizes.reduce((a, b) => a + b, 0) !== rest.length) return e164;
  const groups = sizes.map((n) => {
    const g = rest.slice(0, n);
    rest = rest.slice(n);
    return g;
  });
  return [parts[0], ...groups].join(' ');
}

function matchesHint(typed, hint) {
  if (hint.includes('@')) {
    const [local, domain] = hint.split('@');
    return typed.toLowerCase().endsWith(`@${domain.toLowerCase()}`) && typed[0].toLowerCase() === local[0]?.toLowerCase();
  }
  return typed.endsWith(hint.trim().split(/\s+/).pop() ?? '');
}

function confirmContactScreen(which) {
  return (flow, ctl) => {
    const isPhone = which === 'phone';
    let typed = null;
    try {
      typed = sessionStorage.getItem(`newContact:${flow.flowId}`);
    } catch {
      /* ignore */
    }
    const hint = flow.newDestinationHint;
    // what this tab typed, unless another tab chose another one since (it must fit the server's masked hint)
    if (typed && hint && !matchesHint(typed, hint)) typed = null;
    const shown = (typed && isPhone ? groupLike(typed, hint) : typed) ?? hint ?? flow.destinationHint ?? `the new ${isPhone ? 'number' : 'address'}`;
    const send = async (f) => {
      try {
        sessionStorage.setItem(`confirmed:${flow.flowId}`, '1');
      } catch {
        /* ignore */
      }
      await ctl.act(f, 'confirm', undefined, { announce: (fl) => `We sent a code to ${fl.destinationHint ?? shown}.` });
    };
    // Back to typing the address: the same form as the step before (the API takes a new one until the code is sent).
    const change = () => ctl.show(ctl.flow, { as: `new_${which}` });
    const page = form(send,
      h('p', {}, `We will send a code to `, h('strong', { class: isPhone ? 'nowrap' : 'addr' }, shown), '.'),
      holdNotice(flow),
      actions(primary('Yes, send the code'), secondary(isPhone ? 'No, use another number' : 'No, use another address', change)));
    const dlg = h('dialog', { class: 'confirm', 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-text' });
    const dform = h('form', { method: 'dialog' },
      h('h2', { id: 'confirm-title' }, isPhone ? 'Is this number right?' : 'Is this address right?'),
      h('p', { id: 'confirm-text' }, `Is `, h('strong', { class: isPhone ? 'nowrap' : 'addr' }, shown), ' right? We will send a code to it.',
        flow.holdSeconds > 0 ? ` Once it is confirmed, the change waits ${duration(flow.holdSeconds)} before it takes effect.` : ''),
      h('div', { class: 'actions' },
        h('button', { type: 'submit', class: 'primary', value: 'yes', autofocus: true }, 'Yes, send the code'),
        h('button', { type: 'submit', class: 'secondary', value: 'no' }, isPhone ? 'No, change it' : 'No, change it')));
    dlg.append(dform);
    dlg.addEventListener('close', () => {
      if (dlg.returnValue === 'yes') send(page);
      else if (dlg.returnValue === 'no') change();
      else page.querySelector('button.primary')?.focus();
    });
    queueMicrotask(() => {
      if (dlg.isConnected && !dlg.open) dlg.showModal();
    });
    return [h('h2', {}, isPhone ? 'Check your new number' : 'Check your new address'), page, dlg];
  };
}

function ended(title, text, ctl, again) {
  return [h('h2', {}, title), h('p', {}, text), actions(h('button', { type: 'button', class: 'primary', onclick: () => ctl.restart() }, again ?? ctl.againLabel ?? 'Start again'))];
}

const SHARED = {
  captcha: captchaScreen,
  code: codeScreen,
  security_questions: questionsScreen,
  support: supportScreen,
  support_review: reviewScreen,
  new_password: passwordScreen,
  password: passwordScreen,
  hold: holdScreen,
  consent: consentScreen,
  new_phone: newContactScreen('phone'),
  new_email: newContactScreen('email'),
  confirm_new_phone: confirmContactScreen('phone'),
  confirm_new_email: confirmContactScreen('email'),
  expired: (flow, ctl) =>
    flow.reason === 'support_review_timeout'
      ? ended('The request lapsed', 'Nobody could review your request in time, so nothing changed. Please start again.', ctl)
      : flow.reason === 'code_lapsed'
      ? ended('The code has lapsed', `The code for your new ${contactWord(flow)} was not used in time, so nothing changed. Please start again.`, ctl)
      : ended('This request has expired', `The ${KIND_TITLE[flow.kind] ?? 'request'} took too long, so nothing changed. Please start again.`, ctl),
  cancelled: (flow, ctl) => {
    if (flow.reason === 'vetoed') {
      return isChange(flow)
        ? ended('The change was cancelled', `It was cancelled with the link in the message we sent to the account. Your ${contactWord(flow)} did not change.`, ctl)
        : ended('The reset was cancelled', 'It was cancelled with the link in the message we sent to the account. The password did not change.', ctl);
    }
    if (String(flow.reason ?? '').startsWith('superseded')) return ended('A newer request replaced this one', 'A newer request for this account was started, so this one no longer works. Continue with the newer one, or start again.', ctl);
    if (flow.reason === 'signed_out') return ended('Change cancelled', 'You signed out meanwhile, so nothing changed.', ctl);
    if (flow.reason === 'phone_taken' || flow.reason === 'email_taken') {
      return ended('Someone was quicker', `That ${flow.reason === 'phone_taken' ? 'phone number' : 'email address'} was just used for another account, so no account was created.`, ctl);
    }
    return ended('Request cancelled', 'Nothing was changed.', ctl);
  },
  rejected: (_flow, ctl) => ended('We could not confirm the account is yours', 'Support declined the request, so nothing changed. We wrote to the email you gave with the details.', ctl),
  completed: (_flow, ctl) => ended('Done', 'All set.', ctl),
  unknown: (flow, ctl) => ended('Please reload', 'This page does not know this step yet. Reload the page, or start again.', ctl),
  footer: (flow, ctl) =>
    h('p', { class: 'cancel' }, h('button', { type: 'button', class: 'link', onclick: (e) => ctl.cancel(e.currentTarget) }, `Cancel this ${KIND_TITLE[flow.kind] ?? 'request'}`)),
};
