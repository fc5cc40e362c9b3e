/**
 * Starting a reset must not tell whether an account exists, by its answer or by its timing: for 200
 * identifiers that match an account and 200 that match none, the answers have the same shape and the
 * median start latencies are within 5 ms of each other. Requests alternate between the two sets (in a
 * shuffled order) so that drift in machine load hits both alike.
 */
import crypto from 'node:crypto';
import { startHarness, type Harness } from './support/harness';

let h: Harness;
const N = 200;

beforeAll(async () => {
  // No worker in this process: what a flow does after its start (looking the account up, sending a code)
  // runs elsewhere in production too, and here it would only add event-loop noise to the API's timing.
  h = await startHarness('enum', {}, { worker: false });
}, 120_000);
afterAll(async () => {
  await h?.stop();
});

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

test('200 existing vs 200 unknown identifiers: same answers, medians within 5 ms', async () => {
  const { createAccount } = await import('../domain/accounts');
  const { hashSecret } = await import('../lib/passwords');
  const tag = crypto.randomBytes(3).toString('hex');
  const passwordHash = await hashSecret('enumeration test password');
  // Half emails, half phones in each set.
  const phone = (n: number) => `+1650555${String(n).padStart(4, '0')}`;
  const known: string[] = [];
  for (let i = 0; i < N; i++) {
    const email = `enum-${tag}-${i}@example.com`;
    const p = phone(i);
    await createAccount({ email, phone: p, passwordHash });
    known.push(i % 2 ? p : email);
  }
  const unknown = Array.from({ length: N }, (_, i) => (i % 2 ? phone(5000 + i) : `nobody-${tag}-${i}@example.com`));

  // Interleaved pairs in a shuffled order; a few unmeasured starts first.
  for (let i = 0; i < 10; i++) await h.api.post('/v1/flows/password-reset', { identifier: `warmup-${tag}-${i}@example.com` });
  const order = Array.from({ length: N }, (_, i) => i).sort(() => Math.random() - 0.5);
  const times = { known: [] as number[], unknown: [] as number[] };
  const shapes = new Set<string>();
  const timeStart = async (identifier: string) => {
    const t = performance.now();
    const r = await h.api.post('/v1/flows/password-reset', { identifier });
    const ms = performance.now() - t;
    expect(r.status).toBe(201);
    const { flowId, expiresAt, flowSecret, ...rest } = r.body as Record<string, unknown>;
    expect(String(flowId)).toMatch(/^rst_[A-Za-z0-9_-]{22}$/);
    expect(String(flowSecret)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Number.isNaN(Date.parse(String(expiresAt)))).toBe(false);
    shapes.add(JSON.stringify({ keys: Object.keys(r.body).sort(), rest }));
    return ms;
  };
  for (const [n, i] of order.entries()) {
    // alternate which set goes first
    if (n % 2) {
      times.known.push(await timeStart(known[i]!));
      times.unknown.push(await timeStart(unknown[i]!));
    } else {
      times.unknown.push(await timeStart(unknown[i]!));
      times.known.push(await timeStart(known[i]!));
    }
  }
  const mk = median(times.known);
  const mu = median(times.unknown);
  process.stderr.write(`enumeration timing: median start ${mk.toFixed(2)} ms (existing) vs ${mu.toFixed(2)} ms (unknown), difference ${Math.abs(mk - mu).toFixed(2)} ms\n`);
  expect(shapes.size).toBe(1); // field for field the same answer, but for the flow id, its secret and the deadline
  expect(Math.abs(mk - mu)).toBeLessThanOrEqual(5);
}, 240_000);
