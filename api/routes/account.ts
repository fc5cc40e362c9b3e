/** Sign-in, the signed-in account, security questions and bound devices (factory-reset protection). */
import crypto from 'node:crypto';
import { Router } from 'express';
import { route } from '../registry';
import { problem } from '../problem';
import * as S from '../schemas';
import { consume } from '../rate-limit';
import { confirmPassword, requireRecentSignIn, signIn } from '../auth';
import { Account, Device, Session } from '../../db/models';
import { SECURITY_QUESTIONS, normalizeAnswer } from '../../lib/questions';
import { hashSecret } from '../../lib/passwords';
import { deviceAttestationOf, sameSecret, sha256 } from '../../lib/secrets';
import { isValidImei } from '../../lib/luhn';
import { maskEmail, maskPhone } from '../../lib/identifiers';
import { imeiDigest } from '../../activities/support';
import { cancelPendingChanges } from '../../activities/contacts';
import { notifyAccount } from '../../activities/accounts';
import { deviceBoundMessage, securityQuestionsChangedMessage } from '../../activities/templates';
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
    await Session.deleteOne({ _id: sha256(s.token) });
    // A phone or email change still pending ends with the sign-out (and could not complete without this session anyway).
    await cancelPendingChanges(s.accountId, 'signed_out').catch((err: unknown) => log.warn({ err: String(err) }, 'could not cancel pending changes'));
    res.status(204).end();
  },
);

function deviceView(d: { deviceId: string; model?: string | null; imeiLast4?: string | null; createdAt?: Date }) {
  return { deviceId: d.deviceId, model: d.model ?? '', imeiHint: `*** ${d.imeiLast4 ?? ''}`, boundAt: (d.createdAt ?? new Date()).toISOString() };
}

route(
  accountRouter,
  { method: 'get', path: '/v1/me', summary: 'The signed-in account (contacts masked)', tag: 'Account', auth: 'session', ok: { status: 200, description: 'The account', schema: S.MeResponse } },
  async (_req, res, { session: s }) => {
    const account = await Account.findById(s.accountId).lean();
    if (!account) throw problem('unauthorized');
    const devices = await Device.find({ accountId: s.accountId }).sort({ createdAt: 1 }).lean();
    res.json({
      accountId: account._id,
      email: account.email ? maskEmail(account.email) : undefined,
      phone: account.phone ? maskPhone(account.phone) : undefined,
      devices: devices.map(deviceView),
      consent: account.consent?.acceptedAt
        ? { privacyPolicy: account.consent.privacyPolicy, userAgreement: account.consent.userAgreement, acceptedAt: account.consent.acceptedAt.toISOString(), syncEnabled: !!account.consent.syncEnabled }
        : undefined,
      hasSecurityQuestions: (account.securityAnswers?.length ?? 0) >= 3,
      createdAt: (account as { createdAt?: Date }).createdAt?.toISOString() ?? new Date(0).toISOString(),
    });
  },
);

route(
  accountRouter,
  { method: 'get', path: '/v1/security-questions', summary: 'The security-question catalogue', tag: 'Account', ok: { status: 200, description: 'Questions', schema: S.QuestionList } },
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
    const ids = body.answers.map((a) => a.questionId);
    const known = new Set<string>(SECURITY_QUESTIONS.map((q) => q.id));
    if (new Set(ids).size !== 3 || ids.some((id) => !known.has(id))) {
      throw problem('validation_failed', 'answers: three distinct questionIds from GET /v1/security-questions', { errors: [{ path: 'body.answers', message: 'three distinct known questions' }] });
    }
    if (body.answers.some((a) => normalizeAnswer(a.answer) === '')) throw problem('validation_failed', 'answers: an answer is empty');
    // The answers open a recovery: whoever holds a session must also know the password to change them.
    await confirmPassword(s.accountId, body.password);
    const securityAnswers = await Promise.all(body.answers.map(async (a) => ({ questionId: a.questionId, hash: await hashSecret(normalizeAnswer(a.answer)) })));
    await Account.updateOne({ _id: s.accountId }, { $set: { securityAnswers } });
    const now = new Date();
    await notifyAccount(s.accountId, `questions:${s.accountId}:${now.getTime()}`, securityQuestionsChangedMessage(now));
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
    if (!isValidImei(body.imei)) throw problem('imei_invalid', 'An IMEI is 15 digits with a valid check digit (dial *#06#).');
    // The phone proves it is the device being bound: its attestation is the maker's keyed tag of its IMEI.
    if (!sameSecret(deviceAttestationOf(body.imei), body.attestation)) {
      throw problem('attestation_invalid', 'The device attestation does not match this IMEI: a device binds itself.');
    }
    let device;
    try {
      device = await Device.create({ _id: imeiDigest(body.imei), deviceId: 'dev_' + crypto.randomBytes(9).toString('base64url'), accountId: s.accountId, model: body.model, imeiLast4: body.imei.slice(-4) });
    } catch (err) {
      if ((err as { code?: number }).code === 11000) throw problem('device_bound', 'Remove it from the account it is bound to first.');
      throw err;
    }
    const view = deviceView(device.toObject());
    await notifyAccount(s.accountId, `device-bound:${view.deviceId}`, deviceBoundMessage(view.model, body.imei.slice(-4), new Date()));
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
    const { deletedCount } = await Device.deleteOne({ deviceId: String(req.params.deviceId), accountId: s.accountId });
    if (!deletedCount) throw problem('device_not_found');
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
    const imei = String(req.params.imei);
    if (!isValidImei(imei)) throw problem('imei_invalid', 'An IMEI is 15 digits with a valid check digit.');
    res.json({ locked: !!(await Device.exists({ _id: imeiDigest(imei) })) });
  },
);


