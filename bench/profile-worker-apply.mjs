#!/usr/bin/env node
// Standalone harness for the path from the compiler's diff to a forwarding worker's flipped
// tables, in one thread and stage by stage: encode the diff for the workers (diff-wire.ts), post it
// (the structured clone's write), receive it (its read), apply it as the worker does (decode, patch
// the worker's Ir, the table write, the unresolved-backend bookkeeping). The same objects as
// `wdp bench control`; the daemon's order: its NodeConfig first, then one full sync into a fresh
// core, then one-endpoint changes (each through the same stages).
//
//   npm run build
//   node bench/profile-worker-apply.mjs [--dist DIR] [--services 10000] [--endpoints 10] [--changes 200] [--requests 1] [--json]
//   node --cpu-prof --cpu-prof-dir=/tmp/prof bench/profile-worker-apply.mjs
//
// --dist points at another build's dist/ (A/B: alternate fresh processes of the two builds).
// --requests N: the full sync as N consecutive batches of equal size (the bench's 100k Services
// come as 9 requests under the body limit: a full compile, then incremental applies onto a growing
// state); the stages are summed over them and `requests` lists each one's apply.
// Per stage: wall ms, process CPU ms (GC helper threads included), this thread's own CPU ms
// (thread_cpu), GC pause ms and minor page faults. A run is one fresh process: the daemon's full
// sync and restart each write into a fresh core once.
import { performance, PerformanceObserver } from 'node:perf_hooks';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { loadavg } from 'node:os';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const argv = process.argv.slice(2);
const arg = (name, dflt) => { const i = argv.indexOf(`--${name}`); return i < 0 ? dflt : argv[i + 1]; };
const dist = resolve(arg('dist', new URL('../dist', import.meta.url).pathname));
const services = Number(arg('services', 10000)), endpoints = Number(arg('endpoints', 10)), changes = Number(arg('changes', 200));
const requests = Number(arg('requests', 1));
const json = argv.includes('--json');
const imp = (p) => import(pathToFileURL(`${dist}/${p}`).href);

const { makeServiceSet } = await imp('src/bench/peers/service-set.js');
const { benchObjects, sliceObject, changedEndpoints } = await imp('src/bench/control.js');
const { validateAll } = await imp('src/model/schema.js');
const { Compiler } = await imp('src/compiler/compiler.js');
const { Core } = await imp('src/core/host.js');
const { encodeDiff, decodeDiff } = await imp('src/ir/diff-wire.js');
const { minorFaults } = await imp('src/bench/faults.js');
// this build's worker apply path, when it has one; else the one worker.ts had inline
const applyMod = await imp('src/daemon/worker-apply.js').catch(() => null);
const { patchIrInPlace } = applyMod ? {} : await imp('src/daemon/ir-patch.js');
const { canonicalAddr } = await imp('src/daemon/l2.js');
// the buffers the daemon's post moves to a worker, when this build moves any (worker-dataplane.ts)
const { wireTransferList } = await imp('src/daemon/worker-dataplane.js');
const PORT_NONE = 0xffff;

const gcs = [];
new PerformanceObserver((l) => { for (const e of l.getEntries()) gcs.push([e.startTime, e.duration]); }).observe({ entryTypes: ['gc'] });
const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
// this thread's own CPU (ns resolution), without V8's helper threads
const threadCpuMs = () => Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;

/** The worker's handler for one received diff (worker.ts `apply`), as it was before worker-apply.ts. */
function legacyApply(core, wire, unresolved) {
  const ir = core.ir, d = decodeDiff(wire);
  const undo = patchIrInPlace(ir, d);
  try { core.applyDiff(d, ir); } catch (e) { undo(); throw e; }
  for (const id of d.backendsRemove) unresolved.delete(id);
  for (const b of d.backendsUpsert) {
    const a = canonicalAddr(b.addr), had = unresolved.get(b.id);
    if (b.outPort !== PORT_NONE || had !== a) unresolved.delete(b.id);
    if (b.outPort === PORT_NONE && had !== a) unresolved.set(b.id, a);
  }
}

const svcs = makeServiceSet({ services, endpoints });
const raws = benchObjects(svcs);
const compiler = new Compiler();
const core = Core.create({});
const unresolved = new Map();
/** The worker's handler (worker.ts `apply`) with worker-apply.ts: table write and unresolved bookkeeping. */
const worker = applyMod ? {
  apply(wire) {
    const { diff } = applyMod.applyReceived(core, wire);
    for (const id of diff.backendsRemove) unresolved.delete(id);
    const rows = applyMod.backendRows(diff.backendsUpsert);
    for (let i = 0; i < rows.length; i++) {
      const id = rows.idAt(i), outPort = rows.outPortAt(i);
      if (outPort !== PORT_NONE && unresolved.size === 0) continue;
      const had = unresolved.get(id);
      if (outPort !== PORT_NONE && had === undefined) continue;
      const a = canonicalAddr(rows.addrAt(i));
      if (outPort !== PORT_NONE || had !== a) unresolved.delete(id);
      if (outPort === PORT_NONE && had !== a) unresolved.set(id, a);
    }
  },
} : null;
if (applyMod) applyMod.keepBackendsAsReceived(core);
const { port1, port2 } = new MessageChannel();

/** One diff through every stage; returns [ms, cpu, faults] per stage. */
function through(diff) {
  const out = {};
  let t = performance.now(), c = cpuMs(), tc = threadCpuMs(), f = minorFaults();
  const lap = (name) => {
    const t2 = performance.now(), c2 = cpuMs(), tc2 = threadCpuMs(), f2 = minorFaults();
    out[name] = { ms: t2 - t, cpu: c2 - c, thread_cpu: tc2 - tc, faults: f2 - f, from: t, to: t2 };
    t = t2; c = c2; tc = tc2; f = f2;
  };
  const wire = encodeDiff(diff); lap('encode');
  port1.postMessage({ type: 'apply', diff: wire }, wireTransferList?.(wire) ?? []); lap('post');
  const m = receiveMessageOnPort(port2).message; lap('receive');
  if (worker) worker.apply(m.diff); else legacyApply(core, m.diff, unresolved);
  lap('apply');
  return out;
}

const objects = validateAll(raws);
through(compiler.change({ upsert: [objects[0]] }).diff); // the daemon's own NodeConfig first
const g0 = gcs.length;
const stages = {}, perRequest = [];
const rest = objects.slice(1), per = Math.ceil(rest.length / requests / 2) * 2; // (a Service with its slice)
for (let at = 0; at < rest.length; at += per) {
  const c0 = threadCpuMs();
  const ch = compiler.change({ upsert: rest.slice(at, at + per) });
  const compileCpu = threadCpuMs() - c0;
  const st = through(ch.diff);
  perRequest.push({ compile_thread_cpu: Math.round(compileCpu), apply_thread_cpu: Math.round(st.apply.thread_cpu), apply_faults: st.apply.faults });
  for (const [k, v] of Object.entries(st)) {
    const acc = stages[k] ??= { ms: 0, cpu: 0, thread_cpu: 0, faults: 0, spans: [] };
    acc.ms += v.ms; acc.cpu += v.cpu; acc.thread_cpu += v.thread_cpu; acc.faults += v.faults; acc.spans.push([v.from, v.to]);
  }
}
if (core.ir.frontends.size !== svcs.length) throw new Error(`programmed ${core.ir.frontends.size} frontends for ${svcs.length} services`);
const one = [];
for (let k = 0; k < changes; k++) {
  const s = svcs[(k * 37) % svcs.length];
  const [slice] = validateAll([sliceObject(s, changedEndpoints(s, k + 1).endpoints)]);
  const t0 = performance.now();
  through(compiler.change({ upsert: [slice] }).diff);
  one.push(performance.now() - t0);
}
await new Promise((r) => setTimeout(r, 20)); // gc entries arrive asynchronously
for (const s of Object.values(stages)) s.gc = gcs.slice(g0).filter(([st]) => s.spans.some(([a, b]) => st >= a && st < b)).reduce((a, [, d]) => a + d, 0);
one.sort((a, b) => a - b);
const q = (p) => one[Math.min(one.length - 1, Math.floor(p * one.length))];
const r2 = (x) => Math.round(x * 100) / 100;
const res = {
  dist, applyPath: applyMod ? 'worker-apply.js' : 'legacy', load: loadavg()[0],
  ...Object.fromEntries(Object.entries(stages).map(([k, s]) => [k, { ms: r2(s.ms), cpu: r2(s.cpu), thread_cpu: r2(s.thread_cpu), gc: r2(s.gc), faults: s.faults }])),
  total_ms: r2(Object.values(stages).reduce((a, s) => a + s.ms, 0)),
  one_endpoint_p50_ms: r2(q(0.5)), one_endpoint_p99_ms: r2(q(0.99)),
  ...(requests > 1 ? { requests: perRequest } : {}),
};
if (json) console.log(JSON.stringify(res));
else console.log(res);
port1.close();
