// What bench/soak.mjs --workers 2 found: a TCP connection whose Service is deleted under it is kept
// (docs/core.md: it goes on to its old backend), but with several workers on one interface its
// client's frames to the old ClusterIP were steered by their destination (no frontend owns it any
// more) instead of by the client, so about half went to a worker without the flow: to the host
// (host_no_match), never to the pod — the connection hung in half-closed or closing until the pod
// gave up. Two cores as two workers (assembly/steer.ts, src/daemon/steering.ts), frames spread at
// random as PACKET_FANOUT might: after the deletion every client frame must meet its flow, as it
// does on one worker.
//
// assembly/steer.ts keptFlowOwner: a frame whose destination no frontend owns is keyed by that
// destination (right for a reply to a client), unless it landed on another worker that holds a
// flow of it, or its destination is in a service CIDR (a deleted ClusterIP), where its flow is
// keyed by the client. The cores here know the service CIDR 10.96.0.0/16, as a daemon does from
// the cluster's ServiceCIDRs or node.serviceCIDRs.
import test from 'ava';
import * as L from '../dist/assembly/layout.js';
import { frame } from '../dist/src/packet/build.js';
import { parseFrame } from '../dist/src/packet/parse.js';
import { CLIENT_MAC, LOCAL_MAC, irFrom } from './lib/core-fixture.js';
import { workersOf } from './lib/steer-workers.js';

const VIP = '10.96.0.10';
const backends = [{ id: 1, addr: '10.1.0.1', port: 8080 }, { id: 2, addr: '10.1.0.2', port: 8080 }, { id: 3, addr: '10.1.0.3', port: 8080 }];
const dns = { id: 3, addr: '10.96.0.11', port: 53, proto: 'UDP', backends: [1, 2, 3] };
const routes = [{ prefix: '10.96.0.0/16', outPort: L.PORT_NONE, dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00', serviceCidr: true }];
const withWeb = irFrom({ frontends: [{ id: 1, addr: VIP, port: 80, proto: 'TCP', backends: [1, 2, 3] }, dns], backends, routes });
const withoutWeb = irFrom({ frontends: [dns], backends, routes });

const CLIENTS = Array.from({ length: 40 }, (_, c) => `10.0.${c >> 4}.${(c & 15) + 2}`);
const toVip = (client, flags) => ({ frame: frame({ src: client, dst: VIP, proto: 'TCP', sport: 40000, dport: 80, flags, srcMac: CLIENT_MAC, dstMac: LOCAL_MAC }), inPort: 0 });

test('several workers: a connection whose Service was deleted under it keeps meeting its flow (its client\'s frames steered by the client)', (t) => {
  const { cores, run } = workersOf(withWeb, 2);
  // established connections from 40 clients, each to one of the backends
  const syn = run(CLIENTS.map((c) => toVip(c, 'S')), 1000);
  t.true(syn.every((o) => o.verdict === L.V_FORWARD));
  const backendOf = new Map(syn.map((o) => { const p = parseFrame(o.frame); return [p.src, p.dst]; }));
  const sa = run(syn.map((o) => { const p = parseFrame(o.frame); return { frame: frame({ src: p.dst, dst: p.src, proto: 'TCP', sport: 8080, dport: p.sport, flags: 'SA', srcMac: p.dstMac, dstMac: p.srcMac }), inPort: 1 }; }), 1001);
  t.true(sa.every((o) => o.verdict === L.V_FORWARD && parseFrame(o.frame).src === VIP));
  run(CLIENTS.map((c) => toVip(c, 'A')), 1002);
  const flows = cores.reduce((a, c) => a + c.counters().global.ct_active, 0);
  t.is(flows, CLIENTS.length);

  // the Service is deleted: the connections go on to their backends, their ends (FIN) included
  for (const c of cores) c.applyIr(withoutWeb);
  for (const flags of ['A', 'FA']) {
    const out = run(CLIENTS.map((c) => toVip(c, flags)), 1003);
    const lost = out.filter((o) => o.verdict !== L.V_FORWARD || parseFrame(o.frame).dst !== backendOf.get(parseFrame(o.frame).src));
    t.is(lost.length, 0, `${flags}: ${lost.length} of ${out.length} client frames missed their flow (went to a worker without it)`);
  }
  t.is(cores.reduce((a, c) => a + (c.counters().reasons.host_no_match ?? 0), 0), 0, 'none to the host');
  t.is(cores.reduce((a, c) => a + c.counters().global.ct_new, 0), CLIENTS.length, 'no flow created twice');
});
