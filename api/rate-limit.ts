/**
 * Rate limits shared by every API replica: counters live in MongoDB (rate-limiter-flexible).
 */
import mongoose from 'mongoose';
import { RateLimiterMongo, RateLimiterRes } from 'rate-limiter-flexible';
import { config } from '../lib/config';
import { problem } from './problem';
import { RATE_LIMIT_COLLECTION } from '../db/mongo';

const specs = {
  startPerIp: { points: 30, duration: 600 },
  startPerIdentifier: { points: 10, duration: 600 },
  submitPerFlow: { points: 20, duration: 60 },
  signInPerIp: { points: 60, duration: 600 },
} as const;

type LimiterName = keyof typeof specs;
const limiters = new Map<LimiterName, RateLimiterMongo>();

function limiter(name: LimiterName): RateLimiterMongo {
  let l = limiters.get(name);
  if (!l) {
    l = new RateLimiterMongo({
      storeClient: mongoose.connection,
      dbName: mongoose.connection.db?.databaseName,
      tableName: RATE_LIMIT_COLLECTION,
      keyPrefix: name,
      disableIndexesCreation: true,
      ...specs[name],
    });
    limiters.set(name, l);
  }
  return l;
}

/** Takes one point for `key`; throws 429 with Retry-After when the budget is spent. */
export async function consume(name: LimiterName, key: string): Promise<void> {
  if (config().RATE_LIMITS === 'off') return;
  try {
    await limiter(name).consume(key);
  } catch (err) {
    if (err instanceof RateLimiterRes) {
      const seconds = Math.max(1, Math.ceil(err.msBeforeNext / 1000));
      throw problem('rate_limited', `Try again in ${seconds} s.`, { retryAfterSeconds: seconds }, { 'Retry-After': String(seconds) });
    }
    throw err;
  }
}
