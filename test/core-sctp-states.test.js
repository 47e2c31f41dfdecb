// SCTP conntrack states (docs/core.md "SCTP states", known difference (10) closed): the kernel's
// nf_conntrack_proto_sctp states from each packet's first chunk, with its default timeouts
// (CLOSED 10 s, COOKIE_WAIT / COOKIE_ECHOED 3 s, ESTABLISHED 210 s, SHUTDOWN_* 3 s,
// HEARTBEAT_SENT 30 s) — kube-proxy sets none of its own. Every step runs through the core and
// the reference model side by side (same verdicts, same flow table in the same states).
import test from 'ava';
import { Core } from '../dist/src/core/host.js';
import { frame } from '../dist/src/packet/build.js';
import { CT_STATE_NAMES } from '../dist/src/core/names.js';
import { backend, frontend, mkIr, runBoth, firstMismatch, MAC, L } from './lib/packets.js';
import { corePair } from './lib/core-pair.js';

const T0 = 1000;
const VIP = '10.96.0.12';
const BE = '10.1.0.1';
const CLIENT = '10.0.0.5';

function setup(opts = {}) {
  const b = backend({ id: 1, addr: BE, port: 9000, outPort: 1 });
  const ir = mkIr({ frontends: [frontend({ id: 1, addr: VIP, port: 7000, proto: 'SCTP' }, [b])], backends: [b] });
  return corePair(ir, { batchMax: 64, affinitySlots: 64, ...opts });
}

const orig = (sport, chunk) => ({ frame: frame({ srcMac: MAC.client, dstMac: MAC.node, src: CLIENT, dst: VIP, proto: 'SCTP', sport, dport: 7000, chunk, ...(chunk === 'DATA' ? { payload: 'data' } : {}) }), inPort: 3 });
const reply = (dport, chunk) => ({ frame: frame({ srcMac: MAC.beDst, dstMac: MAC.beSrc, src: BE, dst: CLIENT, proto: 'SCTP', sport: 9000, dport, chunk, ...(chunk === 'DATA' ? { payload: 'data' } : {}) }), inPort: 1 });

function both(t, s, frames, now) {
  const pairs = runBoth(s.core, s.model, frames, now);
  const m = firstMismatch(pairs);
  if (m) t.fail(m);
  return pairs.map((p) => p.core.reason);
}

/** Live flow states by client port; the core's whole table must equal the model's. */
function states(t, s, now) {
  const all = Object.fromEntries(s.core.flows({ includeExpired: true }, now).map((f) => [f.clientPort, f.state]));
  const m = Object.fromEntries(s.model.activeFlows().map((f) => [f.cport, CT_STATE_NAMES[f.state]]));
  t.deepEqual(all, m, 'core and model hold the same flows in the same states');
  return Object.fromEntries(s.core.flows({}, now).map((f) => [f.clientPort, f.state]));
}
const confirmed = (s, port, now) => s.core.flows({}, now).find((f) => f.clientPort === port).flags.includes('confirmed');

test('an association\'s life: INIT, INIT-ACK, COOKIE-ECHO, COOKIE-ACK (established, confirmed), data, SHUTDOWN, SHUTDOWN-ACK, SHUTDOWN-COMPLETE', (t) => {
  const s = setup();
  const steps = [
    [orig, 'INIT', 'sctp_closed'], [reply, 'INIT_ACK', 'sctp_cookie_wait'], [orig, 'COOKIE_ECHO', 'sctp_cookie_echoed'],
    [reply, 'COOKIE_ACK', 'sctp_established'], [orig, 'DATA', 'sctp_established'], [reply, 'SACK', 'sctp_established'],
    [orig, 'HEARTBEAT', 'sctp_established'], [reply, 'HEARTBEAT_ACK', 'sctp_established'],
    [orig, 'SHUTDOWN', 'sctp_shutdown'], [reply, 'DATA', 'sctp_shutdown'], [reply, 'SHUTDOWN_ACK', 'sctp_shutdown_ack_sent'],
    [orig, 'SHUTDOWN_COMPLETE', 'sctp_closed'],
  ];
  let now = T0;
  for (const [dir, chunk, want] of steps) {
    const reasons = both(t, s, [dir(5000, chunk)], now);
    t.deepEqual(reasons, [dir === orig ? 'fwd_nat' : 'fwd_reply'], chunk);
    t.is(states(t, s, now)[5000], want, `after ${dir === orig ? 'the client\'s' : 'the backend\'s'} ${chunk}`);
    if (want === 'sctp_established') t.true(confirmed(s, 5000, now), 'established: confirmed (the kernel\'s ASSURED)');
    now += 1;
  }
  t.true(confirmed(s, 5000, now), 'kept confirmed once closed, as the kernel keeps ASSURED');
  // the backend shutting down: its SHUTDOWN, the client's SHUTDOWN-ACK, the backend's SHUTDOWN-COMPLETE
  for (const [dir, chunk] of [[orig, 'INIT'], [reply, 'INIT_ACK'], [orig, 'COOKIE_ECHO'], [reply, 'COOKIE_ACK']]) both(t, s, [dir(5001, chunk)], now);
  for (const [dir, chunk, want] of [[reply, 'SHUTDOWN', 'sctp_shutdown'], [orig, 'SHUTDOWN_ACK', 'sctp_shutdown_ack_sent'], [reply, 'SHUTDOWN_COMPLETE', 'sctp_closed']]) {
    both(t, s, [dir(5001, chunk)], now);
    t.is(states(t, s, now)[5001], want, chunk);
  }
});

test('ABORT either way ends an association (CLOSED, 10 s); the next INIT after that opens a new flow', (t) => {
  const s = setup();
  for (const p of [5000, 5001, 5002]) {
    for (const [dir, chunk] of [[orig, 'INIT'], [reply, 'INIT_ACK'], [orig, 'COOKIE_ECHO'], [reply, 'COOKIE_ACK']]) both(t, s, [dir(p, chunk)], T0);
  }
  both(t, s, [orig(5000, 'ABORT'), reply(5001, 'ABORT'), orig(5002, 'ERROR')], T0 + 1);
  let st = states(t, s, T0 + 1);
  t.deepEqual([st[5000], st[5001], st[5002]], ['sctp_closed', 'sctp_closed', 'sctp_established'], 'an ERROR chunk on an association changes nothing');
  // 9 s later the closed entries are still there; at 10.001 s they are gone
  st = states(t, s, T0 + 1 + 10_000);
  t.is(st[5000], 'sctp_closed');
  st = states(t, s, T0 + 1 + 10_001);
  t.is(st[5000], undefined, 'an aborted association\'s entry expires after CLOSED\'s 10 s');
  t.is(st[5002], 'sctp_established');
  const before = s.core.counters().global.ct_new;
  both(t, s, [orig(5000, 'INIT')], T0 + 1 + 10_001);
  t.is(s.core.counters().global.ct_new - before, 1, 'a new flow');
  // an ABORT answering an INIT (no listener at the backend) closes it too
  both(t, s, [orig(5003, 'INIT'), reply(5003, 'ABORT')], T0 + 20_000);
  t.is(states(t, s, T0 + 20_000)[5003], 'sctp_closed');
  t.false(confirmed(s, 5003, T0 + 20_000));
});

test('each state keeps the kernel\'s timeout: handshake 3 s, established 210 s, shutdown 3 s, CLOSED 10 s, HEARTBEAT_SENT 30 s', (t) => {
  const s = setup();
  const roads = {
    5000: [[orig, 'INIT'], [reply, 'INIT_ACK']],                                        // cookie wait: 3 s
    5001: [[orig, 'INIT'], [reply, 'INIT_ACK'], [orig, 'COOKIE_ECHO']],                  // cookie echoed: 3 s
    5002: [[orig, 'INIT'], [reply, 'INIT_ACK'], [orig, 'COOKIE_ECHO'], [reply, 'COOKIE_ACK']], // established: 210 s
    5003: [[orig, 'INIT'], [reply, 'INIT_ACK'], [orig, 'COOKIE_ECHO'], [reply, 'COOKIE_ACK'], [orig, 'SHUTDOWN']], // 3 s
    5004: [[orig, 'INIT']],                                                              // closed: 10 s
    5005: [[orig, 'HEARTBEAT']],                                                         // heartbeat sent: 30 s
  };
  for (const [p, road] of Object.entries(roads)) for (const [dir, chunk] of road) both(t, s, [dir(Number(p), chunk)], T0);
  const live = (dt) => Object.keys(states(t, s, T0 + dt)).map(Number).sort();
  t.deepEqual(live(3000), [5000, 5001, 5002, 5003, 5004, 5005]);
  t.deepEqual(live(3001), [5002, 5004, 5005]);
  t.deepEqual(live(10_001), [5002, 5005]);
  t.deepEqual(live(30_001), [5002]);
  t.deepEqual(live(210_000), [5002]);
  t.deepEqual(live(210_001), []);
  // the table's timeouts, as the host reads them back
  const to = s.core.flowTimeouts();
  t.deepEqual([L.CTS_SCTP_CLOSED, L.CTS_SCTP_COOKIE_WAIT, L.CTS_SCTP_COOKIE_ECHOED, L.CTS_SCTP, L.CTS_SCTP_SHUTDOWN,
    L.CTS_SCTP_SHUTDOWN_ACK_SENT, L.CTS_SCTP_HEARTBEAT_SENT].map((st) => to[st]), [10_000, 3000, 3000, 210_000, 3000, 3000, 30_000]);
});

test('the SCTP timeouts are configurable by name (and refused by name when out of range)', (t) => {
  const s = setup({ timeouts: { sctpMs: 1000, sctpHandshakeMs: 100, sctpShutdownMs: 200, sctpClosedMs: 300, sctpHeartbeatMs: 400 } });
  const to = s.core.flowTimeouts();
  t.deepEqual([L.CTS_SCTP, L.CTS_SCTP_COOKIE_WAIT, L.CTS_SCTP_SHUTDOWN_ACK_SENT, L.CTS_SCTP_CLOSED, L.CTS_SCTP_HEARTBEAT_SENT].map((st) => to[st]), [1000, 100, 200, 300, 400]);
  for (const [dir, chunk] of [[orig, 'INIT'], [reply, 'INIT_ACK'], [orig, 'COOKIE_ECHO'], [reply, 'COOKIE_ACK']]) both(t, s, [dir(5000, chunk)], T0);
  t.is(states(t, s, T0 + 1000)[5000], 'sctp_established');
  t.is(states(t, s, T0 + 1001)[5000], undefined);
  for (const name of ['sctpHandshakeMs', 'sctpShutdownMs', 'sctpClosedMs', 'sctpHeartbeatMs']) {
    t.throws(() => Core.create({ batchMax: 8, timeouts: { [name]: -1 } }), { instanceOf: RangeError, message: new RegExp(name) });
  }
});

test('INIT retransmits do not keep a CLOSED entry alive (the kernel does not renew its timeout); other chunks do', (t) => {
  const s = setup();
  both(t, s, [orig(5000, 'INIT'), orig(5001, 'INIT')], T0);
  both(t, s, [orig(5000, 'INIT'), orig(5001, 'DATA')], T0 + 6000);
  const st = states(t, s, T0 + 10_001);
  t.is(st[5000], undefined, 'expired 10 s after the first INIT');
  t.is(st[5001], 'sctp_closed', 'a DATA chunk renews it');
  t.is(s.core.counters().global.ct_hit, 2, 'both retransmits went through the flow');
});

test('a HEARTBEAT picks up a path of an association (HEARTBEAT_SENT), its HEARTBEAT-ACK establishes it; a flow started by DATA is CLOSED', (t) => {
  const s = setup({ flows: 16, evictWindow: 16 });
  both(t, s, [orig(5000, 'HEARTBEAT'), orig(5001, 'HEARTBEAT'), orig(5002, 'DATA'), orig(5003, 'SHUTDOWN_ACK')], T0);
  let st = states(t, s, T0);
  t.deepEqual([st[5000], st[5002], st[5003]], ['sctp_heartbeat_sent', 'sctp_closed', 'sctp_shutdown_ack_sent']);
  // the backend's HEARTBEAT-ACK establishes it; its DATA (invalid there for the kernel) changes nothing
  both(t, s, [reply(5000, 'HEARTBEAT_ACK'), reply(5001, 'DATA'), reply(5003, 'SHUTDOWN_COMPLETE')], T0 + 1);
  st = states(t, s, T0 + 1);
  t.deepEqual([st[5000], st[5001], st[5003]], ['sctp_established', 'sctp_heartbeat_sent', 'sctp_closed']);
  t.true(confirmed(s, 5000, T0 + 1));
  // a client's INIT on a picked-up path restarts the handshake: COOKIE_WAIT
  both(t, s, [orig(5001, 'INIT')], T0 + 2);
  t.is(states(t, s, T0 + 2)[5001], 'sctp_cookie_wait');
});

test('a packet without a chunk, or a chunk the state machine ignores, keeps the state', (t) => {
  const s = setup();
  for (const [dir, chunk] of [[orig, 'INIT'], [reply, 'INIT_ACK']]) both(t, s, [dir(5000, chunk)], T0);
  // 12-byte SCTP header only: cut the chunk off (the CRC is not checked by the core)
  const bare = orig(5000, 'COOKIE_ECHO');
  const f = bare.frame;
  const cut = f.slice(0, f.length - 4);
  const ipLen = (cut[16] << 8) | cut[17];
  cut[16] = ((ipLen - 4) >> 8) & 0xff; cut[17] = (ipLen - 4) & 0xff;
  // IPv4 header checksum again
  cut[24] = 0; cut[25] = 0;
  let sum = 0;
  for (let i = 14; i < 34; i += 2) sum += (cut[i] << 8) | cut[i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  cut[24] = (~sum >> 8) & 0xff; cut[25] = ~sum & 0xff;
  t.deepEqual(both(t, s, [{ frame: cut, inPort: 3 }, orig(5000, 'SACK'), reply(5000, 'DATA')], T0 + 1), ['fwd_nat', 'fwd_nat', 'fwd_reply']);
  t.is(states(t, s, T0 + 1)[5000], 'sctp_cookie_wait');
});
