/**
 * What lives in MongoDB. Works on MongoDB and on FerretDB 1.x (no transactions, no partial
 * indexes): uniqueness of emails, phones and devices is kept by collections keyed on them.
 */
import mongoose, { Schema, type InferSchemaType } from 'mongoose';

const lockoutSchema = new Schema(
  {
    failures: { type: Number, default: 0 },
    windowStartedAt: Date,
    lockedUntil: Date,
    lockCount: { type: Number, default: 0 },
  },
  { _id: false },
);

const accountSchema = new Schema(
  {
    _id: { type: String }, // 10-digit account id
    email: String,
    phone: String, // E.164
    passwordHash: { type: String, required: true },
    securityAnswers: [{ _id: false, questionId: String, hash: String }],
    consent: {
      type: new Schema({ privacyPolicy: String, userAgreement: String, acceptedAt: Date, syncEnabled: Boolean }, { _id: false }),
      default: undefined,
    },
    status: { type: String, enum: ['active', 'disabled'], default: 'active' },
    lockout: { type: lockoutSchema, default: () => ({}) },
    /** Wrong codes/answers in recovery flows, across flows. */
    recoveryFailures: { count: { type: Number, default: 0 }, windowStartedAt: Date },
    /** The one active flow per kind (a new start supersedes it). */
    activeFlows: { type: Map, of: String, default: () => new Map() },
    passwordChangedAt: Date,
  },
  { timestamps: true, versionKey: false },
);
export const Account = mongoose.model('Account', accountSchema);
export type AccountDoc = InferSchemaType<typeof accountSchema> & { _id: string };

/** `_id` is "email:<address>" or "phone:<e164>": unique on any backend, even for accounts without one of them. */
const contactSchema = new Schema({ _id: String, accountId: { type: String, required: true, index: true } }, { timestamps: true, versionKey: false });
export const Contact = mongoose.model('Contact', contactSchema);

const deviceSchema = new Schema(
  {
    _id: String, // keyed digest of the IMEI: one account per device
    deviceId: { type: String, required: true, unique: true },
    accountId: { type: String, required: true, index: true },
    model: String,
    imeiLast4: String,
  },
  { timestamps: true, versionKey: false },
);
export const Device = mongoose.model('Device', deviceSchema);

const sessionSchema = new Schema(
  {
    _id: String, // sha256 of the token
    accountId: { type: String, required: true, index: true },
    authenticatedAt: { type: Date, required: true },
    expiresAt: { type: Date, required: true, index: true },
  },
  { timestamps: true, versionKey: false },
);
export const Session = mongoose.model('Session', sessionSchema);

/** An issued code: only its HMAC is kept; the code itself only sealed until it is delivered. */
const codeSchema = new Schema(
  {
    _id: String, // codeId (uuid from the workflow)
    flowId: { type: String, required: true, index: true },
    purpose: String,
    channel: { type: String, enum: ['sms', 'email'] },
    to: String,
    hmac: String,
    sealed: String,
    deliveredAt: Date,
    expiresAt: { type: Date, index: true },
  },
  { timestamps: true, versionKey: false },
);
export const Code = mongoose.model('Code', codeSchema);

/** One row per message key: a retried delivery never sends the same message twice. */
const deliverySchema = new Schema(
  {
    _id: String, // idempotency key
    channel: String,
    status: { type: String, enum: ['sending', 'sent'] },
    attempts: { type: Number, default: 0 },
    sentAt: Date,
    providerId: String,
  },
  { timestamps: true, versionKey: false },
);
export const Delivery = mongoose.model('Delivery', deliverySchema);

/**
 * Development only: what the dev SMS and email transports delivered, for /v1/dev/outbox. One document per
 * address (lower-cased), keyed by it: writing and reading a mailbox are lookups by _id, the one filter
 * FerretDB 1.x pushes down to SQLite (any other filter decodes and scans every document of the collection).
 */
const outboxSchema = new Schema(
  {
    _id: String, // the address, lower-cased
    messages: [{ _id: false, key: String, channel: String, to: String, subject: String, text: String, flowId: String, sentAt: Date }],
  },
  { versionKey: false },
);
export const Outbox = mongoose.model('Outbox', outboxSchema, 'dev_outbox');
/** How many messages a mailbox keeps (MongoDB trims to this; FerretDB 1.x ignores $slice and keeps all). */
export const OUTBOX_KEEP = 200;

const supportCaseSchema = new Schema(
  {
    _id: String, // case id
    flowId: { type: String, required: true, index: true },
    accountId: String, // as the user typed it
    accountExists: Boolean,
    imeiLast4: String,
    deviceVerified: Boolean,
    contactEmail: String,
    message: String,
    status: { type: String, enum: ['pending', 'approved', 'rejected', 'expired'], default: 'pending', index: true },
    decision: { reviewer: String, note: String, decidedAt: Date },
  },
  { timestamps: true, versionKey: false },
);
export const SupportCase = mongoose.model('SupportCase', supportCaseSchema);

/**
 * Counters and locks of the limits in domain/limits.ts, one document per key and window, keyed by `_id` so
 * that every change is one atomic update of one document found by its _id.
 */
const counterSchema = new Schema(
  {
    _id: String,
    n: { type: Number, default: 0 },
    /** Sign-in locks: until when, and how many locks so far (each one doubles the next). */
    lockedUntil: Date,
    lockCount: Number,
    /** The one active reset of an identifier: its flow. */
    flowId: String,
    expire: { type: Date, required: true },
  },
  { versionKey: false },
);
export const Counter = mongoose.model('Counter', counterSchema, 'counters');

/**
 * What the API keeps of a flow so that it can answer without asking the workflow (domain/flow-record.ts): the
 * captcha picture on show (the HMAC of its answer, until answered), and for a reset the identifier it was
 * started for and, once its captcha is passed, whom it is for. Keyed by flow id: every read and change is one
 * atomic operation on one document found by _id. The workflow stays the judge of every step.
 */
const flowRecordSchema = new Schema(
  {
    _id: String, // flow id
    /** A reset's identifier, from its start. */
    identifier: String,
    /** The HMAC of the answer of the captcha picture on show, and until when it can be answered. */
    challenge: String,
    challengeExpire: Date,
    /** A reset whose captcha is passed: the account it is for (none: an unknown identifier) and its identifiers. */
    passedCaptcha: Boolean,
    accountId: String,
    identifiers: [String],
    /** A reset that asked support for help: whom it is for is the reviewer's decision, so the flow is asked. */
    viaSupport: Boolean,
    /** Cancelled or superseded, as the API saw it. */
    ended: Boolean,
    /** A reset's deadline from its start: past it the record answers for nothing (a support review, which extends it, asks the flow). */
    deadline: Date,
    /** A reset whose code (or answers) moved it to new_password, as the API saw the guess's answer: only then is a password looked at. */
    atNewPassword: Boolean,
    expire: { type: Date, required: true },
  },
  { versionKey: false },
);
export const FlowRecord = mongoose.model('FlowRecord', flowRecordSchema, 'flow_records');

/** Documents that expire: a TTL index where the backend has them (MongoDB), else a sweep (FerretDB 1.x). */
export const EXPIRING = [
  { model: Session, field: 'expiresAt', afterSeconds: 0 },
  { model: Code, field: 'expiresAt', afterSeconds: 86_400 },
  { model: Counter, field: 'expire', afterSeconds: 0 },
  { model: FlowRecord, field: 'expire', afterSeconds: 0 },
] as const;
