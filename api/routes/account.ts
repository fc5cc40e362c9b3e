/** Sign-in, the signed-in account, security questions and bound devices (factory-reset protection). */
import { Router } from 'express';
import { route } from '../registry';
import * as S from '../schemas';
import { consume } from '../rate-limit';
import { requireRecentSignIn } from '../auth';
import { confirmPassword, endSession, signIn } from '../../domain/sessions';
import { accountSummary, setSecurityAnswers } from '../../domain/accounts';
import { bindDevice, deviceLocked, removeDevice } from '../../domain/devices';
import { cancelPendingChanges } from '../../domain/pending-changes';
import { SECURITY_QUESTIONS } from '../../lib/questions';
import { log } from '../../lib/log';

export const accountRouter = Router();

route(
  accountRouter,
  {
    method: 'post',
    path: '/v1/sessions',
    summary: 'Sign in with an email, phone or account id and the password',
    tag: 'Account',
    body: S.SessionBody,
    ok: { status: 201, description: 'A session', schema: S.SessionResponse },
    errors: ['invalid_credentials', 'account_locked'],
  },
  async (req, res, { body }) => {
    await consume('signInPerIp', req.ip ?? 'unknown');
    res.status(201).json(await signIn(body.identifier, body.password));
  },
);

route(
  accountRouter,
  { method: 'delete', path: '/v1/sessions/current', summary: 'Sign out', tag: 'Account', auth: 'session', ok: { status: 204, description: 'Signed out', schema: 'empty' } },
  async (_req, res, { session: s }) => {
    await endSession(s.token);
    // A phone or email change still pending ends with the sign-out (and could not complete without this session anyway).
    await cancelPendingChanges(s.accountId, 'signed_out').catch((err: unknown) => log.warn({ err: String(err) }, 'could not cancel pending changes'));
    res.status(204).end();
  },
);

route(
  accountRouter,
  {
    method: 'get',
    path: '/v1/me',
    summary: 'The signed-in account (contacts masked)',
    tag: 'Account',
    auth: 'session',
    ok: { status: 200, description: 'The account', schema: S.MeResponse },
  },
  async (_req, res, { session: s }) => {
    res.json(await accountSummary(s.accountId));
  },
);

route(
  accountRouter,
  {
    method: 'get',
    path: '/v1/security-questions',
    summary: 'The security-question catalogue',
    tag: 'Account',
    ok: { status: 200, description: 'Questions', schema: S.QuestionList },
  },
  async (_req, res) => {
    res.json(SECURITY_QUESTIONS.map((q) => ({ id: q.id, text: q.text })));
  },
);

route(
  accountRouter,
  {
    method: 'put',
    path: '/v1/me/security-questions',
    summary: 'Set three security questions and their answers',
    tag: 'Account',
    auth: 'session',
    body: S.SetQuestionsBody,
    ok: { status: 204, description: 'Saved; every channel on file is told', schema: 'empty' },
    errors: ['invalid_credentials', 'reauth_required', 'account_locked'],
  },
  async (req, res, { body, session: s }) => {
    requireRecentSignIn(s, 'Sign in again to change your security questions.');
    // The answers open a recovery: whoever holds a session must also know the password to change them.
    await confirmPassword(s.accountId, body.password);
    await setSecurityAnswers(s.accountId, body.answers);
    res.status(204).end();
  },
);

route(
  accountRouter,
  {
    method: 'post',
    path: '/v1/me/devices',
    summary: 'Bind a device to the account (factory-reset protection)',
    tag: 'Account',
    auth: 'session',
    body: S.DeviceBody,
    ok: { status: 201, description: 'The device; every channel on file is told', schema: S.DeviceSchema },
    errors: ['imei_invalid', 'attestation_invalid', 'reauth_required', 'device_bound'],
  },
  async (req, res, { body, session: s }) => {
    requireRecentSignIn(s, 'Sign in again to bind a device.');
    const view = await bindDevice(s.accountId, body);
    res.status(201).json(view);
  },
);

route(
  accountRouter,
  {
    method: 'delete',
    path: '/v1/me/devices/:deviceId',
    summary: 'Remove a device from the account (password required); it may then be factory reset',
    tag: 'Account',
    auth: 'session',
    params: { deviceId: { description: 'The device id' } },
    body: S.RemoveDeviceBody,
    ok: { status: 204, description: 'Unbound', schema: 'empty' },
    errors: ['invalid_credentials', 'account_locked', 'device_not_found'],
  },
  async (req, res, { body, session: s }) => {
    await confirmPassword(s.accountId, body.password);
    await removeDevice(s.accountId, String(req.params.deviceId));
    res.status(204).end();
  },
);

route(
  accountRouter,
  {
    method: 'get',
    path: '/v1/devices/:imei/lock',
    summary: 'Factory-reset protection: is this device bound to an account?',
    tag: 'Account',
    params: { imei: { description: '15-digit IMEI', pattern: '^\\d{15}$' } },
    ok: { status: 200, description: 'Lock state', schema: S.LockResponse },
    errors: ['imei_invalid'],
  },
  async (req, res) => {
    res.json({ locked: await deviceLocked(String(req.params.imei)) });
  },
);
