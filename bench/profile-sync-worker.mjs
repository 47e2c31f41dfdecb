#!/usr/bin/env node
// Standalone harness for the forwarding worker's part of a daemon's first full sync: the diff of
// a full compile received on a worker thread (receiveMessageOnPort, as the daemon's worker reads
// it), applied to a fresh core (applyReceived: the Ir patched, the tables written, cold, as a
// daemon's first sync is: one fresh process per run), then the deferred copy of the second table
// set that follows the answer (TableWriter.deferSecondSet, in builds that have it). The same
// objects as `wdp bench control`, compiled on the main thread before anything is timed.
//
//   npm run build
//   node bench/profile-sync-worker.mjs [--dist DIR] [--services 10000] [--endpoints 10] [--runs 5] [--json]
//
// --dist points at another build's dist/ (A/B: give several, they alternate fresh processes; each
// build encodes its own wire format). Per stage: the worker thread's own CPU
// (/proc/thread-self/schedstat, scheduler-tick resolution: compare medians of several runs), its
// minor page faults (/proc/thread-self/stat), wall time, and the process's resident memory grown
// from the receive to the end of the second set's copy (the received message and what the apply
// keeps; the main thread waits meanwhile). `answer` is receive + apply: what the
// main thread waits for. On a shared machine wall time mostly measures the scheduler: compare CPU.
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { abOptions, harness } from './ab-builds.mjs';

const { services, endpoints } = abOptions();
const FIELDS = ['receive_cpu_ms', 'apply_cpu_ms', 'answer_cpu_ms', 'answer_faults', 'answer_wall_ms', 'copy_after_cpu_ms', 'copy_after_faults', 'rss_growth_mb'];

// the worker thread's side: what the daemon's forwarding worker does with an apply
const WORKER = `
  const { workerData, parentPort, receiveMessageOnPort } = require('node:worker_threads');
  const { readFileSync } = require('node:fs');
  const { pathToFileURL } = require('node:url');
  const cpu = () => Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;
  const faults = () => Number(readFileSync('/proc/thread-self/stat', 'utf8').split(') ')[1].split(' ')[7]);
  // the process's resident memory (MB): the main thread waits while the worker applies and copies
  const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
  (async () => {
    const { dist, port, sync } = workerData;
    const { Core } = await import(pathToFileURL(dist + '/src/core/host.js').href);
    const { applyReceived, keepBackendsAsReceived } = await import(pathToFileURL(dist + '/src/daemon/worker-apply.js').href);
    const core = Core.create({ flows: 4096 });
    keepBackendsAsReceived(core);
    core.tables.deferSecondSet = true; // as the daemon's worker (a build without it ignores this)
    Atomics.store(sync, 0, 1);
    Atomics.wait(sync, 1, 0);
    const c0 = cpu(), f0 = faults(), t0 = performance.now(), r0 = rss();
    let m;
    while (!(m = receiveMessageOnPort(port))) { /* posted just before: queued at once */ }
    const c1 = cpu();
    applyReceived(core, m.message);
    const c2 = cpu(), f2 = faults(), t2 = performance.now();
    if (core.tables.settle) core.tables.settle();
    const c3 = cpu(), f3 = faults();
    if (core.ir.frontends.size === 0) throw new Error('nothing applied');
    parentPort.postMessage({ receive_cpu_ms: c1 - c0, apply_cpu_ms: c2 - c1, answer_cpu_ms: c2 - c0, answer_faults: f2 - f0, answer_wall_ms: t2 - t0,
      copy_after_cpu_ms: c3 - c2, copy_after_faults: f3 - f2, rss_growth_mb: Math.round((rss() - r0) * 10) / 10 });
  })();
`;

await harness({ url: import.meta.url, childVar: 'WDP_SYNC_WORKER_CHILD', fields: FIELDS, child });

async function child(imp, dist) {
  // the V8 flags that build's bin/wdp.js sets for the daemon (and so for its worker threads),
  // before any of wdp is loaded: the worker's cold apply costs ~1.4x the CPU with them
  // (docs/performance.md, "V8 flags")
  try { await import(pathToFileURL(join(dist, '..', 'bin', 'v8-flags.js')).href); } catch { /* a build from before them */ }
  const { makeServiceSet } = await imp('src/bench/peers/service-set.js');
  const { benchObjects } = await imp('src/bench/control.js');
  const { validateAll } = await imp('src/model/schema.js');
  const { Compiler } = await imp('src/compiler/compiler.js');
  const { encodeDiff } = await imp('src/ir/diff-wire.js');
  const { Worker, MessageChannel } = await import('node:worker_threads');
  // the buffers the daemon's post moves to a worker, when this build moves any
  const { wireTransferList } = await imp('src/daemon/worker-dataplane.js');
  const raws = JSON.parse(JSON.stringify(benchObjects(makeServiceSet({ services, endpoints }))));
  const wire = encodeDiff(new Compiler().change({ upsert: validateAll(raws) }).diff);
  // the worker loads the same modules as the daemon's and makes its core before anything is timed
  const { port1, port2 } = new MessageChannel();
  const sync = new Int32Array(new SharedArrayBuffer(8)); // [0]: the worker is ready, [1]: the diff was posted
  const w = new Worker(WORKER, { eval: true, workerData: { dist, port: port2, sync }, transferList: [port2] });
  const result = new Promise((res, rej) => { w.once('message', res); w.once('error', rej); });
  while (Atomics.load(sync, 0) === 0) await new Promise((r) => setTimeout(r, 5));
  port1.postMessage(wire, wireTransferList?.(wire) ?? []);
  Atomics.store(sync, 1, 1); Atomics.notify(sync, 1);
  console.log(JSON.stringify(await result));
  process.exit(0);
}
