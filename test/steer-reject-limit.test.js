// The reject rate limit with several workers on one interface (assembly/ratelimit.ts, docs/core.md
// "Reject rate limit"): the kernel's buckets — a burst of 6 per client, 50 for all clients — are
// the node's, whichever CPU a packet arrives on. Two cores as two workers, frames placed on them
// at random as a fanout might (and, for a pod port, by destination), handed over where steer()
// says: a client's refused datagrams, pings and packets to an undefined port of a ClusterIP reach
// both workers, and many clients' both. The workers share one rate limit block
// (src/core/shared-reject-limit.ts), so the answers stay within the kernel's.
import test from 'ava';
import * as L from '../dist/assembly/layout.js';
import { frame } from '../dist/src/packet/build.js';
import { irFrom, mkCore } from './lib/core-fixture.js';
import { workersOf } from './lib/steer-workers.js';
import { rejectLimitBuffer } from '../dist/src/core/shared-reject-limit.js';

const VIP = '10.96.0.10';
const ir = irFrom({
  frontends: [{ id: 1, addr: VIP, port: 53, proto: 'UDP', backends: [] }, { id: 2, addr: VIP, port: 80, proto: 'TCP', backends: [] }],
  backends: [],
  routes: [{ prefix: '10.96.0.0/16', outPort: L.PORT_NONE, dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00', serviceCidr: true }],
});
const REJECTS = new Set([L.REASON_REJECT_NO_ENDPOINTS, L.REASON_REJECT_INVALID_PORT, L.REASON_REJECT_CLUSTER_IP_PROTO]);
const shared = () => ({ rejectLimit: { buffer: rejectLimitBuffer(), clockOffset: 0 } });

const udp = (src, sport, dport = 53) => ({ frame: frame({ src, dst: VIP, proto: 'UDP', sport, dport, payload: 'q' }), inPort: 0 });
const ping = (src, id) => ({ frame: frame({ src, dst: VIP, proto: 'ICMP', icmpType: 8, icmpCode: 0, id, payload: 'p' }), inPort: 0 });
const answers = (out) => out.filter((o) => o.verdict === L.V_REJECT && REJECTS.has(o.reason)).length;
const limited = (out) => out.filter((o) => o.reason === L.REASON_DROP_REJECT_RATE_LIMITED).length;

for (const by of ['random', 'dst']) {
  test(`two workers (placed ${by === 'dst' ? 'by destination, a pod port' : 'at random'}): 50 refused packets of one client at one instant get the kernel's 6 answers, one more a second later`, (t) => {
    const { run } = workersOf(ir, 2, shared());
    // datagrams to the port without endpoints from 20 source ports, to an undefined port, and pings
    const burst = [...Array.from({ length: 20 }, (_, i) => udp('10.0.0.5', 40000 + i)), ...Array.from({ length: 15 }, (_, i) => udp('10.0.0.5', 41000 + i, 9999)), ...Array.from({ length: 15 }, (_, i) => ping('10.0.0.5', i))];
    const out = run(burst, 5000, by);
    t.is(out.length, 50);
    if (by === 'random') t.true(new Set(out.map((o) => o.worker)).size === 2, 'the packets reached both workers');
    t.is(answers(out), 6, 'answered: the kernel\'s burst of 6 for one client');
    t.is(limited(out), 44);
    const later = run(Array.from({ length: 10 }, (_, i) => udp('10.0.0.5', 42000 + i)), 6000, by);
    t.is(answers(later), 1, 'a second later: one more');
  });
}

test('two workers: 120 clients at one instant get the kernel\'s 50 answers (the global burst), then one per ms', (t) => {
  const { run } = workersOf(ir, 2, shared());
  const clients = Array.from({ length: 120 }, (_, c) => `10.0.${c >> 6}.${(c & 63) + 2}`);
  const out = run(clients.map((c) => udp(c, 40000)), 5000);
  t.true(new Set(out.map((o) => o.worker)).size === 2, 'the clients reached both workers');
  t.is(answers(out), 50);
  t.is(limited(out), 70);
  const later = run(clients.slice(0, 10).map((c) => udp(c, 40001)), 5003);
  t.is(answers(later), 3, '3 ms later: 3 more');
});

test('two workers without a shared block: each keeps its own buckets (what the sharing removes)', (t) => {
  const { run } = workersOf(ir, 2);
  const clients = Array.from({ length: 120 }, (_, c) => `10.0.${c >> 6}.${(c & 63) + 2}`);
  t.true(answers(run(clients.map((c) => udp(c, 40000)), 5000)) > 50);
});

test('two cores on their own clocks (each started at its creation, as a daemon\'s workers) share one client\'s burst', async (t) => {
  const buffer = rejectLimitBuffer();
  const a = mkCore(ir, { rejectLimit: { buffer } });
  await new Promise((r) => setTimeout(r, 40));   // b's clock starts 40 ms after a's
  const b = mkCore(ir, { rejectLimit: { buffer } });
  const send = (core, n, base) => {
    for (let i = 0; i < n; i++) core.writeFrame(i, udp('10.0.0.5', base + i).frame, 0);
    core.process(n, core.now());
    return Array.from({ length: n }, (_, i) => core.descriptor(i).reason).filter((r) => r === L.REASON_REJECT_NO_ENDPOINTS).length;
  };
  t.is(send(a, 4, 40000), 4);
  t.is(send(b, 4, 41000), 2, 'the client\'s burst of 6 is spent on b too (b\'s earlier clock does not refill it)');
  t.is(send(a, 4, 42000), 0);
});

test('a worker that finds the block held does not answer (never over the limit); a lock left for a second by a worker that died is taken over', (t) => {
  const buffer = rejectLimitBuffer();
  const lock = new Int32Array(buffer, 0, 1);
  const epoch = new DataView(buffer).getFloat64(8, true);
  const c = mkCore(ir, { rejectLimit: { buffer } });
  const answered = (base) => {
    c.writeFrame(0, udp(`10.0.3.${base & 255}`, 40000).frame, 0);
    c.process(1, c.now());
    return c.descriptor(0).reason === L.REASON_REJECT_NO_ENDPOINTS;
  };
  t.true(answered(1));
  lock[0] = ((performance.timeOrigin + performance.now() - epoch) | 0) || 1;   // another worker deciding now
  t.false(answered(2), 'held: not answered');
  t.is(c.counters().reasons.drop_reject_rate_limited, 1);
  lock[0] = ((performance.timeOrigin + performance.now() - epoch - 2000) | 0) || 1;   // held 2 s: its worker died
  t.true(answered(3), 'taken over');
  t.is(lock[0], 0, 'and freed');
});

test('a worker that gave up on a holding does not spin again while it goes on, and answers once it ends; a flood\'s refusals by an empty global bucket do not take the lock', (t) => {
  const buffer = rejectLimitBuffer();
  const lock = new Int32Array(buffer, 0, 2);
  const epoch = new DataView(buffer).getFloat64(8, true);
  const c = mkCore(ir, { rejectLimit: { buffer } });
  const share = c['rejectShare'];
  const answered = (base) => {
    c.writeFrame(0, udp(`10.0.3.${base & 255}`, 40000).frame, 0);
    c.process(1, c.now());
    return c.descriptor(0).reason === L.REASON_REJECT_NO_ENDPOINTS;
  };
  t.true(answered(1));
  const holdings = lock[1];
  lock[0] = ((performance.timeOrigin + performance.now() - epoch) | 0) || 1;   // another worker deciding now
  t.false(answered(2));
  t.is(share.contended, 1);
  t.is(share.gaveUp, 1);
  t.false(answered(3), 'the same holding: refused at once');
  t.is(share.gaveUp, 2);
  lock[1]++;   // that holding ended, another began
  t.false(answered(4), 'a new holding: spun for, then refused');
  t.is(share.gaveUp, 3);
  lock[0] = 0;
  t.true(answered(5), 'free: answered');
  t.is(lock[1], holdings + 2, 'its holding counted');
  // the global burst spent: refusals look without the lock
  const before = share.contended;
  const many = Array.from({ length: 60 }, (_, i) => `10.0.4.${i + 2}`);
  const now = c.now();
  many.forEach((a, i) => c.writeFrame(i, udp(a, 40000).frame, 0));
  c.process(many.length, now);
  t.true(c.counters().reasons.reject_no_endpoints >= 2 + 48, 'the rest of the global burst');
  lock[0] = ((performance.timeOrigin + performance.now() - epoch) | 0) || 1;   // held from here on
  many.forEach((a, i) => c.writeFrame(i, udp(a, 40001).frame, 0));
  c.process(many.length, now);
  t.is(share.contended, before, 'refused by the empty global bucket without the lock');
  lock[0] = 0;
  // a client whose burst is spent, the global bucket full again: refused without the lock too
  const later = now + 1000, answeredBefore = c.counters().reasons.reject_no_endpoints;
  Array.from({ length: 8 }, (_, i) => c.writeFrame(i, udp('10.0.5.9', 41000 + i).frame, 0));
  c.process(8, later);
  t.is(c.counters().reasons.reject_no_endpoints, answeredBefore + 6, 'its burst of 6');
  lock[0] = ((performance.timeOrigin + performance.now() - epoch) | 0) || 1;
  Array.from({ length: 8 }, (_, i) => c.writeFrame(i, udp('10.0.5.9', 42000 + i).frame, 0));
  c.process(8, later);
  t.is(share.contended, before, 'refused by its own bucket without the lock');
  lock[0] = 0;
});

test('a worker whose batch clock is behind the last decision\'s (its batch began earlier) does not see the buckets refilled', (t) => {
  const buffer = rejectLimitBuffer();
  const a = mkCore(ir, { rejectLimit: { buffer, clockOffset: 0 } }), b = mkCore(ir, { rejectLimit: { buffer, clockOffset: 0 } });
  const send = (core, n, base, now) => {
    for (let i = 0; i < n; i++) core.writeFrame(i, udp('10.0.0.5', base + i).frame, 0);
    core.process(n, now);
    return Array.from({ length: n }, (_, i) => core.descriptor(i).reason).filter((r) => r === L.REASON_REJECT_NO_ENDPOINTS).length;
  };
  t.is(send(a, 8, 40000, 5001), 6);
  t.is(send(b, 8, 41000, 5000), 0, 'the client\'s burst is spent: 1 ms "before" is not 49 days after');
  const many = Array.from({ length: 60 }, (_, c) => `10.0.9.${c + 2}`);
  for (const [core, now] of [[a, 7001], [b, 7000]]) {
    many.forEach((c, i) => core.writeFrame(i, udp(c, 40000).frame, 0));
    core.process(many.length, now);
  }
  t.is(a.counters().reasons.reject_no_endpoints + b.counters().reasons.reject_no_endpoints, 6 + 50, 'the global burst of 50 once');
});

test('a worker whose batch clock is behind the last decision\'s does not move the buckets\' clock back (the time between would be counted twice)', (t) => {
  const buffer = rejectLimitBuffer();
  const a = mkCore(ir, { rejectLimit: { buffer, clockOffset: 0 } }), b = mkCore(ir, { rejectLimit: { buffer, clockOffset: 0 } });
  const answered = (core, srcs, now, sport = 40000) => {
    srcs.forEach((c, i) => core.writeFrame(i, udp(c, sport).frame, 0));
    core.process(srcs.length, now);
    return Array.from({ length: srcs.length }, (_, i) => core.descriptor(i).reason).filter((r) => r === L.REASON_REJECT_NO_ENDPOINTS).length;
  };
  const clients = (k) => Array.from({ length: 60 }, (_, c) => `10.${k}.9.${c + 2}`);
  t.is(answered(b, clients(1), 5000), 50, 'the global burst');
  // a's batch began 10 ms before b's: at a's "now" nothing is refilled, and nothing may be later
  t.is(answered(a, clients(2), 4990), 0);
  t.is(answered(b, clients(3), 5000), 0, 'still 5000 ms: no time passed since the burst');
  t.is(answered(b, clients(4), 5003), 3, '3 ms later: 3');
  // the same for a client's bucket: its burst of 6 spent at 9000 on b, a at 8990, b at 9000 again
  t.is(answered(b, Array(8).fill('10.0.0.5'), 9000, 41000), 6);
  t.is(answered(a, ['10.0.0.5'], 8990, 42000), 0);
  t.is(answered(b, ['10.0.0.5'], 9000, 43000), 0, 'the client\'s bucket: no time passed either');
});
