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

function contactSection(me) {
  const reauth = h('p', { class: 'reauth', hidden: true }, h('a', { href: `./?reauth=1&next=${encodeURIComponent('account.html')}`, class: 'primary button-link' }, 'Sign in again'));
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
      if (err.code === 'reauth_required') {
        reauth.hidden = false;
        reauth.querySelector('a').focus();
      }
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
        try {
          await busy(f, () => api.put('/v1/me/security-questions', { answers }));
          alertText('');
          await load(root, '#questions-h');
          say('Your security questions are saved.');
        } catch (err) {
          if (err.code === 'unauthorized') return sessionEnded();
          alertText(describe(err));
          markInvalid(f, 'a0');
        }
      },
      h('p', { class: 'hint' }, 'Pick answers you will remember years from now. Capitals and extra spaces do not matter.'),
      row(0), row(1), row(2),
      actions(primary('Save questions')),
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
  const f = form(
    async (f) => {
      const imei = value(f, 'imei').replace(/[\s-]/g, '');
      const model = value(f, 'model');
      if (!/^\d{15}$/.test(imei) || !luhnOk(imei)) return refuse(f, 'imei', describe({ code: 'imei_invalid' }));
      if (!model) return refuse(f, 'model', 'Give the device a name, for example "Xiaomi 14".');
      try {
        await busy(f, () => api.post('/v1/me/devices', { imei, model }));
        alertText('');
        await load(root, '#devices-h');
        say(`${model} is now bound to this account.`);
      } catch (err) {
        if (err.code === 'unauthorized') return sessionEnded();
        alertText(describe(err));
        markInvalid(f, err.code === 'validation_failed' ? (err.body.errors?.[0]?.path ?? '').split('.').pop() || 'imei' : 'imei');
      }
    },
    field({ id: 'imei', label: 'IMEI', hint: '15 digits. Dial *#06# on the phone to see it.', inputmode: 'numeric', autocomplete: 'off', maxlength: 20, required: true }),
    field({ id: 'model', label: 'Device name', hint: 'For example "Xiaomi 14".', autocomplete: 'off', maxlength: 100, required: true }),
    actions(primary('Bind device')),
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
