/** The link in the hold notice (PUBLIC_URL/veto?flow=…&token=…): one button that cancels the held reset. */
import * as api from './api.js';
import { clock, describe } from './errors.js';
import { $, alertText, busy, focusFirst, h, param, say } from './ui.js';

const view = $('#view');
const flowId = param('flow');
const token = param('token');

function show(...children) {
  view.replaceChildren(...children);
  focusFirst(view);
}

const signInLinks = () =>
  h('p', { class: 'links' }, h('a', { href: 'reset.html' }, 'Reset your password'), h('a', { href: './' }, 'Sign in'));

async function main() {
  if (!flowId || !token) {
    alertText('This link is incomplete. Open the link from the message exactly as it is, or copy all of it into the address bar.');
    return show(h('p', {}, 'Nothing was changed.'), signInLinks());
  }
  let flow = null;
  try {
    flow = await api.get(`/v1/flows/${encodeURIComponent(flowId)}`, { auth: false });
  } catch (err) {
    if (err.code === 'flow_not_found') {
      alertText(describe(err));
      return show(h('p', {}, 'There is nothing to cancel with this link.'), signInLinks());
    }
    /* otherwise still offer the button: the POST says what is possible */
  }
  if (flow && !(flow.status === 'active' && flow.step === 'hold')) return ended(flow);

  const f = h('form', { novalidate: true },
    h('p', {}, 'Someone completed a password reset for your account without a code sent to your phone or email.',
      flow?.holdUntil ? [' The new password takes effect at ', h('strong', {}, clock(flow.holdUntil)), '.'] : ''),
    h('p', {}, 'If this was you, do nothing. If it was not you, cancel it: your password stays as it is.'),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', id: 'veto' }, 'Cancel this password reset')));
  f.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const after = await busy(f, () => api.post(`/v1/flows/${encodeURIComponent(flowId)}/veto`, { token }, { auth: false }));
      alertText('');
      ended(after);
      say('The password reset is cancelled.');
    } catch (err) {
      alertText(describe(err));
      if (err.code === 'step_mismatch' || err.code === 'flow_not_found') {
        const now = await api.get(`/v1/flows/${encodeURIComponent(flowId)}`, { auth: false }).catch(() => null);
        if (now) ended(now, true);
      }
    }
  });
  show(f);
}

function ended(flow, keepAlert = false) {
  if (!keepAlert) alertText('');
  if (flow.status === 'cancelled') {
    return show(
      h('div', { class: 'done-mark', 'aria-hidden': 'true' }, '✓'),
      h('h2', {}, 'The reset is cancelled'),
      h('p', {}, 'Your password did not change. Someone may know your account details: consider changing your password and your security questions.'),
      signInLinks());
  }
  if (flow.status === 'completed') {
    return show(
      h('h2', {}, 'This reset has already taken effect'),
      h('p', {}, 'It can no longer be cancelled here. If it was not you, reset your password now or contact support.'),
      signInLinks());
  }
  return show(
    h('h2', {}, 'There is nothing to cancel'),
    h('p', {}, flow.status === 'active' ? 'This reset is not waiting to take effect yet.' : 'This reset has already ended; nothing was changed by it.'),
    signInLinks());
}

main();
