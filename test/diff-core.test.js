// Differential test: random service tables and random packet sequences (new flows, replies of
// existing flows, ICMP errors about flows, junk, time jumps that expire flows and affinity,
// table changes that remove backends) run through the Wasm core and the reference model; every
// packet's verdict, reason, out port and output bytes must agree, and so must the counters and the
// set of live flows at the end. Small capacities (32 flows, 16 affinity slots, short timeouts) so
// that eviction, expiry cursors, SNAT probing and affinity replacement are exercised too.
import test from 'ava';
import fc from 'fast-check';
import { Core } from '../dist/src/core/host.js';
import { ReferenceModel } from '../dist/src/reference/model.js';
import * as B from '../dist/src/packet/build.js';
import { formatAddr } from '../dist/src/util/addr.js';
import { GLOBAL_COUNTER_NAMES, REASON_NAMES, CT_STATE_NAMES, CT_FLAG_NAMES } from '../dist/src/core/names.js';
import { backend, frontend, mkIr, runBoth, firstMismatch, MAC, L } from './lib/packets.js';

const OPTS = {
  flows: 32, affinitySlots: 16, batchMax: 16, expireBudget: 4, evictWindow: 8,
  snatPortMin: 40000, snatPortMax: 40063,
  timeouts: { tcpSynMs: 2000, tcpEstablishedMs: 8000, tcpCloseMs: 1000, udpMs: 3000, udpRepliedMs: 6000, sctpMs: 8000 },
};
const PROTOS = ['TCP', 'UDP', 'SCTP'];
// 12 clients per family: with 16 affinity slots several services' entries collide, so the
// probe window fills and least-recently-seen replacement is exercised
const CLIENTS = {
  4: ['10.0.0.1', '10.0.0.2', '10.0.0.3', '203.0.113.9', ...Array.from({ length: 8 }, (_, i) => `198.18.0.${i + 1}`)],
  6: ['fd00::1', 'fd00::2', 'fd00::3', '2001:db8::9', ...Array.from({ length: 8 }, (_, i) => `2001:db8:18::${i + 1}`)],
};
const SNAT = { 4: '10.255.0.1', 6: 'fd00:ff::1' };
// node: 'client' makes a client address the SNAT address (the node itself as a client, and
// backends at it: hostNetwork endpoints); 'clientHairpin' adds hairpin addresses, the source of
// the node's flows to itself (a later generation without them makes those flows stale)
const NODE_SNAT = { 4: CLIENTS[4][2], 6: CLIENTS[6][2] };
// the node's second address (an external IP next to the internal one; a client too): a node
// entry of the detector, backends at it are hostNetwork endpoints as well
const NODE_SECOND = { 4: CLIENTS[4][3], 6: CLIENTS[6][3] };
const HAIRPIN = { 4: '169.254.42.1', 6: 'fd00:ff::42' };

const vipOf = (fam, i) => (fam === 4 ? `10.96.0.${i}` : `fd00:96::${i.toString(16)}`);
const beAddrOf = (fam, s, j) => (fam === 4 ? `10.1.${s}.${j}` : `fd00:1:${s.toString(16)}::${j.toString(16)}`);

// ---- arbitraries ------------------------------------------------------------------------------

const serviceArb = fc.record({
  fam: fc.constantFrom(4, 6),
  ports: fc.uniqueArray(fc.record({ port: fc.constantFrom(53, 80, 443, 7000), proto: fc.constantFrom(...PROTOS) }), { minLength: 1, maxLength: 2, selector: (p) => `${p.port}/${p.proto}` }),
  backends: fc.array(fc.record({
    state: fc.constantFrom(L.BES_READY, L.BES_READY, L.BES_READY, L.BES_TERMINATING_SERVING, L.BES_NOT_SERVING),
    outPort: fc.constantFrom(1, 2, 2, 4, L.PORT_NONE),
    clientAddr: fc.boolean(),   // the backend shares a client's address: hairpin traffic
    second: fc.boolean(),       // with clientAddr and a node: at the node's second address
  }), { maxLength: 4 }),
  affinity: fc.boolean(),
  masquerade: fc.boolean(),
  // a Local traffic policy left no endpoint though the service has some (drop, not reject)
  policyDrop: fc.constantFrom(undefined, undefined, 'internal', 'external'),
  sourceRange: fc.constantFrom(undefined, undefined, 'narrow', 'wide'),
  m: fc.constantFrom(7, 13, 251),
  // an externalTrafficPolicy Local address next to the ClusterIP: over the first `local` backends
  // ("this node's"), naming the ClusterIP as its cluster front (in-cluster sources short-circuit)
  etpLocal: fc.constantFrom(undefined, undefined, 0, 1, 2),
  outsideMasq: fc.boolean(),   // FEF_MASQUERADE_OUTSIDE on the ClusterIP (a detector configured)
});

const irArb = fc.record({
  services: fc.array(serviceArb, { minLength: 1, maxLength: 5 }),
  snatV4: fc.boolean(), snatV6: fc.boolean(),
  node: fc.constantFrom('none', 'client', 'clientHairpin', 'clientHairpin'),
  routes: fc.boolean(),
  // local-source entries: 'cidr': clients 10.0.0.1-3 / fd00::1-3 are pods; 'port': what arrives on
  // port 3 (every client frame) is a pod's; both: 203.0.113.9 / 2001:db8::9 are the node
  localDetector: fc.constantFrom(undefined, 'cidr', 'cidr', 'port'),
  // egress MTU of ports 0..6 (0: unknown): small ones stop some of the (small) random frames
  mtus: fc.array(fc.constantFrom(0, 0, 0, 60, 90, 1280), { minLength: 7, maxLength: 7 }),
});

/** Ir from a generated description. `dropMask` removes some backends, `rotate` hands every
 * frontend id to another frontend (a later generation: Services re-created elsewhere, their ids
 * reused, while their backends stay). */
function buildIr(d, dropMask = 0, rotate = 0) {
  const frontends = [], backends = [];
  let feId = 1, beId = 1;
  d.services.forEach((svc, s) => {
    const fam = svc.fam;
    const bes = [];
    svc.backends.forEach((b, j) => {
      const id = beId++;
      if (dropMask & (1 << (id % 16))) return;
      const addr = !b.clientAddr ? beAddrOf(fam, s + 1, j + 1) : d.node === 'none' ? CLIENTS[fam][j % 3]
        : b.second ? NODE_SECOND[fam] : j % 2 === 0 ? NODE_SNAT[fam] : CLIENTS[fam][j % 3];
      bes.push(backend({ id, addr, port: 8000 + j, state: b.state, outPort: b.outPort, service: `ns/s${s}` }));
    });
    backends.push(...bes);
    svc.ports.forEach((p) => {
      let flags = 0;
      if (svc.affinity) flags |= L.FEF_AFFINITY;
      if (svc.masquerade) flags |= L.FEF_MASQUERADE;
      if (svc.outsideMasq) flags |= L.FEF_MASQUERADE_OUTSIDE;
      if (svc.policyDrop) flags |= L.FEF_POLICY_DROP | (svc.policyDrop === 'external' ? L.FEF_EXTERNAL : 0);
      const sourceRanges = svc.sourceRange === 'narrow' ? [fam === 4 ? '10.0.0.0/31' : 'fd00::/127'] : svc.sourceRange === 'wide' ? [fam === 4 ? '0.0.0.0/0' : '::/0'] : [];
      // distinct backend target ports per frontend port so two ports of a service never share a reply tuple
      const pbes = bes.map((b) => ({ ...b }));
      const clusterId = feId++;
      frontends.push(frontend({ id: clusterId, addr: vipOf(fam, s + 1), port: p.port, proto: p.proto, flags, sourceRanges, affinityTimeoutMs: 2500, service: `ns/s${s}` }, pbes, svc.m));
      if (svc.etpLocal !== undefined) {
        const local = pbes.slice(0, svc.etpLocal).map((b) => ({ ...b }));
        // (as the compiler: a local set follows a pin of the port only into itself)
        const extFlags = L.FEF_EXTERNAL | (flags & L.FEF_AFFINITY ? L.FEF_AFFINITY | L.FEF_AFFINITY_IN_SET : 0) | (local.length === 0 && pbes.length ? L.FEF_POLICY_DROP | (s % 2 ? L.FEF_NODE_SOURCE_DROP : 0) : 0);
        frontends.push(frontend({ id: feId++, kind: 'LoadBalancer', addr: fam === 4 ? `198.51.100.${s + 1}` : `2001:db8:51::${s + 1}`, port: p.port, proto: p.proto, flags: extFlags, affinityTimeoutMs: 2500, service: `ns/s${s}`, clusterFront: clusterId }, local, svc.m));
      } else if (svc.affinity && s % 2) {
        // both policies Cluster: the LB IP has the ClusterIP's set and keys its affinity entries by it
        const shared = L.FEF_EXTERNAL | L.FEF_AFFINITY | L.FEF_AFFINITY_SHARED | (flags & L.FEF_MASQUERADE);
        frontends.push(frontend({ id: feId++, kind: 'LoadBalancer', addr: fam === 4 ? `198.51.100.${s + 1}` : `2001:db8:51::${s + 1}`, port: p.port, proto: p.proto, flags: shared, affinityTimeoutMs: 2500, service: `ns/s${s}`, clusterFront: clusterId }, pbes.map((b) => ({ ...b })), svc.m));
      }
    });
  });
  const routes = d.routes ? [
    { prefix: '172.16.0.0/12', outPort: 5, dstMac: MAC.rtDst, srcMac: MAC.rtSrc },
    { prefix: '172.16.1.0/24', outPort: L.PORT_NONE, dstMac: MAC.rtDst, srcMac: MAC.rtSrc },
    { prefix: 'fd00:aaaa::/32', outPort: 6, dstMac: MAC.rtDst, srcMac: MAC.rtSrc },
  ] : [];
  const none = { outPort: L.PORT_NONE, dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00' };
  // the node's addresses (the compiler writes them whenever there is a node): both, or the second
  if (d.node !== 'none') routes.push({ prefix: `${NODE_SNAT[4]}/32`, ...none, localSource: 'node' }, { prefix: `${NODE_SNAT[6]}/128`, ...none, localSource: 'node' });
  if (d.localDetector || d.node !== 'none') routes.push({ prefix: `${NODE_SECOND[4]}/32`, ...none, localSource: 'node' }, { prefix: `${NODE_SECOND[6]}/128`, ...none, localSource: 'node' });
  if (d.localDetector) routes.push(
    ...(d.localDetector === 'port' ? [{ prefix: '0.0.0.0/0', ...none, outPort: 3, localSource: 'podPort' }]
      : [{ prefix: '10.0.0.0/30', ...none, localSource: 'pod' }, { prefix: 'fd00::/126', ...none, localSource: 'pod' }]),
  );
  const snat = d.node === 'none' ? SNAT : NODE_SNAT;
  const hairpin = d.node === 'clientHairpin' && !(dropMask & 0x8000);
  if (rotate % frontends.length) {
    const moved = (id) => ((id - 1 + rotate) % frontends.length) + 1;
    for (const f of frontends) { f.id = moved(f.id); if (f.clusterFront) f.clusterFront = moved(f.clusterFront); }
  }
  return mkIr({ frontends, backends, routes, snatV4: d.snatV4 ? snat[4] : undefined, snatV6: d.snatV6 ? snat[6] : undefined,
    hairpinV4: hairpin ? HAIRPIN[4] : undefined, hairpinV6: hairpin ? HAIRPIN[6] : undefined });
}

const flagsArb = fc.constantFrom('S', 'S', 'A', 'PA', 'SA', 'FA', 'R', 'F', '');
// SCTP: the first chunk (undefined: the builder's INIT, or DATA with a payload), the ones a side
// sends in the kernel's state machine more often than the others, so runs reach every state
const SCTP_ANY = ['INIT', 'INIT_ACK', 'COOKIE_ECHO', 'COOKIE_ACK', 'SHUTDOWN', 'SHUTDOWN_ACK', 'SHUTDOWN_COMPLETE', 'ABORT', 'HEARTBEAT', 'HEARTBEAT_ACK', 'ERROR', 'DATA', 'SACK'];
const chunkNewArb = fc.constantFrom(undefined, 'INIT', 'INIT', 'HEARTBEAT', ...SCTP_ANY);
const chunkOrigArb = fc.constantFrom(undefined, 'COOKIE_ECHO', 'COOKIE_ECHO', 'SHUTDOWN', 'SHUTDOWN_COMPLETE', 'DATA', ...SCTP_ANY);
const chunkReplyArb = fc.constantFrom(undefined, 'INIT_ACK', 'INIT_ACK', 'COOKIE_ACK', 'COOKIE_ACK', 'SHUTDOWN_ACK', 'HEARTBEAT_ACK', ...SCTP_ANY);
const opArb = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('new'), fe: fc.nat(), client: fc.nat(11), sport: fc.constantFrom(1000, 1001, 2000, 40000), flags: flagsArb, chunk: chunkNewArb, ttl: fc.constantFrom(64, 64, 64, 2, 1), vlan: fc.constantFrom(undefined, undefined, undefined, 7), payload: fc.nat(40), df: fc.boolean(), udpNoCsum: fc.boolean(), shape: fc.constantFrom('plain', 'plain', 'plain', 'options', 'ext', 'firstFragment') }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('burst'), fe: fc.nat(), client: fc.nat(11), n: fc.integer({ min: 4, max: 24 }), sport: fc.integer({ min: 1024, max: 60000 }), flags: flagsArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('replyAll'), flags: fc.constantFrom('SA', 'A', 'PA') }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('reply'), flow: fc.nat(), flags: flagsArb, chunk: chunkReplyArb, ttl: fc.constantFrom(64, 64, 1), payload: fc.nat(40), df: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('again'), flow: fc.nat(), flags: flagsArb, chunk: chunkOrigArb }) },
  // an SCTP flow's next step along an association's life (the model's state picks it): random
  // chunks alone seldom complete a handshake within its 3 s
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('sctpStep'), flow: fc.nat(), pick: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('icmp'), flow: fc.nat(), fromBackend: fc.boolean(), quote: fc.constantFrom(undefined, 28, 48, 60, 72), errKind: fc.constantFrom('port_unreachable', 'time_exceeded', 'host_unreachable', 'mtu'), quoteExt: fc.constantFrom('none', 'none', 'hop', 'frag0', 'fragLater') }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('stray'), fam: fc.constantFrom(4, 6), dst: fc.constantFrom('route', 'noroute', 'vipOtherPort', 'icmpEcho'), sport: fc.nat(65535) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('junk'), bytes: fc.uint8Array({ minLength: 0, maxLength: 80 }), base: fc.nat(), cut: fc.nat(), flip: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('time'), ms: fc.constantFrom(1, 500, 1500, 2600, 3500, 7000, 20000) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('gen'), dropMask: fc.nat(0xffff), rotate: fc.constantFrom(0, 0, 1, 2) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('flush') }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('dry') }) },
  // a datagram in 2-4 fragments toward a frontend or back from a flow's backend (docs/core.md
  // "Fragments"), in order, reversed or with the first fragment missing; IP IDs from a small set
  // so datagrams share and overwrite fragment-table entries
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('frag'), fe: fc.nat(), flow: fc.option(fc.nat(), { nil: undefined }), client: fc.nat(11), sport: fc.constantFrom(1000, 3000), id: fc.nat(3), parts: fc.integer({ min: 2, max: 4 }), order: fc.constantFrom('in', 'in', 'reversed', 'noFirst'), flags: flagsArb }) },
);

// ---- interpretation ---------------------------------------------------------------------------

const QUOTE_EXT = { none: undefined, hop: [{ type: 0 }, { type: 60, bytes: 16 }], frag0: [{ type: 44, more: true, id: 9 }], fragLater: [{ type: 44, offset: 3, id: 9 }] };
const errKindOf = (k, fam) => (k === 'mtu' ? { kind: fam === 4 ? 'frag_needed' : 'packet_too_big', mtu: 1400 } : { kind: k });

function payloadOf(n) { return new Uint8Array(n).map((_, i) => (i * 7 + n) & 0xff); }

/** The fragments of one datagram built from `spec` (24 L4 bytes each, the last one the rest). */
function fragmentsOf(spec, id, parts, order, inPort) {
  const { l4 } = B.l4Bytes(spec);
  const v6 = spec.src.includes(':');
  const out = [];
  for (let k = 0; k < parts; k++) {
    const off = k * 24;
    const last = k === parts - 1;
    const part = last ? l4.subarray(off) : l4.subarray(off, off + 24);
    const f = { ...spec, rawL4: part };
    if (v6) f.v6Ext = [{ type: 44, offset: off / 8, more: !last, id }];
    else Object.assign(f, { id, mf: !last, fragOffset: off / 8 });
    out.push({ frame: B.frame(f), inPort });
  }
  if (order === 'reversed') out.reverse();
  if (order === 'noFirst') out.shift();
  return out;
}

/** Turns an op into frames, reading the model's state for flows. */
function framesFor(op, ir, model, recent) {
  if (op.kind === 'frag') {
    const payload = payloadOf(96);
    const fl = op.flow === undefined ? undefined : model.activeFlows()[op.flow % Math.max(1, model.activeFlows().length)];
    if (fl) {
      const fam = fl.family, f = (a) => formatAddr(a, fam);
      const spec = { srcMac: MAC.beDst, dstMac: MAC.beSrc, src: f(fl.backend), dst: f(fl.natDst), proto: fl.proto, sport: fl.bport, dport: fl.nport, payload, flags: op.flags };
      return fragmentsOf(spec, op.id, op.parts, op.order, 2);
    }
    const fes = [...ir.frontends.values()];
    const fe = fes[op.fe % fes.length];
    if (!fe) return [];
    const clients = CLIENTS[fe.family];
    const spec = { srcMac: MAC.client, dstMac: MAC.node, src: clients[op.client % clients.length], dst: fe.addr, proto: fe.proto, sport: op.sport, dport: fe.port, payload, flags: op.flags };
    return fragmentsOf(spec, op.id, op.parts, op.order, 3);
  }
  if (op.kind === 'burst') {
    const out = [];
    for (let i = 0; i < op.n; i++) out.push(...framesFor({ kind: 'new', fe: op.fe, client: op.client + (i >> 2), sport: op.sport + i, flags: op.flags, ttl: 64, payload: 0 }, ir, model, recent));
    return out;
  }
  if (op.kind === 'replyAll') {
    const n = model.activeFlows().length;
    const out = [];
    for (let i = 0; i < n; i++) out.push(...framesFor({ kind: 'reply', flow: i, flags: op.flags, ttl: 64, payload: 0 }, ir, model, recent));
    return out;
  }
  const one = frameFor(op, ir, model, recent);
  return one ? [one] : [];
}

/** One op -> one frame (or undefined when the op does not apply, e.g. no flows yet). */
function frameFor(op, ir, model, recent) {
  const fes = [...ir.frontends.values()];
  const flows = model.activeFlows();
  const flowAt = (k) => (flows.length ? flows[k % flows.length] : undefined);
  switch (op.kind) {
    case 'new': {
      const fe = fes[op.fe % fes.length];
      if (!fe) return undefined;
      const clients = CLIENTS[fe.family];
      const spec = { srcMac: MAC.client, dstMac: MAC.node, src: clients[op.client % clients.length], dst: fe.addr, proto: fe.proto, sport: op.sport, dport: fe.port, ttl: op.ttl, vlan: op.vlan, payload: payloadOf(op.payload), df: op.df };
      if (fe.proto === 'TCP') spec.flags = op.flags;
      if (fe.proto === 'SCTP' && op.chunk) spec.chunk = op.chunk;
      if (fe.proto === 'UDP' && fe.family === 4 && op.udpNoCsum) spec.udpChecksum = false;
      if (op.shape === 'options' && fe.family === 4) spec.ipOptions = [1, 1, 7, 3, 4];
      if (op.shape === 'ext' && fe.family === 6) spec.v6Ext = [{ type: 0 }, { type: 60, bytes: 16 }];
      if (op.shape === 'firstFragment') { if (fe.family === 4) spec.mf = true; else spec.v6Ext = [{ type: 44, more: true }]; }
      return { frame: B.frame(spec), inPort: 3 };
    }
    case 'reply': {
      const fl = flowAt(op.flow);
      if (!fl) return undefined;
      const fam = fl.family;
      const spec = { srcMac: MAC.beDst, dstMac: MAC.beSrc, src: formatAddr(fl.backend, fam), dst: formatAddr(fl.natDst, fam), proto: fl.proto, sport: fl.bport, dport: fl.nport, ttl: op.ttl, payload: payloadOf(op.payload), df: op.df };
      if (fl.proto === 6) spec.flags = op.flags;
      if (fl.proto === 132 && op.chunk) spec.chunk = op.chunk;
      return { frame: B.frame(spec), inPort: 2 };
    }
    case 'sctpStep': {
      // the furthest along first (a handshake's next step is due within its 3 s)
      const rank = [L.CTS_SCTP_COOKIE_ECHOED, L.CTS_SCTP_SHUTDOWN, L.CTS_SCTP_SHUTDOWN_ACK_SENT, L.CTS_SCTP_COOKIE_WAIT, L.CTS_SCTP_HEARTBEAT_SENT, L.CTS_SCTP, L.CTS_SCTP_CLOSED];
      const sctp = flows.filter((f) => f.proto === 132).sort((a, b) => rank.indexOf(a.state) - rank.indexOf(b.state));
      const fl = sctp.length ? sctp[op.flow % 4 === 0 ? op.flow % sctp.length : 0] : undefined;
      if (!fl) return undefined;
      const next = {
        [L.CTS_SCTP_CLOSED]: [['r', 'INIT_ACK']], [L.CTS_SCTP_COOKIE_WAIT]: [['o', 'COOKIE_ECHO']],
        [L.CTS_SCTP_COOKIE_ECHOED]: [['r', 'COOKIE_ACK'], ['r', 'ERROR']],
        [L.CTS_SCTP]: [['o', 'SHUTDOWN'], ['r', 'SHUTDOWN'], ['o', 'ABORT'], ['r', 'DATA'], ['o', 'HEARTBEAT'], ['r', 'HEARTBEAT_ACK'], ['o', 'INIT']],
        [L.CTS_SCTP_SHUTDOWN]: [['r', 'SHUTDOWN_ACK'], ['o', 'SHUTDOWN_ACK'], ['o', 'INIT']],
        [L.CTS_SCTP_SHUTDOWN_ACK_SENT]: [['o', 'SHUTDOWN_COMPLETE'], ['r', 'SHUTDOWN_COMPLETE']],
        [L.CTS_SCTP_HEARTBEAT_SENT]: [['r', 'HEARTBEAT_ACK'], ['o', 'INIT'], ['r', 'ABORT']],
      }[fl.state];
      if (!next) return undefined;
      // mostly the step forward (each list's first), else any
      const [dir, chunk] = next[op.pick < 4 || fl.state === L.CTS_SCTP ? op.pick % next.length : 0];
      const fam = fl.family, f = (a) => formatAddr(a, fam);
      const spec = dir === 'o'
        ? { srcMac: MAC.client, dstMac: MAC.node, src: f(fl.client), dst: f(fl.vip), proto: 'SCTP', sport: fl.cport, dport: fl.vport, chunk }
        : { srcMac: MAC.beDst, dstMac: MAC.beSrc, src: f(fl.backend), dst: f(fl.natDst), proto: 'SCTP', sport: fl.bport, dport: fl.nport, chunk };
      return { frame: B.frame(spec), inPort: dir === 'o' ? 3 : 2 };
    }
    case 'again': {
      const fl = flowAt(op.flow);
      if (!fl) return undefined;
      const fam = fl.family;
      const spec = { srcMac: MAC.client, dstMac: MAC.node, src: formatAddr(fl.client, fam), dst: formatAddr(fl.vip, fam), proto: fl.proto, sport: fl.cport, dport: fl.vport, payload: payloadOf(5) };
      if (fl.proto === 6) spec.flags = op.flags;
      if (fl.proto === 132 && op.chunk) spec.chunk = op.chunk;
      return { frame: B.frame(spec), inPort: 3 };
    }
    case 'icmp': {
      const fl = flowAt(op.flow);
      if (!fl) return undefined;
      const fam = fl.family, f = (a) => formatAddr(a, fam);
      // IPv6 quotes with extension headers (docs/core.md "ICMP error translation"): skipped, but
      // a non-first fragment is not translated
      const v6Ext = fam === 6 ? QUOTE_EXT[op.quoteExt] : undefined;
      if (op.fromBackend) {
        const inner = B.ipPacket({ src: f(fl.natDst), dst: f(fl.backend), proto: fl.proto, sport: fl.nport, dport: fl.bport, ttl: 63, payload: payloadOf(30), v6Ext });
        return { frame: B.icmpError({ srcMac: MAC.beDst, dstMac: MAC.beSrc, src: f(fl.backend), dst: f(fl.natDst), inner, quoteLen: op.quote, ...errKindOf(op.errKind, fam) }), inPort: 2 };
      }
      const inner = B.ipPacket({ src: f(fl.vip), dst: f(fl.client), proto: fl.proto, sport: fl.vport, dport: fl.cport, ttl: 63, payload: payloadOf(30), v6Ext });
      return { frame: B.icmpError({ srcMac: MAC.client, dstMac: MAC.node, src: f(fl.client), dst: f(fl.vip), inner, quoteLen: op.quote, ...errKindOf(op.errKind, fam) }), inPort: 3 };
    }
    case 'stray': {
      const src = CLIENTS[op.fam][0];
      if (op.dst === 'icmpEcho') return { frame: B.frame({ src, dst: vipOf(op.fam, 1), proto: 'ICMP' }), inPort: 3 };
      const dst = op.dst === 'route' ? (op.fam === 4 ? '172.16.1.9' : 'fd00:aaaa::9') : op.dst === 'vipOtherPort' ? vipOf(op.fam, 1) : (op.fam === 4 ? '198.51.100.1' : '2001:db8:1::1');
      if (op.dst === 'route' && op.fam === 4 && op.sport & 1) return { frame: B.frame({ src, dst: '172.16.9.9', proto: 'UDP', sport: op.sport, dport: 9 }), inPort: 3 };
      return { frame: B.frame({ src, dst, proto: 'UDP', sport: op.sport, dport: 9999 }), inPort: 3 };
    }
    case 'junk': {
      if (!recent.length || op.bytes.length > 60 && op.base % 3 === 0) {
        const f = new Uint8Array(14 + op.bytes.length);
        f.set(B.fromHex('0200000000aa020000000c01'), 0);
        f[12] = op.base & 1 ? 0x86 : 0x08; f[13] = op.base & 1 ? 0xdd : 0x00;
        f.set(op.bytes, 14);
        return { frame: f, inPort: 3 };
      }
      const base = recent[op.base % recent.length].slice();
      if (op.flip % 2 === 0) base[op.flip % base.length] ^= 1 << (op.flip % 8);
      const cut = op.cut % 4 === 0 ? Math.max(0, base.length - 1 - (op.cut % base.length)) : base.length;
      return { frame: base.subarray(0, cut), inPort: 3 };
    }
    default:
      return undefined;
  }
}

const runArb = fc.record({
  ir: irArb,
  batches: fc.array(fc.array(opArb, { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 14 }),
});

function compareState(core, model) {
  const c = core.counters();
  const problems = [];
  GLOBAL_COUNTER_NAMES.forEach((name, i) => {
    if (name && c.global[name] !== model.global[i]) problems.push(`counter ${name}: core ${c.global[name]} model ${model.global[i]}`);
  });
  REASON_NAMES.forEach((name, i) => {
    if (name && c.reasons[name] !== model.reasons[i]) problems.push(`reason ${name}: core ${c.reasons[name]} model ${model.reasons[i]}`);
  });
  for (const [id, v] of Object.entries(c.frontends)) {
    const m = model.frontCounters.get(Number(id)) ?? { packets: 0, bytes: 0 };
    if (v.packets !== m.packets || v.bytes !== m.bytes) problems.push(`frontend ${id}: core ${JSON.stringify(v)} model ${JSON.stringify(m)}`);
  }
  const cf = core.flows({ includeExpired: true }).map((f) => `${f.flow}:${f.client}:${f.clientPort}>${f.vip}:${f.vipPort}>${f.backend}:${f.backendPort}:${f.state}:${f.flags.join('+')}`).sort();
  const mf = model.activeFlows().map((f) => {
    const fam = f.family;
    // every state and flag the core has (the TCP handshake states and CTF_CONFIRMED included)
    const flags = CT_FLAG_NAMES.filter(([b]) => f.flags & b).map(([, n]) => n);
    return `${f.index}:${formatAddr(f.client, fam)}:${f.cport}>${formatAddr(f.vip, fam)}:${f.vport}>${formatAddr(f.backend, fam)}:${f.bport}:${CT_STATE_NAMES[f.state]}:${flags.join('+')}`;
  }).sort();
  if (JSON.stringify(cf) !== JSON.stringify(mf)) problems.push(`flows differ:\n  core  ${cf.join('\n        ')}\n  model ${mf.join('\n        ')}`);
  return problems;
}

/** Runs the property: every batch through core and model, then the final state compared. */
function runProperty(t, opts, arb, numRuns, seed) {
  let packets = 0;
  const verdicts = new Map();
  const stateCounters = {};
  fc.assert(fc.property(arb, ({ ir: d, batches, dup }) => {
    let ir = buildIr(d);
    const o = { ...opts, portMtu: Object.fromEntries(d.mtus.map((m, i) => [i, m])) };
    const core = Core.create(o);
    core.applyIr(ir);
    const model = new ReferenceModel(ir, o);
    let now = 1000;
    const recent = [];
    for (const ops of batches) {
      let frames = [];
      let dryRun = false;
      for (const op of ops) {
        if (op.kind === 'dry') { dryRun = true; continue; }
        if (op.kind === 'time') { now += op.ms; continue; }
        if (op.kind === 'gen') { ir = buildIr(d, op.dropMask, op.rotate); core.applyIr(ir); model.setIr(ir); continue; }
        if (op.kind === 'flush') { core.ctFlush(); model.flush(); continue; }
        // frames of one batch are built against the model state before the batch
        frames.push(...framesFor(op, ir, model, recent));
      }
      if (!frames.length) continue;
      if (dup) {
        // the same frame again later in the same batch (a retransmit): the second copy must see
        // the flow the first one created, even inside one 64-frame chunk of the core
        const copies = frames.filter((_, i) => (i * 2654435761 + dup) % 3 === 0);
        frames = frames.flatMap((f, i) => (i % 2 === 0 && copies.length ? [f, copies[(i / 2) % copies.length]] : [f]));
      }
      // every batch traced (trace records compared too); a batch with a 'dry' op runs as the
      // API's POST /trace does: decisions and rewrites, but no state and no counters
      const pairs = runBoth(core, model, frames, now, 0, { trace: true, dryRun });
      const bad = firstMismatch(pairs);
      if (bad) throw new Error(`mismatch at t=${now}:\n${bad}`);
      for (const p of pairs) {
        packets++; verdicts.set(p.core.reason, (verdicts.get(p.core.reason) ?? 0) + 1);
        // in-cluster sources short-circuited by an externalTrafficPolicy Local frontend
        if (p.core.trace.stages & L.TS_LOCAL_SOURCE) verdicts.set('local_source', (verdicts.get('local_source') ?? 0) + 1);
      }
      // the SCTP states the flows are in after the batch (the runs must reach each)
      for (const f of core.flows()) if (f.state.startsWith('sctp_')) stateCounters[f.state] = (stateCounters[f.state] ?? 0) + 1;
      // flows of the node to itself, translated to the hairpin address (the runs must make some)
      if (d.node === 'clientHairpin') {
        const hp = core.flows().filter((f) => f.flags.includes('hairpin'));
        stateCounters.hairpin_flows = (stateCounters.hairpin_flows ?? 0) + hp.length;
        // ... to a backend at the node's second address, or from it
        stateCounters.hairpin_second_flows = (stateCounters.hairpin_second_flows ?? 0)
          + hp.filter((f) => f.backend !== f.client && [f.backend, f.client].includes(NODE_SECOND[f.family])).length;
      }
      for (const fr of frames) { recent.push(fr.frame); if (recent.length > 16) recent.shift(); }
      now += 1;
    }
    const problems = compareState(core, model);
    if (problems.length) throw new Error(problems.join('\n'));
    for (const [k, v] of Object.entries(core.counters().global)) stateCounters[k] = (stateCounters[k] ?? 0) + v;
  }), { numRuns: Number(process.env.WDP_DIFF_RUNS ?? numRuns), seed: Number(process.env.WDP_DIFF_SEED ?? seed) });
  t.log(`${packets} packets compared; reasons seen: ${[...verdicts.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  t.log(`state counters over all runs: ${Object.entries(stateCounters).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  verdicts.stateCounters = stateCounters;
  return verdicts;
}

test('core and reference model agree on random tables and packet sequences', (t) => {
  const verdicts = runProperty(t, OPTS, runArb, 200, 0x5eed);
  // the run must have exercised the interesting paths, or it proves little (a table full of
  // flows nothing may evict — established TCP, UDP streams, confirmed SCTP — random packets do not
  // build: core = model at drop_ct_full is ct-evictable's and core-conntrack-state's)
  for (const r of ['fwd_nat', 'fwd_reply', 'reject_no_endpoints', 'fwd_icmp_error', 'reject_ttl_exceeded', 'drop_etp_no_local', 'local_source', 'reject_cluster_ip_proto', 'reject_packet_too_big', 'drop_packet_too_big']) t.true((verdicts.get(r) ?? 0) > 0, `no ${r} seen`);
  t.true(verdicts.stateCounters.hairpin_flows > 0, 'no flow of the node to itself took the hairpin address');
  t.true(verdicts.stateCounters.hairpin_second_flows > 0, 'no flow between the node\'s two addresses took the hairpin address');
  for (const st of CT_STATE_NAMES.filter((n) => n.startsWith('sctp_'))) t.true((verdicts.stateCounters[st] ?? 0) > 0, `no SCTP flow in ${st}`);
});

// Large batches (up to 256 frames: several of the core's 64-frame chunks), bursts of new flows,
// retransmits of a new flow within the same batch, replies and repeats mixed in.
const bigOpArb = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('burst'), fe: fc.nat(), client: fc.nat(11), n: fc.integer({ min: 20, max: 120 }), sport: fc.integer({ min: 1024, max: 60000 }), flags: flagsArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('replyAll'), flags: fc.constantFrom('SA', 'A', 'PA', 'FA') }) },
  { weight: 1, arbitrary: opArb },
);
const bigRunArb = fc.record({
  ir: irArb,
  batches: fc.array(fc.array(bigOpArb, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 6 }),
  dup: fc.nat(),
});

test('large batches across chunk boundaries, with same-batch retransmits', (t) => {
  const verdicts = runProperty(t, { ...OPTS, flows: 512, batchMax: 256, affinitySlots: 64 }, bigRunArb, 40, 0xb16);
  for (const r of ['fwd_nat', 'fwd_reply']) t.true((verdicts.get(r) ?? 0) > 0, `no ${r} seen`);
});
