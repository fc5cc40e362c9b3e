/** Pure logic: configuration, durations, identifiers, IMEIs, passwords, digests and sealing, the payload codec. */
import { loadConfig, ConfigError } from '../lib/config';
import { parseDuration } from '../lib/duration';
import { parseIdentifier, maskEmail, maskPhone } from '../lib/identifiers';
import { isValidImei } from '../lib/luhn';
import { normalizeAnswer } from '../lib/questions';
import { EncryptionCodec, parseKeys } from '../lib/codec';
import { lockDuration } from '../domain/limits';
import { kindOfFlowId, workflowIdOf } from '../workflows/messages';
import crypto from 'node:crypto';

describe('config', () => {
  const prodEnv = {
    NODE_ENV: 'production',
    CODE_HMAC_SECRET: 'x'.repeat(40),
    PAYLOAD_ENCRYPTION_KEY: `k1:${crypto.randomBytes(32).toString('base64')}`,
    OPS_TOKEN: 'an-ops-token-long-enough',
    DEVICE_ATTESTATION_KEY: 'y'.repeat(40),
    PUBLIC_URL: 'https://account.example',
    SMS_PROVIDER: 'webhook',
    SMS_WEBHOOK_URL: 'https://sms.example/send',
  };

  test('defaults are the ones in API.md', () => {
    const c = loadConfig({ DATA_DIR: require('node:os').tmpdir() + '/cfg-test' });
    expect(c).toMatchObject({ PORT: 3000, TEMPORAL_ADDRESS: 'localhost:7233', TEMPORAL_NAMESPACE: 'default', TEMPORAL_TASK_QUEUE: 'account-recovery', OPS_TOKEN: 'dev-ops-token' });
    expect(c).toMatchObject({ RESET_CODE_TTL: 600_000, CHANGE_PHONE_CODE_TTL: 86_400_000, RESEND_COOLDOWN: 60_000, MAX_RESENDS: 5, MAX_CODE_ATTEMPTS: 5, MAX_ANSWER_ATTEMPTS: 3 });
    expect(c).toMatchObject({ FLOW_TTL: 3_600_000, SUPPORT_REVIEW_TTL: 259_200_000, RECOVERY_HOLD: 86_400_000, PRIVILEGED_SESSION_AGE: 3_600_000 });
    expect(c).toMatchObject({ SIGNUP_MESSAGE_BUDGET: 1000, METRICS_ADDR: '127.0.0.1:9464' });
    expect(c.DEVICE_ATTESTATION_KEY.length).toBeGreaterThanOrEqual(32);
    expect(c.CODE_HMAC_SECRET.length).toBeGreaterThanOrEqual(32);
    // generated once and kept
    expect(loadConfig({ DATA_DIR: require('node:os').tmpdir() + '/cfg-test' }).CODE_HMAC_SECRET).toBe(c.CODE_HMAC_SECRET);
  });

  test('a bad variable stops with one line naming it', () => {
    expect(() => loadConfig({ RESET_CODE_TTL: 'ten minutes' })).toThrow(/^config: RESET_CODE_TTL must be a duration/);
    expect(() => loadConfig({ PORT: 'abc' })).toThrow(/^config: PORT must be/);
    expect(() => loadConfig({ MONGODB_URI: 'postgres://x' })).toThrow(/^config: MONGODB_URI must be a mongodb/);
    expect(() => loadConfig({ TRUST_PROXY: 'true' })).toThrow(/TRUST_PROXY/);
  });

  test('production needs every secret', () => {
    expect(loadConfig(prodEnv).isProduction).toBe(true);
    for (const name of ['CODE_HMAC_SECRET', 'PAYLOAD_ENCRYPTION_KEY', 'OPS_TOKEN', 'DEVICE_ATTESTATION_KEY', 'PUBLIC_URL']) {
      const env: Record<string, string> = { ...prodEnv };
      delete env[name];
      expect(() => loadConfig(env)).toThrow(ConfigError);
      expect(() => loadConfig(env)).toThrow(new RegExp(name));
    }
    expect(() => loadConfig({ ...prodEnv, CAPTCHA_PROVIDER: 'test' })).toThrow(/CAPTCHA_PROVIDER/);
  });
});

test('durations', () => {
  expect(parseDuration('10m')).toBe(600_000);
  expect(parseDuration('24h')).toBe(86_400_000);
  expect(parseDuration('1.5s')).toBe(1500);
  expect(parseDuration('250')).toBe(250);
  expect(parseDuration('soon')).toBeUndefined();
});

test('identifiers and masks', () => {
  expect(parseIdentifier('1234567890')).toEqual({ kind: 'accountId', value: '1234567890' });
  expect(parseIdentifier(' J.Doe@Example.COM ')).toEqual({ kind: 'email', value: 'j.doe@example.com' });
  expect(parseIdentifier('+86 138 0013 8000')).toEqual({ kind: 'phone', value: '+8613800138000' });
  expect(parseIdentifier('13800138000')).toBeUndefined();
  expect(parseIdentifier('0123456789')).toBeUndefined();
  expect(parseIdentifier('+1234')).toBeUndefined();
  expect(maskEmail('jane@example.com')).toBe('j***@example.com');
  expect(maskPhone('+8613800138000')).toBe('+86 *** **** 8000');
});

test('IMEI Luhn check', () => {
  expect(isValidImei('490154203237518')).toBe(true);
  expect(isValidImei('356938035643809')).toBe(true);
  expect(isValidImei('490154203237519')).toBe(false);
  expect(isValidImei('49015420323751')).toBe(false);
  expect(isValidImei('49015420323751a')).toBe(false);
});

test('answers are normalised before hashing', () => {
  expect(normalizeAnswer('  Café   Münster ')).toBe('cafe munster');
});

test('lockout doubles from 15 minutes up to 24 hours', () => {
  expect(lockDuration(0)).toBe(15 * 60_000);
  expect(lockDuration(1)).toBe(30 * 60_000);
  expect(lockDuration(10)).toBe(24 * 3_600_000);
});

test('flow ids name their kind and their workflow', () => {
  expect(kindOfFlowId('rst_AAAAAAAAAAAAAAAAAAAAAA')).toBe('password_reset');
  expect(workflowIdOf('chp_AAAAAAAAAAAAAAAAAAAAAA')).toBe('change-phone/chp_AAAAAAAAAAAAAAAAAAAAAA');
  expect(workflowIdOf('rst_short')).toBeUndefined();
  expect(workflowIdOf('../../etc')).toBeUndefined();
});

describe('payload codec', () => {
  const k1 = { id: 'old', key: crypto.randomBytes(32) };
  const k2 = { id: 'new', key: crypto.randomBytes(32) };
  const payload = { metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from('{"email":"jane@example.com"}') };

  test('round trip; the ciphertext hides the content; the key id travels in metadata', async () => {
    const codec = new EncryptionCodec([k1]);
    const [enc] = await codec.encode([payload]);
    expect(Buffer.from(enc!.data!).toString('latin1')).not.toContain('jane');
    expect(Buffer.from(enc!.metadata!['encryption-key-id']!).toString()).toBe('old');
    const [dec] = await codec.decode([enc!]);
    expect(Buffer.from(dec!.data!).toString()).toBe('{"email":"jane@example.com"}');
  });

  test('rotation: new key encrypts, old payloads still decrypt; tampering fails', async () => {
    const [old] = await new EncryptionCodec([k1]).encode([payload]);
    const rotated = new EncryptionCodec([k2, k1]);
    const [fresh] = await rotated.encode([payload]);
    expect(Buffer.from(fresh!.metadata!['encryption-key-id']!).toString()).toBe('new');
    expect(Buffer.from((await rotated.decode([old!]))[0]!.data!).toString()).toContain('jane');
    const bad = { ...fresh!, data: Buffer.from(fresh!.data!) };
    bad.data[20] ^= 1;
    await expect(rotated.decode([bad])).rejects.toThrow();
    await expect(new EncryptionCodec([k1]).decode([fresh!])).rejects.toThrow(/no payload key/);
  });

  test('key spec parsing', () => {
    const spec = `a:${crypto.randomBytes(32).toString('base64')},b:${crypto.randomBytes(32).toString('base64')}`;
    expect(parseKeys(spec).map((k) => k.id)).toEqual(['a', 'b']);
    expect(() => parseKeys('a:c2hvcnQ=')).toThrow(/32 bytes/);
  });
});

describe('digests and sealing', () => {
  beforeAll(() => {
    process.env.CODE_HMAC_SECRET = 'unit-test-secret-unit-test-secret-0123';
  });

  test('code digests are keyed and bound to the flow; sealed values open only for their flow', async () => {
    const { codeDigest, seal, unseal, newCode, newAccountId } = await import('../lib/secrets');
    expect(codeDigest('f1', '123456')).toMatch(/^[0-9a-f]{64}$/);
    expect(codeDigest('f1', '123456')).not.toBe(codeDigest('f2', '123456'));
    const sealed = seal('f1', [{ questionId: 'q', answer: 'blue' }]);
    expect(sealed).not.toContain('blue');
    expect(unseal('f1', sealed)).toEqual([{ questionId: 'q', answer: 'blue' }]);
    expect(() => unseal('f2', sealed)).toThrow();
    expect(newCode()).toMatch(/^\d{6}$/);
    expect(newAccountId()).toMatch(/^[1-9]\d{9}$/);
  });

  test('password policy (NIST 800-63B)', async () => {
    const { passwordProblems } = await import('../lib/passwords');
    expect(passwordProblems('short')).toContain('too_short');
    expect(passwordProblems('password')).toContain('too_common');
    // l33t spellings are still caught with the substitution cap (lib/passwords.ts)
    for (const l33t of ['P4$$w0rd1', 'p@ssw0rd!', 'P4$$w0rd!P4$$w0rd!', 'l3tm31n!']) expect(passwordProblems(l33t)).toContain('too_common');
    expect(passwordProblems('correct horse battery staple')).toEqual([]);
    expect(passwordProblems('x'.repeat(129))).toContain('too_long');
    // only the first ZXCVBN_MAX_CHARS are judged (a bound on the event loop's time), and that still sees a weak one
    expect(passwordProblems('password'.repeat(16))).toContain('too_common');
    expect(passwordProblems('jane@example.com', ['jane@example.com'])).toContain('same_as_identifier');
    expect(passwordProblems('correct horse battery staple')).toEqual([]);
    expect(passwordProblems('plain lowercase words are fine here')).toEqual([]);
  });
});

describe('mail transport', () => {
  it('sends one message after another over one kept-open SMTP connection', async () => {
    const { createMailer } = await import('../domain/delivery');
    const { startSmtpRelay } = await import('./support/smtp-relay');
    const relay = await startSmtpRelay();
    const mailer = createMailer(relay.url);
    try {
      for (let i = 0; i < 3; i++) await mailer.sendMail({ from: 'a@example.com', to: 'b@example.com', subject: 'code', text: `message ${i}` });
      expect(relay.connections()).toBe(1);
    } finally {
      mailer.close();
      await relay.close();
    }
  });
});
