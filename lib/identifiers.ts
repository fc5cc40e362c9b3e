/** Email, phone (E.164) and account-id parsing, normalising and masking. */
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import { z } from 'zod';

export type IdentifierKind = 'email' | 'phone' | 'accountId';
export interface Identifier {
  kind: IdentifierKind;
  value: string;
}

const emailSchema = z.string().trim().toLowerCase().max(254).pipe(z.email());

export function normalizeEmail(text: string): string | undefined {
  const r = emailSchema.safeParse(text);
  return r.success ? r.data : undefined;
}

/** A valid E.164 number (leading +, country code), normalised; undefined otherwise. */
export function normalizePhone(text: string): string | undefined {
  const t = text.trim();
  if (!/^\+[1-9]\d{6,14}$/.test(t.replace(/[\s-]/g, ''))) return undefined;
  const phone = parsePhoneNumberFromString(t.replace(/[\s-]/g, ''));
  return phone && phone.isValid() ? phone.number : undefined;
}

export const isAccountId = (text: string) => /^[1-9]\d{9}$/.test(text.trim());

export function parseIdentifier(text: string): Identifier | undefined {
  const t = text.trim();
  if (isAccountId(t)) return { kind: 'accountId', value: t };
  if (t.startsWith('+')) {
    const phone = normalizePhone(t);
    return phone ? { kind: 'phone', value: phone } : undefined;
  }
  const email = normalizeEmail(t);
  return email ? { kind: 'email', value: email } : undefined;
}

/** "j***@example.com" */
export function maskEmail(email: string): string {
  const [local = '', domain = ''] = email.split('@');
  return `${local.slice(0, 1)}***@${domain}`;
}

/** "+86 *** **** 1234": country code and the last four digits. */
export function maskPhone(e164: string): string {
  const phone = parsePhoneNumberFromString(e164);
  const cc = phone ? phone.countryCallingCode : e164.slice(1, 3);
  const national = phone ? phone.nationalNumber : e164.slice(3);
  const last4 = national.slice(-4);
  const hidden = national.slice(0, -4).replace(/\d/g, '*');
  const groups = hidden.length > 3 ? `${hidden.slice(0, 3)} ${hidden.slice(3)}` : hidden;
  return `+${cc} ${groups} ${last4}`.replace(/\s+/g, ' ');
}
