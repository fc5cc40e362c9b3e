/**
 * On an empty database, creates the demo account so a newcomer can try every flow at once.
 * Prints it either way. Not run in production.
 */
import { config } from '../lib/config';
import { connectMongo, disconnectMongo } from '../db/mongo';
import { Account, Device } from '../db/models';
import { createAccount } from '../domain/accounts';
import { imeiDigest } from '../domain/devices';
import { hashSecret } from '../lib/passwords';
import { normalizeAnswer } from '../lib/questions';

export const DEMO = {
  email: 'demo@example.com',
  phone: '+14155550100',
  password: 'correct horse battery staple',
  answers: [
    { questionId: 'q-first-pet', answer: 'demo' },
    { questionId: 'q-birth-city', answer: 'demo' },
    { questionId: 'q-first-school', answer: 'demo' },
  ],
  imei: '490154203237518',
  model: 'Demo Phone 14',
};

export async function seedDemo(): Promise<{ created: boolean; accountId?: string }> {
  if ((await Account.estimatedDocumentCount()) > 0) {
    const existing = await Account.findOne({ email: DEMO.email }, { _id: 1 }).lean();
    return { created: false, accountId: existing?._id ?? undefined };
  }
  const accountId = await createAccount({
    email: DEMO.email,
    phone: DEMO.phone,
    passwordHash: await hashSecret(DEMO.password),
    consent: { privacyPolicy: '2026-01', userAgreement: '2026-01', acceptedAt: new Date(), syncEnabled: true },
    securityAnswers: await Promise.all(DEMO.answers.map(async (a) => ({ questionId: a.questionId, hash: await hashSecret(normalizeAnswer(a.answer)) }))),
  });
  await Device.create({ _id: imeiDigest(DEMO.imei), deviceId: 'dev_demo', accountId, model: DEMO.model, imeiLast4: DEMO.imei.slice(-4) });
  return { created: true, accountId };
}

if (require.main === module) {
  (async () => {
    if (config().isProduction) {
      console.log('seed-demo: skipped (NODE_ENV=production)');
      return;
    }
    await connectMongo();
    const { created, accountId } = await seedDemo();
    console.log(
      created
        ? `Demo account created (id ${accountId}):`
        : accountId
          ? `Demo account (id ${accountId}):`
          : 'The database already has accounts; no demo account was created. The demo would be:',
    );
    console.log(`  email ${DEMO.email} · phone ${DEMO.phone} · password "${DEMO.password}"`);
    console.log(`  security answers: "demo" (x3) · bound device IMEI ${DEMO.imei}`);
    await disconnectMongo();
  })().catch((err) => {
    console.error('seed-demo failed:', err);
    process.exit(1);
  });
}
