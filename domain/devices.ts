/** Devices bound to accounts (factory-reset protection): bind, list, remove, and the lock a device shows. */
import crypto from 'node:crypto';
import { Device } from '../db/models';
import { isValidImei } from '../lib/luhn';
import { deviceAttestationOf, keyedDigest, sameSecret } from '../lib/secrets';
import { notifyAccount } from './accounts';
import { deviceBoundMessage } from './templates';
import { problem } from './problems';

/** A device is stored under a keyed digest of its IMEI, never the IMEI. */
export const imeiDigest = (imei: string) => keyedDigest('imei', imei);

export interface DeviceView {
  deviceId: string;
  model: string;
  imeiHint: string;
  boundAt: string;
}

function deviceView(d: { deviceId: string; model?: string | null; imeiLast4?: string | null; createdAt?: Date }): DeviceView {
  return { deviceId: d.deviceId, model: d.model ?? '', imeiHint: `*** ${d.imeiLast4 ?? ''}`, boundAt: (d.createdAt ?? new Date()).toISOString() };
}

export async function devicesOf(accountId: string): Promise<DeviceView[]> {
  return (await Device.find({ accountId }).sort({ createdAt: 1 }).lean()).map(deviceView);
}

/**
 * Binds a device to the account. The phone proves it is the device being bound: its attestation is the maker's
 * keyed tag of its IMEI. A device bound elsewhere must be removed there first. Every channel on file is told.
 */
export async function bindDevice(accountId: string, device: { imei: string; attestation?: string; model?: string }): Promise<DeviceView> {
  if (!isValidImei(device.imei)) throw problem('imei_invalid', 'An IMEI is 15 digits with a valid check digit (dial *#06#).');
  if (!sameSecret(deviceAttestationOf(device.imei), device.attestation)) {
    throw problem('attestation_invalid', 'The device attestation does not match this IMEI: a device binds itself.');
  }
  let created;
  try {
    created = await Device.create({
      _id: imeiDigest(device.imei),
      deviceId: 'dev_' + crypto.randomBytes(9).toString('base64url'),
      accountId,
      model: device.model,
      imeiLast4: device.imei.slice(-4),
    });
  } catch (err) {
    if ((err as { code?: number }).code === 11000) throw problem('device_bound', 'Remove it from the account it is bound to first.');
    throw err;
  }
  const view = deviceView(created.toObject());
  await notifyAccount(accountId, `device-bound:${view.deviceId}`, deviceBoundMessage(view.model, device.imei.slice(-4), new Date()));
  return view;
}

/** Unbinds one of the account's devices (the caller has checked the password). */
export async function removeDevice(accountId: string, deviceId: string): Promise<void> {
  const { deletedCount } = await Device.deleteOne({ deviceId, accountId });
  if (!deletedCount) throw problem('device_not_found');
}

/** Factory-reset protection: whether a device is bound to any account. */
export async function deviceLocked(imei: string): Promise<boolean> {
  if (!isValidImei(imei)) throw problem('imei_invalid', 'An IMEI is 15 digits with a valid check digit.');
  return !!(await Device.exists({ _id: imeiDigest(imei) }));
}
