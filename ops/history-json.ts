/**
 * History ⇄ proto3 JSON (the format of `temporal workflow show -o json` and of test/histories/).
 *
 * Not the SDK's historyToJSON/historyFromJSON: with our dependency tree npm installs three copies of
 * protobufjs under @temporalio (common, proto, worker), and the SDK's helpers pair the message types of
 * @temporalio/proto's copy with the JSON codec of @temporalio/common's, which fails with "type must be a
 * Type". Here both come from the protobufjs that @temporalio/proto itself resolves.
 */
import path from 'node:path';
import * as proto from '@temporalio/proto';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root';
import type { History } from '@temporalio/common/lib/proto-utils';

interface ProtoJson {
  toJson(type: unknown, message: unknown): unknown;
  fromJson(type: unknown, json: unknown, options?: { ignoreUnknownFields?: boolean }): unknown;
}

const protojson = require(require.resolve('protobufjs/ext/protojson', { paths: [path.dirname(require.resolve('@temporalio/proto'))] })) as ProtoJson;
const historyType = (patchProtobufRoot(proto) as unknown as { lookupType(name: string): unknown }).lookupType('temporal.api.history.v1.History');

export function historyToJson(history: History): { events: unknown[] } {
  return protojson.toJson(historyType, proto.temporal.api.history.v1.History.fromObject(history as never)) as { events: unknown[] };
}

/** Accepts the canonical enum names (EVENT_TYPE_WORKFLOW_EXECUTION_STARTED) and the older short ones (WorkflowExecutionStarted). */
export function historyFromJson(json: unknown): History {
  const h = json as { events?: Record<string, unknown>[] };
  if (!h || !Array.isArray(h.events)) throw new TypeError('not a history: expected { "events": [...] }');
  const constant = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
  const events = h.events.map((e) => {
    const t = e.eventType;
    return typeof t === 'string' && !t.startsWith('EVENT_TYPE_') ? { ...e, eventType: `EVENT_TYPE_${constant(t)}` } : e;
  });
  const history = protojson.fromJson(historyType, { events }, { ignoreUnknownFields: true });
  if (!history) throw new TypeError('not a valid history');
  return history as History;
}
