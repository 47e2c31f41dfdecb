#!/usr/bin/env node
// A/B of the full compile as a daemon's first sync runs it: in a fresh process (cold JIT, as the
// daemon's one full sync is), the bench's 10k-service batch (src/bench/control.ts benchObjects)
// is validated and compiled once, then encoded for the worker (encodeDiff), then compiled again
// warm. Each build's dist/ runs in alternating fresh processes (ab-builds.mjs).
//
//   node bench/ab-compile-cold.mjs --dist /work/wt/base/dist --dist dist --runs 8
//
// Figures: wall ms and the main thread's own CPU ms (its schedstat: the Maglev worker's share is
// apart, in maglev_cpu_ms = the process's other threads during the compile), cold and warm.
import { readFileSync, readdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { harness } from './ab-builds.mjs';

/** ns on a CPU of thread `tid` of this process (its schedstat). */
const threadCpuNs = (tid) => Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
const allCpuNs = () => { let s = 0; for (const t of readdirSync('/proc/self/task')) { try { s += threadCpuNs(t); } catch { /* gone */ } } return s; };

await harness({
  url: import.meta.url, childVar: 'WDP_AB_COMPILE_DIST',
  fields: ['cold_ms', 'cold_cpu_ms', 'cold_maglev_cpu_ms', 'encode_ms', 'warm_ms', 'warm_cpu_ms'],
  child: async (imp) => {
    const { makeServiceSet } = await imp('src/bench/peers/service-set.js');
    const { benchObjects } = await imp('src/bench/control.js');
    const { validateAll } = await imp('src/model/schema.js');
    const { Compiler, warmMaglevWorker } = await imp('src/compiler/compiler.js');
    const { encodeDiff } = await imp('src/ir/diff-wire.js');
    const args = process.argv;
    const num = (n, d) => { const i = args.indexOf(`--${n}`); return i < 0 ? d : Number(args[i + 1]); };
    const raws = benchObjects(makeServiceSet({ services: num('services', 10000), endpoints: num('endpoints', 10) }));
    const pid = process.pid;
    const once = () => {
      warmMaglevWorker(raws);
      const objects = validateAll(raws);
      const c = new Compiler();
      const t0 = performance.now(), m0 = threadCpuNs(pid), a0 = allCpuNs();
      const ch = c.change({ upsert: objects });
      const t1 = performance.now(), m1 = threadCpuNs(pid), a1 = allCpuNs();
      encodeDiff(ch.diff);
      const t2 = performance.now();
      return { ms: t1 - t0, cpu: (m1 - m0) / 1e6, maglev: ((a1 - a0) - (m1 - m0)) / 1e6, encode: t2 - t1 };
    };
    const cold = once();
    const warm = [once(), once(), once()].sort((a, b) => a.cpu - b.cpu)[1];
    console.log(JSON.stringify({ cold_ms: cold.ms, cold_cpu_ms: cold.cpu, cold_maglev_cpu_ms: cold.maglev, encode_ms: cold.encode, warm_ms: warm.ms, warm_cpu_ms: warm.cpu }));
    process.exit(0);
  },
});
