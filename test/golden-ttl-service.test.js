// Golden packets of the time exceeded a packet to a service address, or of a service flow, gets when
// its TTL / hop limit runs out at the node (docs/core.md "Time exceeded"). Under kube-proxy the
// kernel DNATs in PREROUTING, ip_forward / ip6_forward then answers time exceeded, and the error
// skb is attached to the packet's conntrack entry (icmp_glue_bits / icmpv6_getfrag: nf_ct_attach;
// the entry of a new flow's probe too, unconfirmed), so nf_nat_icmp_reply_translation reverses the
// NAT on the way out: the client gets the error FROM the service address it used, quoting its own
// packet as it sent it; no conntrack entry stays behind for a probe. A backend's reply whose TTL
// runs out is answered to the backend from the node (the in port's address; a masqueraded flow's
// SNAT address). Every step runs through the Wasm core and the reference model
// (test/lib/golden-scenario.js); the expected frames are built independently with
// src/packet/build.ts.
import test from 'ava';
import * as B from '../dist/src/packet/build.js';
import { flowHash } from '../dist/src/core/hash.js';
import { parseAddr } from '../dist/src/util/addr.js';
import { backend, frontend, mkIr, MAC, L } from './lib/packets.js';
import { runScenario, errorHeader, answerError, CLIENT_PORT, BE_PORT, fwd, reply, dropped, cli, toBe, fromBe, toCli } from './lib/golden-scenario.js';

const SNAT_MIN = 32768, SNAT_MAX = 60999;

const modelFlows = (m) => m.flows.filter(Boolean).length;

const FAMILIES = [
  { fam: 4, client: '10.0.0.1', vip: '10.96.0.10', be: '10.1.0.5', node: '192.168.0.1', gw: '10.1.0.1', snat: '192.168.0.1' },
  { fam: 6, client: 'fd00::1', vip: 'fd00:96::a', be: 'fd00:1::5', node: 'fd00:168::1', gw: 'fd00:1::1', snat: 'fd00:168::1' },
];

function tables({ fam, vip, be, node, snat }, flags = 0) {
  const bes = [backend({ id: 1, addr: be, port: 8080, outPort: BE_PORT }), backend({ id: 2, addr: be, port: 5353, outPort: BE_PORT })];
  return mkIr({
    frontends: [
      frontend({ id: 1, addr: vip, port: 80, proto: 'TCP', flags }, [bes[0]]),
      frontend({ id: 2, addr: vip, port: 53, proto: 'UDP', flags }, [bes[1]]),
      // a NodePort: the node's own address
      frontend({ id: 3, addr: node, port: 30080, proto: 'TCP', kind: 'NodePort', flags }, [bes[0]]),
    ],
    backends: bes,
    ...(fam === 4 ? { snatV4: snat } : { snatV6: snat }),
  });
}

const exceeded = (frame, outPort = CLIENT_PORT) => ({ verdict: 'reject', reason: 'reject_ttl_exceeded', outPort, frame });

for (const F of FAMILIES) {
  const { fam, client, vip, be, node, gw, snat } = F;
  // the answers of one scenario, their header icmp_send's (errorHeader: numbered in order)
  const answers = () => {
    const h = errorHeader(fam);
    return {
      toClient: (s, tos = 0) => answerError({ kind: 'time_exceeded', ...h(tos), srcMac: MAC.node, dstMac: MAC.client, dst: client, ...s }),
      toBackend: (s) => answerError({ kind: 'time_exceeded', ...h(), srcMac: MAC.beSrc, dstMac: MAC.beDst, dst: be, ...s }),
    };
  };
  const opts = { portAddresses: { [CLIENT_PORT]: [fam === 4 ? '10.0.0.254' : 'fd00::fe'], [BE_PORT]: [gw] } };

  test(`IPv${fam}: a new flow's probe with TTL 1 (ClusterIP, NodePort) is answered from the service address, quoting it as sent; no flow is created`, (t) => {
    const { toClient } = answers();
    const syn = { proto: 'TCP', sport: 40000, dport: 80, flags: 'S', seq: 1000 };
    const np = { ...syn, sport: 40001, dport: 30080 };
    const u = { proto: 'UDP', sport: 40002, dport: 53, payload: 'query' };
    const { core, model } = runScenario(t, {
      tables: tables(F), opts,
      steps: [
        { label: 'SYN TTL 1 to the ClusterIP', in: cli({ ...syn, src: client, dst: vip, ttl: 1 }),
          expect: exceeded(toClient({ src: vip, inner: B.ipPacket({ ...syn, src: client, dst: vip, ttl: 1 }) })) },
        { label: 'SYN TTL 0 to the NodePort', in: cli({ ...np, src: client, dst: node, ttl: 0 }),
          expect: exceeded(toClient({ src: node, inner: B.ipPacket({ ...np, src: client, dst: node, ttl: 0 }) })) },
        { label: 'UDP TTL 1 to the ClusterIP', in: cli({ ...u, src: client, dst: vip, ttl: 1 }),
          expect: exceeded(toClient({ src: vip, inner: B.ipPacket({ ...u, src: client, dst: vip, ttl: 1 }) })) },
        // the answer's TOS: precedence internetwork control with the probe's TOS bits, not its
        // precedence or ECN (icmp_send); IPv6: traffic class 0
        { label: 'UDP TTL 1 with TOS 0xbb', in: cli({ ...u, sport: 40003, src: client, dst: vip, ttl: 1, tos: 0xbb }),
          expect: exceeded(toClient({ src: vip, inner: B.ipPacket({ ...u, sport: 40003, src: client, dst: vip, ttl: 1, tos: 0xbb }) }, 0xbb)) },
        { check: ({ core: c, model: m }) => { t.is(c.flows().length, 0, 'core: no flow for the probes'); t.is(modelFlows(m), 0, 'model: no flow'); } },
        // the same tuple with TTL 2 opens its flow as if the probe had never been
        { label: 'SYN TTL 2', in: cli({ ...syn, src: client, dst: vip, ttl: 2 }),
          expect: fwd(BE_PORT, toBe({ ...syn, src: client, dst: be, dport: 8080, ttl: 1 })) },
      ],
    });
    t.is(core.flows().length, 1);
    t.is(modelFlows(model), 1);
    t.is(core.counters().reasons.reject_ttl_exceeded, 4);
  });

  test(`IPv${fam}: a spent TTL on an established flow is answered from the service address (client side) or the node (backend side)`, (t) => {
    const { toClient, toBackend } = answers();
    const q = { proto: 'UDP', sport: 40000, dport: 53, payload: 'query' };
    const r = { proto: 'UDP', sport: 5353, dport: 40000, payload: 'answer' };
    const data = { proto: 'TCP', sport: 40005, dport: 80, flags: 'PA', seq: 1, ack: 1, payload: 'data' };
    runScenario(t, {
      tables: tables(F), opts,
      steps: [
        { label: 'query', in: cli({ ...q, src: client, dst: vip }), expect: fwd(BE_PORT, toBe({ ...q, src: client, dst: be, dport: 5353, ttl: 63 })) },
        { label: 'answer', inPort: BE_PORT, in: fromBe({ ...r, src: be, dst: client }), expect: reply(toCli({ ...r, src: vip, dst: client, sport: 53, ttl: 63 })) },
        { label: 'query TTL 1 on the flow', in: cli({ ...q, src: client, dst: vip, ttl: 1 }),
          expect: exceeded(toClient({ src: vip, inner: B.ipPacket({ ...q, src: client, dst: vip, ttl: 1 }) })) },
        { label: 'answer TTL 1 on the flow: to the backend from its port\'s address', inPort: BE_PORT, in: fromBe({ ...r, src: be, dst: client, ttl: 1 }),
          expect: exceeded(toBackend({ src: gw, inner: B.ipPacket({ ...r, src: be, dst: client, ttl: 1 }) }), BE_PORT) },
        { label: 'the flow still forwards', in: cli({ ...q, src: client, dst: vip, ttl: 2 }), expect: fwd(BE_PORT, toBe({ ...q, src: client, dst: be, dport: 5353, ttl: 1 })) },
        // TCP: the SYN opens the flow, a segment with TTL 1 on it is answered
        { label: 'SYN', in: cli({ ...data, flags: 'S', payload: undefined, src: client, dst: vip }), expect: fwd(BE_PORT, toBe({ ...data, flags: 'S', payload: undefined, src: client, dst: be, dport: 8080, ttl: 63 })) },
        { label: 'data TTL 1', in: cli({ ...data, src: client, dst: vip, ttl: 1 }),
          expect: exceeded(toClient({ src: vip, inner: B.ipPacket({ ...data, src: client, dst: vip, ttl: 1 }) })) },
        { label: 'answer TTL 1 from a port without an address of the family', inPort: 9, in: fromBe({ ...r, src: be, dst: client, ttl: 1 }), expect: dropped('drop_ttl_no_address') },
      ],
    });
  });

  test(`IPv${fam}: a masqueraded flow's reply with TTL 1 is answered from the SNAT address; the client's probe from the service address`, (t) => {
    const { toClient, toBackend } = answers();
    const q = { proto: 'UDP', sport: 33333, dport: 53, payload: 'query' };
    const h = flowHash(parseAddr(client).bytes, parseAddr(vip).bytes, 33333, 53, 17);
    const nport = SNAT_MIN + (h % (SNAT_MAX - SNAT_MIN + 1));
    const r = { proto: 'UDP', sport: 5353, dport: nport, payload: 'answer' };
    runScenario(t, {
      tables: tables(F, L.FEF_MASQUERADE), opts,
      steps: [
        { label: 'query (masqueraded)', in: cli({ ...q, src: client, dst: vip }), expect: fwd(BE_PORT, toBe({ ...q, src: snat, dst: be, sport: nport, dport: 5353, ttl: 63 })) },
        { label: 'answer TTL 1', inPort: BE_PORT, in: fromBe({ ...r, src: be, dst: snat, ttl: 1 }),
          expect: exceeded(toBackend({ src: snat, inner: B.ipPacket({ ...r, src: be, dst: snat, ttl: 1 }) }), BE_PORT) },
        { label: 'query TTL 1', in: cli({ ...q, src: client, dst: vip, ttl: 1 }),
          expect: exceeded(toClient({ src: vip, inner: B.ipPacket({ ...q, src: client, dst: vip, ttl: 1 }) })) },
      ],
    });
  });

  test(`IPv${fam}: the service's answers share the reject rate limit; what the kernel never answers stays drop_ttl_exceeded`, (t) => {
    const { toClient } = answers();
    const u = { proto: 'UDP', dport: 53, payload: 'p' };
    const steps = [];
    for (let i = 0; i < 6; i++) {
      steps.push({ label: `probe ${i}`, in: cli({ ...u, sport: 40000 + i, src: client, dst: vip, ttl: 1 }),
        expect: exceeded(toClient({ src: vip, inner: B.ipPacket({ ...u, sport: 40000 + i, src: client, dst: vip, ttl: 1 }) })) });
    }
    steps.push({ label: 'probe 7', in: cli({ ...u, sport: 40010, src: client, dst: vip, ttl: 1 }), expect: dropped('drop_reject_rate_limited') });
    steps.push({ label: 'Ethernet broadcast', in: B.frame({ ...u, sport: 40011, srcMac: MAC.client, dstMac: 'ff:ff:ff:ff:ff:ff', src: client, dst: vip, ttl: 1 }), expect: dropped('drop_ttl_exceeded') });
    const interval = fam === 4 ? 1000 : 100;
    steps.push({ label: 'an interval later', now: 1000 + interval, in: cli({ ...u, sport: 40012, src: client, dst: vip, ttl: 1 }),
      expect: exceeded(toClient({ src: vip, inner: B.ipPacket({ ...u, sport: 40012, src: client, dst: vip, ttl: 1 }) })) });
    const { core } = runScenario(t, { tables: tables(F), opts, steps });
    t.is(core.counters().reasons.drop_reject_rate_limited, 1);
    t.is(core.flows().length, 0);
  });

  test(`IPv${fam}: a TTL-1 probe to a ClientIP-affinity Service records the client's affinity entry (kube-proxy's update @affinity runs before the TTL check); its next connection keeps to that backend`, (t) => {
    const { toClient } = answers();
    const bes = [1, 2, 3].map((i) => backend({ id: i, addr: fam === 4 ? `10.1.0.${i}` : `fd00:1::${i}`, port: 8080, outPort: BE_PORT }));
    const ir = mkIr({ frontends: [frontend({ id: 1, addr: vip, port: 80, proto: 'TCP', flags: L.FEF_AFFINITY }, bes)], backends: bes });
    const syn = { proto: 'TCP', dport: 80, flags: 'S', seq: 1 };
    const { core, model } = runScenario(t, {
      tables: ir, opts,
      steps: [
        { label: 'probe', in: cli({ ...syn, sport: 40000, src: client, dst: vip, ttl: 1 }),
          expect: exceeded(toClient({ src: vip, inner: B.ipPacket({ ...syn, sport: 40000, src: client, dst: vip, ttl: 1 }) })) },
        { check: ({ core: c, model: m }) => {
          t.is(c.counters().global.aff_new, 1, 'core: the probe wrote the affinity entry');
          t.is(c.flows().length, 0, 'core: no flow');
          t.is(m.affinity.filter(Boolean).length, 1, 'model: the affinity entry');
        } },
      ],
    });
    const pinned = model.affinity.find(Boolean).backend;
    // later connections from the client (other source ports) go to the probe's backend
    for (let i = 1; i <= 4; i++) {
      const r = core.run([{ frame: cli({ ...syn, sport: 40000 + i, src: client, dst: vip }), inPort: CLIENT_PORT }], 1000 + i)[0];
      t.is(r.reason, 'fwd_nat');
    }
    t.deepEqual([...new Set(core.flows().map((f) => f.backendId))], [pinned]);
    t.is(core.counters().global.aff_hit, 4);
  });

  test(`IPv${fam}: an ICMP error about a flow with TTL 1 is never answered (drop_ttl_exceeded)`, (t) => {
    const q = { proto: 'UDP', sport: 40000, dport: 53, payload: 'query' };
    const quoted = B.ipPacket({ ...q, src: client, dst: be, dport: 5353, ttl: 63 });
    runScenario(t, {
      tables: tables(F), opts,
      steps: [
        { label: 'query', in: cli({ ...q, src: client, dst: vip }), expect: fwd(BE_PORT, toBe({ ...q, src: client, dst: be, dport: 5353, ttl: 63 })) },
        { label: 'port unreachable TTL 1', inPort: BE_PORT, in: B.icmpError({ srcMac: MAC.beDst, dstMac: MAC.beSrc, src: be, dst: client, kind: 'port_unreachable', inner: quoted, ttl: 1 }),
          expect: dropped('drop_ttl_exceeded') },
      ],
    });
  });

  test(`IPv${fam}: a Service whose endpoint is the node itself (hostNetwork) keeps the TTL both ways, as the kernel's local delivery and output: a spent one forwarded unchanged, its flow created; TTL 255 arrives as 255`, (t) => {
    // the endpoint at the node's own address, behind the host's port (the kernel DNATs, routes the
    // packet to itself and delivers it: ip_local_deliver checks and decrements no TTL, and conntrack
    // confirms the entry on the way in; the host's answers are its output)
    const host = backend({ id: 1, addr: node, port: 8081, outPort: BE_PORT });
    const ir = mkIr({ frontends: [frontend({ id: 1, addr: vip, port: 80, proto: 'TCP' }, [host])], backends: [host], ...(fam === 4 ? { snatV4: snat } : { snatV6: snat }) });
    const syn = { proto: 'TCP', sport: 40000, dport: 80, flags: 'S', seq: 1000 };
    const synAck = { proto: 'TCP', sport: 8081, dport: 40000, flags: 'SA', seq: 5000, ack: 1001 };
    const data = { proto: 'TCP', sport: 40000, dport: 80, flags: 'PA', seq: 1001, ack: 5001, payload: 'GET' };
    const { core, model } = runScenario(t, {
      tables: ir, opts,
      steps: [
        { label: 'SYN TTL 1', in: cli({ ...syn, src: client, dst: vip, ttl: 1 }), expect: fwd(BE_PORT, toBe({ ...syn, src: client, dst: node, dport: 8081, ttl: 1 })) },
        { label: 'SYN TTL 0 (another source port)', in: cli({ ...syn, sport: 40001, src: client, dst: vip, ttl: 0 }),
          expect: fwd(BE_PORT, toBe({ ...syn, sport: 40001, src: client, dst: node, dport: 8081, ttl: 0 })) },
        { label: 'the host\'s SYN-ACK with TTL 1', inPort: BE_PORT, in: fromBe({ ...synAck, src: node, dst: client, ttl: 1 }),
          expect: reply(toCli({ ...synAck, src: vip, sport: 80, dst: client, ttl: 1 })) },
        { label: 'the host\'s SYN-ACK with TTL 255 (GTSM): kept', inPort: BE_PORT, in: fromBe({ ...synAck, src: node, dst: client, ttl: 255 }),
          expect: reply(toCli({ ...synAck, src: vip, sport: 80, dst: client, ttl: 255 })) },
        { label: 'data TTL 1 on the flow', in: cli({ ...data, src: client, dst: vip, ttl: 1 }), expect: fwd(BE_PORT, toBe({ ...data, src: client, dst: node, dport: 8081, ttl: 1 })) },
        { label: 'data TTL 2 on the flow: kept', in: cli({ ...data, src: client, dst: vip, ttl: 2 }),
          expect: fwd(BE_PORT, toBe({ ...data, src: client, dst: node, dport: 8081, ttl: 2 })) },
        { label: 'data TTL 255 on the flow (GTSM): kept', in: cli({ ...data, src: client, dst: vip, ttl: 255 }),
          expect: fwd(BE_PORT, toBe({ ...data, src: client, dst: node, dport: 8081, ttl: 255 })) },
        { label: 'a new SYN with TTL 255: kept', in: cli({ ...syn, sport: 40002, src: client, dst: vip, ttl: 255 }),
          expect: fwd(BE_PORT, toBe({ ...syn, sport: 40002, src: client, dst: node, dport: 8081, ttl: 255 })) },
      ],
    });
    t.is(core.flows().length, 3, 'core: the probes opened their flows');
    t.is(modelFlows(model), 3, 'model: the flows');
    t.is(core.counters().reasons.reject_ttl_exceeded ?? 0, 0);
  });

  test(`IPv${fam}: the node's own packets (a client at the node address: its traceroute to a ClusterIP, its BGP with TTL 255) keep the TTL both ways, as the kernel's output and local delivery: a spent one forwarded unchanged, the flow created`, (t) => {
    // the kernel DNATs its own packet in OUTPUT and sends it: only ip_forward checks and decrements
    // a TTL; the pod's reply to it is delivered locally
    const syn = { proto: 'TCP', sport: 40000, dport: 80, flags: 'S', seq: 1000 };
    const synAck = { proto: 'TCP', sport: 8080, dport: 40000, flags: 'SA', seq: 5000, ack: 1001 };
    const ack = { proto: 'TCP', sport: 40000, dport: 80, flags: 'A', seq: 1001, ack: 5001 };
    const { core, model } = runScenario(t, {
      tables: tables(F), opts,
      steps: [
        { label: 'the node\'s SYN TTL 1', in: cli({ ...syn, src: node, dst: vip, ttl: 1 }), expect: fwd(BE_PORT, toBe({ ...syn, src: node, dst: be, dport: 8080, ttl: 1 })) },
        { label: 'the pod\'s SYN-ACK TTL 1', inPort: BE_PORT, in: fromBe({ ...synAck, src: be, dst: node, ttl: 1 }),
          expect: reply(toCli({ ...synAck, src: vip, sport: 80, dst: node, ttl: 1 })) },
        { label: 'the node\'s ACK TTL 255: kept', in: cli({ ...ack, src: node, dst: vip, ttl: 255 }), expect: fwd(BE_PORT, toBe({ ...ack, src: node, dst: be, dport: 8080, ttl: 255 })) },
        { label: 'the pod\'s answer TTL 64: kept', inPort: BE_PORT, in: fromBe({ ...synAck, flags: 'A', src: be, dst: node, ttl: 64 }),
          expect: reply(toCli({ ...synAck, flags: 'A', src: vip, sport: 80, dst: node, ttl: 64 })) },
        { label: 'another client\'s SYN TTL 64: decremented', in: cli({ ...syn, src: client, dst: vip, ttl: 64 }), expect: fwd(BE_PORT, toBe({ ...syn, src: client, dst: be, dport: 8080, ttl: 63 })) },
      ],
    });
    t.is(core.flows().length, 2);
    t.is(modelFlows(model), 2);
    t.is(core.counters().reasons.reject_ttl_exceeded ?? 0, 0);
  });

  test(`IPv${fam}: an ICMP error translated for a flow with the node at one end keeps its TTL, a TTL of 1 too (delivered locally, or the node's output); other flows' errors are decremented`, (t) => {
    const q = { proto: 'UDP', sport: 40000, dport: 53, payload: 'query' };
    const a = { proto: 'UDP', sport: 5353, payload: 'answer' };
    const quotedQ = B.ipPacket({ ...q, src: node, dst: be, dport: 5353, ttl: 64 });
    const asSent = B.ipPacket({ ...q, src: node, dst: vip, ttl: 64 });
    const quotedA = B.ipPacket({ ...a, src: vip, sport: 53, dst: node, dport: 40000, ttl: 64 });
    const asAnswered = B.ipPacket({ ...a, src: be, dst: node, dport: 40000, ttl: 64 });
    const quotedC = B.ipPacket({ ...q, sport: 40001, src: client, dst: be, dport: 5353, ttl: 63 });
    const asSentC = B.ipPacket({ ...q, sport: 40001, src: client, dst: vip, ttl: 63 });
    const err = (s) => B.icmpError({ kind: 'port_unreachable', ...s });
    runScenario(t, {
      tables: tables(F), opts,
      steps: [
        { label: 'the node\'s query', in: cli({ ...q, src: node, dst: vip, ttl: 64 }), expect: fwd(BE_PORT, toBe({ ...q, src: node, dst: be, dport: 5353, ttl: 64 })) },
        { label: 'port unreachable to the node, TTL 1: delivered', inPort: BE_PORT, in: err({ srcMac: MAC.beDst, dstMac: MAC.beSrc, src: be, dst: node, inner: quotedQ, ttl: 1 }),
          expect: { verdict: 'forward', reason: 'fwd_icmp_error', outPort: CLIENT_PORT, frame: err({ srcMac: MAC.node, dstMac: MAC.client, src: vip, dst: node, inner: asSent, ttl: 1 }) } },
        { label: 'port unreachable to the node, TTL 64: kept', inPort: BE_PORT, in: err({ srcMac: MAC.beDst, dstMac: MAC.beSrc, src: be, dst: node, inner: quotedQ, ttl: 64 }),
          expect: { verdict: 'forward', reason: 'fwd_icmp_error', outPort: CLIENT_PORT, frame: err({ srcMac: MAC.node, dstMac: MAC.client, src: vip, dst: node, inner: asSent, ttl: 64 }) } },
        { label: 'the pod\'s answer', inPort: BE_PORT, in: fromBe({ ...a, src: be, dst: node, dport: 40000, ttl: 64 }), expect: reply(toCli({ ...a, src: vip, sport: 53, dst: node, dport: 40000, ttl: 64 })) },
        { label: 'the node\'s port unreachable about the answer, TTL 1: its output', in: err({ srcMac: MAC.client, dstMac: MAC.node, src: node, dst: vip, inner: quotedA, ttl: 1 }),
          expect: { verdict: 'forward', reason: 'fwd_icmp_error', outPort: BE_PORT, frame: err({ srcMac: MAC.beSrc, dstMac: MAC.beDst, src: node, dst: be, inner: asAnswered, ttl: 1 }) } },
        { label: 'another client\'s query', in: cli({ ...q, sport: 40001, src: client, dst: vip, ttl: 64 }), expect: fwd(BE_PORT, toBe({ ...q, sport: 40001, src: client, dst: be, dport: 5353, ttl: 63 })) },
        { label: 'port unreachable to it, TTL 64: decremented', inPort: BE_PORT, in: err({ srcMac: MAC.beDst, dstMac: MAC.beSrc, src: be, dst: client, inner: quotedC, ttl: 64 }),
          expect: { verdict: 'forward', reason: 'fwd_icmp_error', outPort: CLIENT_PORT, frame: err({ srcMac: MAC.node, dstMac: MAC.client, src: vip, dst: client, inner: asSentC, ttl: 63 }) } },
        { label: 'port unreachable to it, TTL 1: dropped', inPort: BE_PORT, in: err({ srcMac: MAC.beDst, dstMac: MAC.beSrc, src: be, dst: client, inner: quotedC, ttl: 1 }),
          expect: dropped('drop_ttl_exceeded') },
      ],
    });
  });
}
