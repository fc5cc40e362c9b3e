/** Small DOM helpers shared by the pages: element building, the live regions, timers, countdowns, busy buttons. */
import { describe } from './errors.js';

/** h('p', { class: 'hint' }, 'text', child…): builds elements without ever parsing HTML from data. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);

/** A labelled field: label, input, optional hint (linked with aria-describedby). */
export function field({ id, label, hint, type = 'text', ...attrs }) {
  const hintId = hint ? `${id}-hint` : undefined;
  const input = type === 'textarea' ? h('textarea', { id, name: id, 'aria-describedby': hintId, ...attrs }) : h('input', { id, name: id, type, 'aria-describedby': hintId, ...attrs });
  return h('div', { class: 'field' }, h('label', { for: id }, label), hint ? h('p', { class: 'hint', id: hintId }, hint) : null, input);
}

// Live regions: #status (polite) for progress, #alert (assertive) for errors. Both exist in the HTML from the start.
export function say(text) {
  const el = $('#status');
  if (el) el.textContent = text ?? '';
}
export function alertText(text) {
  const el = $('#alert');
  if (el) el.textContent = text ?? '';
}
export function showError(err) {
  alertText(describe(err));
}
export function clearMessages() {
  alertText('');
  say('');
}

/** Marks the inputs of a form valid again, or one invalid. */
export function markInvalid(form, name) {
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  if (!name) return;
  const el = form.querySelector(`[name="${name}"]`);
  if (el) {
    el.setAttribute('aria-invalid', 'true');
    el.focus();
  }
}

/** Moves focus to the first field of a new step, else its heading. */
export function focusFirst(root) {
  const target = root.querySelector('input:not([type=hidden]):not([disabled]), select, textarea') ?? root.querySelector('h2, h1');
  if (!target) return;
  if (!target.matches('input, select, textarea, button, a')) target.setAttribute('tabindex', '-1');
  target.focus();
}

/** Disables a form's controls while `work` runs, with a busy marker for assistive tech. */
export async function busy(form, work) {
  const controls = [...form.querySelectorAll('button, input, select, textarea')].filter((c) => !c.disabled);
  form.setAttribute('aria-busy', 'true');
  for (const c of controls) c.disabled = true;
  try {
    return await work();
  } finally {
    form.removeAttribute('aria-busy');
    for (const c of controls) if (c.isConnected) c.disabled = false;
  }
}

// Timers belong to the current screen; a new screen clears them.
const timers = new Set();
export function every(ms, fn) {
  fn();
  const id = setInterval(fn, ms);
  timers.add(id);
  return id;
}
export function later(ms, fn) {
  const id = setTimeout(() => {
    timers.delete(id);
    fn();
  }, ms);
  timers.add(id);
  return id;
}
export function clearTimers() {
  for (const id of timers) {
    clearInterval(id);
    clearTimeout(id);
  }
  timers.clear();
}

/** Seconds left → "9:05" (or "2 h 05 min" for long waits). */
export function countdown(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  if (s >= 3600) {
    const hours = Math.floor(s / 3600);
    return `${hours} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
  }
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}
export const secondsUntil = (iso) => (Date.parse(iso) - Date.now()) / 1000;

/** Reads the query string. */
export const param = (name) => new URLSearchParams(location.search).get(name);

/** Puts ?flow=<id> in the address bar (no new history entry), so a reload or a copied link resumes the flow. */
export function setFlowParam(flowId) {
  const url = new URL(location.href);
  if (flowId) url.searchParams.set('flow', flowId);
  else url.searchParams.delete('flow');
  if (url.href !== location.href) history.replaceState(null, '', url);
}

/** A show/hide toggle for a password input. */
export function revealButton(input) {
  const btn = h('button', { type: 'button', class: 'link reveal', 'aria-controls': input.id, 'aria-pressed': 'false' }, 'Show password');
  btn.addEventListener('click', () => {
    const show = input.type === 'password';
    input.type = show ? 'text' : 'password';
    btn.setAttribute('aria-pressed', String(show));
    btn.textContent = show ? 'Hide password' : 'Show password';
  });
  return btn;
}

const COMMON = ['password', 'passw0rd', '123456', '12345678', '123456789', 'qwerty', 'qwertyuiop', 'abc123', 'iloveyou', 'admin', 'welcome', 'letmein', 'monkey', 'dragon', 'football', 'baseball', 'sunshine', 'princess', 'xiaomi', 'woaini', '111111', '000000', '1q2w3e4r', 'zaq12wsx', 'qazwsx'];

/**
 * A rough local estimate of a password's strength, for the hint only (the server is the judge):
 * 0 too short, 1 weak, 2 fair, 3 good, 4 strong.
 */
export function estimateStrength(pw) {
  const length = [...pw].length;
  if (length === 0) return { score: 0, label: '' };
  if (length < 8) return { score: 0, label: `Too short: ${8 - length} more character${8 - length === 1 ? '' : 's'} at least` };
  const lower = pw.toLowerCase();
  let pool = 0;
  if (/[a-z]/.test(pw)) pool += 26;
  if (/[A-Z]/.test(pw)) pool += 26;
  if (/\d/.test(pw)) pool += 10;
  if (/[^\w\s]/.test(pw)) pool += 33;
  if (/\s/.test(pw)) pool += 1;
  if (/[^\x00-\x7f]/.test(pw)) pool += 100;
  let bits = length * Math.log2(Math.max(pool, 2));
  if (/(.)\1{2,}/.test(pw)) bits *= 0.7; // aaa
  if (/(0123|1234|2345|3456|4567|5678|6789|abcd|bcde|qwer|asdf|zxcv)/.test(lower)) bits *= 0.7;
  const distinct = new Set(lower).size;
  if (distinct <= 3) bits = Math.min(bits, 20);
  if (COMMON.some((c) => lower.replace(/[^a-z0-9]/g, '').includes(c))) bits = Math.min(bits, 25);
  const score = bits < 36 ? 1 : bits < 50 ? 2 : bits < 70 ? 3 : 4;
  const label = ['', 'Weak: easy to guess', 'Fair: a longer password would be safer', 'Good', 'Strong'][score];
  return { score, label };
}

// A field that was marked invalid stops saying so as soon as it is edited.
document.addEventListener('input', (e) => {
  if (e.target instanceof Element && e.target.getAttribute('aria-invalid') === 'true') e.target.removeAttribute('aria-invalid');
});
