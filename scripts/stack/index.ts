/**
 * The local stack as child processes: Temporal dev server, FerretDB (MongoDB wire protocol on SQLite),
 * maildev (SMTP capture), and the app's own processes (worker, API, codec server).
 *
 * Used by `npm start` (scripts/start.ts), `npm test` (scripts/test.ts), the benchmark and the failure drills.
 * - wait.ts: ports and waiting;  process.ts: one managed child process, leftovers, signals;
 * - temporal.ts, ferretdb.ts, maildev.ts: the three service recipes;  services.ts: starting them together;
 * - app.ts: the worker, the API and the codec server.
 */
export * from './wait';
export * from './process';
export * from './services';
export * from './app';
export { temporalProcess } from './temporal';
export { ferretdbProcess, mongoPing } from './ferretdb';
export { maildevProcess } from './maildev';
