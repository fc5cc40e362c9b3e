/**
 * Preloaded with `node --require` into the API and the worker by `npm run bench -- --cpu-prof / --db-timing`
 * (Node 20 refuses --cpu-prof in NODE_OPTIONS, so the profiler is started here through node:inspector):
 *
 *   BENCH_CPU_PROF_DIR    a V8 CPU profile of the main thread, <dir>/<role>-<pid>.cpuprofile at exit, and of each
 *                         other thread (the workflow thread) in 20 s slices (see below)
 *   BENCH_DB_TIMING_DIR   every MongoDB command counted by kind and collection with its total time (driver
 *                         command monitoring), <dir>/<role>-<pid>.json at exit (and snapshots, see below)
 *
 * Only in the API and worker processes (not in tsx's launcher). Changes nothing else.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const launcher = process.argv.some((a) => /tsx[\\/]dist[\\/]cli|[\\/]\.bin[\\/]tsx$/.test(a));
const script = launcher ? undefined : process.argv.find((a) => /(api[\\/]server|worker[\\/]index)\.ts$/.test(a));
const { isMainThread, threadId } = require('node:worker_threads');
// (a thread has no argv of its own: it takes its process's role from the environment it was given a copy of)
const role = script ? path.basename(path.dirname(script)) : isMainThread ? undefined : process.env.BENCH_PRELOAD_ROLE;
if (role && isMainThread) process.env.BENCH_PRELOAD_ROLE = role;

const profDir = process.env.BENCH_CPU_PROF_DIR;
if (role && profDir) {
  const inspector = require('node:inspector');
  const session = new inspector.Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 1000 });
  session.post('Profiler.start');
  const write = (name, then) =>
    session.post('Profiler.stop', (err, res) => {
      if (!err && res) {
        fs.mkdirSync(profDir, { recursive: true });
        fs.writeFileSync(path.join(profDir, `${name}.cpuprofile`), JSON.stringify(res.profile));
      }
      if (then) then();
    });
  if (isMainThread) {
    // the main thread's inspector session answers synchronously, so this works inside 'exit'
    process.on('exit', () => write(`${role}-${process.pid}`));
  } else {
    // Another thread (the worker's workflow thread runs every workflow task) is ended without an 'exit' of its own:
    // its profile is written in slices, <role>-<pid>-thread<id>-<n>, every BENCH_CPU_PROF_SLICE_MS (default 20 s).
    let n = 0;
    const slice = () => write(`${role}-${process.pid}-thread${threadId}-${++n}`, () => session.post('Profiler.start'));
    setInterval(slice, Number(process.env.BENCH_CPU_PROF_SLICE_MS) || 20_000).unref();
  }
}

const dir = process.env.BENCH_DB_TIMING_DIR;
if (role && dir && isMainThread) {
  const stats = new Map();
  const pending = new Map();
  let mongoose;
  try {
    mongoose = require(require.resolve('mongoose', { paths: [process.cwd()] }));
  } catch {
    mongoose = undefined;
  }
  if (mongoose) {
    const connect = mongoose.connect.bind(mongoose);
    mongoose.connect = (uri, opts = {}) =>
      connect(uri, { ...opts, monitorCommands: true }).then((m) => {
        const client = m.connection.getClient();
        client.on('commandStarted', (e) => {
          const coll = e.command[e.commandName];
          pending.set(e.requestId, `${e.commandName} ${typeof coll === 'string' ? coll : ''}`.trim());
        });
        const done = (e) => {
          const key = pending.get(e.requestId) ?? e.commandName;
          pending.delete(e.requestId);
          const s = stats.get(key) ?? { count: 0, totalMs: 0, failed: 0 };
          s.count += 1;
          s.totalMs += e.duration;
          if (e.failure) s.failed += 1;
          stats.set(key, s);
        };
        client.on('commandSucceeded', done);
        client.on('commandFailed', done);
        return m;
      });
  }
  // BENCH_DB_TIMING_EVERY_MS: also append a cumulative snapshot line to <dir>/<role>-<pid>.jsonl that often,
  // to see which command grows slower over a long run (and to keep something of a process that is SIGKILLed)
  const every = Number(process.env.BENCH_DB_TIMING_EVERY_MS);
  if (every > 0) {
    setInterval(() => {
      fs.mkdirSync(dir, { recursive: true });
      fs.appendFileSync(path.join(dir, `${role}-${process.pid}.jsonl`), JSON.stringify({ at: new Date().toISOString(), stats: Object.fromEntries(stats) }) + '\n');
    }, every).unref();
  }
  process.on('exit', () => {
    if (!stats.size) return;
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `${role}-${process.pid}.json`), JSON.stringify(Object.fromEntries(stats), null, 1));
  });
}
