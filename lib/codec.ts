/**
 * AES-256-GCM payload codec: every payload (inputs, results, update arguments, search-attribute-free
 * state) is encrypted before it reaches the Temporal server. The key id travels in the metadata, so
 * keys can rotate: PAYLOAD_ENCRYPTION_KEY lists "id:base64key" entries, newest first; the first
 * encrypts, any decrypts.
 */
import crypto from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { METADATA_ENCODING_KEY } from '@temporalio/common';
import { temporal } from '@temporalio/proto';

const ENCODING = 'binary/encrypted';
const KEY_ID = 'encryption-key-id';
const enc = new TextEncoder();
const dec = new TextDecoder();

export interface CodecKey {
  id: string;
  key: Buffer;
}

export function parseKeys(spec: string): CodecKey[] {
  return spec.split(',').map((entry, i) => {
    const [id, b64] = entry.includes(':') ? (entry.split(':') as [string, string]) : [`k${i}`, entry];
    const key = Buffer.from(b64, 'base64');
    if (key.length !== 32) throw new Error(`PAYLOAD_ENCRYPTION_KEY entry "${id}" is not 32 bytes`);
    return { id, key };
  });
}

export class EncryptionCodec implements PayloadCodec {
  private readonly byId: Map<string, Buffer>;
  constructor(private readonly keys: CodecKey[]) {
    this.byId = new Map(keys.map((k) => [k.id, k.key]));
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const { id, key } = this.keys[0]!;
    return payloads.map((payload) => {
      const iv = crypto.randomBytes(12);
      const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
      const plain = temporal.api.common.v1.Payload.encode(payload).finish();
      const data = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return { metadata: { [METADATA_ENCODING_KEY]: enc.encode(ENCODING), [KEY_ID]: enc.encode(id) }, data };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      if (!payload.metadata || dec.decode(payload.metadata[METADATA_ENCODING_KEY]) !== ENCODING) return payload;
      const id = dec.decode(payload.metadata[KEY_ID]);
      const key = this.byId.get(id);
      if (!key) throw new Error(`no payload key with id "${id}" (rotated out of PAYLOAD_ENCRYPTION_KEY?)`);
      const data = Buffer.from(payload.data!);
      const decipher = crypto.createDecipheriv('aes-256-gcm', key, data.subarray(0, 12));
      decipher.setAuthTag(data.subarray(data.length - 16));
      const plain = Buffer.concat([decipher.update(data.subarray(12, data.length - 16)), decipher.final()]);
      return temporal.api.common.v1.Payload.decode(plain);
    });
  }
}
