// The daemon's L2/L3 slow path: frames the core hands back with V_TO_HOST (reason host_arp /
// host_nd / host_no_match) are handled here, in TypeScript, inside the forwarding worker.
//
//   * ARP requests and IPv6 neighbour solicitations for an address this port really owns get a
//     reply built in place of the request, sent back out of the port it came in on. What a port
//     owns: its gateway addresses (every role); on uplinks also the node addresses and the
//     load-balancer / external IPs the config says to announce. ClusterIPs are never answered
//     (clients reach them through their route to a gateway), and nothing is answered on every
//     port: a VIP answered everywhere makes every node claim it on a shared L2.
//   * A host port (role: host, the node's own stack behind a TAP) is bridged with one uplink:
//     whatever the host sends that no service or route claims (its ARP/ND for the uplink's
//     neighbours, its replies to SSH clients) leaves through the uplink, and what the uplink
//     receives for the node (ARP replies and IP to the node addresses, IPv6 link-local and
//     multicast) goes to the host. The node has one MAC on the wire, the uplink's: the TAP
//     carries it, and when it has another (it could not be set) the bridged frames are rewritten
//     — the host's source MAC, ARP sender and ND link-layer options to the uplink's on the way out,
//     the uplink's destination MAC to the TAP's (learned from the host's frames) on the way in —
//     so the peers answer to a MAC the uplink's other-host filter lets in. Bridged frames are
//     forwarded in place; a rewritten one is written back over its slot.
//   * ARP requests/replies, NS/NA and plain IP frames arriving on pod-facing ports teach us which
//     port and MAC a pod address is behind (the neighbour table the compiler resolves backends
//     with). Learning is off for uplink ports unless configured: an uplink sees the whole world.
//   * Unresolved addresses can be probed: `probe()` builds the ARP request / NS to send.
//   * A port that resolves an IPv6 link-local next hop (a route `via fe80::…`) has a link-local
//     address of its own, modified EUI-64 from the port's MAC (RFC 4291 appendix A; not the
//     interface's: the daemon turns IPv6 off on it, and the address must survive restarts).
//     Its NS for the next hop go out from it (RFC 4861 7.2.2: the NS source is an address of the
//     interface, and the router's NA comes back to it), and NS for it are answered on that port
//     only, so the router's own resolution and NUD of it work.
//
// Cost: a few hundred ns of JS per slow-path frame plus an allocation for replies — fine for
// ARP/ND rates; nothing here runs for forwarded traffic.
import { parseAddr, formatAddr, formatMac, parseMac, canonicalAddr } from '../util/addr.js';
import { arp, ethernet, ipPacket, neighborSolicitation, ETH_P_ARP, ETH_P_IPV4, ETH_P_IPV6, IPPROTO_ICMPV6 } from '../packet/build.js';

export type PortRole = 'pod' | 'uplink' | 'host';

export interface L2Port {
  index: number;
  name: string;
  mac: string;                // our MAC on this port
  role: PortRole;
  gateways: string[];         // addresses answered on this port (the pods'/clients' next hop)
  learn: boolean;             // learn neighbours from traffic arriving here
  /** Addresses resolved on this port (pods without a MAC, routes' `via` next hops): learned from
   * their ARP/ND here even where `learn` is off. */
  probe?: string[];
  /** Host port: the uplink it is bridged with; uplink: the host port bridged with it. */
  bridge?: number;
}

export interface Neighbour {
  addr: string;
  family: 4 | 6;
  port: number;               // dataplane port index
  mac: string;
  source: 'static' | 'learned';
}

export type L2Result =
  | { action: 'reply'; frame: Uint8Array; learned?: Neighbour }
  | { action: 'consume'; learned?: Neighbour; why: string }
  /** Forward the frame out of `port` (host port <-> its uplink); `frame`: rewritten (same
   * length, MACs only: see the module comment), to be written over the received one. */
  | { action: 'bridge'; port: number; why: 'bridged_from_host' | 'bridged_to_host'; learned?: Neighbour; frame?: Uint8Array };

const BROADCAST = 'ff:ff:ff:ff:ff:ff';

function isUnicastMac(b: Uint8Array, off: number): boolean {
  return (b[off] & 1) === 0 && !(b[off] === 0 && b[off + 1] === 0 && b[off + 2] === 0 && b[off + 3] === 0 && b[off + 4] === 0 && b[off + 5] === 0);
}

function isUsableV4(b: Uint8Array, off: number): boolean {
  const first = b[off];
  if (first === 0 || first === 127 || first >= 224) return false;
  return true;
}

function isUsableV6(b: Uint8Array, off: number): boolean {
  if (b[off] === 0xff) return false;                        // multicast
  let zero = true;
  for (let i = 0; i < 16; i++) if (b[off + i] !== 0) { zero = false; break; }
  return !zero;                                             // :: is DAD
}

/** Canonical text form (util/addr.ts), re-exported for the daemon's modules. */
export { canonicalAddr };

/** Whether `addr` (canonical IPv6 text, or with a %zone) is link-local unicast, fe80::/10. */
export const isLinkLocal = (addr: string): boolean => /^fe[89ab][0-9a-f]:/i.test(addr);

/** fe80::/64 with the modified EUI-64 interface identifier of `mac` (RFC 4291 appendix A: the
 * universal/local bit inverted, ff:fe in the middle): the link-local address the kernel gives an
 * Ethernet interface (addr_gen_mode eui64). */
export function eui64LinkLocal(mac: string): string {
  const m = parseMac(mac);
  const b = new Uint8Array(16);
  b[0] = 0xfe; b[1] = 0x80;
  b.set([m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]], 8);
  return formatAddr(b, 6);
}

/** The link-local address a port asks from and answers for: its MAC's EUI-64 one, only on a port
 * that resolves a link-local address (a route's next hop), so no other port starts answering for
 * a new address. */
function linkLocalOf(p: L2Port): string | undefined {
  return (p.probe ?? []).some((a) => isLinkLocal(canonicalAddr(a))) ? eui64LinkLocal(p.mac) : undefined;
}

/** `hostMac`: on a host port, the source MAC of the host's frames last bridged (the TAP's MAC);
 * `ownLinkLocal`: the link-local address the port asks from and answers for (linkLocalOf). */
type PortState = L2Port & { macBytes: Uint8Array; gatewaySet: Set<string>; probeSet: Set<string>; ownLinkLocal?: string; hostMac?: Uint8Array };

const sameMac = (b: Uint8Array, off: number, m: Uint8Array): boolean =>
  b[off] === m[0] && b[off + 1] === m[1] && b[off + 2] === m[2] && b[off + 3] === m[3] && b[off + 4] === m[4] && b[off + 5] === m[5];

/** Writes MAC `to` over the one at `off`; with `csumAt`, updates the 16-bit one's complement
 * checksum there for the change (RFC 1624 eqn. 3; `off` is even within the summed data). */
function putMac(b: Uint8Array, off: number, to: Uint8Array, csumAt?: number): void {
  if (csumAt !== undefined) {
    let sum = ~((b[csumAt] << 8) | b[csumAt + 1]) & 0xffff;
    for (let k = 0; k < 6; k += 2) sum += (~((b[off + k] << 8) | b[off + k + 1]) & 0xffff) + ((to[k] << 8) | to[k + 1]);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    const c = ~sum & 0xffff;
    b[csumAt] = c >> 8; b[csumAt + 1] = c & 0xff;
  }
  b.set(to, off);
}

export class L2Responder {
  private readonly ports = new Map<number, PortState>();
  private readonly node = new Set<string>();
  /** LB / external IPs announced on uplinks, with how many frontends hold each: frontends come
   * and go one diff at a time, so the set changes by the diff, not by rebuilding it from every
   * frontend (canonicalising 10k addresses was ~20 ms per endpoint change). */
  private readonly announced = new Map<string, number>();

  constructor(ports: L2Port[], nodeAddrs: string[] = []) {
    for (const p of ports) this.addPort(p);
    for (const a of nodeAddrs) this.node.add(canonicalAddr(a));
  }

  addPort(p: L2Port): void {
    this.ports.set(p.index, { ...p, macBytes: parseMac(p.mac), gatewaySet: new Set(p.gateways.map(canonicalAddr)), probeSet: new Set((p.probe ?? []).map(canonicalAddr)), ownLinkLocal: linkLocalOf(p) });
  }

  removePort(index: number): void { this.ports.delete(index); }

  /** One more frontend announcing `addr` on the uplinks. */
  holdAnnounced(addr: string): void {
    const a = canonicalAddr(addr);
    this.announced.set(a, (this.announced.get(a) ?? 0) + 1);
  }

  /** One frontend fewer; the address is no longer answered when none is left. */
  releaseAnnounced(addr: string): void {
    const a = canonicalAddr(addr);
    const n = this.announced.get(a);
    if (n === undefined) return;
    if (n <= 1) this.announced.delete(a); else this.announced.set(a, n - 1);
  }

  isNodeAddress(addr: string): boolean { return this.node.has(addr); }

  /** Replaces the node addresses answered on uplinks (the Node's addresses changed, or a
   * NodeConfig with other addresses was applied). */
  setNodeAddresses(addrs: string[]): void {
    this.node.clear();
    for (const a of addrs) this.node.add(canonicalAddr(a));
  }

  /** The node addresses answered on uplinks, canonical. */
  nodeAddresses(): string[] { return [...this.node]; }

  answersFor(port: number, addr: string): boolean {
    const p = this.ports.get(port);
    if (!p) return false;
    if (p.gatewaySet.has(addr) || p.ownLinkLocal === addr) return true;
    // the host reaches the uplink's gateways (its default route, usually) through the dataplane
    if (p.role === 'host') return p.bridge !== undefined && !!this.ports.get(p.bridge)?.gatewaySet.has(addr);
    return p.role === 'uplink' && (this.node.has(addr) || this.announced.has(addr));
  }

  /** Handle one slow-path frame that arrived on `inPort`. Never throws on malformed input:
   * anything it does not understand is consumed with a reason. */
  handle(f: Uint8Array, inPort: number): L2Result {
    const port = this.ports.get(inPort);
    if (!port) return { action: 'consume', why: 'unknown_port' };
    if (f.length < 14) return { action: 'consume', why: 'truncated' };
    const ethertype = (f[12] << 8) | f[13];
    let r: L2Result;
    if (ethertype === ETH_P_ARP) r = this.handleArp(f, port);
    else if (ethertype === ETH_P_IPV6) r = this.handleV6(f, port);
    else if (ethertype === ETH_P_IPV4) r = this.learnFromIp(f, port, 4);
    else return { action: 'consume', why: 'not_ip' };
    if (r.action !== 'consume' || port.bridge === undefined || !this.ports.has(port.bridge)) return r;
    // nothing here wanted it: on a host port it goes out to the world, on the host's uplink it
    // goes to the host when it is the host's (the host stack decides what to do with it)
    const other = this.ports.get(port.bridge)!;
    if (port.role === 'host') {
      return { action: 'bridge', port: port.bridge, why: 'bridged_from_host', ...(this.fromHost(f, ethertype, port, other.macBytes) ? { frame: f } : {}) };
    }
    if (!this.forHost(f, ethertype)) return r;
    // (what the uplink learned from it, e.g. a route's next hop answering a probe from a node address, goes along)
    const tap = other.hostMac;
    const rewrite = tap !== undefined && sameMac(f, 0, port.macBytes) && !sameMac(tap, 0, port.macBytes);
    if (rewrite) f.set(tap, 0);
    return { action: 'bridge', port: port.bridge, why: 'bridged_to_host', ...(r.learned ? { learned: r.learned } : {}), ...(rewrite ? { frame: f } : {}) };
  }

  /** A frame host port `host` sends out through its uplink (MAC `uplink`): when it comes from
   * another MAC than the uplink's (the TAP's could not be set to it), that MAC — as the Ethernet
   * source, the ARP sender, an NDP link-layer address option — is rewritten to the uplink's
   * (`host.hostMac` remembers it for the way back); whether the frame changed. */
  private fromHost(f: Uint8Array, ethertype: number, host: PortState, uplink: Uint8Array): boolean {
    if (!isUnicastMac(f, 6)) return false;
    if (!host.hostMac || !sameMac(f, 6, host.hostMac)) host.hostMac = f.slice(6, 12);
    const tap = host.hostMac;
    if (sameMac(tap, 0, uplink)) return false;
    f.set(uplink, 6);
    if (ethertype === ETH_P_ARP) {
      if (f.length >= 28 && sameMac(f, 22, tap)) f.set(uplink, 22);
    } else if (ethertype === ETH_P_IPV6 && f.length >= 58 && f[20] === IPPROTO_ICMPV6 && f[54] >= 133 && f[54] <= 137) {
      // RS, RA, NS, NA, redirect: their source / target link-layer address options (types 1, 2)
      const fixed = f[54] === 133 ? 8 : f[54] === 134 ? 16 : f[54] === 137 ? 40 : 24;
      const end = Math.min(f.length, 54 + ((f[18] << 8) | f[19]));
      for (let o = 54 + fixed; o + 8 <= end;) {
        const len = f[o + 1] * 8;
        if (len === 0 || o + len > end) break;
        if ((f[o] === 1 || f[o] === 2) && sameMac(f, o + 2, tap)) putMac(f, o + 2, uplink, 56);
        o += len;
      }
    }
    return true;
  }

  /** Whether a frame the uplink received (and nobody answered) belongs to the node's own stack:
   * ARP replies to a node address; IPv4 to a node address; IPv6 to a node address, to a
   * link-local address (the host's ND with the router) or to a multicast group. */
  private forHost(f: Uint8Array, ethertype: number): boolean {
    if (ethertype === ETH_P_ARP) return f.length >= 42 && f[21] === 2 && this.node.has(`${f[38]}.${f[39]}.${f[40]}.${f[41]}`);
    if (ethertype === ETH_P_IPV4) return f.length >= 34 && this.node.has(`${f[30]}.${f[31]}.${f[32]}.${f[33]}`);
    if (f.length < 54) return false;
    if (f[38] === 0xff || (f[38] === 0xfe && (f[39] & 0xc0) === 0x80)) return true;
    return this.node.has(formatAddr(f.subarray(38, 54), 6));
  }

  private handleArp(f: Uint8Array, port: PortState): L2Result {
    if (f.length < 42) return { action: 'consume', why: 'arp_truncated' };
    // htype 1 (Ethernet), ptype IPv4, hlen 6, plen 4
    if (f[14] !== 0 || f[15] !== 1 || f[16] !== 8 || f[17] !== 0 || f[18] !== 6 || f[19] !== 4) {
      return { action: 'consume', why: 'arp_unsupported' };
    }
    const op = (f[20] << 8) | f[21];
    const senderMac = formatMac(f, 22);
    const senderIp = `${f[28]}.${f[29]}.${f[30]}.${f[31]}`;
    const targetIp = `${f[38]}.${f[39]}.${f[40]}.${f[41]}`;
    let learned: Neighbour | undefined;
    if ((port.learn || port.probeSet.has(senderIp)) && isUnicastMac(f, 22) && isUsableV4(f, 28) && !this.answersFor(port.index, senderIp)) {
      learned = { addr: senderIp, family: 4, port: port.index, mac: senderMac, source: 'learned' };
    }
    if (op === 1 && senderIp !== targetIp && this.answersFor(port.index, targetIp) && isUnicastMac(f, 22)) {
      const reply = arp({
        op: 2, senderMac: port.mac, senderIp: targetIp, targetMac: senderMac, targetIp: senderIp,
        srcMac: port.mac, dstMac: senderMac, padTo: 60,
      });
      return { action: 'reply', frame: reply, learned };
    }
    return { action: 'consume', learned, why: op === 2 ? 'arp_reply_seen' : 'arp_not_ours' };
  }

  private handleV6(f: Uint8Array, port: PortState): L2Result {
    if (f.length < 54) return { action: 'consume', why: 'ipv6_truncated' };
    if (f[20] !== IPPROTO_ICMPV6) return this.learnFromIp(f, port, 6);
    if (f.length < 62) return { action: 'consume', why: 'icmpv6_truncated' };
    const type = f[54];
    if (type !== 135 && type !== 136) return this.learnFromIp(f, port, 6);
    // RFC 4861 7.1.1: a valid NS/NA has hop limit 255 and code 0 and is >= 24 bytes of ICMPv6.
    const payloadLen = (f[18] << 8) | f[19];
    if (f[21] !== 255 || f[55] !== 0 || payloadLen < 24 || f.length < 54 + 24) return { action: 'consume', why: 'nd_invalid' };
    const end = Math.min(f.length, 54 + payloadLen);
    const target = formatAddr(f.subarray(62, 78), 6);
    const src = formatAddr(f.subarray(22, 38), 6);
    // options: type, length (units of 8 bytes), value
    let optMac: string | undefined;
    for (let o = 78; o + 8 <= end;) {
      const otype = f[o], olen = f[o + 1] * 8;
      if (olen === 0 || o + olen > end) break;
      if ((type === 135 && otype === 1) || (type === 136 && otype === 2)) optMac = formatMac(f, o + 2);
      o += olen;
    }
    let learned: Neighbour | undefined;
    if (type === 135) {
      const srcUsable = isUsableV6(f, 22);
      const askerMac = optMac ?? formatMac(f, 6);
      if ((port.learn || port.probeSet.has(src)) && srcUsable && isUnicastMac(parseMac(askerMac), 0) && !this.answersFor(port.index, src)) {
        learned = { addr: src, family: 6, port: port.index, mac: askerMac, source: 'learned' };
      }
      if (!srcUsable) return { action: 'consume', learned, why: 'nd_dad' };   // DAD probe: stay silent
      if (!this.answersFor(port.index, target)) return { action: 'consume', learned, why: 'nd_not_ours' };
      // Neighbour advertisement: Router | Solicited | Override, with our link-layer address.
      const body = new Uint8Array(24);
      body.set(parseAddr(target).bytes, 0);
      body[16] = 2; body[17] = 1; body.set(port.macBytes, 18);
      const ip = ipPacket({ src: target, dst: src, proto: 'ICMP', icmpType: 136, icmpCode: 0, rest: 0xe0000000, payload: body, ttl: 255 });
      return { action: 'reply', frame: ethernet({ srcMac: port.mac, dstMac: askerMac }, ETH_P_IPV6, ip), learned };
    }
    // NA: learn the target (answer to our probe, or unsolicited)
    const mac = optMac ?? formatMac(f, 6);
    if ((port.learn || port.probeSet.has(target)) && isUsableV6(f, 62) && isUnicastMac(parseMac(mac), 0) && !this.answersFor(port.index, target)) {
      learned = { addr: target, family: 6, port: port.index, mac, source: 'learned' };
    }
    return { action: 'consume', learned, why: 'nd_advert_seen' };
  }

  /** IP that reached the slow path (no service, no flow, no route): learn the sender on ports
   * where learning is on, then drop (or bridge it, see handle()). */
  private learnFromIp(f: Uint8Array, port: L2Port, family: 4 | 6): L2Result {
    if (!port.learn || !isUnicastMac(f, 6)) return { action: 'consume', why: 'no_route' };
    if (family === 4) {
      if (f.length < 34 || (f[14] >> 4) !== 4 || !isUsableV4(f, 26)) return { action: 'consume', why: 'no_route' };
      const addr = `${f[26]}.${f[27]}.${f[28]}.${f[29]}`;
      if (this.answersFor(port.index, addr)) return { action: 'consume', why: 'no_route' };
      return { action: 'consume', why: 'no_route', learned: { addr, family: 4, port: port.index, mac: formatMac(f, 6), source: 'learned' } };
    }
    if (f.length < 54 || (f[14] >> 4) !== 6 || !isUsableV6(f, 22)) return { action: 'consume', why: 'no_route' };
    // link-local sources are per-link: they cannot be a backend address
    if (f[22] === 0xfe && (f[23] & 0xc0) === 0x80) return { action: 'consume', why: 'no_route' };
    const addr = formatAddr(f.subarray(22, 38), 6);
    if (this.answersFor(port.index, addr)) return { action: 'consume', why: 'no_route' };
    return { action: 'consume', why: 'no_route', learned: { addr, family: 6, port: port.index, mac: formatMac(f, 6), source: 'learned' } };
  }

  /** The address this port speaks from in `family` (probes, the core's time exceeded): its first
   * gateway address of the family, on an uplink without one a node address; none: undefined. */
  sourceAddress(portIndex: number, family: 4 | 6): string | undefined {
    const port = this.ports.get(portIndex);
    if (!port) return undefined;
    return port.gateways.find((g) => parseAddr(g).family === family)
      ?? (port.role === 'uplink' ? [...this.node].find((g) => parseAddr(g).family === family) : undefined);
  }

  /** An ARP request / neighbour solicitation for `addr`, sent from this port's first gateway
   * address of the right family, on an uplink without one from a node address; for a link-local
   * `addr`, from the port's link-local address (or undefined when the port has none to speak
   * from). With
   * `knownMac` it is a unicast re-verification of a neighbour we already have (RFC 4861 7.3.3's
   * PROBE state; the ARP equivalent the kernel sends): only the neighbour itself sees it. */
  probe(addr: string, portIndex: number, knownMac?: string): Uint8Array | undefined {
    const port = this.ports.get(portIndex);
    if (!port) return undefined;
    const a = parseAddr(addr);
    // an uplink without a gateway address of the family (the node recipe's: the host port owns the
    // node's addresses) asks from a node address, which the answer comes back to
    const from = a.family === 6 && a.bytes[0] === 0xfe && (a.bytes[1] & 0xc0) === 0x80 ? port.ownLinkLocal
      : this.sourceAddress(portIndex, a.family);
    if (!from) return undefined;
    if (a.family === 4) {
      return arp({ op: 1, senderMac: port.mac, senderIp: from, targetIp: addr, srcMac: port.mac, dstMac: knownMac ?? BROADCAST, padTo: 60 });
    }
    if (!knownMac) return neighborSolicitation({ senderMac: port.mac, senderIp: from, targetIp: addr, srcMac: port.mac });
    const body = new Uint8Array(24);
    body.set(a.bytes, 0);
    body[16] = 1; body[17] = 1; body.set(port.macBytes, 18);
    const ip = ipPacket({ src: from, dst: addr, proto: 'ICMP', icmpType: 135, icmpCode: 0, rest: 0, payload: body, ttl: 255 });
    return ethernet({ srcMac: port.mac, dstMac: knownMac }, ETH_P_IPV6, ip);
  }

  portList(): L2Port[] { return [...this.ports.values()].map(({ macBytes: _m, gatewaySet: _g, probeSet: _p, ownLinkLocal: _l, ...p }) => p); }
}

/** Which port/MAC each address is behind. Static entries (config) win over learned ones. */
export class NeighbourTable {
  private readonly byAddr = new Map<string, Neighbour>();

  /** Returns true when the entry is new or changed (callers then recompile). */
  set(n: Neighbour): boolean {
    const key = canonicalAddr(n.addr);
    const old = this.byAddr.get(key);
    if (old && old.source === 'static' && n.source === 'learned') return false;
    if (old && old.port === n.port && old.mac === n.mac && old.source === n.source) return false;
    this.byAddr.set(key, { ...n, addr: key });
    return true;
  }

  get(addr: string): Neighbour | undefined { return this.byAddr.get(canonicalAddr(addr)); }
  delete(addr: string): boolean { return this.byAddr.delete(canonicalAddr(addr)); }
  list(): Neighbour[] { return [...this.byAddr.values()]; }
  get size(): number { return this.byAddr.size; }
}
