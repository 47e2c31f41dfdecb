// The retired set's filter (assembly/steer.ts: removed frontend addresses past the newest 512, a
// bit each) is aged out (src/core/retired-fronts.ts, retired-sweep.ts): every so many retirements
// each worker publishes the filter bits of its flows' frontend addresses, and once all have, each
// keeps only the bits some worker's flow still needs and those set since. A connection to an
// address that is in the filter alone must keep meeting its flow across a sweep; once its flows
// are gone, the next sweep empties the filter.
import test from 'ava';
import * as L from '../dist/assembly/layout.js';
import { frame } from '../dist/src/packet/build.js';
import { parseFrame } from '../dist/src/packet/parse.js';
import { CLIENT_MAC, LOCAL_MAC, irFrom } from './lib/core-fixture.js';
import { workersOf } from './lib/steer-workers.js';
import { diffIr } from '../dist/src/ir/diff.js';
import { encodeDiff } from '../dist/src/ir/diff-wire.js';
import { applyReceived } from '../dist/src/daemon/worker-apply.js';
import { ownerOf } from '../dist/src/daemon/flow-placement.js';
import { parseAddr } from '../dist/src/util/addr.js';

const POD_PORT = 2, UPLINK = 0;
const backends = [{ id: 1, addr: '10.1.0.1', port: 8080 }, { id: 2, addr: '10.1.0.2', port: 8080 }, { id: 3, addr: '10.1.0.3', port: 8080 }];
const routes = [
  { prefix: '10.96.0.0/16', outPort: L.PORT_NONE, dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00', serviceCidr: true },
  { prefix: '0.0.0.0/0', outPort: UPLINK, dstMac: '02:00:00:00:77:01', srcMac: '02:00:00:00:00:cc' },
];
const dns = { id: 9, addr: '10.96.0.11', port: 53, proto: 'UDP', backends: [1, 2, 3] };
const pods = Array.from({ length: 40 }, (_, c) => `10.0.${c >> 4}.${(c & 15) + 2}`);
const named = ['', '', 'two', 'three', 'four'];
const EVERY = 256;
// LoadBalancer IPs that come and go, `n` at a time from `from`
const lbs = (from, n) => Array.from({ length: n }, (_, i) => ({ id: 100 + from + i, kind: 'LoadBalancer', addr: `198.${18 + ((from + i) >> 16)}.${((from + i) >> 8) & 255}.${(from + i) & 255}`, port: 80, proto: 'TCP', backends: [1] }));

for (const n of [2, 3]) test(`${named[n]} workers: a sweep of the retired filter keeps the bit of an address a live connection needs and clears the rest; once the connections are gone the next sweep empties it`, (t) => {
  const fe = { id: 1, kind: 'LoadBalancer', addr: '192.0.2.10', port: 80, proto: 'TCP', backends: [1, 2, 3] };
  const { cores, run } = workersOf(() => irFrom({ frontends: [fe, dns], backends, routes }), n);
  // no sweep until the filter holds the connections' address (every worker the same)
  for (const c of cores) c.retired.sweepEvery = 1e9;
  const apply = (frontends) => { for (const c of cores) applyReceived(c, encodeDiff(diffIr(c.ir, irFrom({ frontends: [dns, ...frontends], backends, routes })))); };
  // the worker loop polls between batches; a test's cores after each apply
  const poll = () => { for (const c of cores) c.retired.poll(c); };
  const g = () => cores.map((c) => c.counters().global);
  const toFe = (client, flags) => ({ frame: frame({ src: client, dst: fe.addr, proto: 'TCP', sport: 40000, dport: 80, flags, srcMac: CLIENT_MAC, dstMac: LOCAL_MAC }), inPort: POD_PORT });
  const syn = run(pods.map((c) => toFe(c, 'S')), 1000, 'dst');
  t.true(syn.every((o) => o.verdict === L.V_FORWARD));
  run(syn.map((o) => { const p = parseFrame(o.frame); return { frame: frame({ src: p.dst, dst: p.src, proto: 'TCP', sport: 8080, dport: p.sport, flags: 'SA', srcMac: p.dstMac, dstMac: p.srcMac }), inPort: 1 }; }), 1001, 'dst');
  run(pods.map((c) => toFe(c, 'A')), 1002, 'dst');
  const backendOf = new Map(syn.map((o) => { const p = parseFrame(o.frame); return [p.src, p.dst]; }));
  const kept = (flags, now) => {
    const out = run(pods.map((c) => toFe(c, flags)), now, 'dst');
    return out.filter((o) => { const p = parseFrame(o.frame); return o.verdict !== L.V_FORWARD || p.dst !== backendOf.get(p.src); }).length;
  };

  // the Service goes; then more LoadBalancer IPs than the exact set holds come and go, 50 an apply
  apply([]);
  let from = 0;
  for (; from < L.STEER_RETIRED_MAX + 50; from += 50) { apply(lbs(from, 50)); apply([]); }
  t.true(cores.every((c) => !c.retired.addresses.includes(fe.addr)), 'no longer in the exact set');
  const before = g();
  t.true(before.every((x) => x.steer_retired_filtered > 50 && x.steer_retired_filter_bits > 50 && x.steer_retired_filter_bits <= x.steer_retired_filtered), `in the filter: ${before.map((x) => x.steer_retired_filter_bits)}`);
  t.true(before.every((x) => x.steer_retired_filter_sweeps === 0));
  t.is(kept('PA', 1003), 0, 'before a sweep');

  // sweeps from now on: churn until every worker has swept once
  for (const c of cores) c.retired.sweepEvery = EVERY;
  for (let k = 0; k < 2 * EVERY; k += 50, from += 50) { apply(lbs(from, 50)); apply([]); poll(); }
  const after = g();
  t.true(after.every((x) => x.steer_retired_filter_sweeps >= 1), `sweeps ${after.map((x) => x.steer_retired_filter_sweeps)}`);
  t.true(after.every((x) => x.steer_retired_filter_cleared > 0), `cleared ${after.map((x) => x.steer_retired_filter_cleared)}`);
  // left: the live connections' address, and what was filtered since the last scan
  t.true(after.every((x) => x.steer_retired_filter_bits <= EVERY + 1 && x.steer_retired_filter_bits < x.steer_retired_filtered), `bits ${after.map((x) => x.steer_retired_filter_bits)} of ${after.map((x) => x.steer_retired_filtered)} filtered`);
  for (const flags of ['PA', 'FA']) t.is(kept(flags, 1004), 0, `${flags}: after the sweep every client frame still meets its flow`);

  // the connections end and time out; two rounds later nothing is left in the filter
  run(syn.map((o) => { const p = parseFrame(o.frame); return { frame: frame({ src: p.dst, dst: p.src, proto: 'TCP', sport: 8080, dport: p.sport, flags: 'FA', srcMac: p.dstMac, dstMac: p.srcMac }), inPort: 1 }; }), 1005, 'dst');
  run(pods.map((c) => toFe(c, 'A')), 1006, 'dst');
  const later = 1006 + 7 * 86400e3;
  for (const c of cores) c.ctExpireStep(1e6, later);
  t.is(cores.reduce((a, c) => a + c.counters().global.ct_active, 0), 0, 'no flow left');
  const sweeps = g().map((x) => x.steer_retired_filter_sweeps);
  // a round's scan sees no flow; the filter keeps only what was filtered since it
  for (let k = 0; k < 2 * EVERY; k += 50, from += 50) { apply(lbs(from, 50)); apply([]); poll(); }
  const idle = g();
  t.true(idle.every((x, w) => x.steer_retired_filter_sweeps >= sweeps[w] + 1));
  t.true(idle.every((x) => x.steer_retired_filter_bits <= EVERY), `bits ${idle.map((x) => x.steer_retired_filter_bits)}: only those filtered since the last scan`);
  // then no more churn than a round of retirements without new filter bits: the frontends come
  // and go while the exact set still holds them (none filtered), so the next sweep empties it
  const same = lbs(100000, 50);
  for (let k = 0; k < 2 * EVERY; k += 50) { apply(same); apply([]); poll(); }
  const empty = g();
  t.true(empty.every((x) => x.steer_retired_filter_bits === 0), `bits ${empty.map((x) => x.steer_retired_filter_bits)}: emptied`);
  // a frame to an address the filter held no longer pays a hand-over for it
  const hits = empty.map((x) => x.steer_retired_filter_hits);
  run(pods.map((c) => ({ frame: frame({ src: c, dst: '198.18.0.7', proto: 'TCP', sport: 41000, dport: 80, flags: 'S', srcMac: CLIENT_MAC, dstMac: LOCAL_MAC }), inPort: POD_PORT })), later + 1, 'dst');
  t.deepEqual(g().map((x) => x.steer_retired_filter_hits), hits, 'no frame steered by the filter');
});

// The bits a worker sets after a round began are kept by its sweep whatever the scans saw: a
// connection made after every worker's scan, to a Service whose address is then removed and pushed
// into the filter before that worker's sweep, is in no scan.
test('two workers: a connection made after the scans, to an address filtered before a worker swept, keeps meeting its flow', (t) => {
  const { cores, run } = workersOf(() => irFrom({ frontends: [dns], backends, routes }), 2);
  const every = 1024;
  for (const c of cores) c.retired.sweepEvery = every;
  const apply = (frontends, only = cores) => { for (const c of only) applyReceived(c, encodeDiff(diffIr(c.ir, irFrom({ frontends: [dns, ...frontends], backends, routes })))); };
  const g = () => cores.map((c) => c.counters().global);
  // the exact set full and some addresses filtered, no round begun yet
  let from = 0;
  for (; from < every - 50; from += 50) { apply(lbs(from, 50)); apply([]); }
  t.true(g().every((x) => x.steer_retired_filter_sweeps === 0 && x.steer_retired_filter_bits > 0));
  // the round begins (the 1,024th retirement) and both scan; worker 1 sweeps at once, worker 0
  // does not poll again until later
  apply(lbs(from, 50)); apply([]); from += 50;
  cores[0].retired.poll(cores[0]);
  cores[1].retired.poll(cores[1]);
  t.deepEqual(g().map((x) => x.steer_retired_filter_sweeps), [0, 1]);
  // a LoadBalancer Service comes, its connections are made, it goes, and more addresses push its
  // address out of the exact set into the filter
  const fe = { id: 1, kind: 'LoadBalancer', addr: '192.0.2.77', port: 80, proto: 'TCP', backends: [1, 2, 3] };
  apply([fe]);
  const toFe = (client, flags) => ({ frame: frame({ src: client, dst: fe.addr, proto: 'TCP', sport: 40000, dport: 80, flags, srcMac: CLIENT_MAC, dstMac: LOCAL_MAC }), inPort: POD_PORT });
  const syn = run(pods.map((c) => toFe(c, 'S')), 1000, 'dst');
  t.true(syn.every((o) => o.verdict === L.V_FORWARD));
  run(syn.map((o) => { const p = parseFrame(o.frame); return { frame: frame({ src: p.dst, dst: p.src, proto: 'TCP', sport: 8080, dport: p.sport, flags: 'SA', srcMac: p.dstMac, dstMac: p.srcMac }), inPort: 1 }; }), 1001, 'dst');
  const backendOf = new Map(syn.map((o) => { const p = parseFrame(o.frame); return [p.src, p.dst]; }));
  apply([]);
  for (let k = 0; k < L.STEER_RETIRED_MAX; k += 50, from += 50) { apply(lbs(from, 50)); apply([]); }
  t.true(cores.every((c) => !c.retired.addresses.includes(fe.addr)), 'in the filter alone');
  cores[0].retired.poll(cores[0]);
  t.deepEqual(g().map((x) => x.steer_retired_filter_sweeps), [1, 1]);
  const out = run(pods.map((c) => toFe(c, 'PA')), 1002, 'dst');
  const lost = out.filter((o) => { const p = parseFrame(o.frame); return o.verdict !== L.V_FORWARD || p.dst !== backendOf.get(p.src); });
  t.is(lost.length, 0, `${lost.length} of ${out.length} client frames missed their flow`);
});

// A worker scans when another asks, whether or not it sweeps itself (the workers' counts of
// retirements need not agree: a worker started from a table image counts other ones).
test('two workers: a worker that begins no sweep of its own still scans for the one that does, whose filter keeps a live connection\'s address', (t) => {
  const fe = { id: 1, kind: 'LoadBalancer', addr: '192.0.2.10', port: 80, proto: 'TCP', backends: [1, 2, 3] };
  const { cores, run } = workersOf(() => irFrom({ frontends: [fe, dns], backends, routes }), 2);
  cores[0].retired.sweepEvery = 1e9; cores[1].retired.sweepEvery = 1e9;
  const apply = (frontends) => { for (const c of cores) applyReceived(c, encodeDiff(diffIr(c.ir, irFrom({ frontends: [dns, ...frontends], backends, routes })))); };
  const poll = () => { for (const c of cores) c.retired.poll(c); for (const c of cores) c.retired.poll(c); };
  const toFe = (client, flags) => ({ frame: frame({ src: client, dst: fe.addr, proto: 'TCP', sport: 40000, dport: 80, flags, srcMac: CLIENT_MAC, dstMac: LOCAL_MAC }), inPort: POD_PORT });
  const syn = run(pods.map((c) => toFe(c, 'S')), 1000, 'dst');
  run(syn.map((o) => { const p = parseFrame(o.frame); return { frame: frame({ src: p.dst, dst: p.src, proto: 'TCP', sport: 8080, dport: p.sport, flags: 'SA', srcMac: p.dstMac, dstMac: p.srcMac }), inPort: 1 }; }), 1001, 'dst');
  const backendOf = new Map(syn.map((o) => { const p = parseFrame(o.frame); return [p.src, p.dst]; }));
  apply([]);
  let from = 0;
  for (; from < L.STEER_RETIRED_MAX + 100; from += 50) { apply(lbs(from, 50)); apply([]); poll(); }
  cores[0].retired.sweepEvery = EVERY;   // worker 0 (the address's: frames to it land there) alone sweeps
  for (let k = 0; k < 2 * EVERY; k += 50, from += 50) { apply(lbs(from, 50)); apply([]); poll(); }
  const g = cores.map((c) => c.counters().global);
  t.is(g[1].steer_retired_filter_sweeps, 0);
  t.true(g[0].steer_retired_filter_sweeps >= 1 && g[0].steer_retired_filter_cleared > 0, `worker 0 swept ${g[0].steer_retired_filter_sweeps}, cleared ${g[0].steer_retired_filter_cleared}`);
  // frames to the address land on worker 0 (a pod port: by destination); each must reach its
  // client's flow, half of them on worker 1
  t.is(ownerOf(parseAddr(fe.addr).bytes, 0, 0, 2), 0);
  const out = run(pods.map((c) => toFe(c, 'PA')), 1002, 'dst');
  const lost = out.filter((o) => { const p = parseFrame(o.frame); return o.verdict !== L.V_FORWARD || p.dst !== backendOf.get(p.src); });
  t.is(lost.length, 0, `${lost.length} of ${out.length} client frames missed their flow`);
});
