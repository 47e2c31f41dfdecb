// What wdp takes from its own Node object: its addresses (NodePorts are served on those
// nodeport-addresses.ts selects), the pod CIDRs (for local-traffic detection, detectLocalMode
// NodeCIDR) and whether the node is being deleted (kube-proxy's healthz then answers 503 so load
// balancers drain it).
import { isIP } from 'node:net';
import { canon, canonCidr } from '../model/schema.js';
import { notOneHostProblem } from '../model/host-address.js';
import type { KubeObject } from './client.js';
import type { IpFamilyName } from './healthz.js';

export interface NodeInfo {
  name: string;
  /** InternalIP and ExternalIP addresses, canonical, in the Node's order. */
  addresses: string[];
  /** The node's primary IP per family (first InternalIP, else first ExternalIP), as GetNodeHostIPs. */
  primary: string[];
  podCIDRs: string[];
  /** The topology.kubernetes.io/zone label (topology-aware routing), '' when unset. */
  zone: string;
  /** false while the node is being deleted (deletionTimestamp) or the cluster autoscaler marked
   * it for deletion (the ToBeDeletedByClusterAutoscaler taint). */
  eligible: boolean;
}

const ZONE_LABEL = 'topology.kubernetes.io/zone';
const TO_BE_DELETED_TAINT = 'ToBeDeletedByClusterAutoscaler';

type Raw = Record<string, unknown>;
const isObj = (x: unknown): x is Raw => typeof x === 'object' && x !== null && !Array.isArray(x);
/** The objects of `x` when it is a list (entries that are no object are not read). */
const objectsOf = (x: unknown): Raw[] => (Array.isArray(x) ? x.filter(isObj) : []);

/** What the Node says, read whatever its shape: a list that is none, or null entries, read as
 * absent (the handler threw, and the node's addresses stayed unknown until it changed). */
export function nodeInfo(node: KubeObject): NodeInfo {
  const o: Raw = isObj(node) ? node : {};
  const status = isObj(o.status) ? o.status : {};
  const spec = isObj(o.spec) ? o.spec : {};
  // (an address no one host can own — 0.0.0.0, multicast — is no node address: NodePorts are not served on it)
  const byType = (t: string) => objectsOf(status.addresses).filter((a) => a.type === t && typeof a.address === 'string' && isIP(a.address) !== 0 && notOneHostProblem(a.address) === null).map((a) => canon(a.address as string));
  const internal = byType('InternalIP'), external = byType('ExternalIP');
  const addresses = [...new Set([...internal, ...external])];
  const primary: string[] = [];
  for (const fam of [4, 6]) {
    const a = internal.find((x) => isIP(x) === fam) ?? external.find((x) => isIP(x) === fam);
    if (a) primary.push(a);
  }
  // primary first: the first node address is the default masquerade source
  primary.sort((a, b) => addresses.indexOf(a) - addresses.indexOf(b));
  const cidrs: unknown[] = Array.isArray(spec.podCIDRs) && spec.podCIDRs.length ? spec.podCIDRs : spec.podCIDR ? [spec.podCIDR] : [];
  // canonical, host bits cleared (the API server accepts them; kube-proxy reads the network)
  const podCIDRs = [...new Set(cidrs.flatMap((c) => { try { return typeof c === 'string' && c.includes('/') ? [canonCidr(c)] : []; } catch { return []; } }))];
  const metadata = isObj(o.metadata) ? o.metadata : {};
  const eligible = !metadata.deletionTimestamp && !objectsOf(spec.taints).some((t) => t.key === TO_BE_DELETED_TAINT);
  const zone = isObj(metadata.labels) ? metadata.labels[ZONE_LABEL] : undefined;
  return { name: typeof metadata.name === 'string' ? metadata.name : '', addresses, primary, podCIDRs, zone: typeof zone === 'string' ? zone : '', eligible };
}

/** The IP families kube-proxy's nftables mode runs a proxier for: both whenever the host has
 * IPv6 (its platformCheckSupported: nft serves both families, and only a missing
 * /proc/net/if_inet6 — IPv6 disabled in the kernel — makes it single-stack), whatever the Node's
 * IPs; else one, the family of the node's primary IP (`primary`, IPv4 when none is known). */
export function proxierFamilies(primary: readonly string[], hostIPv6: boolean): IpFamilyName[] {
  if (hostIPv6) return ['IPv4', 'IPv6'];
  return [primary.length && isIP(primary[0]) === 6 ? 'IPv6' : 'IPv4'];
}
