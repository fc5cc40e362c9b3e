/**
 * MongoDB's single-document atomicity, checked against whatever MONGODB_URI points at (the FerretDB
 * that scripts/test.ts starts, or a real MongoDB, where every case holds as-is). The service relies on
 * it: a counter bumped by two requests at once must count both, a conditional update (`n < max`) must
 * not overshoot, an upsert racing an upsert of the same key must not fail, and only one of two
 * claims of a document may win. FerretDB v1 as released applies updates read-modify-write in Go with
 * nothing in between (FerretDB issue #3040); our build serialises them (buildFerretDb in scripts/tools.ts).
 */
import crypto from 'node:crypto';
import mongoose from 'mongoose';
import type { Db } from 'mongodb';

const N = 50;

let conn: mongoose.Connection;
let db: Db;
beforeAll(async () => {
  const uri = process.env.MONGODB_URI ?? 'mongodb://127.0.0.1:27017/account-recovery';
  conn = await mongoose.createConnection(uri, { maxPoolSize: N + 10 }).asPromise();
  db = conn.getClient().db(`t_atomicity_${crypto.randomBytes(3).toString('hex')}`);
});
afterAll(async () => {
  await db?.dropDatabase().catch(() => undefined);
  await conn?.close();
});

/** Runs `n` copies of `op` at once; returns what each caller got (value or error), in order. */
async function burst<T>(n: number, op: (i: number) => Promise<T>): Promise<PromiseSettledResult<T>[]> {
  return Promise.allSettled(Array.from({ length: n }, (_, i) => op(i)));
}
function errorsOf(results: PromiseSettledResult<unknown>[]): string[] {
  return results.flatMap((r) => (r.status === 'rejected' ? [String((r.reason as Error)?.message ?? r.reason)] : []));
}

test(`${N} simultaneous $inc of one document all count`, async () => {
  const c = db.collection<{ _id: string; n: number }>('inc');
  await c.insertOne({ _id: 'k', n: 0 });
  const res = await burst(N, () => c.updateOne({ _id: 'k' }, { $inc: { n: 1 } }));
  expect(errorsOf(res)).toEqual([]);
  expect(await c.findOne({ _id: 'k' })).toEqual({ _id: 'k', n: N });
});

test(`${N} simultaneous upserts of one key (updateOne) make one document, and no caller sees an error`, async () => {
  const c = db.collection<{ _id: string; n: number }>('upsert_update');
  const res = await burst(N, () => c.updateOne({ _id: 'k' }, { $inc: { n: 1 } }, { upsert: true }));
  expect(errorsOf(res)).toEqual([]);
  expect(await c.find({}).toArray()).toEqual([{ _id: 'k', n: N }]);
});

test(`${N} simultaneous upserts of one key (findOneAndUpdate) make one document, and no caller sees an error`, async () => {
  const c = db.collection<{ _id: string; n: number }>('upsert_fam');
  const res = await burst(N, () => c.findOneAndUpdate({ _id: 'k' }, { $inc: { n: 1 } }, { upsert: true, returnDocument: 'after' }));
  expect(errorsOf(res)).toEqual([]);
  expect(await c.find({}).toArray()).toEqual([{ _id: 'k', n: N }]);
  // each caller saw its own increment: the values returned are 1..N, each once
  const seen = res.map((r) => (r.status === 'fulfilled' ? r.value?.n : undefined)).sort((a, b) => (a ?? 0) - (b ?? 0));
  expect(seen).toEqual(Array.from({ length: N }, (_, i) => i + 1));
});

test('a unique index still refuses a duplicate inserted at the same time', async () => {
  const c = db.collection<{ email: string }>('unique');
  await c.createIndex({ email: 1 }, { unique: true });
  const res = await burst(2, () => c.insertOne({ email: 'a@example.com' }));
  expect(res.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  const rejected = res.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  expect(rejected).toHaveLength(1);
  expect((rejected[0].reason as { code?: number }).code).toBe(11000);
  expect(String((rejected[0].reason as Error).message)).toMatch(/E11000/);
  expect(await c.countDocuments({})).toBe(1);
});

test(`${N} simultaneous conditional updates ({ n: { $lt: 10 } }) stop at exactly 10`, async () => {
  const c = db.collection<{ _id: string; n: number }>('conditional');
  await c.insertOne({ _id: 'k', n: 0 });
  const res = await burst(N, () => c.updateOne({ _id: 'k', n: { $lt: 10 } }, { $inc: { n: 1 } }));
  expect(errorsOf(res)).toEqual([]);
  const modified = res.reduce((sum, r) => sum + (r.status === 'fulfilled' ? r.value.modifiedCount : 0), 0);
  expect({ doc: await c.findOne({ _id: 'k' }), modified }).toEqual({ doc: { _id: 'k', n: 10 }, modified: 10 });
});

test('20 simultaneous findOneAndDelete of one document: exactly one caller gets it', async () => {
  const c = db.collection<{ _id: string; v: number }>('claim');
  await c.insertOne({ _id: 'k', v: 1 });
  const res = await burst(20, () => c.findOneAndDelete({ _id: 'k' }));
  expect(errorsOf(res)).toEqual([]);
  const winners = res.filter((r) => r.status === 'fulfilled' && r.value !== null);
  expect(winners).toHaveLength(1);
  expect(await c.countDocuments({})).toBe(0);
});
