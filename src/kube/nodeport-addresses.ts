// kubernetes.nodePortAddresses read as kube-proxy reads --nodeport-addresses. kube-proxy runs one
// proxier per IP family, each built with NewNodePortAddresses(family, cidrs): the CIDRs of its
// family, or, when none of the list is of its family, the zero CIDR — every address of the family
// (MatchAll). A zero CIDR (0.0.0.0/0, ::/0) matches all of its family whatever else is listed.
// "primary" (which must stand alone: the config refuses it beside CIDRs) is turned first into the
// node's primary IP per family as a /32 and a /128 — skipping a loopback one, which kube-proxy's
// node-IP detection uses as "none" — so a family without a primary IP matches all of it.
// Both the NodePort addresses (nodePortAddresses) and the health-check listen addresses
// (service-health.ts) are read from nodePortFamilies, so the rule is written once. The list
// arrives defaulted: unset is "primary", as kube-proxy's nftables mode (daemon/config.ts,
// withNodePortDefault), except with node.addresses configured, where it stays empty.
// The addresses a list of CIDRs selects from: kube-proxy's GetNodeIPs reads the host's interface
// addresses (and a MatchAll family is `fib daddr type local`: every local address of it); here the
// host's addresses as daemon/host-addresses.ts reads them, plus the Node's addresses (and
// node.addresses), which wdp puts on the host itself (the host port's TAP carries every node
// address) and which were the only ones before the host's were read. `primary` stays the Node's
// primary IP: kube-proxy turns it into that IP's /32 and /128 before reading the host.
import { isIP } from 'node:net';
import { cidrContains, parseAddr, parseCidr, type Cidr } from '../util/addr.js';
import { canon } from '../model/schema.js';
import type { NodeInfo } from './node.js';

/** The Node's facts the selection reads: its addresses and its primary IP per family. */
export type NodeAddressFacts = Pick<NodeInfo, 'addresses' | 'primary'>;

/** One family's proxier's view of the list: all of the family, or the node addresses in `cidrs`. */
export interface NodePortFamily { family: 4 | 6; matchAll: boolean; cidrs: Cidr[] }

function loopback(a: string): boolean {
  return isIP(a) === 4 ? a.startsWith('127.') : canon(a) === '::1';
}

/** The list as kube-proxy's two proxiers hold it: per family, MatchAll or its CIDRs. `primary`
 * is the node's primary IP per family (NodeInfo.primary). */
export function nodePortFamilies(filter: readonly string[], primary: readonly string[]): NodePortFamily[] {
  const cidrs = filter.includes('primary')
    ? primary.filter((a) => !loopback(a)).map((a) => `${a}/${isIP(a) === 6 ? 128 : 32}`)
    : filter;
  return ([4, 6] as const).map((family) => {
    const own = cidrs.map(parseCidr).filter((c) => c.family === family);
    return { family, matchAll: own.length === 0 || own.some((c) => c.plen === 0), cidrs: own };
  });
}

/** Whether `addr` is a NodePort address under `families` (nodePortFamilies). */
export function selectsAddress(families: readonly NodePortFamily[], addr: string): boolean {
  const a = parseAddr(addr);
  const f = families.find((x) => x.family === a.family);
  return !!f && (f.matchAll || f.cidrs.some((c) => cidrContains(c, a)));
}

/** The list the NodePort addresses are selected by, per family (what nodePortFamilies reads):
 * `filter`, or — empty, which the config leaves it only beside node.addresses — the `configured`
 * addresses as host CIDRs, since NodePorts are then served on exactly those (nodePortAddresses
 * below). The health-check listeners are chosen by it (service-health.ts), so they listen where
 * NodePorts are served, as kube-proxy's listen on its nodePortAddresses (nftables' default:
 * the node IP); a family with no configured address stays unrestricted, as "primary" leaves a
 * family without a node IP. */
export function nodePortFilter(filter: readonly string[], configured: readonly string[]): string[] {
  if (filter.length || !configured.length) return [...filter];
  return configured.map((a) => `${canon(a)}/${isIP(a) === 6 ? 128 : 32}`);
}

/** The NodePort addresses, as kube-proxy's --nodeport-addresses: empty (only with node.addresses
 * configured, the config defaults it to "primary" otherwise) = every node address,
 * else per family (nodePortFamilies) the node addresses its CIDRs hold, or all of a family the
 * list does not restrict. `configured` (the daemon config's node.addresses) are node addresses
 * too, and with no nodePortAddresses they are used alone: an operator who listed them meant
 * exactly those (the start does not wait for the Node then). A list of CIDRs selects among the
 * `host`'s interface addresses (daemon/host-addresses.ts) too, as kube-proxy: one it selects
 * becomes a node address (nodeAddressList). */
export function nodePortAddresses(info: NodeAddressFacts | null, configured: readonly string[], filter: readonly string[], host: readonly string[] = []): string[] {
  const own = configured.map(canon);
  if (!filter.length) return own.length ? own : info?.addresses ?? [];
  const families = nodePortFamilies(filter, info?.primary ?? []);
  const fromHost = selectsFromHost(filter) ? host.map(canon) : [];
  return [...new Set([...own, ...(info?.addresses ?? []), ...fromHost])].filter((a) => selectsAddress(families, a));
}

/** Whether the list selects from the host's interface addresses too (`host` above): a list of
 * CIDRs (a zero CIDR among them) does, as kube-proxy's GetNodeIPs; empty or `primary` does not. */
export function selectsFromHost(filter: readonly string[]): boolean {
  return filter.length > 0 && !filter.includes('primary');
}

/** The node addresses (the NodeConfig's nodeAddresses: answered for on the uplinks, on the host
 * port's TAP) beside the NodePort addresses `selected` (nodePortAddresses above), which narrow
 * where NodePorts are served and nothing else: node.addresses configured, else every address of
 * the Node (InternalIPs and ExternalIPs), plus any selected address not among them (a Node
 * address a filter picked beside node.addresses) so the NodePort addresses are node addresses. */
export function nodeAddressList(info: NodeAddressFacts | null, configured: readonly string[], selected: readonly string[]): string[] {
  const own = configured.map(canon);
  return [...new Set([...(own.length ? own : info?.addresses ?? []), ...selected])];
}

/** The node addresses and the NodePort addresses selected from the Node's facts (null: not known)
 * with node.addresses (`configured`) and kubernetes.nodePortAddresses (`filter`, as defaulted),
 * and the host's interface addresses (`host`, read by the daemon; the watcher passes none):
 * what the watcher reports for a Node update and what the daemon takes from facts it read or saved. */
export function selectNodeAddresses(info: NodeAddressFacts | null, configured: readonly string[], filter: readonly string[], host: readonly string[] = []): { addresses: string[]; nodePortAddresses: string[] } {
  const np = nodePortAddresses(info, configured, filter, host);
  return { addresses: nodeAddressList(info, configured, np), nodePortAddresses: np };
}
