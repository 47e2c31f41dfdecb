// Rules between objects that no single object's validation can see: a cluster IP that is also one
// of the node's addresses or a pod's (an endpoint's) address would take that host's or that pod's
// traffic; a NodeConfig neighbour or route on a port the dataplane does not have sends nowhere.
// The node's addresses are facts, not claims: a NodeConfig is never refused for a Service's cluster
// IP (the compiler leaves that ClusterIP frontend out, whichever came first); `wdp apply` refuses
// a Service whose cluster IP is a node address, the Kubernetes watcher's is served without it.
//
// The index keeps each cluster IP's service, and — built on the first check that needs it, so a
// full sync from empty does not pay for it — how many endpoints use each address. A check costs
// O(the batch): a one-endpoint change looks up its slice's addresses, not the cluster's.
import { fieldError, type FieldError, type ModelObject, type NodeSpec, type ServiceSpec, type SliceSpec } from './types.js';
import { AddressMap } from './address-map.js';
import { ipv4Value } from '../util/addr.js';

export interface ModelView {
  node(): NodeSpec | null;
  services(): Iterable<ServiceSpec>;
  /** In key order (an error names the first slice that holds an address). */
  slices(): Iterable<SliceSpec>;
  /** In any order (the address counts). */
  eachSlice(): Iterable<SliceSpec>;
  sliceCount(): number;
}

/** "Service/ns/name", "EndpointSlice/ns/name", "NodeConfig/" */
export function refKey(kind: string, key: string): string { return `${kind}/${kind === 'NodeConfig' ? '' : key}`; }

function clusterIPField(s: ServiceSpec, i: number): string {
  const given = (s.raw.spec as { clusterIPs?: unknown } | undefined)?.clusterIPs;
  return Array.isArray(given) && given.length ? `spec.clusterIPs[${i}]` : 'spec.clusterIP';
}

export class AddressIndex {
  private vips = new AddressMap<string>();             // cluster IP → service key
  private pods: AddressMap<number> | null = null;      // endpoint address → endpoints using it
  /** The last check's batch and its cluster IPs: update() takes them as they are when they are
   * the whole index after it (a first sync: 10k inserts saved). */
  private checked: { upserts: readonly ModelObject[]; vips: AddressMap<string> } | null = null;

  constructor(private readonly view: ModelView) {}

  /** Rebuilds from the view (after a restore). */
  reset(): void {
    this.vips.clear();
    for (const s of this.view.services()) for (const ip of s.clusterIPs) this.vips.set(ip, s.key);
    this.pods = null;
  }

  private podIndex(): AddressMap<number> {
    if (!this.pods) {
      this.pods = new AddressMap();
      for (const es of this.view.eachSlice()) this.count(es, 1);
    }
    return this.pods;
  }

  private count(es: SliceSpec, d: number): void {
    const pods = this.pods!;
    for (const ep of es.endpoints) {
      const as = ep.addresses;
      for (let j = 0; j < as.length; j++) {
        const a = as[j], v = j === 0 && ep.v4 >= 0 ? ep.v4 : ipv4Value(a);
        const n = (pods.get(a, v) ?? 0) + d;
        if (n > 0) pods.set(a, n, v); else pods.delete(a, v);
      }
    }
  }

  /** The batch's conflicts against the state after it. `old` maps refKey → each object the batch
   * replaces or removes (as it is now); `removed` holds the refKeys the batch removes; `ports`: the dataplane's
   * port indices, or null when unknown. `strict`: the API's own writes — endpoint addresses are
   * checked against cluster IPs and a cluster IP may not be a node address. The Kubernetes
   * watcher's objects are checked for neither, as kube-proxy checks neither: an EndpointSlice the
   * API server accepted, in any namespace, must not cost another namespace's Service its cluster IP
   * (or itself) by arriving first, and a Service whose cluster IP is a node address is served
   * without that frontend (the compiler's clusterIPsOfNode) whether it came before the node or after. */
  check(upserts: readonly ModelObject[], old: ReadonlyMap<string, ModelObject>, removed: ReadonlySet<string>, ports: ReadonlySet<number> | null, strict = true): FieldError[] {
    const endpoints = strict;
    const errors: FieldError[] = [];
    const batchVips = new AddressMap<string>();
    let batchNode: NodeSpec | null = null;
    for (const o of upserts) {
      if (o.kind === 'Service') for (const ip of o.clusterIPs) batchVips.set(ip, o.key);
      else if (o.kind === 'NodeConfig') batchNode = o;
    }
    this.checked = { upserts, vips: batchVips };
    const node = batchNode ?? (removed.has(refKey('NodeConfig', '')) ? null : this.view.node());
    // (no cluster IP anywhere: no address can be one; a first sync's batch has them all)
    const anyVip = batchVips.size > 0 || this.vips.size > 0;
    // every IPv4 cluster IP is within [vipLow, vipHigh]: an IPv4 slice outside it has none (pod
    // and service CIDRs are apart: 10k slice checks instead of 100k address lookups)
    const vipLow = Math.min(batchVips.v4Low, this.vips.v4Low), vipHigh = Math.max(batchVips.v4High, this.vips.v4High);

    for (const o of upserts) {
      if (o.kind === 'Service') {
        for (let i = 0; i < o.clusterIPs.length; i++) {
          const ip = o.clusterIPs[i];
          if (strict && node && node.addresses.includes(ip)) {
            errors.push(fieldError('Service', o.namespace, o.name, clusterIPField(o, i), 'FieldValueInvalid', `Invalid value: ${JSON.stringify(ip)}: is an address of node ${node.name}`));
          }
          const pod = endpoints ? this.podUsing(ip, old) : null;
          if (pod) errors.push(fieldError('Service', o.namespace, o.name, clusterIPField(o, i), 'FieldValueInvalid', `Invalid value: ${JSON.stringify(ip)}: is the address of an endpoint (pod) in EndpointSlice ${pod}`));
        }
      } else if (o.kind === 'EndpointSlice') {
        if (!endpoints || !anyVip || (o.v4Low >= 0 && (o.v4High < vipLow || o.v4Low > vipHigh))) continue;
        for (let i = 0; i < o.endpoints.length; i++) {
          const ep = o.endpoints[i], as = ep.addresses;
          for (let j = 0; j < as.length; j++) {
            const a = as[j];
            const owner = this.vipOwner(a, j === 0 && ep.v4 >= 0 ? ep.v4 : ipv4Value(a), batchVips, old, removed);
            if (owner !== undefined) errors.push(fieldError('EndpointSlice', o.namespace, o.name, `endpoints[${i}].addresses[${j}]`, 'FieldValueInvalid', `Invalid value: ${JSON.stringify(a)}: is the cluster IP of Service ${owner}`));
          }
        }
      } else if (ports) errors.push(...nodeConfigPortErrors(o, ports));
    }
    return errors;
  }

  /** The key of the Service whose cluster IP `ip` (`v`: its ipv4Value) is after the batch: one of
   * the batch's, or one of the state's that the batch neither replaces nor removes. */
  private vipOwner(ip: string, v: number, batchVips: AddressMap<string>, old: ReadonlyMap<string, ModelObject>, removed: ReadonlySet<string>): string | undefined {
    const b = batchVips.get(ip, v);
    if (b !== undefined) return b;
    const cur = this.vips.get(ip, v);
    if (cur === undefined) return undefined;
    const k = refKey('Service', cur);
    return old.has(k) || removed.has(k) ? undefined : cur;
  }

  /** The slice ("ns/name") that will have an endpoint at `ip` after the batch — counting the
   * state's slices the batch keeps (the batch's own slices are checked against cluster IPs from
   * their side) — or null. */
  private podUsing(ip: string, old: ReadonlyMap<string, ModelObject>): string | null {
    if (!this.pods && this.view.sliceCount() === 0) return null; // (a first sync: no index to build or keep)
    let n = this.podIndex().get(ip) ?? 0;
    if (!n) return null;
    for (const o of old.values()) {
      if (o.kind === 'EndpointSlice') for (const ep of o.endpoints) if (ep.addresses.includes(ip)) n--;
    }
    if (n <= 0) return null;
    for (const es of this.view.slices()) {
      if (old.has(refKey('EndpointSlice', es.key))) continue;
      if (es.endpoints.some((ep) => ep.addresses.includes(ip))) return es.key;
    }
    return null;
  }

  /** After a committed change: `olds` were replaced or removed, `news` are in the state now. */
  update(olds: Iterable<ModelObject>, news: readonly ModelObject[]): void {
    const checked = this.checked;
    this.checked = null;
    const replaced = [...olds];
    if (checked && checked.upserts === news && this.vips.size === 0 && !replaced.length && !this.pods) {
      this.vips = checked.vips; // what the loops below would build: the batch's cluster IPs, in its order
      return;
    }
    for (const o of replaced) {
      if (o.kind === 'Service') { for (const ip of o.clusterIPs) if (this.vips.get(ip) === o.key) this.vips.delete(ip); }
      else if (o.kind === 'EndpointSlice' && this.pods) this.count(o, -1);
    }
    for (const o of news) {
      if (o.kind === 'Service') { for (const ip of o.clusterIPs) this.vips.set(ip, o.key); }
      else if (o.kind === 'EndpointSlice' && this.pods) this.count(o, 1);
    }
  }
}

/** A NodeConfig's neighbours and routes on a port the dataplane does not have (`ports`: its port
 * indices), each with its field path. */
export function nodeConfigPortErrors(o: NodeSpec, ports: ReadonlySet<number>): FieldError[] {
  const errors: FieldError[] = [];
  const have = [...ports].sort((a, b) => a - b).join(', ') || 'none';
  o.neighbours.forEach((nb, i) => {
    if (!ports.has(nb.port)) errors.push(fieldError('NodeConfig', undefined, o.name, `spec.neighbours[${i}].port`, 'FieldValueInvalid', `Invalid value: ${nb.port}: the dataplane has no such port (its ports: ${have})`));
  });
  o.routes.forEach((r, i) => {
    if (!ports.has(r.port)) errors.push(fieldError('NodeConfig', undefined, o.name, `spec.routes[${i}].port`, 'FieldValueInvalid', `Invalid value: ${r.port}: the dataplane has no such port (its ports: ${have})`));
  });
  return errors;
}
