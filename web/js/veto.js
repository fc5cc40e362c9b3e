/**
 * The link in a hold notice (PUBLIC_URL/veto?flow=…&token=…): one button that cancels a held password reset or
 * phone/email change. The token is the proof; no flow secret or session is needed. A GET of the flow works only
 * in the browser that drives it (v1.1: others get 404), so the page offers the button without knowing the flow.
 */
import * as api from './api.js';
import { clock, describe } from './errors.js';
import { $, alertText, busy, focusFirst, h, param, say } from './ui.js';

const view = $('#view');
const flowId = param('flow');
const token = param('token');
const KINDS = {
  rst: { name: 'password reset', title: 'Cancel a password reset', thing: 'password', done: 'The reset is cancelled', what: 'a password reset for your account' },
  chp: { name: 'phone number change', title: 'Cancel a phone number change', thing: 'phone number', done: 'The change is cancelled', what: 'a change of your account’s phone number' },
  che: { name: 'email address change', title: 'Cancel an email address change', thing: 'email address', done: 'The change is cancelled', what: 'a change of your account’s email address' },
};
const kind = KINDS[String(flowId ?? '').slice(0, 3)] ?? KINDS.rst;

function show(...children) {
  view.replaceChildren(...children);
  focusFirst(view);
}

const signInLinks = () =>
  h('p', { class: 'links' }, h('a', { href: 'reset.html' }, 'Reset your password'), h('a', { href: './' }, 'Sign in'));

/** The flow, when this browser may read it (it drives the flow); else null. */
const read = () => api.get(`/v1/flows/${encodeURIComponent(flowId)}`, { auth: false }).catch(() => null);

async function main() {
  $('#title').textContent = kind.title;
  document.title = `${kind.title} · Account Center`;
  if (!flowId || !token) {
    alertText('This link is incomplete. Open the link from the message exactly as it is, or copy all of it into the address bar.');
    return show(h('p', {}, 'Nothing was changed.'), signInLinks());
  }
  const flow = await read();
  if (flow && !(flow.status === 'active' && flow.step === 'hold')) return ended(flow);

  const f = h('form', { novalidate: true },
    h('p', {}, `Someone completed ${kind.what} without a code sent to its current phone or email.`,
      flow?.holdUntil ? [' It takes effect at ', h('strong', {}, clock(flow.holdUntil)), '.'] : ''),
    h('p', {}, `If this was you, do nothing. If it was not you, cancel it: your ${kind.thing} stays as it is.`),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', id: 'veto' }, `Cancel this ${kind.name}`)));
  f.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const after = await busy(f, () => api.post(`/v1/flows/${encodeURIComponent(flowId)}/veto`, { token }, { auth: false }));
      alertText('');
      ended(after);
      say(`The ${kind.name} is cancelled.`);
    } catch (err) {
      alertText(describe(err));
      if (err.code === 'step_mismatch') ended((await read()) ?? { status: 'unknown' }, true);
    }
  });
  show(f);
}

function ended(flow, keepAlert = false) {
  if (!keepAlert) alertText('');
  if (flow.status === 'cancelled') {
    return show(
      h('div', { class: 'done-mark', 'aria-hidden': 'true' }, '✓'),
      h('h2', {}, kind.done),
      h('p', {}, `Your ${kind.thing} did not change. Someone may know your account details: consider changing your password and your security questions.`),
      signInLinks());
  }
  if (flow.status === 'completed') {
    return show(
      h('h2', {}, `This ${kind.name} has already taken effect`),
      h('p', {}, 'It can no longer be cancelled here. If it was not you, reset your password now or contact support.'),
      signInLinks());
  }
  return show(
    h('h2', {}, 'There is nothing to cancel'),
    h('p', {}, flow.status === 'active' ? `This ${kind.name} is not waiting to take effect yet.`
      : flow.status === 'unknown' ? `This ${kind.name} has already ended or taken effect.`
      : `This ${kind.name} has already ended; nothing was changed by it.`),
    signInLinks());
}

main();
