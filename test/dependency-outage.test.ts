/**
 * A database connection cut while a command is in flight (FerretDB or MongoDB restarting, a failover) is a
 * dependency briefly away: the API answers 503 + Retry-After, which clients retry, never 500. Checked with
 * the real driver against the real database through a TCP proxy that cuts every connection the moment the
 * next command is sent, for each shape of command the request paths use (a find, an update, a bulk write:
 * the driver wraps the last one's network error in a MongoBulkWriteError, which the ferretdb-restart drill
 * met as a 500 on the code step).
 */
import crypto from 'node:crypto';
import net from 'node:net';
import mongoose from 'mongoose';
import { isDependencyUnavailable } from '../lib/unavailable';

/** A TCP proxy to the database that, once armed, destroys every connection on the next bytes a client sends. */
class CuttingProxy {
  private readonly sockets = new Set<net.Socket>();
  private armed = false;
  readonly server: net.Server;
  constructor(target: { host: string; port: number }) {
    this.server = net.createServer((client) => {
      const upstream = net.connect(target.port, target.host);
      this.sockets.add(client).add(upstream);
      client.on('data', (chunk) => {
        if (this.armed) {
          client.destroy();
          upstream.destroy();
          return;
        }
        upstream.write(chunk);
      });
      upstream.on('data', (chunk) => client.write(chunk));
      for (const s of [client, upstream]) {
        s.on('error', () => undefined);
        s.on('close', () => {
          client.destroy();
          upstream.destroy();
          this.sockets.delete(s);
        });
      }
    });
  }
  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as net.AddressInfo).port;
  }
  arm(on: boolean) {
    this.armed = on;
  }
  async close() {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

const uri = new URL(process.env.MONGODB_URI ?? 'mongodb://127.0.0.1:27017/account-recovery');
let proxy: CuttingProxy;
let conn: mongoose.Connection;
let Thing: mongoose.Model<{ _id: string; n: number }>;

beforeAll(async () => {
  proxy = new CuttingProxy({ host: uri.hostname, port: Number(uri.port || 27017) });
  const port = await proxy.listen();
  const viaProxy = new URL(uri.href);
  viaProxy.host = `127.0.0.1:${port}`;
  conn = await mongoose
    .createConnection(viaProxy.href, { dbName: `t_outage_${crypto.randomBytes(3).toString('hex')}`, serverSelectionTimeoutMS: 2000, retryWrites: false, retryReads: false })
    .asPromise();
  Thing = conn.model('Thing', new mongoose.Schema<{ _id: string; n: number }>({ _id: String, n: Number }), 'things');
  await Thing.create({ _id: 'k', n: 0 });
});
afterAll(async () => {
  proxy.arm(false);
  await conn?.dropDatabase().catch(() => undefined);
  await conn?.close(true).catch(() => undefined);
  await proxy?.close();
});

/** The error `op` fails with while the proxy cuts the connection it is sent on. */
async function errorWhileCut(op: () => Promise<unknown>): Promise<unknown> {
  proxy.arm(true);
  try {
    await op();
  } catch (err) {
    return err;
  } finally {
    proxy.arm(false);
  }
  throw new Error('the command succeeded through a cut connection');
}

test.each([
  ['a find', () => Thing.findById('k').lean()],
  ['an update', () => Thing.findOneAndUpdate({ _id: 'k' }, { $inc: { n: 1 } }).lean()],
  ['a bulk write', () => Thing.bulkWrite([{ updateOne: { filter: { _id: 'k' }, update: { $inc: { n: -1 } } } }], { ordered: false })],
])('%s cut mid-command is a dependency away (503), not our fault (500)', async (_shape, op) => {
  const err = await errorWhileCut(op);
  expect(isDependencyUnavailable(err)).toBe(true);
});

test('a write the database refused is ours to report (500), even in a bulk write', async () => {
  // a duplicate key: the database answered, so retrying would not help
  const err = await Thing.bulkWrite([{ insertOne: { document: { _id: 'k', n: 1 } } }], { ordered: false }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(mongoose.mongo.MongoBulkWriteError);
  expect(isDependencyUnavailable(err)).toBe(false);
});
