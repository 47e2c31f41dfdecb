// The node's addresses and the Node's other facts as the daemon's NodeConfig takes them, kept in
// one place with their transitions:
//
//   * the Node's facts — what the Kubernetes Node object said (its InternalIP/ExternalIP
//     addresses, primary IP per family, pod CIDRs, zone label), null while none is known; set from
//     a read of the Node (at start, by the watcher) or, at a start that did not read it, from the
//     facts saved when it was last seen (node-facts-file.ts). The config file's fallbacks (node.zone,
//     node.podCIDRs, node.addresses, kubernetes.nodePortAddresses) are never part of them: they
//     are applied when the NodeConfig is built, from the config as it is now;
//   * the host's interface addresses (host-addresses.ts), read while nodePortAddresses is a list
//     of CIDRs, which selects NodePort addresses among them as kube-proxy does; never saved (a
//     start reads them again);
//   * the node addresses and NodePort addresses in force — selected from the Node's addresses
//     (and the host's) with node.addresses and nodePortAddresses (kube/nodeport-addresses.ts)
//     whenever the facts or the host's addresses are taken, or adopted from a NodeConfig applied
//     through the API (the last of them wins), with the names it was applied as (a delete by one
//     of them puts back the addresses the daemon would have without it);
//   * the daemon's own NodeConfig program in flight, by its addresses: the node change that
//     program causes carries the addresses it was built with, which may be older than a Node
//     update read meanwhile, so it is not adopted back (adoptApplied).
import { canonicalAddr } from './l2.js';
import { selectNodeAddresses } from '../kube/nodeport-addresses.js';
import { cidrsInFamilies } from '../kube/families.js';
import { proxierFamilies } from '../kube/node.js';

/** What the Node object said (kube/node.ts NodeInfo without its name and eligibility). */
export interface NodeFacts {
  /** InternalIP and ExternalIP addresses, canonical, in the Node's order. */
  addresses: string[];
  /** The primary IP per family (kube-proxy's node IP). */
  primary: string[];
  podCIDRs: string[];
  /** The topology.kubernetes.io/zone label, '' when unset. */
  zone: string;
}

/** The daemon config's part in the node's addresses and facts: its fallbacks and selectors. */
export interface NodeAddressConfig {
  /** node.addresses: the node addresses instead of the Node's (unless nodePortAddresses selects more). */
  configured: string[];
  /** node.zone: the zone when the Node has no zone label. */
  zone?: string;
  /** node.podCIDRs: the pod CIDRs when the Node has none (in a cluster), else the only ones. */
  podCIDRs: string[];
  /** In a cluster, kubernetes.nodePortAddresses (as defaulted); undefined without one. */
  nodePortFilter?: string[];
  /** In a cluster, whether the host has IPv6: without it NodePorts are served on the NodePort
   * addresses of kube-proxy's one proxier family only (kube/node.ts proxierFamilies). */
  hostIPv6?: boolean;
}

/** A set of canonical addresses as one comparable string. */
export function addressKey(addrs: readonly string[]): string { return [...addrs].sort().join(','); }

/** A node config's node addresses and NodePort addresses as one key (NodePort addresses absent:
 * every node address, as the model reads them). */
export function nodeAddressesKey(addrs: readonly string[], nodePorts: readonly string[] | undefined): string {
  const a = addrs.map(canonicalAddr);
  return `${addressKey(a)}|${addressKey(nodePorts ? [...new Set(nodePorts.map(canonicalAddr))] : a)}`;
}

/** The facts of a NodeInfo-shaped object (extra fields left out, arrays copied). */
export function nodeFactsOf(n: NodeFacts): NodeFacts {
  return { addresses: [...n.addresses], primary: [...n.primary], podCIDRs: [...n.podCIDRs], zone: n.zone };
}

export class NodeAddresses {
  private addrs: string[];
  private nodePorts: string[] | undefined;
  private node: NodeFacts | null = null;
  private host: string[] = [];
  private own: string | null = null;
  /** The names of the NodeConfigs whose addresses are adopted (none: nothing adopted). */
  private applied: string[] = [];

  /** `factsChanged` is called with the Node's facts each time they change (to save them). */
  constructor(private readonly cfg: NodeAddressConfig, private readonly factsChanged?: (facts: NodeFacts | null) => void) {
    this.addrs = cfg.configured;
  }

  /** The node addresses in force (answered for on the uplinks, carried by the host port). */
  get addresses(): string[] { return this.addrs; }
  /** The NodePort addresses in force as last set (undefined without a cluster and none applied:
   * every node address); nodePortSpec() is what the NodeConfig carries. */
  get nodePortAddresses(): string[] | undefined { return this.nodePorts; }
  /** The host's interface addresses as last taken (takeHostAddresses; none outside a CIDR list). */
  get hostAddresses(): readonly string[] { return this.host; }
  /** The names of the NodeConfigs applied through the API whose node and NodePort addresses are
   * in force, oldest first; empty when none are (the daemon's own selection). */
  get appliedAs(): readonly string[] { return this.applied; }
  /** What the Node said, null when not known. */
  get facts(): NodeFacts | null { return this.node; }
  /** The Node's primary IP per family (the NodeConfig's nodeIPs). */
  get nodeIPs(): string[] { return this.node?.primary ?? []; }
  /** The zone: the Node's label, else node.zone, else ''. */
  get zone(): string { return this.node?.zone || this.cfg.zone || ''; }

  /** The NodeConfig's nodePortAddresses: those still node addresses (a NodeConfig applied through
   * the API may have changed the node addresses); undefined: every node address. */
  nodePortSpec(): string[] | undefined { return nodePortSpecOf(this.addrs, this.nodePorts); }

  /** The NodeConfig's podCIDRs: in a cluster the Node's, else node.podCIDRs (possibly none);
   * without a cluster node.podCIDRs, undefined when none. */
  podCIDRsSpec(): string[] | undefined {
    if (this.cfg.nodePortFilter === undefined) return this.cfg.podCIDRs.length ? this.cfg.podCIDRs : undefined;
    const fromNode = this.node?.podCIDRs ?? [];
    return fromNode.length || !this.cfg.podCIDRs.length ? fromNode : this.cfg.podCIDRs;
  }

  /** The Node as read, or as last seen (a start that did not read it), or null (not known): its
   * facts replace the last ones and the node and NodePort addresses are selected from them with
   * the config (selectNodeAddresses, as the watcher's Node updates). */
  takeNode(node: NodeFacts | null): void {
    const before = JSON.stringify(this.node);
    this.node = node ? nodeFactsOf(node) : null;
    this.select();
    if (JSON.stringify(this.node) !== before) this.factsChanged?.(this.node);
  }

  /** The host's interface addresses (host-addresses.ts) as read now: the node and NodePort
   * addresses are selected again with them (with the Node as last taken); returns whether those
   * in force changed (their order too). */
  takeHostAddresses(addrs: readonly string[]): boolean {
    // (the same list again is nothing new: addresses adopted since the last are kept)
    if (addrs.length === this.host.length && addrs.every((a, i) => a === this.host[i])) return false;
    const before = `${this.addrs.join(',')}|${this.nodePorts?.join(',')}`;
    this.host = [...addrs];
    this.select();
    return `${this.addrs.join(',')}|${this.nodePorts?.join(',')}` !== before;
  }

  /** In a cluster: the node and NodePort addresses from the Node's facts, the host's addresses
   * and the config (selectNodeAddresses); they replace any adopted (the last of them wins). */
  private select(): void {
    if (this.cfg.nodePortFilter === undefined) return;
    ({ addrs: this.addrs, nodePorts: this.nodePorts } = this.selected());
    this.applied = [];
  }

  /** The node and NodePort addresses without any adopted: in a cluster selected as select() does,
   * else node.addresses (NodePorts on every one of them). */
  private selected(): { addrs: string[]; nodePorts: string[] | undefined } {
    if (this.cfg.nodePortFilter === undefined) return { addrs: this.cfg.configured, nodePorts: undefined };
    const sel = selectNodeAddresses(this.node, this.cfg.configured, this.cfg.nodePortFilter, this.host);
    const nodePorts = this.cfg.hostIPv6 === false ? cidrsInFamilies(sel.nodePortAddresses, proxierFamilies(this.node?.primary ?? [], false)) : sel.nodePortAddresses;
    return { addrs: sel.addresses, nodePorts };
  }

  /** The NodeConfig's node and NodePort addresses once the adopted ones are dropped (a delete of
   * the NodeConfig applied: what the daemon programs in its place), without dropping them. */
  ownSpec(): { nodeAddresses: string[]; nodePortAddresses: string[] | undefined } {
    const s = this.selected();
    return { nodeAddresses: s.addrs, nodePortAddresses: nodePortSpecOf(s.addrs, s.nodePorts) };
  }

  /** The daemon's own NodeConfig with these addresses is being applied (until ownProgramDone). */
  ownProgram(spec: { nodeAddresses: string[]; nodePortAddresses?: string[] }): void {
    this.own = nodeAddressesKey(spec.nodeAddresses, spec.nodePortAddresses);
  }
  ownProgramDone(): void { this.own = null; }

  /** A NodeConfig with these (canonical) node addresses and NodePort addresses is in force, the
   * daemon's as applied through the API under the names `appliedAs` (its annotation,
   * applied-as.ts): unless it is the daemon's own program's, they are adopted by `adopted`'s rule
   * with those names; with no name (the daemon's own put in place of a deleted one) the adopted
   * ones are dropped. Returns whether the lists in force changed. */
  adoptApplied(addrs: string[], nodePorts: string[] | undefined, appliedAs: readonly string[]): boolean {
    if (this.own !== null && this.own === nodeAddressesKey(addrs, nodePorts)) return false;
    const before = nodeAddressesKey(this.addrs, this.nodePorts), prev = this.addrs;
    if (!appliedAs.length) {
      if (!this.applied.length) return false;
      ({ addrs: this.addrs, nodePorts: this.nodePorts } = this.selected());
      this.applied = [];
    } else {
      ({ addrs: this.addrs, nodePorts: this.nodePorts } = this.adopted(addrs, nodePorts));
      this.applied = [...appliedAs];
    }
    return nodeAddressesKey(this.addrs, this.nodePorts) !== before || this.addrs !== prev;
  }

  /** The NodeConfig's node and NodePort addresses once a NodeConfig applied through the API with
   * these is adopted (adoptApplied), without adopting them: what the daemon programs in that
   * apply's own transaction (src/daemon/daemon.ts nodeConfigOwner). */
  adoptedSpec(addrs: string[], nodePorts: string[] | undefined): { nodeAddresses: string[]; nodePortAddresses: string[] | undefined } {
    const a = this.adopted(addrs, nodePorts);
    return { nodeAddresses: a.addrs, nodePortAddresses: nodePortSpecOf(a.addrs, a.nodePorts) };
  }

  /** adoptApplied's rule: the node addresses when they are another list (their order too: the
   * first of a family is its masquerade source); the NodePort addresses when named and they say
   * something (a list was in force, or they are not every node address). One without node
   * addresses changes neither (the daemon's own are programmed in its place). */
  private adopted(addrs: string[], nodePorts: string[] | undefined): { addrs: string[]; nodePorts: string[] | undefined } {
    const out = { addrs: this.addrs, nodePorts: this.nodePorts };
    if (!addrs.length) return out;
    if (addrs.map(canonicalAddr).join(',') !== this.addrs.map(canonicalAddr).join(',')) out.addrs = addrs;
    if (nodePorts && (this.nodePorts !== undefined || addressKey(nodePorts.map(canonicalAddr)) !== addressKey(addrs))) out.nodePorts = nodePorts;
    return out;
  }
}

/** The NodeConfig's nodePortAddresses: those of `nodePorts` still node addresses (a NodeConfig
 * applied through the API may have changed the node addresses); undefined: every node address. */
function nodePortSpecOf(addrs: readonly string[], nodePorts: readonly string[] | undefined): string[] | undefined {
  return nodePorts ? nodePorts.filter((a) => addrs.some((n) => canonicalAddr(n) === canonicalAddr(a))) : undefined;
}
