/** One mongoose connection per process; indexes are built at start. */
import mongoose from 'mongoose';
import { config } from '../lib/config';
import * as models from './models';

let connecting: Promise<typeof mongoose> | undefined;

export async function connectMongo(uri = config().MONGODB_URI): Promise<typeof mongoose> {
  if (!connecting) {
    mongoose.set('strictQuery', true);
    connecting = mongoose.connect(uri, { serverSelectionTimeoutMS: 10_000, maxPoolSize: 50 }).then(async (m) => {
      await Promise.all((Object.values(models) as unknown[]).filter(isModel).map((model) => model.createIndexes()));
      ttlSupported = await createTtlIndexes();
      return m;
    });
    connecting.catch(() => (connecting = undefined));
  }
  return connecting;
}

let ttlSupported = true;

/** rate-limiter-flexible's collection: we create its indexes (its own attempt fails noisily on FerretDB). */
export const RATE_LIMIT_COLLECTION = 'rate_limits';

async function createTtlIndexes(): Promise<boolean> {
  const limits = mongoose.connection.collection(RATE_LIMIT_COLLECTION);
  await limits.createIndex({ key: 1 }, { unique: true });
  try {
    await limits.createIndex({ expire: 1 }, { expireAfterSeconds: 0, name: 'expire_ttl' });
  } catch (err) {
    if ((err as { code?: number }).code !== 238) throw err;
  }
  for (const { model, field, afterSeconds } of models.EXPIRING) {
    try {
      await model.collection.createIndex({ [field]: 1 }, { expireAfterSeconds: afterSeconds, name: `${field}_ttl` });
    } catch (err) {
      if ((err as { code?: number }).code === 238 /* NotImplemented: FerretDB 1.x */) return false;
      throw err;
    }
  }
  return true;
}

/** Deletes expired documents where the backend has no TTL indexes (a no-op on MongoDB). */
export async function sweepExpired(now = new Date()): Promise<number> {
  if (ttlSupported) return 0;
  let removed = 0;
  for (const { model, field, afterSeconds } of models.EXPIRING) {
    const { deletedCount } = await (model as unknown as mongoose.Model<unknown>).deleteMany({ [field]: { $lt: new Date(now.getTime() - afterSeconds * 1000) } } as never);
    removed += deletedCount;
  }
  const { deletedCount } = await mongoose.connection.collection(RATE_LIMIT_COLLECTION).deleteMany({ expire: { $lt: now } });
  return removed + deletedCount;
}

function isModel(x: unknown): x is mongoose.Model<unknown> {
  return typeof x === 'function' && 'createIndexes' in (x as object) && 'modelName' in (x as object);
}

export async function disconnectMongo(): Promise<void> {
  connecting = undefined;
  await mongoose.disconnect();
}

export async function mongoReady(): Promise<boolean> {
  try {
    if (mongoose.connection.readyState !== 1) return false;
    await mongoose.connection.db!.admin().ping();
    return true;
  } catch {
    return false;
  }
}
