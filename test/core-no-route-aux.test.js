// The descriptor's D_AUX (assembly/layout.ts, docs/core.md "Batch"): on a drop_no_route verdict
// the core names the backend the frame was meant for — the worker's neighbour hold queue
// (src/daemon/worker.ts) keys held frames by it — with tracing off; 0 when no backend was chosen
// and on every other reason but a forward the kernel path could carry (test/core-kernel-path-aux.test.js),
// also in a descriptor slot that carried an id in the batch before.
import test from 'ava';
import * as B from '../dist/src/packet/build.js';
import { Core } from '../dist/src/core/host.js';
import { backend, frontend, mkIr, MAC, L } from './lib/packets.js';

const VIP = '10.96.0.1', CLIENT = '10.0.0.1';
const cli = (o = {}) => B.frame({ srcMac: MAC.client, dstMac: MAC.node, src: CLIENT, dst: o.dst ?? VIP, proto: o.proto ?? 'TCP', sport: o.sport ?? 1000, dport: 80, flags: o.flags ?? 'S' });
const ir = (bes, routes = []) => mkIr({ frontends: [frontend({ id: 1, addr: VIP, port: 80, proto: 'TCP' }, bes)], backends: bes, routes });

/** Runs frames (tracing off) and returns [reason, D_AUX] per frame. */
function run(core, frames, now) {
  core.setCfg32(L.CFG_TRACE, 0);
  const res = core.run(frames, now, 3);
  return res.map((r, i) => [r.reason, core.dv.getUint32(core.descOffset(i) + L.D_AUX, true)]);
}

test('a new flow to a backend without a next hop: drop_no_route names that backend (ids beyond 16 bits too)', (t) => {
  for (const id of [7, 70001]) {
    const core = Core.create({ flows: 64, batchMax: 8 });
    core.applyIr(ir([backend({ id, addr: '10.1.0.1', port: 8080, outPort: L.PORT_NONE })]));
    t.deepEqual(run(core, [cli()], 1000), [['drop_no_route', id]]);
    t.is(core.counters().global.ct_active, 0, 'no flow made: the held frame is decided again later');
  }
});

test('an open flow whose backend lost its next hop names the flow\'s backend; once resolved the slot carries 0 again', (t) => {
  const core = Core.create({ flows: 64, batchMax: 8 });
  const a = (outPort) => backend({ id: 3, addr: '10.1.0.1', port: 8080, outPort });
  core.applyIr(ir([a(1)]));
  t.deepEqual(run(core, [cli()], 1000), [['fwd_nat', 0]]);
  core.applyIr(ir([a(L.PORT_NONE)]));
  t.deepEqual(run(core, [cli({ flags: 'A' }), cli({ sport: 2000 })], 1100), [['drop_no_route', 3], ['drop_no_route', 3]]);
  core.applyIr(ir([a(1)]));
  // (the ACK of flow 1 is a conntrack hit the kernel path could carry: its flow, pipeline.ts kernelPathFlow)
  t.deepEqual(run(core, [cli({ flags: 'A' }), cli({ sport: 2000 })], 1200), [['fwd_nat', 1], ['fwd_nat', 0]]);
});

test('no backend chosen, a plain route without a port, other drops: D_AUX 0; it equals the trace\'s backend on every no-route drop', (t) => {
  const core = Core.create({ flows: 64, batchMax: 8 });
  const a = backend({ id: 5, addr: '10.1.0.1', port: 8080, outPort: L.PORT_NONE });
  const fe = frontend({ id: 1, addr: VIP, port: 80, proto: 'TCP' }, [a]);
  core.applyIr(mkIr({ frontends: [fe], backends: [a], routes: [{ prefix: '10.9.0.0/16', outPort: L.PORT_NONE, dstMac: MAC.rtDst, srcMac: MAC.rtSrc }] }));
  // every Maglev slot of the active set an index past the frontend's backend list (u8 slots: one
  // backend): the pick names no backend (fail closed; the writer itself refuses such a table)
  const base = core.map.tableSets[core.cfg32(L.CFG_GEN) & 1];
  const e = core.dv.getUint32(base + L.TSH_FRONT_OFF, true) + L.FE_SIZE;
  const at = core.dv.getUint32(base + L.TSH_MAGLEV_OFF, true) + core.dv.getUint32(e + L.FE_MAGLEV_OFF, true) * 4;
  core.u8.fill(255, at, at + core.dv.getUint32(e + L.FE_MAGLEV_SIZE, true));
  const frames = [cli(), cli({ dst: '10.9.0.1' }), cli({ dst: '10.96.0.2', proto: 'UDP' }), B.frame({ srcMac: MAC.client, dstMac: MAC.node, src: '224.0.0.1', dst: VIP, proto: 'UDP', sport: 1, dport: 80 })];
  t.deepEqual(run(core, frames, 1000), [['drop_no_route', 0], ['drop_no_route', 0], ['host_no_match', 0], ['drop_martian', 0]]);
  const traced = core.trace(frames, 3, true, 1000);
  traced.forEach((r, i) => { if (r.reason === 'drop_no_route') t.is(core.dv.getUint32(core.descOffset(i) + L.D_AUX, true), r.trace.backend, `frame ${i}`); });
});
