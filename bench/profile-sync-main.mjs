#!/usr/bin/env node
// Standalone harness for the main thread's middle of a daemon's first full sync: the compile of
// validated objects into the Ir (cold, as the daemon's first sync is: one fresh process per run)
// and the diff's encoding and post to a worker. The same objects as `wdp bench control`, parsed
// from JSON text (the daemon's heap holds parsed objects, not literals); the Maglev thread started
// before validation, as the control plane does.
//
//   npm run build
//   node bench/profile-sync-main.mjs [--dist DIR] [--services 10000] [--endpoints 10] [--runs 5] [--json]
//
// --dist points at another build's dist/ (A/B: run both, they alternate fresh processes).
// Per stage: the main thread's own CPU (/proc/self/task/<pid>/schedstat, scheduler-tick
// resolution: compare medians of several runs), the Maglev thread's CPU during the compile, the
// whole process's CPU during the compile (V8's compiler and GC threads included) and wall time.
// On a shared machine wall time mostly measures the scheduler: compare CPU.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { abOptions, harness } from './ab-builds.mjs';

const { services, endpoints } = abOptions();
const FIELDS = ['compile_cpu_ms', 'maglev_thread_cpu_ms', 'compile_process_cpu_ms', 'encode_cpu_ms', 'post_cpu_ms', 'main_cpu_ms', 'compile_wall_ms'];

await harness({ url: import.meta.url, childVar: 'WDP_SYNC_MAIN_CHILD', fields: FIELDS, child });

async function child(imp, dist) {
  // the V8 flags that build's bin/wdp.js sets for the daemon, before any of wdp is loaded
  try { await import(pathToFileURL(join(dist, '..', 'bin', 'v8-flags.js')).href); } catch { /* a build from before them */ }
  const { makeServiceSet } = await imp('src/bench/peers/service-set.js');
  const { benchObjects } = await imp('src/bench/control.js');
  const { validateAll } = await imp('src/model/schema.js');
  const { Compiler, warmMaglevWorker } = await imp('src/compiler/compiler.js');
  const { encodeDiff } = await imp('src/ir/diff-wire.js');
  const { MessageChannel } = await import('node:worker_threads');
  // the buffers the daemon's post moves to a worker, when this build moves any
  const { wireTransferList } = await imp('src/daemon/worker-dataplane.js');
  const threadCpu = (tid) => { try { return Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e6; } catch { return 0; } };
  const mainCpu = () => threadCpu(process.pid);
  const processCpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };

  const raws = JSON.parse(JSON.stringify(benchObjects(makeServiceSet({ services, endpoints }))));
  const before = new Set(readdirSync('/proc/self/task'));
  warmMaglevWorker(raws);
  const objects = validateAll(raws);
  await new Promise((r) => setTimeout(r, 100)); // the Maglev thread up, as after a big body's validation
  const maglevTids = readdirSync('/proc/self/task').filter((t) => !before.has(t));
  const maglevCpu = () => maglevTids.reduce((a, t) => a + threadCpu(t), 0);
  const { port1, port2 } = new MessageChannel();

  const compiler = new Compiler();
  const t0 = performance.now(), c0 = mainCpu(), p0 = processCpu(), m0 = maglevCpu();
  const ch = compiler.change({ upsert: objects });
  const t1 = performance.now(), c1 = mainCpu(), p1 = processCpu(), m1 = maglevCpu();
  const wire = encodeDiff(ch.diff);
  const c2 = mainCpu();
  port1.postMessage(wire, wireTransferList?.(wire) ?? []);
  const c3 = mainCpu();
  port1.close(); port2.close();
  console.log(JSON.stringify({
    compile_cpu_ms: c1 - c0, maglev_thread_cpu_ms: m1 - m0, compile_process_cpu_ms: p1 - p0, encode_cpu_ms: c2 - c1, post_cpu_ms: c3 - c2,
    main_cpu_ms: c3 - c0, compile_wall_ms: t1 - t0,
  }));
  process.exit(0);
}
