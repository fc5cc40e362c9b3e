/** Sign up: phone or email → code → captcha → consent → password → signed in (the Flow's session). */
import * as api from './api.js';
import { FlowController, actions, form, primary, refuse, value } from './flow.js';
import { $, h } from './ui.js';

function startScreen() {
  const input = h('input', { id: 'contact', name: 'contact', type: 'tel', autocomplete: 'tel', inputmode: 'tel', maxlength: 254, required: true, 'aria-describedby': 'contact-hint' });
  const label = h('label', { for: 'contact' }, 'Phone number');
  const hint = h('p', { class: 'hint', id: 'contact-hint' }, 'With the country code, for example +86 138 0013 8000.');
  const radio = (v, text, checked) =>
    h('div', { class: 'check' }, h('input', { type: 'radio', name: 'by', id: `by-${v}`, value: v, checked }), h('label', { for: `by-${v}` }, text));
  const f = form(
    async (f) => {
      const byPhone = f.elements.namedItem('by').value !== 'email';
      let v = value(f, 'contact');
      if (byPhone) {
        v = v.replace(/[\s\-().]/g, '').replace(/^00/, '+');
        if (!/^\+[1-9]\d{6,14}$/.test(v)) return refuse(f, 'contact', 'Enter the number with its country code, for example +86 138 0013 8000.');
      } else if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v)) return refuse(f, 'contact', 'Enter an email address like name@example.com.');
      await ctl.start(f, '/v1/flows/sign-up', byPhone ? { phone: v } : { email: v }, 'contact');
    },
    h('fieldset', {}, h('legend', {}, 'Sign up with'), radio('phone', 'Phone number', true), radio('email', 'Email address', false)),
    h('div', { class: 'field' }, label, hint, input),
    actions(primary('Next')),
  );
  f.addEventListener('change', (e) => {
    if (e.target.name !== 'by') return;
    const email = e.target.value === 'email';
    Object.assign(input, { type: email ? 'email' : 'tel', autocomplete: email ? 'email' : 'tel', inputMode: email ? 'email' : 'tel', value: '' });
    label.textContent = email ? 'Email address' : 'Phone number';
    hint.textContent = email ? 'We will send a code to it.' : 'With the country code, for example +86 138 0013 8000.';
  });
  return h('div', {}, h('h2', {}, 'Your phone or email'), h('p', {}, 'We will send a code to check it is yours.'), f);
}

const ctl = new FlowController({
  view: $('#view'),
  start: startScreen,
  screens: {
    completed: (flow) => {
      if (flow.session?.token) api.session.set({ ...flow.session, accountId: flow.accountId });
      return [
        h('div', { class: 'done-mark', 'aria-hidden': 'true' }, '✓'),
        h('h2', {}, 'Your account is ready'),
        h('p', {}, 'You are signed in.', flow.accountId ? [' Your account ID is ', h('strong', { id: 'account-id' }, flow.accountId), '. Note it down: support asks for it if you ever lose access.'] : ''),
        actions(h('a', { class: 'primary button-link', href: 'account.html' }, 'Go to your account')),
      ];
    },
  },
});
ctl.open();
