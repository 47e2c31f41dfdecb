// The rate limit of reject answers (assembly/ratelimit.ts, docs/core.md "Reject rate limit"): per
// client a burst of 6 then one a second (IPv6: one per 100 ms), all clients 1000 a second with a
// burst of 50 — the kernel's limits on the ICMP errors of kube-proxy's reject. Every step runs
// through the core and the reference model (core = model, with trace records), and is checked
// against the figures the kernel's defaults give.
import test from 'ava';
import * as L from '../dist/assembly/layout.js';
import { frame } from '../dist/src/packet/build.js';
import { affinityHash } from '../dist/src/core/hash.js';
import { parseAddr } from '../dist/src/util/addr.js';
import { irFrom } from './lib/core-fixture.js';
import { corePair, runPair } from './lib/core-pair.js';

const T0 = 5000;
const VIP = '10.96.0.10';
const VIP6 = 'fd00:96::10';
const ir = () => irFrom({
  frontends: [
    { id: 1, addr: VIP, port: 53, proto: 'UDP', backends: [] },
    { id: 2, addr: VIP, port: 80, proto: 'TCP', backends: [] },
    { id: 3, addr: VIP6, port: 53, proto: 'UDP', backends: [] },
  ],
  backends: [],
});
const pair = () => corePair(ir(), { batchMax: 64, flows: 1024, affinitySlots: 1024 });
const udp = (src, sport = 40000, dst = VIP) => frame({ src, dst, proto: 'UDP', sport, dport: 53, payload: 'q' });
const syn = (src, sport) => frame({ src, dst: VIP, proto: 'TCP', sport, dport: 80, flags: 'S', seq: 1 });
const reasons = (rs) => rs.reduce((m, r) => ({ ...m, [r.reason]: (m[r.reason] ?? 0) + 1 }), {});
const count = (s, name) => s.core.counters().reasons[name] ?? 0;

test('50 rejected datagrams from one client at one instant: 6 answers, 44 drop_reject_rate_limited; one more a second later', (t) => {
  const s = pair();
  const rs = runPair(t, s, Array.from({ length: 50 }, (_, i) => udp('10.0.0.5', 40000 + i)), T0);
  t.deepEqual(reasons(rs), { reject_no_endpoints: 6, drop_reject_rate_limited: 44 });
  t.deepEqual(rs.slice(0, 6).map((r) => r.verdict), Array(6).fill('reject'), 'the first six are answered');
  t.true(rs.slice(6).every((r) => r.verdict === 'drop' && r.outPort === 0xffff));
  const c = s.core.counters();
  t.is(c.reasons.reject_no_endpoints, 6);
  t.is(c.reasons.drop_reject_rate_limited, 44, 'never silently: counted under its own reason');
  t.is(c.global.reject, 6);
  t.is(c.global.drop, 44);
  t.is(c.frontends[1].packets, 6, 'only answered rejects count for the frontend');
  // 999 ms later the bucket holds 0.999 of an answer; at 1000 ms exactly one
  t.deepEqual(reasons(runPair(t, s, [udp('10.0.0.5', 41000)], T0 + 999)), { drop_reject_rate_limited: 1 });
  t.deepEqual(reasons(runPair(t, s, [udp('10.0.0.5', 41001), udp('10.0.0.5', 41002)], T0 + 1999)), { reject_no_endpoints: 1, drop_reject_rate_limited: 1 });
  // idle for six seconds: the whole burst again, no more
  t.deepEqual(reasons(runPair(t, s, Array.from({ length: 10 }, (_, i) => udp('10.0.0.5', 42000 + i)), T0 + 9000)), { reject_no_endpoints: 6, drop_reject_rate_limited: 4 });
});

test('two clients each get their own burst', (t) => {
  const s = pair();
  const frames = [];
  for (let i = 0; i < 10; i++) frames.push(udp('10.0.0.5', 40000 + i), udp('10.0.0.6', 40000 + i));
  const rs = runPair(t, s, frames, T0);
  t.deepEqual(reasons(rs.filter((_, i) => i % 2 === 0)), { reject_no_endpoints: 6, drop_reject_rate_limited: 4 });
  t.deepEqual(reasons(rs.filter((_, i) => i % 2 === 1)), { reject_no_endpoints: 6, drop_reject_rate_limited: 4 });
  // a third client at the same instant still has its burst (the global bucket holds 38)
  t.deepEqual(reasons(runPair(t, s, [udp('10.0.0.7'), udp('10.0.0.7', 1)], T0)), { reject_no_endpoints: 2 });
});

test('the global bucket caps many clients: a burst of 50, then one per ms; a client over its own limit does not drain it', (t) => {
  const s = pair();
  const many = (n, base) => Array.from({ length: n }, (_, i) => udp(`10.1.${(base + i) >> 8}.${(base + i) & 255}`));
  const rs = runPair(t, s, many(120, 0), T0);
  t.deepEqual(reasons(rs), { reject_no_endpoints: 50, drop_reject_rate_limited: 70 });
  t.true(rs.slice(0, 50).every((r) => r.verdict === 'reject'));
  // 20 ms later 20 answers have come back: new clients get exactly those
  t.deepEqual(reasons(runPair(t, s, many(30, 200), T0 + 20)), { reject_no_endpoints: 20, drop_reject_rate_limited: 10 });
  // a second later the global bucket is full again; a client over its own burst is refused by its
  // own bucket ...
  t.deepEqual(reasons(runPair(t, s, Array.from({ length: 8 }, (_, i) => udp('10.0.0.5', 50000 + i)), T0 + 1020)), { reject_no_endpoints: 6, drop_reject_rate_limited: 2 });
  // ... and its 2 refusals took nothing from the global bucket: 50 - 6 = 44 answers left
  t.deepEqual(reasons(runPair(t, s, many(50, 400), T0 + 1020)), { reject_no_endpoints: 44, drop_reject_rate_limited: 6 });
  t.is(count(s, 'drop_reject_rate_limited'), 70 + 10 + 2 + 6);
});

test('TCP RSTs share the limit; a RST to a refused service stays drop_rst_no_endpoints and costs nothing', (t) => {
  const s = pair();
  const rst = frame({ src: '10.0.0.5', dst: VIP, proto: 'TCP', sport: 1, dport: 80, flags: 'R' });
  const rs = runPair(t, s, [rst, rst, ...Array.from({ length: 4 }, (_, i) => syn('10.0.0.5', 2000 + i)), ...Array.from({ length: 4 }, (_, i) => udp('10.0.0.5', 3000 + i))], T0);
  t.deepEqual(rs.map((r) => r.reason), [
    'drop_rst_no_endpoints', 'drop_rst_no_endpoints',
    'reject_no_endpoints', 'reject_no_endpoints', 'reject_no_endpoints', 'reject_no_endpoints',
    'reject_no_endpoints', 'reject_no_endpoints', 'drop_reject_rate_limited', 'drop_reject_rate_limited',
  ]);
});

test('ICMP port unreachable for an invalid ClusterIP port and for a ping share the client bucket', (t) => {
  const s = pair();
  const other = (i) => frame({ src: '10.0.0.5', dst: VIP, proto: 'UDP', sport: 100 + i, dport: 9999, payload: 'x' });
  const ping = (i) => frame({ src: '10.0.0.5', dst: VIP, proto: 'ICMP', icmpType: 8, icmpCode: 0, id: i, payload: 'p' });
  const rs = runPair(t, s, [other(0), other(1), ping(0), ping(1), udp('10.0.0.5'), udp('10.0.0.5', 2), other(2), ping(2)], T0);
  t.deepEqual(rs.map((r) => r.reason), [
    'reject_invalid_port', 'reject_invalid_port', 'reject_cluster_ip_proto', 'reject_cluster_ip_proto',
    'reject_no_endpoints', 'reject_no_endpoints', 'drop_reject_rate_limited', 'drop_reject_rate_limited',
  ]);
});

test('IPv6: one answer per 100 ms after the burst of 6', (t) => {
  const s = pair();
  const u6 = (i) => udp('fd00::5', 40000 + i, VIP6);
  t.deepEqual(reasons(runPair(t, s, Array.from({ length: 10 }, (_, i) => u6(i)), T0)), { reject_no_endpoints: 6, drop_reject_rate_limited: 4 });
  t.deepEqual(reasons(runPair(t, s, [u6(20), u6(21)], T0 + 99)), { drop_reject_rate_limited: 2 });
  t.deepEqual(reasons(runPair(t, s, [u6(22), u6(23)], T0 + 100)), { reject_no_endpoints: 1, drop_reject_rate_limited: 1 });
  // the same address bits as IPv4 are another client
  t.deepEqual(reasons(runPair(t, s, [udp('10.0.0.5')], T0 + 100)), { reject_no_endpoints: 1 });
});

test('a dry-run trace decides as live but charges nothing', (t) => {
  const s = pair();
  runPair(t, s, Array.from({ length: 6 }, (_, i) => udp('10.0.0.5', 40000 + i)), T0);
  const dry = (src) => {
    const c = s.core; c.setCfg32(L.CFG_TRACE, L.TRACE_ON | L.TRACE_DRY_RUN);
    try { return c.run([udp(src)], T0)[0].reason; } finally { c.setCfg32(L.CFG_TRACE, 0); }
  };
  t.is(dry('10.0.0.5'), 'drop_reject_rate_limited', 'the spent client is shown limited');
  for (let i = 0; i < 10; i++) t.is(dry('10.0.0.9'), 'reject_no_endpoints', 'a dry run never spends a burst');
  t.is(s.model.processBatch([udp('10.0.0.9')], T0, { dryRun: true })[0].reason, L.REASON_REJECT_NO_ENDPOINTS);
  t.deepEqual(reasons(runPair(t, s, Array.from({ length: 7 }, (_, i) => udp('10.0.0.9', i)), T0)), { reject_no_endpoints: 6, drop_reject_rate_limited: 1 });
});

test('a full bucket of the client table overwrites its entry refilled longest ago; the table never grows', (t) => {
  const s = pair();
  // five IPv4 clients whose entries share one bucket of RL_WAYS (4)
  const bucketOf = (a) => (affinityHash(parseAddr(a).bytes, 4) & (L.RL_BUCKETS - 1)) >>> 0;
  const same = [];
  const want = bucketOf('10.2.0.1');
  for (let i = 1; same.length < L.RL_WAYS + 1 && i < 1 << 16; i++) {
    const a = `10.2.${i >> 8}.${i & 255}`;
    if (bucketOf(a) === want) same.push(a);
  }
  t.is(same.length, L.RL_WAYS + 1);
  // each spends its burst, one after another (the first longest ago)
  for (let k = 0; k < L.RL_WAYS; k++) {
    t.deepEqual(reasons(runPair(t, s, Array.from({ length: 7 }, (_, i) => udp(same[k], i)), T0 + k * 10)), { reject_no_endpoints: 6, drop_reject_rate_limited: 1 });
  }
  // a fifth client takes the oldest entry (same[0]'s): it has its burst ...
  t.deepEqual(reasons(runPair(t, s, Array.from({ length: 7 }, (_, i) => udp(same[L.RL_WAYS], i)), T0 + 100)), { reject_no_endpoints: 6, drop_reject_rate_limited: 1 });
  // ... and same[0], forgotten, starts again with a full burst, taking same[1]'s entry; same[2] is still spent
  t.deepEqual(reasons(runPair(t, s, Array.from({ length: 7 }, (_, i) => udp(same[0], 100 + i)), T0 + 200)), { reject_no_endpoints: 6, drop_reject_rate_limited: 1 });
  t.deepEqual(reasons(runPair(t, s, [udp(same[2], 300)], T0 + 300)), { drop_reject_rate_limited: 1 });
  // the table is the static block: its place and size do not change
  const at = s.core.exports.reject_limit_ptr();
  t.is(at % 64, 0);
  t.true(at + L.RL_BLOCK_SIZE <= s.core.exports.heap_base());
});
