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
import type { ModelObject, ServiceSpec } from '../model/types.js';
import { forEachExternalClaim, hasExternalClaims, type Claim } from './claims.js';

/** The model the resolution reads: who holds a claim now, and a Service by key. */
export interface ClaimsView {
  claimHolder(c: Claim): string | undefined;
  serviceByKey(key: string): ServiceSpec | undefined;
  /** Whether this node programs the Service (not headless-labelled, not another proxy's). */
  serves(s: ServiceSpec): boolean;
}

/** One frontend a Service yields: "addr:port/PROTO", and the key of the Service that serves it. */
export interface WithheldFrontend { frontend: string; heldBy: string }

/** A Service whose withheld frontends this change decided (none: it serves all of its own). */
export interface WithheldReport { namespace: string; name: string; resourceVersion?: string; frontends: WithheldFrontend[] }

/** What a change's Services become: `extra`, Services the batch did not name whose withheld
 * frontends changed (a holder that lost a tuple to an older Service, a Service that gets one back
 * because its holder went), to upsert with the batch; `reports`, per Service decided. */
export interface Resolution { extra: ServiceSpec[]; reports: WithheldReport[] }

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

const NONE: ReadonlySet<string> = new Set();
const NO_KEYS: readonly string[] = [];

export class ExternalClaims {
  /** tuple claim → keys of the Services in the model that yield it (few: only clashes). */
  private readonly yielders = new Map<string, Set<string>>();

  constructor(private readonly view: ClaimsView) {}

  /** Rebuilds from the model's Services (after a restore). */
  reset(services: Iterable<ServiceSpec>): void {
    this.yielders.clear();
    for (const s of services) this.add(s, 1);
  }

  /** After a committed change: `olds` were replaced or removed, `news` are in the model now. */
  update(olds: Iterable<ModelObject>, news: readonly ModelObject[]): void {
    for (const o of olds) if (o.kind === 'Service' && o.withheld) this.add(o, -1);
    for (const o of news) if (o.kind === 'Service' && o.withheld) this.add(o, 1);
  }

  private add(s: ServiceSpec, d: 1 | -1): void {
    for (const c of s.withheld ?? NONE) {
      let set = this.yielders.get(c);
      if (d > 0) { if (!set) this.yielders.set(c, set = new Set()); set.add(s.key); }
      else if (set) { set.delete(s.key); if (!set.size) this.yielders.delete(c); }
    }
  }

  /** Sets `withheld` on the batch's Services (`upserts`, fresh objects: changed in place) and
   * finds the model's Services whose withheld frontends change with the batch. `gone`: keys of
   * the Services the batch removes. `yieldNew`: the batch's Services yield to an older one (the
   * watcher); false (`wdp apply`): they claim every tuple, and a clash is the compiler's error —
   * only tuples the batch frees are passed on to a Service that yielded them. */
  resolve(upserts: readonly ModelObject[], gone: ReadonlySet<string>, yieldNew: boolean): Resolution {
    const batch = new Map<string, ServiceSpec>();
    // tuple → the batch's Services claiming it; tuples the replaced or removed versions held
    let claimedBy: Map<string, string[]> | null = null;
    const freed = new Set<string>();
    const out: Resolution = { extra: [], reports: [] };
    for (const o of upserts) {
      if (o.kind !== 'Service') continue;
      batch.set(o.key, o);
      if (o.withheld) delete o.withheld; // (a retried round of applyEach decides again)
      const cur = this.view.serviceByKey(o.key);
      if (cur && hasExternalClaims(cur)) forEachExternalClaim(cur, (c) => { freed.add(c as string); });
      if (!hasExternalClaims(o)) continue;
      forEachExternalClaim(o, (c) => {
        claimedBy ??= new Map();
        const l = claimedBy.get(c as string);
        if (l) l.push(o.key); else claimedBy.set(c as string, [o.key]);
      });
    }
    for (const k of gone) {
      const cur = this.view.serviceByKey(k);
      if (cur && hasExternalClaims(cur)) forEachExternalClaim(cur, (c) => { freed.add(c as string); });
    }
    const claimed = claimedBy as Map<string, string[]> | null;
    if (!claimed && !this.yielders.size) return out; // the common case: nothing to decide
    const inForce = (k: string): boolean => !gone.has(k) && !batch.has(k);
    const spec = (k: string): ServiceSpec => batch.get(k) ?? this.view.serviceByKey(k)!;
    // per Service decided: its new withheld tuples and their winners
    const decided = new Map<string, Map<string, string>>();
    const decide = (k: string): Map<string, string> => { let m = decided.get(k); if (!m) decided.set(k, m = new Map()); return m; };
    const tuples = new Set<string>([...(claimed?.keys() ?? []), ...freed]);
    const settled = new Set<string>(); // tuples decided here (the rest keep their current holder)
    for (const c of tuples) {
      const fromBatch = claimed?.get(c) ?? NO_KEYS;
      if (!yieldNew && fromBatch.length) continue; // claimed whole: the compiler judges
      const h = this.view.claimHolder(c), ys = this.yielders.get(c);
      const held = h !== undefined && inForce(h);
      // the common case, one claimant and nobody yielding the tuple: nothing to decide (a first
      // sync of 10k LoadBalancers makes no decision at all)
      if (!ys && fromBatch.length + (held ? 1 : 0) <= 1) continue;
      const contenders: string[] = [...fromBatch];
      if (held) contenders.push(h);
      for (const y of ys ?? NONE) if (inForce(y)) contenders.push(y);
      if (!contenders.length) continue;
      // a Service this node does not program (another proxy's, headless-labelled) wins only
      // against its like: kube-proxy's informers never see it, so it must not keep a tuple
      // from a Service that is served
      const beats = (a: ServiceSpec, b: ServiceSpec): boolean => {
        const sa = this.view.serves(a), sb = this.view.serves(b);
        return sa !== sb ? sa : ranksBefore(a, b);
      };
      let win = contenders[0];
      for (let i = 1; i < contenders.length; i++) if (beats(spec(contenders[i]), spec(win))) win = contenders[i];
      settled.add(c);
      for (const k of contenders) { const m = decide(k); if (k !== win) m.set(c, win); }
    }
    for (const [k, lost] of decided) {
      const b = batch.get(k);
      if (b) {
        if (lost.size) b.withheld = new Set(lost.keys());
        if (lost.size || this.view.serviceByKey(k)?.withheld) out.reports.push(report(b, lost));
        continue;
      }
      // a Service of the model: its other withheld tuples stay as they are
      const cur = this.view.serviceByKey(k)!;
      const next = new Map<string, string>();
      for (const c of cur.withheld ?? NONE) if (!settled.has(c)) next.set(c, this.view.claimHolder(c) ?? '');
      for (const [c, w] of lost) next.set(c, w);
      const before = cur.withheld ?? NONE;
      if (next.size === before.size && [...next.keys()].every((c) => before.has(c))) continue;
      const { withheld: _, ...rest } = cur;
      out.extra.push(next.size ? { ...rest, withheld: new Set(next.keys()) } : rest);
      out.reports.push(report(cur, next));
    }
    // a Service that yielded a tuple and no longer claims it: serves all of its own again
    for (const [k, b] of batch) if (!decided.has(k) && this.view.serviceByKey(k)?.withheld) out.reports.push(report(b, new Map()));
    return out;
  }
}

function report(s: ServiceSpec, lost: ReadonlyMap<string, string>): WithheldReport {
  const rv = (s.raw.metadata as { resourceVersion?: unknown } | undefined)?.resourceVersion;
  return {
    namespace: s.namespace, name: s.name, ...(typeof rv === 'string' ? { resourceVersion: rv } : {}),
    frontends: [...lost].map(([c, heldBy]) => ({ frontend: claimText(c), heldBy })),
  };
}
