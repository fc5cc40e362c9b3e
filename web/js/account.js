/**
 * The signed-in account: masked contacts, change phone / change email wizards (?flow=chp_…|che_…), security
 * questions, bound devices (remove with the password, bind), sign out.
 */
import * as api from './api.js';
import { describe } from './errors.js';
import { FlowController, actions, form, primary, refuse, secondary, value } from './flow.js';
import { $, alertText, busy, clearMessages, field, focusFirst, h, markInvalid, say } from './ui.js';

const here = () => `account.html${location.search}`;
const signedIn = !!api.session.get();
if (!signedIn) location.replace(`./?next=${encodeURIComponent(here())}`);

const title = $('#title');
const signout = $('#signout');
signout.hidden = false;
signout.addEventListener('click', async () => {
  signout.disabled = true;
  try {
    await api.del('/v1/sessions/current');
  } catch {
    /* an ended session is signed out all the same */
  }
  api.session.clear();
  location.replace('./?signedout=1');
});

/** 401 anywhere: the session ended; back to sign-in, then here again. */
function sessionEnded() {
  api.session.clear();
  location.replace(`./?ended=1&next=${encodeURIComponent(here())}`);
}

const ctl = new FlowController({
  view: $('#view'),
  start: () => {
    title.textContent = 'Your account';
    return overview();
  },
  screens: {
    completed: (flow) => [
      h('div', { class: 'done-mark', 'aria-hidden': 'true' }, '✓'),
      h('h2', {}, flow.kind === 'change_email' ? 'Your email address was changed' : 'Your phone number was changed'),
      h('p', {}, flow.kind === 'change_email'
        ? 'We told your old email address and your phone number. Your other devices were signed out.'
        : 'We told your old phone number and your email address. Your other devices were signed out.'),
      actions(h('button', { type: 'button', class: 'primary', onclick: () => ctl.restart() }, 'Back to your account')),
    ],
  },
});
ctl.againLabel = 'Back to your account';
ctl.onShow = (flow) => {
  title.textContent = flow.kind === 'change_email' ? 'Change email address' : 'Change phone number';
};
const baseFailed = ctl.failed.bind(ctl);
ctl.failed = async (err, f, name) => (err.code === 'unauthorized' ? sessionEnded() : baseFailed(err, f, name));

// ---------------------------------------------------------------- overview

function overview() {
  const root = h('div', { class: 'overview' }, h('p', { class: 'hint' }, 'Loading your account…'));
  load(root);
  return root;
}

async function load(root, focusSel) {
  let me;
  try {
    me = await api.get('/v1/me');
  } catch (err) {
    if (err.code === 'unauthorized') return sessionEnded();
    root.replaceChildren(h('p', {}, 'Your account could not be loaded.'), actions(secondary('Try again', () => load(root))));
    alertText(describe(err));
    return;
  }
  root.replaceChildren(contactSection(me), questionsSection(me, root), devicesSection(me, root));
  if (focusSel) root.querySelector(focusSel)?.focus();
}

/** "Sign in again" (hidden until a 403 reauth_required): back here after signing in. */
const reauthLink = () => h('p', { class: 'reauth', hidden: true }, h('a', { href: `./?reauth=1&next=${encodeURIComponent('account.html')}`, class: 'primary button-link' }, 'Sign in again'));
function offerReauth(p) {
  p.hidden = false;
  p.querySelector('a').focus();
}

/** The answer to a refused PUT questions / POST device: its sentence, the field to fix, the sign-in link. */
function refused(err, f, reauth, fieldOf) {
  if (err.code === 'unauthorized') return sessionEnded();
  alertText(err.code === 'invalid_credentials' ? 'That password is not right.' : describe(err));
  if (err.code === 'reauth_required') return offerReauth(reauth);
  markInvalid(f, fieldOf(err));
}

function contactSection(me) {
  const reauth = reauthLink();
  const start = async (kind, button) => {
    clearMessages();
    reauth.hidden = true;
    button.disabled = true;
    try {
      ctl.show(await api.post(`/v1/flows/${kind}`));
    } catch (err) {
      button.disabled = false;
      if (err.code === 'unauthorized') return sessionEnded();
      alertText(describe(err));
      if (err.code === 'reauth_required') offerReauth(reauth);
    }
  };
  return h('section', { 'aria-labelledby': 'contact-h' },
    h('h2', { id: 'contact-h' }, 'Sign-in details'),
    h('dl', { class: 'kv' },
      h('dt', {}, 'Account ID'), h('dd', { id: 'me-account' }, me.accountId),
      h('dt', {}, 'Phone'), h('dd', { id: 'me-phone' }, me.phone ?? 'Not set'),
      h('dt', {}, 'Email'), h('dd', { id: 'me-email' }, me.email ?? 'Not set')),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', id: 'change-phone', onclick: (e) => start('change-phone', e.currentTarget) }, 'Change phone number'),
      h('button', { type: 'button', class: 'secondary', id: 'change-email', onclick: (e) => start('change-email', e.currentTarget) }, 'Change email address')),
    reauth);
}

// ---------------------------------------------------------------- security questions

function questionsSection(me, root) {
  const details = h('details', {}, h('summary', {}, me.hasSecurityQuestions ? 'Change security questions' : 'Set up security questions'));
  const reauth = reauthLink();
  details.addEventListener('toggle', async () => {
    if (!details.open || details.querySelector('form')) return;
    let catalogue;
    try {
      catalogue = await api.get('/v1/security-questions');
    } catch (err) {
      alertText(describe(err));
      details.open = false;
      return;
    }
    const row = (i) =>
      h('div', { class: 'qrow' },
        h('div', { class: 'field' }, h('label', { for: `q${i}` }, `Question ${i + 1}`),
          h('select', { id: `q${i}`, name: `q${i}` }, ...catalogue.map((q, j) => h('option', { value: q.id, selected: j === i }, q.text)))),
        field({ id: `a${i}`, label: `Answer ${i + 1}`, autocomplete: 'off', maxlength: 200, required: true }));
    const f = form(
      async (f) => {
        const answers = [0, 1, 2].map((i) => ({ questionId: value(f, `q${i}`), answer: value(f, `a${i}`) }));
        if (new Set(answers.map((a) => a.questionId)).size !== 3) return refuse(f, 'q1', 'Choose three different questions.');
        const empty = answers.findIndex((a) => !a.answer);
        if (empty >= 0) return refuse(f, `a${empty}`, 'Answer all three questions.');
        const password = f.elements.namedItem('questions-password').value;
        if (!password) return refuse(f, 'questions-password', 'Enter your password to save the questions.');
        reauth.hidden = true;
        try {
          await busy(f, () => api.put('/v1/me/security-questions', { answers, password }));
          alertText('');
          await load(root, '#questions-h');
          say('Your security questions are saved. We told your phone and email about the change.');
        } catch (err) {
          refused(err, f, reauth, (e) => (['invalid_credentials', 'account_locked'].includes(e.code) ? 'questions-password' : 'a0'));
          if (err.code === 'invalid_credentials') f.elements.namedItem('questions-password').select();
        }
      },
      h('p', { class: 'hint' }, 'Pick answers you will remember years from now. Capitals and extra spaces do not matter.'),
      row(0), row(1), row(2),
      field({ id: 'questions-password', label: 'Your password', hint: 'To make sure it is you. We will tell your phone and email that the questions changed.', type: 'password', autocomplete: 'current-password', maxlength: 1024, required: true }),
      actions(primary('Save questions')),
      reauth,
    );
    details.append(f);
    focusFirst(f);
  });
  return h('section', { class: 'section', 'aria-labelledby': 'questions-h' },
    h('h2', { id: 'questions-h', tabindex: '-1' }, 'Security questions'),
    h('p', {}, h('span', { class: me.hasSecurityQuestions ? 'badge' : 'badge off', id: 'questions-state' }, me.hasSecurityQuestions ? 'Set' : 'Not set'), ' ',
      'They help you get back in when codes do not reach you.'),
    details);
}

// ---------------------------------------------------------------- devices

/** The IMEI's check digit (Luhn), so a typo is caught before asking the server. */
function luhnOk(digits) {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return sum % 10 === 0;
}

function devicesSection(me, root) {
  const list = me.devices.length
    ? h('ul', { class: 'devices' }, ...me.devices.map((d) =>
      h('li', {},
        h('div', {}, h('div', {}, h('strong', {}, d.model || 'Device')), h('div', { class: 'meta' }, `IMEI ${d.imeiHint} · bound ${new Date(d.boundAt).toLocaleDateString()}`)),
        h('button', { type: 'button', class: 'danger', onclick: () => removeDevice(d, root) }, 'Remove from this account', h('span', { class: 'visually-hidden' }, `: ${d.model}`)))))
    : h('p', { class: 'hint' }, 'No device is bound to this account.');

  const bind = h('details', {}, h('summary', {}, 'Bind a device'));
  const reauth = reauthLink();
  const f = form(
    async (f) => {
      const imei = value(f, 'imei').replace(/[\s-]/g, '');
      const model = value(f, 'model');
      const attestation = value(f, 'attestation').replace(/\s/g, '');
      if (!/^\d{15}$/.test(imei) || !luhnOk(imei)) return refuse(f, 'imei', describe({ code: 'imei_invalid' }));
      if (!model) return refuse(f, 'model', 'Give the device a name, for example "Xiaomi 14".');
      if (!attestation) return refuse(f, 'attestation', 'Enter the device attestation the phone shows.');
      reauth.hidden = true;
      try {
        await busy(f, () => api.post('/v1/me/devices', { imei, model, attestation }));
        alertText('');
        await load(root, '#devices-h');
        say(`${model} is now bound to this account. We told your phone and email.`);
      } catch (err) {
        refused(err, f, reauth, (e) =>
          e.code === 'attestation_invalid' ? 'attestation' : e.code === 'validation_failed' ? (e.body.errors?.[0]?.path ?? '').split('.').pop() || 'imei' : 'imei');
      }
    },
    field({ id: 'imei', label: 'IMEI', hint: '15 digits. Dial *#06# on the phone to see it.', inputmode: 'numeric', autocomplete: 'off', maxlength: 20, required: true }),
    field({ id: 'model', label: 'Device name', hint: 'For example "Xiaomi 14".', autocomplete: 'off', maxlength: 100, required: true }),
    field({ id: 'attestation', label: 'Device attestation', hint: 'The proof a phone presents when it binds itself to an account: copy it from the phone. It shows that the phone is in your hands.', autocomplete: 'off', autocapitalize: 'off', spellcheck: 'false', maxlength: 200, required: true }),
    actions(primary('Bind device')),
    reauth,
  );
  bind.append(f);
  bind.addEventListener('toggle', () => bind.open && focusFirst(f));

  return h('section', { class: 'section', 'aria-labelledby': 'devices-h' },
    h('h2', { id: 'devices-h', tabindex: '-1' }, 'Devices'),
    h('p', { class: 'hint' }, 'A bound device cannot be factory reset without this account. Remove a device before you sell or give it away.'),
    list, bind);
}

/** Asks for the password in a pop-up, then DELETE /v1/me/devices/{id}. */
function removeDevice(device, root) {
  const err = h('p', { class: 'msg dlg-alert', role: 'alert' });
  const pw = h('input', { id: 'remove-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true, maxlength: 1024 });
  const dlg = h('dialog', { class: 'ask', 'aria-labelledby': 'remove-h' });
  const f = h('form', { novalidate: true },
    h('h2', { id: 'remove-h' }, `Remove ${device.model || 'this device'}?`),
    h('p', {}, 'After this, whoever holds the device can factory reset it. Enter your password to confirm.'),
    err,
    h('div', { class: 'field' }, h('label', { for: 'remove-password' }, 'Password'), pw),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'danger' }, 'Remove'),
      h('button', { type: 'button', class: 'secondary', onclick: () => dlg.close() }, 'Keep it')));
  f.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!pw.value) {
      err.textContent = 'Enter your password.';
      return markInvalid(f, 'password');
    }
    try {
      await busy(f, () => api.del(`/v1/me/devices/${encodeURIComponent(device.deviceId)}`, { password: pw.value }));
      dlg.close('removed');
    } catch (e2) {
      if (e2.code === 'unauthorized') return sessionEnded();
      err.textContent = e2.code === 'invalid_credentials' ? 'That password is not right.' : describe(e2);
      markInvalid(f, 'password');
    }
  });
  dlg.append(f);
  dlg.addEventListener('close', async () => {
    dlg.remove();
    if (dlg.returnValue === 'removed') {
      alertText('');
      await load(root, '#devices-h');
      say(`${device.model || 'The device'} was removed from this account. It can now be factory reset.`);
    } else root.querySelector('#devices-h')?.focus();
  });
  document.body.append(dlg);
  dlg.showModal();
  pw.focus();
}

if (signedIn) ctl.open();
