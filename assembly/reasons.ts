// What every verdict reason means: the one table of reasons, keyed by the REASON_* codes of
// layout.ts (the codes and, derived from the constant names, the reason names live there). Read by
// the TypeScript side only (compiled by tsc like layout.ts; the core never imports it): the
// Prometheus help text (src/api/metrics.ts) and the reasons section of docs/core.md are generated
// from it, and test/reasons.test.js checks that every REASON_* code has exactly one entry and that
// docs/core.md's list is the one this table renders.
import * as L from './layout.js';

/** How much a reason deserves an operator's attention:
 *  info     the normal outcome of forwarding (a packet went where it should);
 *  notice   expected refusals: policy (no endpoints, source ranges), TTL, traffic the fast path
 *           leaves to the host, and malformed packets from the network;
 *  warning  a limit or a missing piece of state was hit (conntrack full, SNAT ports exhausted,
 *           no route to a backend, a reply tuple clash): traffic that should pass did not;
 *  error    the host handed the core something it should not have (bad port, oversize frame). */
export type ReasonSeverity = 'info' | 'notice' | 'warning' | 'error';
export type ReasonVerdict = 'forward' | 'reject' | 'to_host' | 'drop';

export interface ReasonInfo {
  readonly code: number;
  readonly verdict: ReasonVerdict;
  readonly severity: ReasonSeverity;
  /** One sentence: when the core gives this reason. */
  readonly description: string;
  /** A code kept for compatibility that the core never gives (left out of the metrics help). */
  readonly reserved?: true;
}

export const REASON_TABLE: readonly ReasonInfo[] = [
  { code: L.REASON_FWD_NAT, verdict: 'forward', severity: 'info', description: 'Client to service: a new or existing flow, translated toward its backend.' },
  { code: L.REASON_FWD_REPLY, verdict: 'forward', severity: 'info', description: 'Backend reply of a flow, translated back to the client.' },
  { code: L.REASON_FWD_ROUTED, verdict: 'forward', severity: 'info', description: 'No service and no flow: forwarded by a plain route, TTL decremented (kept when the packet is from or to a node address: the node\'s output, or local delivery).' },
  { code: L.REASON_FWD_ICMP_ERROR, verdict: 'forward', severity: 'info', description: 'ICMP error quoting a flow, translated (quoted packet and outer header) like the flow.' },
  { code: L.REASON_REJECT_NO_ENDPOINTS, verdict: 'reject', severity: 'notice', description: 'New flow to a service without usable endpoints (also the next datagram of a UDP flow whose endpoint stopped serving or left, as kube-proxy deletes its conntrack entry): answered with an ICMP / ICMPv6 port unreachable, TCP too, as the nftables proxier\'s bare reject (from the destination when it is a node address, else from the in port\'s address).' },
  { code: L.REASON_HOST_ARP, verdict: 'to_host', severity: 'info', description: 'ARP, left to the host.' },
  { code: L.REASON_HOST_ND, verdict: 'to_host', severity: 'info', description: 'ICMPv6 neighbour discovery (RS, RA, NS, NA, redirect), left to the host.' },
  { code: L.REASON_HOST_NO_MATCH, verdict: 'to_host', severity: 'info', description: 'IP packet matching no service, no flow and no route: left to the host.' },
  { code: L.REASON_HOST_NOT_IP, verdict: 'to_host', severity: 'info', description: 'Ethertype other than IPv4, IPv6 and ARP (also a second VLAN tag), left to the host.' },
  { code: L.REASON_DROP_TRUNCATED_L2, verdict: 'drop', severity: 'notice', description: 'Frame shorter than its Ethernet (and VLAN) header.' },
  { code: L.REASON_DROP_TRUNCATED_L3, verdict: 'drop', severity: 'notice', description: 'Frame shorter than the fixed IPv4 / IPv6 header.' },
  { code: L.REASON_DROP_BAD_IP_VERSION, verdict: 'drop', severity: 'notice', description: 'IP version field does not match the ethertype.' },
  { code: L.REASON_DROP_BAD_IHL, verdict: 'drop', severity: 'notice', description: 'IPv4 header length below 20 bytes.' },
  { code: L.REASON_DROP_BAD_IP_LENGTH, verdict: 'drop', severity: 'notice', description: 'IP total / payload length larger than the frame or smaller than the header.' },
  { code: L.REASON_DROP_TRUNCATED_L4, verdict: 'drop', severity: 'notice', description: 'TCP, UDP, SCTP or ICMP header cut off by the end of the IP packet.' },
  { code: L.REASON_DROP_BAD_L4_HEADER, verdict: 'drop', severity: 'notice', description: 'TCP data offset below 5 words.' },
  { code: L.REASON_DROP_TTL_EXCEEDED, verdict: 'drop', severity: 'notice', description: 'TTL / hop limit 1 or 0 on a packet the core would forward, dropped unanswered: one the kernel never answers (an ICMP error, routed or translated for a flow without the node at either end; a non-first fragment, IPv4 or IPv6; a broadcast / multicast destination or Ethernet group address; an unspecified source).' },
  { code: L.REASON_DROP_FRAGMENT, verdict: 'drop', severity: 'notice', description: 'Non-first IP fragment with no remembered first fragment (it arrived first, or after the fragment timeout, or its entry was overwritten), or toward a service without a flow: later fragments follow the first fragment\'s flow and are never held.' },
  { code: L.REASON_DROP_IPV6_EXT_HEADERS, verdict: 'drop', severity: 'notice', description: 'More than 8 IPv6 extension headers, or one running past the end of the packet.' },
  { code: L.REASON_DROP_SOURCE_RANGE, verdict: 'drop', severity: 'notice', description: "Client outside the service's loadBalancerSourceRanges." },
  { code: L.REASON_DROP_NO_ROUTE, verdict: 'drop', severity: 'warning', description: 'The chosen backend or route has no resolved port or neighbour, or is of the other family, or the Maglev pick is unusable (fail closed).' },
  { code: L.REASON_DROP_CT_FULL, verdict: 'drop', severity: 'warning', description: 'New flow while the conntrack table is full of established flows (nothing to evict).' },
  { code: L.REASON_DROP_OVERSIZE, verdict: 'drop', severity: 'error', description: 'Descriptor length larger than the packet slot.' },
  { code: L.REASON_DROP_BAD_PORT, verdict: 'drop', severity: 'error', description: 'Descriptor in_port is PORT_NONE.' },
  { code: L.REASON_DROP_MARTIAN, verdict: 'drop', severity: 'notice', description: 'Source address multicast or broadcast (IPv4 224.0.0.0/4, 255.255.255.255; IPv6 ff00::/8).' },
  { code: L.REASON_DROP_SNAT_EXHAUSTED, verdict: 'drop', severity: 'warning', description: 'New flow needing SNAT found no free source port (or the SNAT port range is empty).' },
  { code: L.REASON_DROP_ICMP_UNMATCHED, verdict: 'drop', severity: 'notice', description: 'Reserved: never given (an ICMP error quoting no flow is routed or left to the host).', reserved: true },
  { code: L.REASON_DROP_CT_CLASH, verdict: 'drop', severity: 'warning', description: "New flow whose reply tuple belongs to another live flow (without SNAT to remap it); the other flow's replies would be mistranslated." },
  { code: L.REASON_DROP_RST_NO_ENDPOINTS, verdict: 'drop', severity: 'notice', description: 'TCP RST to a service without usable endpoints: never answered (the kernel\'s conntrack counts it invalid, never new, so kube-proxy\'s reject never sees it), so it is dropped.' },
  { code: L.REASON_DROP_ITP_NO_LOCAL, verdict: 'drop', severity: 'notice', description: 'New flow to a ClusterIP with internalTrafficPolicy Local and no endpoint on this node while the service has endpoints elsewhere: dropped like kube-proxy (a reject is only for a service without endpoints).' },
  { code: L.REASON_DROP_ETP_NO_LOCAL, verdict: 'drop', severity: 'notice', description: 'New flow from outside the cluster to a NodePort, external IP or LoadBalancer IP with externalTrafficPolicy Local and no endpoint on this node while the service has endpoints elsewhere: dropped like kube-proxy (pods and the node itself go to the cluster-wide endpoints).' },
  { code: L.REASON_DROP_NO_SERVICE_IP, verdict: 'drop', severity: 'notice', description: "Destination inside the node config's service CIDRs that no service (port) owns: dropped instead of leaking to the default route." },
  { code: L.REASON_REJECT_INVALID_PORT, verdict: 'reject', severity: 'notice', description: 'New flow (or the next packet of a stale one) to a ClusterIP on a port or protocol its Service does not define: answered with an ICMP / ICMPv6 port unreachable, TCP too (kube-proxy rejects invalid ClusterIP ports).' },
  { code: L.REASON_REJECT_CLUSTER_IP_PROTO, verdict: 'reject', severity: 'notice', description: 'ICMP echo (or another ICMP query the kernel tracks as new) or a protocol without ports to an allocated ClusterIP: answered with an ICMP port unreachable, as kube-proxy\'s cluster-ips check rejects it.' },
  { code: L.REASON_DROP_BACKEND_UNREACHABLE, verdict: 'drop', severity: 'notice', description: "Packet of an open TCP or SCTP connection whose endpoint left the Service, kept on that endpoint's address as kube-proxy's conntrack keeps it, when no route reaches that address any more (the pod is gone): dropped, so the client times out as under kube-proxy." },
  { code: L.REASON_REJECT_PACKET_TOO_BIG, verdict: 'reject', severity: 'notice', description: "IP packet larger than the MTU of the port it would leave by (IPv4 with DF set, or IPv6): answered, as a Linux router's ip_forward / ip6_forward, with an ICMP fragmentation needed (type 3 code 4) / ICMPv6 packet too big carrying the port's MTU, quoting the packet as it arrived (a service flow's client sees its own packet to the service address), so path MTU discovery works." },
  { code: L.REASON_DROP_PACKET_TOO_BIG, verdict: 'drop', severity: 'notice', description: 'IPv4 packet without DF larger than the MTU of the port it would leave by (the kernel would fragment it; the core does not), or a packet too big that is never answered (an ICMP error, a non-first IPv4 fragment).' },
  { code: L.REASON_DROP_ICMP_STALE_FLOW, verdict: 'drop', severity: 'notice', description: "ICMP error from a client about a reply of a stale flow (its SNAT address is gone or changed; a UDP flow whose endpoint left): the flow's own next packet would pick a backend again, which an error cannot do, so it is dropped, never held for a next hop." },
  { code: L.REASON_DROP_REJECT_RATE_LIMITED, verdict: 'drop', severity: 'notice', description: "A packet that would be rejected (reject_no_endpoints, reject_invalid_port, reject_cluster_ip_proto), or answered with a time exceeded (reject_ttl_exceeded), while its client's answers are over the rate limit — a burst of 6, then one a second (IPv6: one per 100 ms) per client address, and 1000 a second with a burst of 50 for all clients, the kernel's limits on the ICMP errors of kube-proxy's reject: dropped unanswered, so a flood to a refused service is not reflected at its rate." },
  { code: L.REASON_REJECT_TTL_EXCEEDED, verdict: 'reject', severity: 'notice', description: "Packet whose TTL / hop limit ran out at the node: answered, as a Linux node's ip_forward / ip6_forward, with an ICMP time exceeded (type 11) / ICMPv6 time exceeded (type 3) quoting the packet as it arrived — a routed packet from the in port's node address; a packet to a service address or of a service flow from the address conntrack's NAT gives the kernel's error (the service address the client used; to a backend, the node), no flow created — so traceroute shows the node's hop; under the reject rate limit. A packet with the node itself at one end (to a node address, to a Service endpoint at the node, the node's own packets) goes on instead, its TTL as it came, as the kernel's local delivery and output do." },
  { code: L.REASON_DROP_TTL_NO_ADDRESS, verdict: 'drop', severity: 'notice', description: 'Routed packet (or a service flow\'s reply from a backend, not masqueraded) whose TTL / hop limit ran out at the node, arriving on a port without an address of its family to answer from (no gateway address; on an uplink no node address either): dropped unanswered.' },
];

/** Reason code -> name, from the REASON_* constant names (REASON_DROP_FRAGMENT -> drop_fragment). */
const NAME_BY_CODE = new Map<number, string>(
  Object.entries(L).filter(([k]) => k.startsWith('REASON_') && k !== 'REASON_COUNT')
    .map(([k, v]) => [v as number, k.slice('REASON_'.length).toLowerCase()]));

export function reasonNameOf(code: number): string {
  return NAME_BY_CODE.get(code) ?? `reason_${code}`;
}

const BY_CODE = new Map<number, ReasonInfo>(REASON_TABLE.map((r) => [r.code, r]));

/** The table's entry for a reason code, or undefined (0 and unused codes). */
export function reasonInfo(code: number): ReasonInfo | undefined {
  return BY_CODE.get(code);
}

/** The reasons section of docs/core.md (between its `reasons:begin` / `reasons:end` markers). */
export function reasonsMarkdown(): string {
  const rows = [...REASON_TABLE].sort((a, b) => a.code - b.code)
    .map((r) => `| ${r.code} | \`${reasonNameOf(r.code)}\` | ${r.verdict} | ${r.severity} | ${r.description} |`);
  return ['| code | reason | verdict | severity | meaning |', '|---|---|---|---|---|', ...rows].join('\n');
}

/** Prometheus help text listing the reasons of one verdict with their meaning. */
export function reasonsHelp(verdict: ReasonVerdict): string {
  return REASON_TABLE.filter((r) => r.verdict === verdict && !r.reserved)
    .map((r) => `${reasonNameOf(r.code)}: ${r.description}`).join(' ');
}
