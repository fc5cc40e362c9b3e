/** Sign in: identifier + password → a session in sessionStorage → the account page (or ?next=). */
import * as api from './api.js';
import { describe, MESSAGES } from './errors.js';
import { $, alertText, busy, markInvalid, param, say } from './ui.js';

/** Only a page of this site: a relative name like "account.html?flow=…", never another origin. */
function nextPage() {
  const next = param('next');
  return next && /^[a-z-]+\.html(\?[\w=&%.:-]*)?$/i.test(next) ? next : 'account.html';
}

const form = $('#signin');
const password = $('#password');
const reveal = $('#reveal');

reveal.addEventListener('click', () => {
  const show = password.type === 'password';
  password.type = show ? 'text' : 'password';
  reveal.setAttribute('aria-pressed', String(show));
  reveal.textContent = show ? 'Hide password' : 'Show password';
});

if (param('reauth')) say('For your safety, please sign in again to continue.');
else if (param('ended')) say('Your session has ended. Please sign in again.');
else if (param('signedout')) say('You are signed out.');

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const identifier = form.elements.namedItem('identifier').value.trim();
  if (!identifier) {
    alertText('Enter your email, phone number or account ID.');
    return markInvalid(form, 'identifier');
  }
  if (!password.value) {
    alertText('Enter your password.');
    return markInvalid(form, 'password');
  }
  alertText('');
  say('Signing in…');
  try {
    const s = await busy(form, () => api.post('/v1/sessions', { identifier, password: password.value }, { auth: false }));
    api.session.set(s);
    say('Signed in.');
    location.assign(nextPage());
  } catch (err) {
    say('');
    alertText(err.code === 'unauthorized' ? MESSAGES.invalid_credentials() : describe(err));
    markInvalid(form, err.code === 'account_locked' ? 'identifier' : 'password');
    if (err.code === 'invalid_credentials') password.select();
  }
});

if (api.session.get() && !param('reauth') && !param('next')) say('You are already signed in. Sign in again to switch account, or go to your account.');
$('#identifier').focus();
