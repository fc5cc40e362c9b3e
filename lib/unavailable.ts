/**
 * Is this error a dependency that is briefly away (restarting, failing over), which a client should retry
 * (503 + Retry-After), rather than a fault of ours? Decided by the error's class or code, not its text, except
 * where a dependency gives nothing else (the last two checks).
 */
import { ServiceError, WorkflowUpdateRPCTimeoutOrCancelledError, isGrpcServiceError } from '@temporalio/client';
import { mongo } from 'mongoose';

const GRPC_UNAVAILABLE = 14;
const GRPC_DEADLINE_EXCEEDED = 4;
/** Node's socket errors: the MongoDB driver sometimes throws them bare ("This socket has been ended by the other party"). */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE']);

export function isDependencyUnavailable(err: unknown): boolean {
  // A bulk write wraps what stopped it in a MongoBulkWriteError; the cause (a closed connection, say) decides.
  if (err instanceof mongo.MongoBulkWriteError && err.errorResponse instanceof Error) return isDependencyUnavailable(err.errorResponse);
  // Temporal: the client wraps every failed call it cannot name in ServiceError; an update call that timed out has its own class.
  if (err instanceof ServiceError || err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) return true;
  if (isGrpcServiceError(err) && (err.code === GRPC_UNAVAILABLE || err.code === GRPC_DEADLINE_EXCEEDED)) return true;
  // MongoDB / FerretDB: the driver's classes for a server it cannot reach or a pool it had to clear.
  if (
    err instanceof mongo.MongoNetworkError ||
    err instanceof mongo.MongoServerSelectionError ||
    err instanceof mongo.MongoNotConnectedError ||
    err instanceof mongo.MongoTopologyClosedError ||
    err instanceof mongo.MongoServerClosedError ||
    (err instanceof mongo.MongoError && err.hasErrorLabel('ResetPool'))
  )
    return true;
  if (SOCKET_CODES.has(String((err as { code?: unknown })?.code))) return true;
  const message = String((err as Error)?.message ?? '');
  // mongoose waiting for a connection while the driver reconnects: a plain MongooseError, told by its message alone.
  if ((err as Error)?.name === 'MongooseError' && message.includes('buffering timed out')) return true;
  // FerretDB on SQLite, a write that met another's lock: a MongoServerError whose only mark is SQLite's code in its text.
  return err instanceof mongo.MongoServerError && message.includes('SQLITE_BUSY');
}
