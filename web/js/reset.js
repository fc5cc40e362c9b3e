/** Forgot password: identifier → captcha → code → (Not working? → questions → support → review) → new password → (hold) → done. */
import { FlowController, actions, form, primary, refuse, value } from './flow.js';
import { $, field, h } from './ui.js';

const ctl = new FlowController({
  view: $('#view'),
  start: () => {
    const f = form(
      async (f) => {
        const identifier = value(f, 'identifier');
        if (!identifier) return refuse(f, 'identifier', 'Enter your email, phone number or account ID.');
        if (identifier.startsWith('+') && !/^\+[1-9]\d{6,14}$/.test(identifier.replace(/[\s-]/g, ''))) {
          return refuse(f, 'identifier', 'Enter the phone number with its country code, for example +86 138 0013 8000.');
        }
        await ctl.start(f, '/v1/flows/password-reset', { identifier }, 'identifier');
      },
      field({ id: 'identifier', label: 'Email, phone or account ID', hint: 'A phone number with its country code, for example +86 138 0013 8000.', autocomplete: 'username', autocapitalize: 'off', spellcheck: 'false', maxlength: 254, required: true }),
      actions(primary('Next')),
    );
    return h('div', {}, h('h2', {}, 'Which account?'), h('p', {}, 'We will send a code to the phone or email of the account.'), f);
  },
  screens: {
    completed: () => [
      h('div', { class: 'done-mark', 'aria-hidden': 'true' }, '✓'),
      h('h2', {}, 'Your password was changed'),
      h('p', {}, 'Every device was signed out. Sign in with your new password.'),
      actions(h('a', { class: 'primary button-link', href: './' }, 'Sign in')),
    ],
  },
});
ctl.open();
