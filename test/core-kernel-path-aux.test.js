// The descriptor's D_AUX on forwarded frames (assembly/pipeline.ts kernelPathFlow): the core names
// the flow of a frame the kernel path could carry — a conntrack hit translated as created, IPv4
// without options or VLAN tag, not a fragment, UDP or TCP without SYN/FIN/RST — with
// AUX_FLOW_REPLY for the reply direction, and 0 for every other frame (the worker then decides
// from the flow's state: src/daemon/kernel-path.ts).
import test from 'ava';
import * as B from '../dist/src/packet/build.js';
import { Core } from '../dist/src/core/host.js';
import { backend, frontend, mkIr, MAC, L } from './lib/packets.js';

const VIP = '10.96.0.1', CLIENT = '10.0.0.1', POD = '10.1.0.1', VIP6 = 'fd00:96::1', CLIENT6 = 'fd00::1', POD6 = 'fd00:1::1';
const cli = (o = {}) => B.frame({ srcMac: MAC.client, dstMac: MAC.node, src: o.src ?? CLIENT, dst: o.dst ?? VIP, proto: o.proto ?? 'TCP', sport: o.sport ?? 1000, dport: 80, flags: o.flags ?? 'A', ...(o.ip ?? {}) });
const pod = (o = {}) => B.frame({ srcMac: MAC.backend, dstMac: MAC.node, src: o.src ?? POD, dst: o.dst ?? CLIENT, proto: o.proto ?? 'TCP', sport: 8080, dport: o.dport ?? 1000, flags: o.flags ?? 'A' });

function setup() {
  const core = Core.create({ flows: 64, batchMax: 16 });
  const bes = [backend({ id: 3, addr: POD, port: 8080, outPort: 1 }), backend({ id: 4, addr: POD6, port: 8080, outPort: 1 })];
  core.applyIr(mkIr({ frontends: [frontend({ id: 1, addr: VIP, port: 80, proto: 'TCP' }, [bes[0]]), frontend({ id: 2, addr: VIP, port: 80, proto: 'UDP' }, [bes[0]]),
    frontend({ id: 3, addr: VIP6, port: 80, proto: 'TCP' }, [bes[1]])], backends: bes }));
  return core;
}

/** [reason, D_AUX] per frame (tracing off). */
function run(core, frames, now, inPort = 3) {
  core.setCfg32(L.CFG_TRACE, 0);
  return core.run(frames, now, inPort).map((r, i) => [r.reason, core.dv.getUint32(core.descOffset(i) + L.D_AUX, true)]);
}

test('hits of TCP without SYN/FIN/RST and of UDP name their flow, replies with AUX_FLOW_REPLY; the new flow\'s first frame does not', (t) => {
  const core = setup();
  const [[, syn]] = run(core, [cli({ flags: 'S' })], 1000);
  t.is(syn, 0, 'a new flow: no hit');
  const got = run(core, [pod({ flags: 'SA' }), cli(), cli({ flags: 'PA' }), pod({ flags: 'PA' }), cli({ proto: 'UDP', sport: 5000 }), cli({ proto: 'UDP', sport: 5000 }), pod({ proto: 'UDP', dport: 5000 })], 1010);
  const R = L.AUX_FLOW_REPLY;
  t.deepEqual(got.map((x) => x[0]), ['fwd_reply', 'fwd_nat', 'fwd_nat', 'fwd_reply', 'fwd_nat', 'fwd_nat', 'fwd_reply']);
  t.is(got[0][1], 0, 'SYN-ACK: the state machine sees it');
  const flow = got[1][1];
  t.true(flow > 0 && (flow & R) === 0, 'the ACK names its flow');
  t.is(got[2][1], flow);
  t.is(got[3][1], flow | R);
  t.is(got[4][1], 0, 'a new UDP flow');
  const udp = got[5][1];
  t.true(udp > 0 && udp !== flow && (udp & R) === 0);
  t.is(got[6][1], udp | R);
});

test('FIN, RST, IPv4 options, a fragment, a VLAN tag, IPv6: 0', (t) => {
  const core = setup();
  run(core, [cli({ flags: 'S' }), cli({ src: CLIENT6, dst: VIP6, flags: 'S' })], 1000);
  run(core, [pod({ flags: 'SA' }), pod({ src: POD6, dst: CLIENT6, flags: 'SA' })], 1001);
  const got = run(core, [
    cli({ flags: 'FA' }), cli({ flags: 'RA' }), cli({ ip: { ipOptions: [1, 1, 1, 1] } }), cli({ ip: { mf: true } }), cli({ ip: { vlan: 7 } }),
    cli({ src: CLIENT6, dst: VIP6 }),
  ], 1010);
  for (const [i, [reason, aux]] of got.entries()) t.is(aux, 0, `frame ${i} (${reason})`);
  t.true(got.some(([r]) => r === 'fwd_nat'), 'some were forwarded');
  // while a plain ACK of the IPv4 flow is named
  t.true(run(core, [cli()], 1020)[0][1] > 0);
});
