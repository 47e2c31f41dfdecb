// Golden packets for the conntrack states the kernel's conntrack keeps and wdp follows (docs/core.md
// "TCP states", "SCTP states"): each scenario is data — tables, frames in, the frames expected
// out (built independently with src/packet/build.ts) at given times — run through the Wasm core
// and the reference model alike (test/lib/golden-scenario.js). Default timeouts: what a node gets.
import test from 'ava';
import { backend, frontend, mkIr, L } from './lib/packets.js';
import { CT_STATE_NAMES } from '../dist/src/core/names.js';
import { runScenario, BE_PORT, fwd, reply, cli, toBe, fromBe, toCli } from './lib/golden-scenario.js';

const T0 = 1000;
const FAMILIES = [
  { fam: 4, client: '10.0.0.1', vip: '10.96.0.10', be: '10.1.0.5' },
  { fam: 6, client: 'fd00::1', vip: 'fd00:96::a', be: 'fd00:1::5' },
];

function singleService({ vip, port, proto, be, bport }) {
  const bes = [backend({ id: 1, addr: be, port: bport, outPort: BE_PORT })];
  return mkIr({ frontends: [frontend({ id: 1, addr: vip, port, proto }, bes)], backends: bes });
}

/** A check step: the one flow's state in core and model (undefined: no live flow at `now`). */
const stateIs = (t, want, now) => ({
  check: ({ core, model }) => {
    const live = core.flows({}, now);
    t.is(live[0]?.state, want, `core: ${want ?? 'no flow'} at ${now}`);
    t.is(live.length, want ? 1 : 0);
    // the model's newest flow (it keeps expired ones until swept) is in the same state
    const newest = model.activeFlows().sort((a, b) => b.lastSeen - a.lastSeen)[0];
    if (want) t.is(CT_STATE_NAMES[newest?.state], want, `model: ${want}`);
  },
});

for (const { fam, client, vip, be } of FAMILIES) {
  // Known difference (7), closed: the kernel's conntrack takes a connection it picks up mid-stream
  // (nf_conntrack_tcp_loose=1) as ESTABLISHED, and a FIN on it, or on SYN_RECV, to FIN_WAIT; the
  // other side may go on sending long after the close timeout (10 s).
  test(`IPv${fam} TCP: a connection picked up mid-stream, half-closed by the client, still carries the backend's data 20 s later`, (t) => {
    const c = { proto: 'TCP', src: client, dst: vip, sport: 40000, dport: 80 };
    const b = { proto: 'TCP', src: be, dst: client, sport: 8080, dport: 40000 };
    runScenario(t, {
      tables: singleService({ vip, port: 80, proto: 'TCP', be, bport: 8080 }),
      steps: [
        { label: 'data picked up', now: T0, in: cli({ ...c, flags: 'PA', seq: 500, ack: 900, payload: 'more' }),
          expect: fwd(BE_PORT, toBe({ ...c, dst: be, dport: 8080, flags: 'PA', seq: 500, ack: 900, payload: 'more', ttl: 63 })) },
        stateIs(t, 'tcp_midstream', T0),
        { label: 'client FIN', now: T0 + 1, in: cli({ ...c, flags: 'FA', seq: 504, ack: 900 }),
          expect: fwd(BE_PORT, toBe({ ...c, dst: be, dport: 8080, flags: 'FA', seq: 504, ack: 900, ttl: 63 })) },
        stateIs(t, 'tcp_half_closed_client', T0 + 1),
        { label: 'backend data 20 s later', now: T0 + 20_001, inPort: BE_PORT, in: fromBe({ ...b, flags: 'PA', seq: 900, ack: 505, payload: 'answer' }),
          expect: reply(toCli({ proto: 'TCP', src: vip, dst: client, sport: 80, dport: 40000, flags: 'PA', seq: 900, ack: 505, payload: 'answer', ttl: 63 })) },
        stateIs(t, 'tcp_half_closed_client', T0 + 20_001),
        { label: 'backend FIN', now: T0 + 20_002, inPort: BE_PORT, in: fromBe({ ...b, flags: 'FA', seq: 906, ack: 505 }),
          expect: reply(toCli({ proto: 'TCP', src: vip, dst: client, sport: 80, dport: 40000, flags: 'FA', seq: 906, ack: 505, ttl: 63 })) },
        stateIs(t, 'tcp_closing', T0 + 20_002),
      ],
    });
  });

  test(`IPv${fam} TCP: a FIN after the backend's SYN-ACK half-closes (the kernel's SYN_RECV -> FIN_WAIT); the backend answers 20 s later`, (t) => {
    const c = { proto: 'TCP', src: client, dst: vip, sport: 40001, dport: 80 };
    const b = { proto: 'TCP', src: be, dst: client, sport: 8080, dport: 40001 };
    runScenario(t, {
      tables: singleService({ vip, port: 80, proto: 'TCP', be, bport: 8080 }),
      steps: [
        { label: 'SYN', now: T0, in: cli({ ...c, flags: 'S', seq: 1 }), expect: fwd(BE_PORT, toBe({ ...c, dst: be, dport: 8080, flags: 'S', seq: 1, ttl: 63 })) },
        { label: 'SYN-ACK', now: T0, inPort: BE_PORT, in: fromBe({ ...b, flags: 'SA', seq: 70, ack: 2 }),
          expect: reply(toCli({ proto: 'TCP', src: vip, dst: client, sport: 80, dport: 40001, flags: 'SA', seq: 70, ack: 2, ttl: 63 })) },
        stateIs(t, 'tcp_syn_recv', T0),
        // the client's request and FIN in one segment, which also ACKs the SYN-ACK
        { label: 'request + FIN', now: T0 + 1, in: cli({ ...c, flags: 'FPA', seq: 2, ack: 71, payload: 'GET' }),
          expect: fwd(BE_PORT, toBe({ ...c, dst: be, dport: 8080, flags: 'FPA', seq: 2, ack: 71, payload: 'GET', ttl: 63 })) },
        stateIs(t, 'tcp_half_closed_client', T0 + 1),
        { label: 'answer 20 s later', now: T0 + 20_001, inPort: BE_PORT, in: fromBe({ ...b, flags: 'PA', seq: 71, ack: 6, payload: 'slow' }),
          expect: reply(toCli({ proto: 'TCP', src: vip, dst: client, sport: 80, dport: 40001, flags: 'PA', seq: 71, ack: 6, payload: 'slow', ttl: 63 })) },
      ],
    });
  });

  // Known difference (10), closed: the kernel's SCTP states and timeouts.
  test(`IPv${fam} SCTP: handshake, data, ABORT; the closed association's entry lasts 10 s, then a chunk makes a new flow`, (t) => {
    const c = { proto: 'SCTP', src: client, dst: vip, sport: 5000, dport: 7000 };
    const cOut = { ...c, dst: be, dport: 7001, ttl: 63 };
    const b = { proto: 'SCTP', src: be, dst: client, sport: 7001, dport: 5000 };
    const bOut = { proto: 'SCTP', src: vip, dst: client, sport: 7000, dport: 5000, ttl: 63 };
    const { core } = runScenario(t, {
      tables: singleService({ vip, port: 7000, proto: 'SCTP', be, bport: 7001 }),
      steps: [
        { label: 'INIT', now: T0, in: cli({ ...c, chunk: 'INIT' }), expect: fwd(BE_PORT, toBe({ ...cOut, chunk: 'INIT' })) },
        stateIs(t, 'sctp_closed', T0),
        { label: 'INIT-ACK', now: T0, inPort: BE_PORT, in: fromBe({ ...b, chunk: 'INIT_ACK', vtag: 9, payload: [0, 0, 0, 7] }),
          expect: reply(toCli({ ...bOut, chunk: 'INIT_ACK', vtag: 9, payload: [0, 0, 0, 7] })) },
        stateIs(t, 'sctp_cookie_wait', T0),
        { label: 'COOKIE-ECHO', now: T0 + 1, in: cli({ ...c, chunk: 'COOKIE_ECHO', vtag: 7, payload: 'cookie!!' }),
          expect: fwd(BE_PORT, toBe({ ...cOut, chunk: 'COOKIE_ECHO', vtag: 7, payload: 'cookie!!' })) },
        stateIs(t, 'sctp_cookie_echoed', T0 + 1),
        { label: 'COOKIE-ACK', now: T0 + 2, inPort: BE_PORT, in: fromBe({ ...b, chunk: 'COOKIE_ACK', vtag: 9 }),
          expect: reply(toCli({ ...bOut, chunk: 'COOKIE_ACK', vtag: 9 })) },
        stateIs(t, 'sctp_established', T0 + 2),
        // idle 200 s (the kernel's 210 s ESTABLISHED timeout), then data
        { label: 'DATA 200 s later', now: T0 + 200_002, in: cli({ ...c, chunk: 'DATA', vtag: 7, payload: 'hello' }),
          expect: fwd(BE_PORT, toBe({ ...cOut, chunk: 'DATA', vtag: 7, payload: 'hello' })) },
        stateIs(t, 'sctp_established', T0 + 200_002),
        { label: 'ABORT from the backend', now: T0 + 200_003, inPort: BE_PORT, in: fromBe({ ...b, chunk: 'ABORT', vtag: 9 }),
          expect: reply(toCli({ ...bOut, chunk: 'ABORT', vtag: 9 })) },
        stateIs(t, 'sctp_closed', T0 + 200_003),
        stateIs(t, 'sctp_closed', T0 + 210_003),
        stateIs(t, undefined, T0 + 210_004),
        { check: ({ core: k }) => t.is(k.counters().global.ct_new, 1) },
        { label: 'a late DATA opens a new flow', now: T0 + 210_004, in: cli({ ...c, chunk: 'DATA', vtag: 7, payload: 'late' }),
          expect: fwd(BE_PORT, toBe({ ...cOut, chunk: 'DATA', vtag: 7, payload: 'late' })) },
        stateIs(t, 'sctp_closed', T0 + 210_004),
      ],
    });
    t.is(core.counters().global.ct_new, 2);
    t.is(core.counters().global.ct_expired, 1);
  });

  test(`IPv${fam} SCTP: an unanswered handshake step expires after 3 s (the kernel's COOKIE_WAIT); the retried COOKIE-ECHO is a new flow`, (t) => {
    const c = { proto: 'SCTP', src: client, dst: vip, sport: 5001, dport: 7000 };
    const cOut = { ...c, dst: be, dport: 7001, ttl: 63 };
    const b = { proto: 'SCTP', src: be, dst: client, sport: 7001, dport: 5001 };
    const { core } = runScenario(t, {
      tables: singleService({ vip, port: 7000, proto: 'SCTP', be, bport: 7001 }),
      steps: [
        { label: 'INIT', now: T0, in: cli({ ...c, chunk: 'INIT' }), expect: fwd(BE_PORT, toBe({ ...cOut, chunk: 'INIT' })) },
        { label: 'INIT-ACK', now: T0, inPort: BE_PORT, in: fromBe({ ...b, chunk: 'INIT_ACK', vtag: 9 }),
          expect: reply(toCli({ proto: 'SCTP', src: vip, dst: client, sport: 7000, dport: 5001, chunk: 'INIT_ACK', vtag: 9, ttl: 63 })) },
        stateIs(t, 'sctp_cookie_wait', T0 + 3000),
        stateIs(t, undefined, T0 + 3001),
        { label: 'COOKIE-ECHO 3.001 s later', now: T0 + 3001, in: cli({ ...c, chunk: 'COOKIE_ECHO', vtag: 7 }),
          expect: fwd(BE_PORT, toBe({ ...cOut, chunk: 'COOKIE_ECHO', vtag: 7 })) },
        stateIs(t, 'sctp_closed', T0 + 3001),
      ],
    });
    t.is(core.counters().global.ct_new, 2);
  });
}

test('the SCTP and TCP state timeouts a default core applies (src/core/timeouts.ts)', (t) => {
  const { core } = runScenario(t, { tables: singleService({ vip: '10.96.0.10', port: 80, proto: 'TCP', be: '10.1.0.5', bport: 8080 }), steps: [] });
  const to = core.flowTimeouts();
  const want = {
    [L.CTS_SCTP_CLOSED]: 10_000, [L.CTS_SCTP_COOKIE_WAIT]: 3000, [L.CTS_SCTP_COOKIE_ECHOED]: 3000, [L.CTS_SCTP]: 210_000,
    [L.CTS_SCTP_SHUTDOWN]: 3000, [L.CTS_SCTP_SHUTDOWN_ACK_SENT]: 3000, [L.CTS_SCTP_HEARTBEAT_SENT]: 30_000,
    [L.CTS_TCP_MIDSTREAM]: 60_000, [L.CTS_TCP_HALF_CLOSED_ORIG]: 3600_000, [L.CTS_TCP_HALF_CLOSED_REPLY]: 3600_000,
  };
  for (const [st, ms] of Object.entries(want)) t.is(to[st], ms, `state ${st}`);
});
