/** Request and response shapes of ../shared/API.md, as zod schemas (validation and OpenAPI from one source). */
import { z } from 'zod';
import { isValidImei } from '../lib/luhn';

const iso = z.string().describe('ISO-8601 UTC time');
export const flowIdParam = { flowId: { description: 'The flow id (an unguessable capability)', pattern: '^[a-z]{3}_[A-Za-z0-9_-]{22}$' } };

export const FlowSchema = z
  .object({
    flowId: z.string(),
    kind: z.enum(['password_reset', 'sign_up', 'change_phone', 'change_email']),
    status: z.enum(['active', 'completed', 'expired', 'cancelled', 'rejected']),
    step: z.enum([
      'captcha',
      'code',
      'security_questions',
      'support',
      'support_review',
      'new_password',
      'hold',
      'consent',
      'password',
      'new_phone',
      'confirm_new_phone',
      'new_email',
      'confirm_new_email',
      'done',
    ]),
    expiresAt: iso.optional(),
    channel: z.enum(['sms', 'email']).optional(),
    destinationHint: z.string().optional(),
    codeExpiresAt: iso.optional(),
    attemptsLeft: z.number().int().optional(),
    resendAvailableAt: iso.optional(),
    resendsLeft: z.number().int().optional(),
    questions: z.array(z.object({ id: z.string(), text: z.string() })).optional(),
    documents: z.array(z.object({ id: z.string(), version: z.string() })).optional(),
    supportCaseId: z.string().optional(),
    holdUntil: iso.optional(),
    accountId: z.string().optional(),
    session: z.object({ token: z.string(), expiresAt: iso }).optional(),
    reason: z.string().optional(),
    newDestinationHint: z.string().optional(),
    holdSeconds: z.number().int().optional().describe('A hold of this many seconds follows this step (the change was proven without a channel on file)'),
  })
  .meta({ id: 'Flow' });

/** What a start answers: the Flow and, for an anonymous flow (reset, sign-up), the secret that drives it. */
export const StartedFlowSchema = z
  .object({
    ...FlowSchema.shape,
    flowSecret: z.string().optional().describe('Send it as the Flow-Secret header on every later request of this flow (password reset and sign-up); given only here'),
  })
  .meta({ id: 'StartedFlow' });

const text = (max: number) => z.string().max(max);

export const StartResetBody = z.object({ identifier: text(254).min(1).describe('An email, an E.164 phone number or a 10-digit account id') }).strict();
export const CaptchaBody = z.object({ answer: text(64).min(1) }).strict();
export const CodeBody = z.object({ code: z.string().regex(/^\d{6}$/, '6 digits') }).strict();
export const AnswersBody = z
  .object({
    answers: z
      .array(z.object({ questionId: text(64).min(1), answer: text(200) }).strict())
      .min(1)
      .max(10),
  })
  .strict();
export const SupportBody = z
  .object({
    accountId: z.string().regex(/^[1-9]\d{9}$/, 'a 10-digit account id'),
    imei: z
      .string()
      .regex(/^\d{15}$/, '15 digits')
      .refine(isValidImei, 'not a valid IMEI (check digit); dial *#06# to see it'),
    contactEmail: z.email().max(254),
    message: text(2000).optional(),
  })
  .strict();
export const PasswordBody = z.object({ password: text(1024), confirmation: text(1024) }).strict();
export const VetoBody = z.object({ token: text(200).min(1) }).strict();

export const SessionBody = z.object({ identifier: text(254).min(1), password: text(1024).min(1) }).strict();
export const SessionResponse = z.object({ token: z.string(), expiresAt: iso, accountId: z.string() });
export const QuestionList = z.array(z.object({ id: z.string(), text: z.string() }));
export const SetQuestionsBody = z
  .object({ answers: z.array(z.object({ questionId: text(64), answer: text(200).min(1) }).strict()).length(3), password: text(1024).min(1).describe('The current password') })
  .strict();
export const DeviceBody = z
  .object({
    imei: z.string().max(32),
    model: text(100).min(1),
    attestation: text(128).optional().describe("The device's attestation: base64url(HMAC-SHA256(DEVICE_ATTESTATION_KEY, imei)), presented by the phone itself"),
  })
  .strict();
export const DeviceSchema = z.object({ deviceId: z.string(), model: z.string(), imeiHint: z.string(), boundAt: iso });
export const RemoveDeviceBody = z.object({ password: text(1024).min(1) }).strict();
export const LockResponse = z.object({ locked: z.boolean() });
export const MeResponse = z.object({
  accountId: z.string(),
  email: z.string().optional(),
  phone: z.string().optional(),
  devices: z.array(DeviceSchema),
  consent: z.object({ privacyPolicy: z.string(), userAgreement: z.string(), acceptedAt: iso, syncEnabled: z.boolean() }).optional(),
  hasSecurityQuestions: z.boolean(),
  createdAt: iso,
});
