// Which Service serves an external frontend tuple — an externalIP's or LoadBalancer ingress IP's
// address:port/protocol — that two Services claim. externalIPs are set by users, in any namespace,
// and the API server does not check them against each other; kube-proxy's nftables proxier then
// fails its sync (two `service-ips` elements with one key), its iptables proxier lets the first
// rule win (kubernetes/kubernetes#69599). For the Kubernetes watcher's objects wdp serves the
// tuple for one Service and leaves it out of the others (ServiceSpec.withheld: neither claimed
// nor compiled), which keep everything else: cluster IPs, node ports, their other tuples.
//
// The winner is a function of the contenders alone — a Service this node programs before one it
// does not (another proxy's, headless-labelled), then the older creationTimestamp, then the
// namespace, then the name (the rule Gateway API prescribes for conflicting Routes) — so arrival
// order, a re-list, a restart (the saved state is resolved again) and every node of the cluster
// agree. The cost: a Service serving a tuple loses it when an older Service adds the same one.
// `wdp apply` (the operator's own write) does not yield: the compiler refuses its clash (422).
//
// An external tuple that is another Service's cluster IP and port (CVE-2020-8554's interception;
// docs/core.md Known differences (11)) is the cluster IP's, whoever came first: the API server
// allocates each cluster IP to one Service, externalIPs are anyone's to write. The external
// frontend is withheld as above (the cost: an old externalIP loses its tuple when a new Service
// is allocated that address); `wdp apply` refuses such a clash from either side (422). A cluster
// IP that is one of the node's addresses holds no tuple: the compiler serves no ClusterIP frontend
// there (the node's own traffic stays the node's), so an external frontend of the same tuple is
// served — withheld, it would be nobody's — and the node config's addresses decide it again
// when they change (kube-proxy's nftables proxier fails its sync on the two elements either way).
import { fieldError, servedByProxy, ValidationError, type FieldError, type ModelObject, type NodeSpec, type ServiceSpec } from '../model/types.js';
import { externalClaim, forEachExternalClaim, hasExternalClaims, type Claim } from './claims.js';

/** The model the resolution reads: who holds a claim now, a Service by key, the node config. */
export interface ClaimsView {
  claimHolder(c: Claim): string | undefined;
  serviceByKey(key: string): ServiceSpec | undefined;
  /** The node config in force: its serviceProxyName decides which Services this node programs. */
  getNode(): NodeSpec | null;
  /** The model's Services, in any order (walked only when serviceProxyName changes). */
  eachService(): Iterable<ServiceSpec>;
}

/** One frontend a Service yields: "addr:port/PROTO", and the key of the Service that serves it;
 * `heldAs` 'clusterIP' when that Service's cluster IP and port is the tuple (Known difference (11)). */
export interface WithheldFrontend { frontend: string; heldBy: string; heldAs?: 'clusterIP' }

/** A Service whose withheld frontends this change decided (none: it serves all of its own). */
export interface WithheldReport { namespace: string; name: string; resourceVersion?: string; frontends: WithheldFrontend[] }

/** What a change's Services become: `extra`, Services the batch did not name whose withheld
 * frontends changed (a holder that lost a tuple to an older Service, a Service that gets one back
 * because its holder went), to upsert with the batch; `reports`, per Service decided. */
export interface Resolution { extra: ServiceSpec[]; reports: WithheldReport[] }

/** Why a frontend is not served (wdp_frontends_withheld{reason}): an external tuple another
 * Service's external address holds (21); an external tuple that is another Service's cluster IP
 * and port (11); a ClusterIP frontend whose cluster IP is one of the node's addresses. */
export type WithheldReason = 'external_clash' | 'cluster_ip_clash' | 'node_address';

/** "fe PROTO addr port" → "addr:port/PROTO" (the text an error shows for the claim). */
export function claimText(c: string): string {
  const [, proto, addr, port] = c.split(' ');
  return `${addr}:${port}/${proto}`;
}

function createdMs(s: ServiceSpec): number {
  const t = (s.raw.metadata as { creationTimestamp?: unknown } | undefined)?.creationTimestamp;
  const ms = typeof t === 'string' ? Date.parse(t) : NaN;
  return Number.isNaN(ms) ? Infinity : ms; // none (a hand-written object): after every dated one
}

/** Whether `a` wins a tuple over `b`: older creationTimestamp, then namespace, then name. */
export function ranksBefore(a: ServiceSpec, b: ServiceSpec): boolean {
  const ta = createdMs(a), tb = createdMs(b);
  if (ta !== tb) return ta < tb;
  if (a.namespace !== b.namespace) return a.namespace < b.namespace;
  return a.name < b.name;
}

/** The ClusterIP frontend tuples of `s` in the external claims' key space ("fe PROTO ip port"). */
function forEachClusterTuple(s: ServiceSpec, visit: (c: string) => void): void {
  for (let i = 0; i < s.clusterIPs.length; i++) for (let j = 0; j < s.ports.length; j++) visit(externalClaim(s.ports[j].protocol, s.clusterIPs[i], s.ports[j].port));
}

/** Whether `s` has a port of protocol `proto` and number `port`. */
const hasPort = (s: ServiceSpec, proto: string, port: number): boolean => s.ports.some((p) => p.protocol === proto && p.port === port);

/** The field path of cluster IP `i` of `s`, as the request gave it. */
function clusterIPField(s: ServiceSpec, i: number): string {
  const given = (s.raw.spec as { clusterIPs?: unknown } | undefined)?.clusterIPs;
  return Array.isArray(given) && given.length ? `spec.clusterIPs[${i}]` : 'spec.clusterIP';
}

const NONE: ReadonlySet<string> = new Set();
const NO_KEYS: readonly string[] = [];
/** Each view's resolution (the metrics find the control plane's through its compiler). */
const BY_VIEW = new WeakMap<ClaimsView, ExternalClaims>();

export class ExternalClaims {
  /** tuple claim → keys of the Services in the model that yield it (few: only clashes). */
  private readonly yielders = new Map<string, Set<string>>();
  /** Services in the model with an external address: while there is none, a batch's cluster IPs
   * are not looked up as external tuples (a 10k-Service sync of ClusterIP Services makes no string). */
  private withExternal = 0;

  constructor(private readonly view: ClaimsView) { BY_VIEW.set(view, this); }

  /** The resolution over `view` (a control plane's compiler), if one was made. */
  static of(view: ClaimsView): ExternalClaims | undefined { return BY_VIEW.get(view); }

  /** Rebuilds from the model's Services (after a restore). */
  reset(services: Iterable<ServiceSpec>): void {
    this.yielders.clear();
    this.withExternal = 0;
    for (const s of services) { this.add(s, 1); if (hasExternalClaims(s)) this.withExternal++; }
  }

  /** After a committed change: `olds` were replaced or removed, `news` are in the model now. */
  update(olds: Iterable<ModelObject>, news: readonly ModelObject[]): void {
    for (const o of olds) if (o.kind === 'Service') { if (o.withheld) this.add(o, -1); if (hasExternalClaims(o)) this.withExternal--; }
    for (const o of news) if (o.kind === 'Service') { if (o.withheld) this.add(o, 1); if (hasExternalClaims(o)) this.withExternal++; }
  }

  private add(s: ServiceSpec, d: 1 | -1): void {
    for (const c of s.withheld ?? NONE) {
      let set = this.yielders.get(c);
      if (d > 0) { if (!set) this.yielders.set(c, set = new Set()); set.add(s.key); }
      else if (set) { set.delete(s.key); if (!set.size) this.yielders.delete(c); }
    }
  }

  /** The key of the model's Service whose cluster IP and port tuple `c` is, if this node programs
   * it (proxy name `proxy`) and serves its ClusterIP frontend: not when the address is one of the
   * node's (`nodeAddrs`; the compiler leaves that frontend out, so it holds no tuple). */
  private modelOwner(c: string, proxy: string | undefined, nodeAddrs: readonly string[], inForce: (k: string) => boolean = () => true): string | undefined {
    const [, proto, addr, port] = c.split(' ');
    if (nodeAddrs.includes(addr)) return undefined;
    const h = this.view.claimHolder(addr); // (a cluster IP's claim is its address)
    if (h === undefined || !inForce(h)) return undefined;
    const s = this.view.serviceByKey(h);
    return s && servedByProxy(s, proxy) && hasPort(s, proto, +port) ? h : undefined;
  }

  /** The frontends withheld now, by reason: what the model's Services yield (one frontend a tuple,
   * when this node programs the Service and the address is of its families) and the ClusterIP
   * frontends of cluster IPs that are node addresses (one a port). Costs O(clashes + node
   * addresses), not O(Services): read at every metrics scrape. */
  withheldFrontends(): Record<WithheldReason, number> {
    const out: Record<WithheldReason, number> = { external_clash: 0, cluster_ip_clash: 0, node_address: 0 };
    const node = this.view.getNode(), proxy = node?.serviceProxyName;
    const programmed = (s: ServiceSpec | undefined): s is ServiceSpec => !!s && !s.headless && s.type !== 'ExternalName' && servedByProxy(s, proxy);
    for (const [c, keys] of this.yielders) {
      const fam = c.includes(':') ? 6 : 4; // (an IPv6 address; the protocol and port have no ':')
      let reason: WithheldReason | undefined;
      for (const k of keys) {
        const s = this.view.serviceByKey(k);
        if (!programmed(s) || !s.families.includes(fam)) continue;
        reason ??= this.modelOwner(c, proxy, node?.addresses ?? NO_KEYS) !== undefined ? 'cluster_ip_clash' : 'external_clash';
        out[reason]++;
      }
    }
    for (const a of node?.addresses ?? NO_KEYS) {
      const h = this.view.claimHolder(a), s = h === undefined ? undefined : this.view.serviceByKey(h);
      if (programmed(s)) out.node_address += s.ports.length;
    }
    return out;
  }

  /** Sets `withheld` on the batch's Services (`upserts`, fresh objects: changed in place) and
   * finds the model's Services whose withheld frontends change with the batch. `gone`: keys of
   * the Services the batch removes; `nodeRemoved`: the batch removes the node config. `yieldNew`:
   * the batch's Services yield to an older one (the watcher); false (`wdp apply`): they claim
   * every tuple, and a clash is an error (the compiler's between external tuples; this one's,
   * thrown as a ValidationError, between an external tuple and another Service's cluster IP and
   * port) — only tuples the batch frees are passed on to a Service that yielded them.
   *
   * An external tuple that is another Service's cluster IP and port (CVE-2020-8554's interception)
   * is always the cluster IP's: the API server allocates cluster IPs one Service each, external
   * addresses are anyone's to write — unless that cluster IP is a node address after the batch
   * (no ClusterIP frontend there: the tuple is the external frontends' to decide among). Found
   * without a claim per ClusterIP port: the batch's external addresses are looked up among the
   * cluster IPs (a set of them while the batch has any), and the batch's cluster IP tuples among
   * the model's external claims only while some Service of the model has an external address. */
  resolve(upserts: readonly ModelObject[], gone: ReadonlySet<string>, yieldNew: boolean, nodeRemoved = false): Resolution {
    const batch = new Map<string, ServiceSpec>();
    // tuple → the batch's Service claiming it (a string: the common case, no array), or Services;
    // tuples the replaced or removed versions held
    let claimedBy: Map<string, string | string[]> | null = null;
    let extAddrs: Set<string> | null = null; // the batch's external addresses
    let batchNode: NodeSpec | undefined;
    const freed = new Set<string>();
    const out: Resolution = { extra: [], reports: [] };
    for (const o of upserts) {
      if (o.kind === 'NodeConfig') { batchNode = o; continue; }
      if (o.kind !== 'Service') continue;
      batch.set(o.key, o);
      if (o.withheld) delete o.withheld; // (a retried round of applyEach decides again)
      const cur = this.view.serviceByKey(o.key);
      if (cur && hasExternalClaims(cur)) forEachExternalClaim(cur, (c) => { freed.add(c as string); });
      if (!hasExternalClaims(o)) continue;
      extAddrs ??= new Set();
      for (let i = 0; i < o.externalIPs.length; i++) extAddrs.add(o.externalIPs[i]);
      for (let i = 0; i < o.lbIngress.length; i++) extAddrs.add(o.lbIngress[i]);
      forEachExternalClaim(o, (c) => {
        claimedBy ??= new Map();
        const l = claimedBy.get(c as string);
        if (l === undefined) claimedBy.set(c as string, o.key);
        else if (typeof l === 'string') claimedBy.set(c as string, [l, o.key]); else l.push(o.key);
      });
    }
    for (const k of gone) {
      const cur = this.view.serviceByKey(k);
      if (cur && hasExternalClaims(cur)) forEachExternalClaim(cur, (c) => { freed.add(c as string); });
    }
    const claimed = claimedBy as Map<string, string | string[]> | null;
    const inForce = (k: string): boolean => !gone.has(k) && !batch.has(k);
    const spec = (k: string): ServiceSpec => batch.get(k) ?? this.view.serviceByKey(k)!;
    // which Services this node programs after the batch: a NodeConfig change of serviceProxyName
    // changes the ranking (and which cluster IPs take a tuple), so every clash is decided again
    const nodeBefore = this.view.getNode(), nodeAfter = batchNode ?? (nodeRemoved ? null : nodeBefore);
    const proxy = nodeAfter?.serviceProxyName;
    const proxyChanged = proxy !== nodeBefore?.serviceProxyName;
    const serves = (s: ServiceSpec): boolean => servedByProxy(s, proxy);
    // a cluster IP that is a node address after the batch has no ClusterIP frontend (the compiler
    // leaves it out: the node's own traffic stays the node's), so it holds no tuple: an external
    // frontend of that address:port is served (Known differences (11))
    const nodeAddrs = nodeAfter?.addresses ?? NO_KEYS;
    const onNode = (ip: string): boolean => nodeAddrs.length > 0 && nodeAddrs.includes(ip);
    // the node addresses the batch adds or removes: their cluster IPs' tuples are decided again
    const addrsChanged = batchNode !== undefined || nodeRemoved ? changedAddresses(nodeBefore?.addresses ?? NO_KEYS, nodeAddrs) : NO_KEYS;
    // tuple → the Service whose cluster IP and port it is after the batch (programmed here)
    const owners = new Map<string, string>();
    const own = (s: ServiceSpec, ip: string): void => {
      if (serves(s) && !onNode(ip)) for (let j = 0; j < s.ports.length; j++) owners.set(externalClaim(s.ports[j].protocol, ip, s.ports[j].port), s.key);
    };
    if (extAddrs) {
      const ext = extAddrs as Set<string>;
      for (const s of batch.values()) for (let i = 0; i < s.clusterIPs.length; i++) if (ext.has(s.clusterIPs[i])) own(s, s.clusterIPs[i]);
      for (const a of ext) {
        const h = this.view.claimHolder(a); // (a cluster IP's claim is its address)
        if (h !== undefined && inForce(h)) own(this.view.serviceByKey(h)!, a);
      }
    }
    // the batch's cluster IP tuples that a Service of the model claims or yields as an external one
    const reverse = new Set<string>();
    if (this.withExternal > 0 || this.yielders.size) {
      for (const s of batch.values()) {
        forEachClusterTuple(s, (c) => {
          const h = this.view.claimHolder(c);
          if ((h !== undefined && inForce(h)) || this.yielders.has(c)) { reverse.add(c); if (serves(s) && !onNode(c.split(' ')[2])) owners.set(c, s.key); }
        });
      }
    }
    // a tuple yielded to a cluster IP the batch replaces or removes: decided again
    if (this.yielders.size) {
      for (const k of [...batch.keys(), ...gone]) {
        const cur = this.view.serviceByKey(k);
        if (cur) forEachClusterTuple(cur, (c) => { if (this.yielders.has(c)) freed.add(c); });
      }
      if (proxyChanged) for (const c of this.yielders.keys()) freed.add(c);
    }
    if (proxyChanged && this.withExternal > 0) {
      // a labelled Service programmed here now (or no longer): its cluster IP tuples another holds
      // (a NodeConfig change: rare, so a walk over the model's Services)
      for (const s of this.view.eachService()) {
        if (s.proxyName !== undefined && inForce(s.key)) forEachClusterTuple(s, (c) => { if (this.view.claimHolder(c) !== undefined) freed.add(c); });
      }
    }
    if (addrsChanged.length && (this.withExternal > 0 || this.yielders.size)) {
      // a cluster IP of the model that became, or stopped being, a node address: its tuples an
      // external frontend holds or yields (a node address change: a few addresses, one lookup each)
      for (const a of addrsChanged) {
        const h = this.view.claimHolder(a); // (a cluster IP's claim is its address)
        const s = h !== undefined && inForce(h) ? this.view.serviceByKey(h) : undefined;
        if (!s || !s.clusterIPs.includes(a)) continue;
        for (let j = 0; j < s.ports.length; j++) {
          const c = externalClaim(s.ports[j].protocol, a, s.ports[j].port);
          if (this.view.claimHolder(c) !== undefined || this.yielders.has(c)) freed.add(c);
        }
      }
    }
    // the common case: nothing to decide (a tuple freed that nobody yields goes to nobody)
    if (!claimed && !this.yielders.size && !reverse.size && !proxyChanged && !addrsChanged.length) return out;
    let batchVips: Map<string, string> | null = null;
    // the owner of a tuple the batch does not claim (freed, yielded): looked up one by one
    const ownerOf = (c: string): string | undefined => {
      const o = owners.get(c);
      if (o !== undefined) return o;
      const addr = c.split(' ')[2];
      if (!batchVips) { batchVips = new Map(); for (const s of batch.values()) for (const ip of s.clusterIPs) batchVips.set(ip, s.key); }
      const b = batchVips.get(addr);
      if (b === undefined) return this.modelOwner(c, proxy, nodeAddrs, inForce);
      const s = batch.get(b)!, [, proto, , port] = c.split(' ');
      return serves(s) && hasPort(s, proto, +port) && !onNode(addr) ? b : undefined;
    };
    // per Service decided: its new withheld tuples and their winners
    const decided = new Map<string, Map<string, string>>();
    const decide = (k: string): Map<string, string> => { let m = decided.get(k); if (!m) decided.set(k, m = new Map()); return m; };
    const settled = new Set<string>(); // tuples decided here (the rest keep their current holder)
    const byClusterIP = new Set<string>(); // tuples a cluster IP holds
    const errors: FieldError[] = [];
    const decideTuple = (c: string, cl: string | string[] | undefined): void => {
      const nBatch = cl === undefined ? 0 : typeof cl === 'string' ? 1 : cl.length;
      const h = this.view.claimHolder(c), ys = this.yielders.get(c);
      const held = h !== undefined && inForce(h);
      if (!nBatch && !held && !ys) return; // nobody claims it (a freed tuple nobody yields)
      const owner = cl !== undefined ? owners.get(c) : ownerOf(c); // (every claimed tuple's owner is in owners)
      // the common case, one claimant, no cluster IP and nobody yielding the tuple: nothing to
      // decide (a first sync of 10k LoadBalancers makes no decision at all, and no array)
      if (owner === undefined && !ys && nBatch + (held ? 1 : 0) <= 1) return;
      const fromBatch = cl === undefined ? NO_KEYS : typeof cl === 'string' ? [cl] : cl;
      if (!yieldNew) {
        // the operator's own write: a clash it brings is refused, naming the other Service
        if (owner !== undefined && nBatch) { for (const k of fromBatch) errors.push(externalError(spec(k), c, owner)); return; }
        if (owner !== undefined && held && batch.has(owner)) { errors.push(clusterError(spec(owner), c, h)); return; }
        if (nBatch) return; // claimed whole: the compiler judges
      }
      const contenders: string[] = [...fromBatch];
      if (held) contenders.push(h);
      for (const y of ys ?? NONE) if (inForce(y)) contenders.push(y);
      if (!contenders.length) return;
      let win: string;
      if (owner !== undefined) { win = owner; byClusterIP.add(c); } else {
        // a Service this node does not program (another proxy's, headless-labelled) wins only
        // against its like: kube-proxy's informers never see it, so it must not keep a tuple
        // from a Service that is served
        const beats = (a: ServiceSpec, b: ServiceSpec): boolean => {
          const sa = serves(a), sb = serves(b);
          return sa !== sb ? sa : ranksBefore(a, b);
        };
        win = contenders[0];
        for (let i = 1; i < contenders.length; i++) if (beats(spec(contenders[i]), spec(win))) win = contenders[i];
      }
      settled.add(c);
      for (const k of contenders) { const m = decide(k); if (k !== win) m.set(c, win); }
    };
    // (the claimed tuples straight from their map: no set of 10k tuples to build)
    if (claimed) for (const [c, cl] of claimed) decideTuple(c, cl);
    for (const c of freed) if (!claimed?.has(c)) decideTuple(c, undefined);
    for (const c of reverse) if (!claimed?.has(c) && !freed.has(c)) decideTuple(c, undefined);
    if (errors.length) throw new ValidationError(errors);
    for (const [k, lost] of decided) {
      const b = batch.get(k);
      if (b) {
        if (lost.size) b.withheld = new Set(lost.keys());
        if (lost.size || this.view.serviceByKey(k)?.withheld) out.reports.push(report(b, lost, byClusterIP));
        continue;
      }
      // a Service of the model: its other withheld tuples stay as they are
      const cur = this.view.serviceByKey(k)!;
      const next = new Map<string, string>();
      for (const c of cur.withheld ?? NONE) {
        if (settled.has(c)) continue;
        const o = this.modelOwner(c, proxy, nodeAddrs, inForce);
        if (o !== undefined) byClusterIP.add(c);
        next.set(c, o ?? this.view.claimHolder(c) ?? '');
      }
      for (const [c, w] of lost) next.set(c, w);
      const before = cur.withheld ?? NONE;
      if (next.size === before.size && [...next.keys()].every((c) => before.has(c))) continue;
      const { withheld: _, ...rest } = cur;
      out.extra.push(next.size ? { ...rest, withheld: new Set(next.keys()) } : rest);
      out.reports.push(report(cur, next, byClusterIP));
    }
    // a Service that yielded a tuple and no longer claims it: serves all of its own again
    for (const [k, b] of batch) if (!decided.has(k) && this.view.serviceByKey(k)?.withheld) out.reports.push(report(b, new Map(), byClusterIP));
    return out;
  }
}

/** The addresses in one of `a`, `b` and not the other (node addresses: a few). */
function changedAddresses(a: readonly string[], b: readonly string[]): readonly string[] {
  let out: string[] | null = null;
  for (const x of a) if (!b.includes(x)) (out ??= []).push(x);
  for (const x of b) if (!a.includes(x)) (out ??= []).push(x);
  return out ?? NO_KEYS;
}

/** `wdp apply`'s error for Service `s` claiming external tuple `c`, which is Service `owner`'s
 * cluster IP and port. */
function externalError(s: ServiceSpec, c: string, owner: string): FieldError {
  let field = 'spec.externalIPs', what = claimText(c);
  forEachExternalClaim(s, (x, f, w) => { if (x === c) { field = f; what = w; } }, true);
  return fieldError('Service', s.namespace, s.name, field, 'FieldValueInvalid', `Invalid value: ${what}: already allocated to Service ${owner} as its cluster IP and port`);
}

/** `wdp apply`'s error for Service `s`, whose cluster IP and port is tuple `c`, which Service
 * `holder` claims as an external address. */
function clusterError(s: ServiceSpec, c: string, holder: string): FieldError {
  const i = Math.max(0, s.clusterIPs.indexOf(c.split(' ')[2]));
  return fieldError('Service', s.namespace, s.name, clusterIPField(s, i), 'FieldValueInvalid', `Invalid value: ${claimText(c)}: already allocated to Service ${holder} as an external address`);
}

function report(s: ServiceSpec, lost: ReadonlyMap<string, string>, byClusterIP: ReadonlySet<string>): WithheldReport {
  const rv = (s.raw.metadata as { resourceVersion?: unknown } | undefined)?.resourceVersion;
  return {
    namespace: s.namespace, name: s.name, ...(typeof rv === 'string' ? { resourceVersion: rv } : {}),
    frontends: [...lost].map(([c, heldBy]): WithheldFrontend => byClusterIP.has(c) ? { frontend: claimText(c), heldBy, heldAs: 'clusterIP' } : { frontend: claimText(c), heldBy }),
  };
}
