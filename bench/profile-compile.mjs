#!/usr/bin/env node
// Standalone harness for the control plane's full compile: the same generated objects as
// `wdp bench control` (src/bench/control.ts benchObjects), timed stage by stage — validate
// (validateAll), compile (compileAll), and the update path (validate + change of one slice) —
// without the core, the HTTP API or the iptables/nft peers, so a profiler sees only this code.
//
//   npm run build:ts
//   node bench/profile-compile.mjs [--services 10000] [--endpoints 10] [--repeat 5] [--json]
//   node --cpu-prof --cpu-prof-dir=/tmp/prof bench/profile-compile.mjs --repeat 3
//
// Each figure is the median of --repeat runs after one untimed warm-up run, because the daemon
// compiles with warm JIT too. Also reports the Maglev table bytes per service and, with
// --imbalance, the worst backend share deviation of the default table size across the run's
// services (what the size policy trades against build time). Load average is printed with the
// figures: on a shared machine, compare ratios from one run, not numbers across runs.
import { performance } from 'node:perf_hooks';
import { loadavg, cpus } from 'node:os';
import { makeServiceSet } from '../dist/src/bench/peers/service-set.js';
import { benchObjects } from '../dist/src/bench/control.js';
import { validateAll } from '../dist/src/model/schema.js';
import { compileAll } from '../dist/src/compiler/compiler.js';
import { maglevIds } from '../dist/src/ir/ir.js';
import { minorFaults, pageFaultCostUs } from '../dist/src/bench/faults.js';
import { median } from '../dist/src/bench/report.js';

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : Number(process.argv[i + 1]);
}
const services = arg('services', 10000);
const endpoints = arg('endpoints', 10);
const repeat = arg('repeat', 5);
const json = process.argv.includes('--json');
const wantImbalance = process.argv.includes('--imbalance');

const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

const svcs = makeServiceSet({ services, endpoints });
const raws = benchObjects(svcs);
// the update the bench measures: endpoint 0 of service 0 moves to a fresh address
const s0 = svcs[0];
const moved = (flip) => ({
  ...raws[2],
  endpoints: [{ addresses: [flip % 2 ? '10.255.255.2' : '10.255.255.1'], conditions: { ready: true }, nodeName: 'bench-node' },
    ...raws[2].endpoints.slice(1)],
});

// CPU time (user+system of this process) next to wall time: on a loaded machine wall time mostly
// measures the scheduler, CPU time mostly measures this code (GC threads included).
const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const validate = [], compile = [], update = [], validateCpu = [], compileCpu = [], compileFaults = [];
let last;
for (let r = 0; r <= repeat; r++) {
  const c0 = cpuMs(), t0 = performance.now();
  const objects = validateAll(raws);
  const c1 = cpuMs(), f1 = minorFaults(), t1 = performance.now();
  const c = compileAll(objects);
  const c2 = cpuMs(), f2 = minorFaults(), t2 = performance.now();
  if (c.ir.frontends.size !== svcs.length) throw new Error(`compiled ${c.ir.frontends.size} frontends for ${svcs.length} services`);
  const u0 = performance.now();
  for (let k = 0; k < 20; k++) c.change({ upsert: validateAll([moved(k)]) });
  const u1 = performance.now();
  if (r === 0) continue; // warm-up
  compileFaults.push(f2 - f1);
  validate.push(t1 - t0); compile.push(t2 - t1); validateCpu.push(c1 - c0); compileCpu.push(c2 - c1); update.push((u1 - u0) / 20);
  last = c;
}

let tableBytes = 0;
for (const f of last.ir.frontends.values()) tableBytes += f.maglev.byteLength;
const out = {
  services, endpoints, repeat,
  loadavg_1m: round(loadavg()[0]), cpus: cpus().length,
  validate_ms: round(median(validate)), compile_ms: round(median(compile)),
  validate_cpu_ms: round(median(validateCpu)), compile_cpu_ms: round(median(compileCpu)),
  // the least-disturbed run: on a shared machine the minimum is the most repeatable figure
  validate_cpu_best_ms: round(Math.min(...validateCpu)), compile_cpu_best_ms: round(Math.min(...compileCpu)),
  // first touches of fresh pages: on a VM where one costs ~18 µs they can be most of compile_ms
  compile_page_faults: median(compileFaults), page_fault_us: round(pageFaultCostUs()),
  compile_best_ms: round(Math.min(...compile)),
  validate_plus_compile_ms: round(median(validate.map((v, i) => v + compile[i]))),
  update_one_endpoint_compile_ms: round(median(update), 3),
  maglev_bytes_per_service: round(tableBytes / svcs.length, 0),
  runs: { validate_ms: validate.map((x) => round(x)), compile_ms: compile.map((x) => round(x)), compile_page_faults: compileFaults },
};

if (wantImbalance) {
  // worst |share x N - 1| over every frontend: 0 = each backend owns exactly 1/N of the slots
  let worst = 0, sum = 0, n = 0;
  for (const f of last.ir.frontends.values()) {
    const cnt = new Map();
    for (const id of maglevIds(f)) cnt.set(id, (cnt.get(id) ?? 0) + 1);
    const fair = f.maglev.length / f.backends.length;
    for (const id of f.backends) { const d = Math.abs((cnt.get(id) ?? 0) / fair - 1); worst = Math.max(worst, d); sum += d; n++; }
  }
  out.maglev_imbalance_worst_pct = round(worst * 100);
  out.maglev_imbalance_mean_pct = round((sum / n) * 100);
}
void s0;
if (json) console.log(JSON.stringify(out, null, 2));
else {
  console.log(`${services} services x ${endpoints} endpoints, median of ${repeat} (load ${out.loadavg_1m} on ${out.cpus} cpus)`);
  for (const [k, v] of Object.entries(out)) if (k !== 'runs' && typeof v === 'number') console.log(`  ${k.padEnd(32)} ${v}`);
  console.log(`  compile runs: ${out.runs.compile_ms.join(' ')}`);
  console.log(`  compile page faults: ${out.runs.compile_page_faults.join(' ')}`);
}
