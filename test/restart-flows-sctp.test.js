// SCTP conntrack states across a restart (src/core/flow-export.ts, assembly/ct-restore.ts): each
// state a flow can be in is saved and restored with its confirmed flag and age, goes on along the
// kernel's state machine in the new core, and keeps its state's timeout; a record whose state is
// not one of its protocol's is refused as invalid.
import test from 'ava';
import * as L from '../dist/assembly/layout.js';
import { Core } from '../dist/src/core/host.js';
import { frame } from '../dist/src/packet/build.js';
import { exportFlows, importFlows, stateOfProto } from '../dist/src/core/flow-export.js';
import { backend, frontend, mkIr, MAC } from './lib/packets.js';

const VIP = '10.96.0.12';
const BE = '10.1.0.1';
const PORTS_A = [{ index: 0, name: 'uplink', mac: MAC.node }, { index: 1, name: 'pods', mac: MAC.beSrc }];
const PORTS_B = [{ index: 1, name: 'pods', mac: MAC.beSrc }, { index: 2, name: 'uplink', mac: '02:00:00:00:0a:99' }];

function mkCore(frontId, beId) {
  const b = backend({ id: beId, addr: BE, port: 9000, service: 'default/sig' });
  const ir = mkIr({ frontends: [frontend({ id: frontId, addr: VIP, port: 7000, proto: 'SCTP', service: 'default/sig' }, [b])], backends: [b] });
  const core = Core.create({ batchMax: 16, flows: 64, affinitySlots: 64 });
  core.applyIr(ir);
  return core;
}
const orig = (sport, chunk, dstMac = MAC.node) => frame({ src: '10.0.0.5', dst: VIP, proto: 'SCTP', sport, dport: 7000, chunk, srcMac: MAC.client, dstMac });
const reply = (dport, chunk) => frame({ src: BE, dst: '10.0.0.5', proto: 'SCTP', sport: 9000, dport, chunk, srcMac: MAC.beDst, dstMac: MAC.beSrc });

const HANDSHAKE = [['o', 'INIT'], ['r', 'INIT_ACK'], ['o', 'COOKIE_ECHO'], ['r', 'COOKIE_ACK']];
const ROADS = {
  5000: [['o', 'INIT']],                                               // sctp_closed
  5001: HANDSHAKE.slice(0, 2),                                         // sctp_cookie_wait
  5002: HANDSHAKE.slice(0, 3),                                         // sctp_cookie_echoed
  5003: HANDSHAKE,                                                     // sctp_established
  5004: [...HANDSHAKE, ['r', 'SHUTDOWN']],                             // sctp_shutdown
  5005: [...HANDSHAKE, ['o', 'SHUTDOWN'], ['r', 'SHUTDOWN_ACK']],      // sctp_shutdown_ack_sent
  5006: [...HANDSHAKE, ['o', 'ABORT']],                                // sctp_closed, confirmed
  5007: [['o', 'HEARTBEAT']],                                          // sctp_heartbeat_sent
};

test('every SCTP state survives a restart with its confirmed flag, goes on along the state machine, and keeps its timeout', (t) => {
  const a = mkCore(1, 1);
  for (const [p, road] of Object.entries(ROADS)) {
    for (const [dir, chunk] of road) a.run([dir === 'o' ? orig(Number(p), chunk) : reply(Number(p), chunk)], 1000, dir === 'o' ? 0 : 1);
  }
  const before = Object.fromEntries(a.flows({}, 1000).map((f) => [f.clientPort, [f.state, f.flags.includes('confirmed')]]));
  t.deepEqual(before, {
    5000: ['sctp_closed', false], 5001: ['sctp_cookie_wait', false], 5002: ['sctp_cookie_echoed', false], 5003: ['sctp_established', true],
    5004: ['sctp_shutdown', true], 5005: ['sctp_shutdown_ack_sent', true], 5006: ['sctp_closed', true], 5007: ['sctp_heartbeat_sent', false],
  });
  const b = mkCore(4, 7);
  // 1 s of downtime: within every state's timeout
  t.deepEqual(importFlows(b, exportFlows(a, PORTS_A, 1000), PORTS_B, 1000, 50), { flows: 8, affinity: 0, staleBackends: 0, dropped: {} });
  const after = Object.fromEntries(b.flows({}, 50).map((f) => [f.clientPort, [f.state, f.flags.includes('confirmed')]]));
  t.deepEqual(after, before);
  // the state machine goes on where it was
  const steps = [[5001, 'o', 'COOKIE_ECHO', 'sctp_cookie_echoed'], [5002, 'r', 'COOKIE_ACK', 'sctp_established'], [5003, 'r', 'DATA', 'sctp_established'],
    [5004, 'o', 'SHUTDOWN_ACK', 'sctp_shutdown_ack_sent'], [5005, 'o', 'SHUTDOWN_COMPLETE', 'sctp_closed'], [5007, 'r', 'HEARTBEAT_ACK', 'sctp_established']];
  for (const [p, dir, chunk, want] of steps) {
    const [r] = b.run([dir === 'o' ? orig(p, chunk, '02:00:00:00:0a:99') : reply(p, chunk)], 60, dir === 'o' ? 2 : 1);
    t.is(r.reason, dir === 'o' ? 'fwd_nat' : 'fwd_reply', `${p} ${chunk}`);
    t.is(b.flows({}, 60).find((f) => f.clientPort === p).state, want, `${p} ${chunk}`);
  }
  // the restored ages count: the untouched closed flows (10 s from their last packet at 1000 in the
  // old clock, 1 s of downtime) are gone 9 s after the restore, the established ones are not
  const left = b.flows({}, 50 + 9001).map((f) => f.clientPort).sort();
  t.false(left.includes(5000));
  t.false(left.includes(5006));
  t.true(left.includes(5003));
});

test('a saved record whose state is not one of its protocol\'s is refused as invalid', (t) => {
  t.true(stateOfProto(L.CTS_SCTP_HEARTBEAT_SENT, 132));
  t.true(stateOfProto(L.CTS_TCP_HALF_CLOSED_REPLY, 6));
  t.false(stateOfProto(L.CTS_SCTP_CLOSED, 6), 'an SCTP state on a TCP record');
  t.false(stateOfProto(L.CTS_TCP_EST, 132), 'a TCP state on an SCTP record');
  t.false(stateOfProto(L.CTS_UDP, 132));
  t.false(stateOfProto(L.CTS_NONE, 17));
  t.false(stateOfProto(L.CTS_SCTP_HEARTBEAT_SENT + 1, 132), 'no state');
  const a = mkCore(1, 1);
  a.run([orig(5000, 'INIT')], 1000, 0);
  const recs = exportFlows(a, PORTS_A, 1000);
  recs.flows[L.CT_STATE] = L.CTS_TCP_EST;
  t.deepEqual(importFlows(mkCore(4, 7), recs, PORTS_B, 0, 5).dropped, { invalid: 1 });
});
