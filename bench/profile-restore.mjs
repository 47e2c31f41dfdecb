#!/usr/bin/env node
// Standalone harness for the conntrack part of a restart: importFlows (src/core/flow-export.ts)
// putting the flows saved at a stop back into a fresh core (assembly/ct-restore.ts), which a
// daemon's start waits for before it is ready (docs/running.md "Restarts and upgrades"). A core
// with --services Services × --endpoints endpoints (each a ClusterIP:80 → :8080, masquerade
// address set) forwards one SYN per flow (--flows distinct clients), its flows are exported, and
// fresh cores with the same Services under other ids (as a restart's compile assigns them) import
// them: the first import in the process (cold code, as a daemon's start runs it once), then
// --warm more, each into its own fresh core. Only importFlows is timed.
//
//   npm run build
//   node bench/profile-restore.mjs [--dist DIR] [--flows 65536] [--services 1000] [--endpoints 10] [--warm 2] [--runs 5] [--json]
//
// --dist points at another build's dist/ (A/B: give several, they alternate fresh processes).
// Per build, medians over the runs: ns per flow of the first import (wall and the thread's CPU,
// /proc/thread-self/schedstat) and of the warm ones (wall). The Ir fixtures are the tests'
// (test/lib/ir-fixture.js beside that dist/).
import { abOptions, harness } from './ab-builds.mjs';

const o = abOptions();
const arg = (name, dflt) => { const i = o.argv.indexOf(`--${name}`); return i < 0 ? dflt : Number(o.argv[i + 1]); };
const FLOWS = arg('flows', 65536), SERVICES = arg('services', 1000), WARM = arg('warm', 2);
const FIELDS = ['first_ns_per_flow', 'first_cpu_ns_per_flow', 'warm_ns_per_flow', 'flows'];

await harness({ url: import.meta.url, childVar: 'WDP_RESTORE_CHILD', fields: FIELDS, child });

async function child(imp) {
  const { readFileSync } = await import('node:fs');
  const { Core } = await imp('src/core/host.js');
  const { frame } = await imp('src/packet/build.js');
  const { exportFlows, importFlows } = await imp('src/core/flow-export.js');
  const { backend, frontend, mkIr, MAC } = await imp('../test/lib/ir-fixture.js');
  const cpu = () => Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
  const ir = (base) => {
    const fronts = [], backs = [];
    for (let s = 0; s < SERVICES; s++) {
      const bs = [];
      for (let e = 0; e < o.endpoints; e++) bs.push(backend({ id: base + s * o.endpoints + e, addr: `10.${128 + (s >> 8)}.${s & 255}.${e + 1}`, port: 8080, service: `ns/s${s}` }));
      backs.push(...bs);
      fronts.push(frontend({ id: base + s, addr: `10.96.${s >> 8}.${s & 255}`, port: 80, service: `ns/s${s}` }, bs));
    }
    return mkIr({ frontends: fronts, backends: backs, snatV4: '192.168.0.100' });
  };
  const fresh = () => { const c = Core.create({ batchMax: 64, flows: FLOWS * 2, affinitySlots: 1024 }); c.applyIr(ir(1 + SERVICES * (o.endpoints + 1))); return c; };

  const a = Core.create({ batchMax: 64, flows: FLOWS * 2, affinitySlots: 1024 });
  a.applyIr(ir(1));
  for (let made = 0; made < FLOWS;) {
    const batch = [];
    for (let k = 0; k < 64 && made < FLOWS; k++, made++) {
      const s = made % SERVICES;
      batch.push(frame({ src: `10.0.${(made >> 8) & 255}.${made & 255}`, dst: `10.96.${s >> 8}.${s & 255}`, proto: 'TCP', sport: 1024 + (made >> 16), dport: 80, flags: 'S', seq: 1, srcMac: MAC.client, dstMac: MAC.node }));
    }
    a.run(batch, 1000, 0);
  }
  const ports = [{ index: 0, name: 'uplink', mac: MAC.node }, { index: 1, name: 'pods', mac: MAC.beSrc }];
  const recs = exportFlows(a, ports, 2000);

  const once = () => {
    const b = fresh();
    const c0 = cpu(), t0 = performance.now();
    const st = importFlows(b, recs, ports, 100, 50);
    const ms = performance.now() - t0, cpuNs = cpu() - c0;
    if (st.flows !== FLOWS || Object.keys(st.dropped).length) throw new Error(`restored ${st.flows} of ${FLOWS} flows, dropped ${JSON.stringify(st.dropped)}`);
    return { ns: ms * 1e6 / st.flows, cpuNs: cpuNs / st.flows };
  };
  const first = once();
  const warm = [];
  for (let i = 0; i < WARM; i++) warm.push(once().ns);
  warm.sort((x, y) => x - y);
  console.log(JSON.stringify({ first_ns_per_flow: first.ns, first_cpu_ns_per_flow: first.cpuNs, warm_ns_per_flow: warm.length ? warm[warm.length >> 1] : NaN, flows: FLOWS }));
  process.exit(0);
}
