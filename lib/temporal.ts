/**
 * The Temporal connection, for the API, the worker and the ops CLI. Address, namespace, API key and
 * TLS follow the @temporalio/envconfig conventions (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
 * TEMPORAL_API_KEY, TEMPORAL_TLS_*, or a TOML profile), so the same code runs against the dev
 * server, a self-hosted cluster or Temporal Cloud.
 */
import { Client, Connection } from '@temporalio/client';
import { loadClientConnectConfig, type ClientConnectConfig } from '@temporalio/envconfig';
import type { DataConverter } from '@temporalio/common';
import { config } from './config';
import { EncryptionCodec, parseKeys } from './codec';
import type { FlowSettings } from '../workflows/messages';

export function connectConfig(): ClientConnectConfig {
  const c = config();
  const env = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => typeof e[1] === 'string'));
  return loadClientConnectConfig({ overrideEnvVars: { ...env, TEMPORAL_ADDRESS: c.TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE: c.TEMPORAL_NAMESPACE } });
}

export function dataConverter(): DataConverter {
  return { payloadCodecs: [new EncryptionCodec(parseKeys(config().PAYLOAD_ENCRYPTION_KEY))] };
}

let client: Promise<Client> | undefined;
export function temporalClient(): Promise<Client> {
  if (!client) {
    const cc = connectConfig();
    client = Connection.connect({ ...cc.connectionOptions, connectTimeout: '10s' } as never).then(
      (connection) => new Client({ connection, namespace: cc.namespace ?? config().TEMPORAL_NAMESPACE, dataConverter: dataConverter() }),
    );
    client.catch(() => (client = undefined));
  }
  return client;
}

let openOnly: { of: Client; client: Client } | undefined;
/**
 * The same connection, but ended workflows refuse its queries (QueryRejectedError) instead of having a
 * worker replay their whole history to answer: what an ended flow returned is in its close event.
 */
export async function openFlowsClient(): Promise<Client> {
  const c = await temporalClient();
  if (openOnly?.of !== c) {
    openOnly = {
      of: c,
      client: new Client({ connection: c.connection, namespace: c.options.namespace, dataConverter: dataConverter(), workflow: { queryRejectCondition: 'NOT_OPEN' } }),
    };
  }
  return openOnly.client;
}

export async function closeTemporalClient(): Promise<void> {
  const c = await client?.catch(() => undefined);
  client = undefined;
  openOnly = undefined;
  await c?.connection.close();
}

/** The flow settings from configuration, passed into every workflow as input. */
export function flowSettings(): FlowSettings {
  const c = config();
  return {
    codeTtlMs: c.RESET_CODE_TTL,
    resendCooldownMs: c.RESEND_COOLDOWN,
    maxResends: c.MAX_RESENDS,
    maxCodeAttempts: c.MAX_CODE_ATTEMPTS,
    maxAnswerAttempts: c.MAX_ANSWER_ATTEMPTS,
    flowTtlMs: c.FLOW_TTL,
    supportReviewTtlMs: c.SUPPORT_REVIEW_TTL,
    recoveryHoldMs: c.RECOVERY_HOLD,
  };
}
