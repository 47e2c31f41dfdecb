// One source of truth for which conntrack states the core may evict when its table is full:
// EVICTABLE_CT_STATES of assembly/layout.ts, read by the core's eviction (assembly/conntrack.ts) and
// by a restore's order (src/core/flow-export.ts evictableState, the evictable flows last). Each
// state is reached by real packets in every entry of a full table (16 flows, the least a core
// holds), then a new connection either evicts it or
// finds the table full; the TypeScript side must say the same, and the reference model (the
// differential tests' oracle, with its own list) must agree frame for frame.
import test from 'ava';
import { Core } from '../dist/src/core/host.js';
import { ReferenceModel } from '../dist/src/reference/model.js';
import { frame } from '../dist/src/packet/build.js';
import { CT_STATE_NAMES } from '../dist/src/core/names.js';
import { evictableState } from '../dist/src/core/flow-export.js';
import { backend, frontend, mkIr, runBoth, firstMismatch, MAC, L } from './lib/packets.js';

const VIP = '10.96.0.10';
const BE = '10.1.0.1';
const T0 = 1000;
const FLOWS = 16;

function setup() {
  const b = backend({ id: 1, addr: BE, port: 8080, outPort: 1 });
  const fronts = ['TCP', 'UDP', 'SCTP'].map((proto, i) => frontend({ id: i + 1, addr: VIP, port: 80, proto }, [b]));
  const ir = mkIr({ frontends: fronts, backends: [b] });
  const o = { batchMax: 64, affinitySlots: 64, flows: FLOWS, evictWindow: FLOWS };
  const core = Core.create(o);
  core.applyIr(ir);
  return { core, model: new ReferenceModel(ir, o) };
}

// TCP: `flags` are its flags; SCTP: the chunk type
const l4 = (proto, flags) => (!flags ? {} : proto === 'SCTP' ? { chunk: flags } : { flags });
const orig = (proto, flags, src, sport = 40000) =>
  ({ frame: frame({ srcMac: MAC.client, dstMac: MAC.node, src, dst: VIP, proto, sport, dport: 80, ...l4(proto, flags) }), inPort: 3 });
const reply = (proto, flags, dst) =>
  ({ frame: frame({ srcMac: MAC.beDst, dstMac: MAC.beSrc, src: BE, dst, proto, sport: 8080, dport: 40000, ...l4(proto, flags) }), inPort: 1 });

const SCTP_EST = [['o', 'SCTP', 'INIT'], ['r', 'SCTP', 'INIT_ACK'], ['o', 'SCTP', 'COOKIE_ECHO'], ['r', 'SCTP', 'COOKIE_ACK']];
// how each state is reached by client c: [direction, protocol, TCP flags or SCTP chunk, ms after T0]
const ROADS = {
  tcp_syn: [['o', 'TCP', 'S']],
  tcp_syn_recv: [['o', 'TCP', 'S'], ['r', 'TCP', 'SA']],
  tcp_established: [['o', 'TCP', 'S'], ['r', 'TCP', 'SA'], ['o', 'TCP', 'A']],
  tcp_midstream: [['o', 'TCP', 'A']],
  tcp_closing: [['o', 'TCP', 'S'], ['r', 'TCP', 'SA'], ['o', 'TCP', 'A'], ['o', 'TCP', 'R']],
  tcp_half_closed_client: [['o', 'TCP', 'S'], ['r', 'TCP', 'SA'], ['o', 'TCP', 'A'], ['o', 'TCP', 'FA']],
  tcp_half_closed_backend: [['o', 'TCP', 'S'], ['r', 'TCP', 'SA'], ['o', 'TCP', 'A'], ['r', 'TCP', 'FA']],
  udp: [['o', 'UDP']],
  // answered at once: still udp (the kernel's UDP conntrack: not ASSURED, early-droppable)
  'udp (answered)': [['o', 'UDP'], ['r', 'UDP']],
  // answered, and active more than 2 s after the first packet: a stream
  udp_replied: [['o', 'UDP'], ['r', 'UDP'], ['o', 'UDP', undefined, 2500]],
  // the boundary: the kernel's time_after(now, first + 2 s) — exactly 2 s is not after
  'udp (again at exactly 2 s)': [['o', 'UDP'], ['r', 'UDP'], ['o', 'UDP', undefined, 2000]],
  'udp_replied (again at 2.001 s)': [['o', 'UDP'], ['r', 'UDP'], ['o', 'UDP', undefined, 2001]],
  // SCTP: the kernel's states; evictable until established (the kernel early-drops an
  // association not ASSURED: a flood of INITs must not hold the table), and in the shutdown
  // states whether established before or not (sctp_can_early_drop)
  sctp_closed: [['o', 'SCTP', 'INIT']],
  'sctp_closed (answered with DATA)': [['o', 'SCTP', 'INIT'], ['r', 'SCTP', 'DATA']],
  sctp_cookie_wait: SCTP_EST.slice(0, 2),
  sctp_cookie_echoed: SCTP_EST.slice(0, 3),
  sctp_established: SCTP_EST,
  sctp_shutdown: [...SCTP_EST, ['o', 'SCTP', 'SHUTDOWN']],
  'sctp_shutdown (from the backend)': [...SCTP_EST, ['r', 'SCTP', 'SHUTDOWN']],
  sctp_shutdown_ack_sent: [...SCTP_EST, ['o', 'SCTP', 'SHUTDOWN'], ['r', 'SCTP', 'SHUTDOWN_ACK']],
  // an association that was established keeps the kernel's ASSURED when it closes
  'sctp_closed (shut down)': [...SCTP_EST, ['o', 'SCTP', 'SHUTDOWN'], ['r', 'SCTP', 'SHUTDOWN_ACK'], ['o', 'SCTP', 'SHUTDOWN_COMPLETE']],
  'sctp_closed (aborted)': [...SCTP_EST, ['r', 'SCTP', 'ABORT']],
  'sctp_closed (aborted unestablished)': [...SCTP_EST.slice(0, 2), ['o', 'SCTP', 'ABORT']],
  sctp_heartbeat_sent: [['o', 'SCTP', 'HEARTBEAT']],
  'sctp_established (a path picked up by a HEARTBEAT)': [['o', 'SCTP', 'HEARTBEAT'], ['r', 'SCTP', 'HEARTBEAT_ACK']],
};
/** Drives every client along `road`; returns the time of its last step. */
function drive(t, s, road, name) {
  let now = T0;
  for (const [dir, proto, flags, dt = 0] of road) {
    now = T0 + dt;
    const frames = [];
    for (let c = 1; c <= FLOWS; c++) frames.push(dir === 'o' ? orig(proto, flags, `10.0.1.${c}`) : reply(proto, flags, `10.0.1.${c}`));
    t.falsy(firstMismatch(runBoth(s.core, s.model, frames, now)), `${name}: core = model on the way there`);
  }
  return now;
}

test('the core evicts exactly the states EVICTABLE_CT_STATES (and, unconfirmed, EVICTABLE_UNCONFIRMED_CT_STATES) names, and evictableState says the same', (t) => {
  const evicted = [];
  for (const [name, road] of Object.entries(ROADS)) {
    const s = setup();
    const stateName = name.split(' ')[0], state = CT_STATE_NAMES.indexOf(stateName);
    const now = drive(t, s, road, name);
    t.deepEqual([...new Set(s.core.flows({}, now).map((f) => f.state))], [stateName], `${name} reached`);
    const flags = s.core.flows({}, now)[0].flags.includes('confirmed') ? L.CTF_CONFIRMED : 0;
    t.is(s.core.flows({}, now).length, FLOWS, 'the table is full');
    // a new connection from another client needs an entry
    const pairs = runBoth(s.core, s.model, [orig('TCP', 'S', '10.0.2.1', 41000)], now + 1);
    t.falsy(firstMismatch(pairs), `${name}: core = model for the new connection`);
    const reason = pairs[0].core.reason;
    if (evictableState(state, flags)) {
      t.is(reason, 'fwd_nat', `${name} is evictable: the new connection takes its entry`);
      t.is(s.core.counters().global.ct_evicted, 1, `${name} counted evicted`);
      evicted.push(name);
    } else {
      t.is(reason, 'drop_ct_full', `${name} is kept: the table is full`);
    }
  }
  // the kernel's early drop: everything but the confirmed states (ASSURED) goes first
  t.deepEqual(evicted.sort(), ['sctp_closed', 'sctp_closed (aborted unestablished)', 'sctp_closed (answered with DATA)',
    'sctp_cookie_echoed', 'sctp_cookie_wait', 'sctp_heartbeat_sent', 'sctp_shutdown', 'sctp_shutdown (from the backend)',
    'sctp_shutdown_ack_sent', 'tcp_closing', 'tcp_half_closed_backend', 'tcp_half_closed_client', 'tcp_midstream', 'tcp_syn', 'tcp_syn_recv', 'udp', 'udp (again at exactly 2 s)', 'udp (answered)']);
  for (let st = L.CTS_COUNT; st < 256; st++) t.false(evictableState(st, 0), `state ${st} is no state`);
});
