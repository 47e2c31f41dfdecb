// Level-triggered sync of the watched Services and EndpointSlices into the control plane, as
// kube-proxy's proxier runs (BoundedFrequencyRunner):
//
// * Informer events only record the newest state per object (`pending`); many changes of one
//   object between two syncs are one change.
// * A sync runs at most once per minSyncPeriod: a change arriving sooner waits for the period to
//   end, and everything that arrived meanwhile goes in that one sync.
// * Partial syncs program only the pending objects (the control plane then recompiles only the
//   services they touch). Every syncPeriod a full sync compares the whole informer state with the
//   model and applies every difference — objects changed behind the watcher's back (`wdp apply`),
//   a sync that failed, objects deleted while the daemon was down (after a restart the saved
//   state is programmed first, then the first full sync removes what the API no longer has).
// * Objects are applied one by one (ControlPlaneCore.applyEach): an invalid object, or one that
//   clashes with another (two Services claiming one cluster IP), is left out, logged once per
//   version with the reason and counted; the rest is programmed. An invalid object is retried
//   when it changes; a clashing one at every sync that changes a Service (the other side of a
//   clash may have gone) and at every full sync. Two Services claiming one external or
//   LoadBalancer address:port/protocol are no clash of objects: the younger one is served without
//   that frontend (src/compiler/external-claims.ts), warned about once per version.
// * A sync the dataplane refuses puts its changes back and is retried with backoff; healthz
//   turns 503 once changes have waited longer than its timeout.
import type { Logger } from 'pino';
import type { ObjectRef } from '../compiler/compiler.js';
import type { PartialApplyResult, SkippedObject, WithheldReport } from '../api/controlplane.js';
import { fieldError, type ServiceSpec, type SliceSpec } from '../model/types.js';
import type { KubeObject } from './client.js';
import type { KubeMetrics } from './metrics.js';
import type { IpFamilyName, ProxyHealth } from './healthz.js';
import { serviceForModel, sliceForModel } from './objects.js';
import { cutsFamilies, familiesCanCut, familyShape, serviceInFamilies, serviceInFamiliesAtAll, sliceInFamilies } from './families.js';

export type SyncKind = 'Service' | 'EndpointSlice';

/** What the sync programs into: the control plane (ControlPlaneCore) and its model. */
export interface SyncTarget {
  applyEach(raws: unknown[], removes?: ObjectRef[]): Promise<PartialApplyResult>;
  readonly compiler: {
    listServices(): ServiceSpec[]; listSlices(): SliceSpec[];
    /** The same objects in no particular order, without the copy and sort (the Compiler's). */
    eachService?(): Iterable<ServiceSpec>; eachSlice?(): Iterable<SliceSpec>;
  };
}

/** The informers' current state (what a full sync makes the model equal to). */
export interface SyncSource { services(): readonly KubeObject[]; slices(): readonly KubeObject[] }

export interface KubeSyncOptions {
  minSyncPeriodMs: number;
  syncPeriodMs: number;
  log: Logger;
  metrics?: KubeMetrics;
  health?: ProxyHealth;
  /** The IP families kube-proxy would run a proxier for: each sync's duration is observed once
   * per family (default IPv4), and with one family only the objects are programmed as that
   * family's proxier sees them (families.ts): a Service without a cluster IP of it, or a slice
   * of the other address type, not at all. Not given: every object whole. */
  families?: () => readonly IpFamilyName[];
  /** kubeproxy_sync_proxy_rules_last_timestamp_seconds / _last_queued_ (the control plane's
   * gauges, per family): queued(family) for an EndpointSlice of that family, queued() for the rest. */
  timestamps?: { markSynced(): void; queued(family?: IpFamilyName, atMs?: number): void; changeEvent?(kind: SyncKind, family?: IpFamilyName, n?: number): void; watcherSynced?(seconds: number): void };
  /** After every successful sync (service health checks, node-local counts). */
  afterSync?: () => Promise<void> | void;
}

interface Pending { kind: SyncKind; namespace: string; name: string; obj: KubeObject | null }
interface Skip { kind: SyncKind; rv: string | undefined; stage: SkippedObject['stage']; message: string }

export interface SyncStats { full: number; partial: number; failures: number; lastSkipped: SkippedObject[]; lastSeconds: number }

const keyOf = (kind: string, ns: string | undefined, name: string) => `${kind}/${ns ?? 'default'}/${name}`;

export class KubeSync {
  private readonly pending = new Map<string, Pending>();
  private readonly skipped = new Map<string, Skip>();
  /** The Services with addresses left out (objects.ts unownedAddress): the version last warned about. */
  private readonly unservedWarned = new Map<string, string | undefined>();
  /** The Services serving without an external tuple another Service holds: version and text last warned about. */
  private readonly withheldWarned = new Map<string, string>();
  private started = false;
  private stopped = false;
  private running: Promise<void> | null = null;
  private again = false;
  /** The sync asked for: a timer while minSyncPeriod holds it back, else an immediate. */
  private timer: { cancel(): void } | undefined;
  private fullTimer: NodeJS.Timeout | undefined;
  private fullDue = true;
  private lastStart = 0;
  private failures = 0;
  readonly stats: SyncStats = { full: 0, partial: 0, failures: 0, lastSkipped: [], lastSeconds: 0 };

  constructor(private readonly target: SyncTarget, private readonly source: SyncSource, private readonly o: KubeSyncOptions) {}

  /** An object's newest state (null: deleted). Cheap: the sync itself runs later. */
  queue(kind: SyncKind, obj: KubeObject, deleted = false): void {
    const ns = obj.metadata?.namespace || 'default', name = obj.metadata?.name ?? '';
    const k = keyOf(kind, ns, name);
    if (!this.pending.has(k)) this.pendingCount[kind]++;
    this.pending.set(k, { kind, namespace: ns, name, obj: deleted ? null : obj });
    this.o.health?.queued();
    const addressType = kind === 'EndpointSlice' ? (obj as { addressType?: unknown }).addressType : undefined;
    const family = addressType === 'IPv4' || addressType === 'IPv6' ? addressType : undefined;
    if (this.held) {
      // (the family's entry moved last: released in the order of each family's last event)
      this.heldQueued.delete(family);
      this.heldQueued.set(family, Date.now());
      const c = kind === 'Service' ? this.heldChanges.Service : this.heldChanges[family ?? 'other'];
      c.n++;
    } else {
      this.o.timestamps?.queued(family);
      this.o.timestamps?.changeEvent?.(kind, family);
      this.updatePendingGauges();
    }
    this.request();
  }

  /** While an informer delivers a list (hold() … release(): the library hands its items to the
   * handlers in one loop, one synchronous job, so nothing reads the metrics in between), each
   * event's metric updates — the last-queued gauge per family, the change counters, the pending
   * gauges — are summed here and made once at release, with each family's last event's time: 20k
   * events of a first list were three prom-client updates each (docs/performance.md, "Full sync
   * through the watcher"). Holds nest (one per informer delivering). */
  hold(): void { this.held++; }

  release(): void {
    if (!this.held || --this.held) return;
    const t = this.o.timestamps;
    for (const [family, at] of this.heldQueued) t?.queued(family, at);
    this.heldQueued.clear();
    for (const c of [this.heldChanges.Service, this.heldChanges.IPv4, this.heldChanges.IPv6, this.heldChanges.other]) {
      if (c.n) t?.changeEvent?.(c.kind, c.family, c.n);
      c.n = 0;
    }
    this.updatePendingGauges();
  }

  private held = 0;
  /** Held events (hold()): each family's last event's time (undefined: a Service's, or a slice of
   * neither family), and the events per kind and family. */
  private readonly heldQueued = new Map<IpFamilyName | undefined, number>();
  private readonly heldChanges: Record<'Service' | IpFamilyName | 'other', { kind: SyncKind; family?: IpFamilyName; n: number }> = {
    Service: { kind: 'Service', n: 0 }, IPv4: { kind: 'EndpointSlice', family: 'IPv4', n: 0 },
    IPv6: { kind: 'EndpointSlice', family: 'IPv6', n: 0 }, other: { kind: 'EndpointSlice', n: 0 },
  };

  /** The informers have listed: the first (full) sync may run. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    // kube-proxy's SyncLoop marks the health updated as it starts "in case Sync() never succeeds":
    // from here on, changes that wait are judged — what the informers listed too, from now (kube-proxy
    // runs its first sync without QueuedUpdate, so a first sync that keeps failing in a quiet
    // cluster never turns it unhealthy; here it does, after the health timeout)
    this.o.health?.updated();
    if (this.pending.size) this.o.health?.queued();
    this.fullDue = true;
    this.request();
  }

  /** Asks for a full sync at the next opportunity (tests, and the periodic timer). */
  requestFull(): void { this.fullDue = true; this.request(); }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel(); clearTimeout(this.fullTimer);
    this.timer = undefined;
    await this.running;
  }

  /** Objects currently left out, with the reason. */
  skippedObjects(): Array<{ key: string; stage: string; message: string }> {
    return [...this.skipped].map(([key, s]) => ({ key, stage: s.stage, message: s.message }));
  }

  private request(): void {
    if (!this.started || this.stopped) return;
    if (this.running) { this.again = true; return; }
    if (this.timer) return;
    const wait = Math.max(0, this.lastStart + this.minPeriod() - Date.now());
    const go = () => {
      this.timer = undefined;
      this.running = this.run()
        .catch((e) => { this.failures++; this.fullDue = true; this.o.log.error({ error: (e as Error).stack }, 'sync crashed; a full sync follows'); })
        .finally(() => this.finished());
    };
    // A sync that may run now runs once the events already read are queued (setImmediate: after
    // this turn's I/O callbacks, so one watch chunk's events are one sync), as kube-proxy's
    // BoundedFrequencyRunner runs at once when minSyncPeriod has passed. setTimeout(0) would add
    // Node's 1 ms timer floor to every change's way to the packets.
    if (wait === 0) { const t = setImmediate(go); this.timer = { cancel: () => clearImmediate(t) }; } else { const t = setTimeout(go, wait); this.timer = { cancel: () => clearTimeout(t) }; }
  }

  /** minSyncPeriod, stretched by failures (doubling from at least 250 ms, at most syncPeriod). */
  private minPeriod(): number {
    if (!this.failures) return this.o.minSyncPeriodMs;
    return Math.min(Math.max(this.o.minSyncPeriodMs, 250) * 2 ** (this.failures - 1), Math.max(this.o.syncPeriodMs, this.o.minSyncPeriodMs));
  }

  private finished(): void {
    this.running = null;
    if (this.stopped) return;
    if (this.again || this.pending.size || this.fullDue) { this.again = false; this.request(); }
  }

  /** Pending changes per kind, kept as the map changes (one event at a time: counting the map
   * per event made a 20k-object initial list quadratic). */
  private readonly pendingCount: Record<SyncKind, number> = { Service: 0, EndpointSlice: 0 };

  private updatePendingGauges(): void {
    if (!this.o.metrics) return;
    this.o.metrics.servicesPending.set(this.pendingCount.Service);
    this.o.metrics.endpointsPending.set(this.pendingCount.EndpointSlice);
  }

  private takePending(): Pending[] {
    const taken = [...this.pending.values()];
    this.pending.clear();
    this.pendingCount.Service = 0; this.pendingCount.EndpointSlice = 0;
    return taken;
  }

  private async run(): Promise<void> {
    this.lastStart = Date.now();
    const full = this.fullDue;
    this.fullDue = false;
    const taken = this.takePending();
    this.updatePendingGauges();
    const t0 = process.hrtime.bigint();
    const cut = this.cutFamilies();
    const batch: Array<{ kind: SyncKind; obj: KubeObject }> = [];
    const removes: ObjectRef[] = [];
    if (full) this.fullBatch(batch, removes, cut);
    else this.partialBatch(taken, batch, removes);
    // what the proxiers of the families in force take of each object; an object none of them
    // takes goes from the model (a no-op when it is not there)
    const upserts: Array<{ kind: SyncKind; obj: KubeObject }> = [];
    const raws: unknown[] = [];
    // an object whose shape the conversion cannot read is skipped as invalid, like one the model
    // refuses: it must not fail the sync of every other object (a sync that throws is retried
    // whole, and would throw again until the object changes)
    const unreadable: SkippedObject[] = [];
    for (const u of batch) {
      let raw: unknown;
      const unserved: string[] = [];
      try {
        raw = u.kind === 'Service' ? (cut ? serviceInFamilies(serviceForModel(u.obj, unserved), cut) : serviceForModel(u.obj, unserved))
          : (cut && !sliceInFamilies(u.obj, cut) ? null : sliceForModel(u.obj));
      } catch (e) {
        upserts.push(u);
        unreadable.push(unreadableObject(u.kind, u.obj, e));
        continue;
      }
      if (u.kind === 'Service') this.noteUnserved(u.obj, unserved);
      if (raw) { upserts.push(u); raws.push(raw); } else removes.push({ kind: u.kind, namespace: u.obj.metadata?.namespace || 'default', name: u.obj.metadata?.name ?? '' });
    }
    let result: PartialApplyResult;
    try {
      result = await this.target.applyEach(raws, removes);
      if (unreadable.length) result = { ...result, skipped: [...result.skipped, ...unreadable] };
    } catch (e) {
      // nothing was applied: the changes go back (unless a newer state arrived meanwhile)
      for (const p of taken) { const k = keyOf(p.kind, p.namespace, p.name); if (!this.pending.has(k)) { this.pending.set(k, p); this.pendingCount[p.kind]++; } }
      if (full) this.fullDue = true;
      this.o.health?.queued(); // (kept when set: the oldest waiting change's time)
      this.updatePendingGauges();
      this.failures++;
      this.stats.failures++;
      this.o.metrics?.syncFailures.inc();
      this.o.log.error({ error: (e as Error).message, retryInMs: this.minPeriod(), full }, 'sync failed; retrying');
      return;
    }
    this.failures = 0;
    this.recordSkips(upserts, removes, result.skipped);
    this.noteWithheld(result.withheld ?? [], removes);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    this.stats.lastSeconds = seconds;
    if (full) this.stats.full++; else this.stats.partial++;
    if (this.o.metrics) {
      const h = full ? this.o.metrics.fullSync : this.o.metrics.partialSync;
      for (const ip_family of this.o.families?.() ?? ['IPv4']) h.observe({ ip_family }, seconds);
    }
    // kube-proxy observes its overall sync histogram on every syncProxyRules, full or partial
    this.o.timestamps?.watcherSynced?.(seconds);
    this.o.timestamps?.markSynced();
    // kube-proxy's Updated() after every successful sync: the changes it took are programmed.
    // Those that arrived meanwhile are judged from now on (kube-proxy leaves them unjudged until
    // the next event), so a loop that then stops still turns unhealthy.
    this.o.health?.updated();
    if (this.pending.size) this.o.health?.queued();
    if (full) {
      clearTimeout(this.fullTimer);
      this.fullTimer = setTimeout(() => this.requestFull(), this.o.syncPeriodMs);
      this.fullTimer.unref?.();
    }
    try { await this.o.afterSync?.(); } catch (e) { this.o.log.warn({ error: (e as Error).message }, 'after-sync step failed'); }
    if (upserts.length || removes.length) {
      this.o.log.debug({ full, upserts: upserts.length, removes: removes.length, skipped: result.skipped.length, seconds, generation: result.generation }, 'synced');
    }
  }

  /** The families objects are cut to (families.ts), null when none is left out. */
  private cutFamilies(): readonly IpFamilyName[] | null {
    const f = this.o.families?.();
    return f && cutsFamilies(f) ? f : null;
  }

  /** Every difference between the informers' state and the model (by resourceVersion, and for a
   * Service what the families in force keep of it: a copy programmed under other families is
   * programmed again). Objects no proxier of `cut` takes are not wanted: the model loses them. */
  private fullBatch(upserts: Array<{ kind: SyncKind; obj: KubeObject }>, removes: ObjectRef[], cut: readonly IpFamilyName[] | null): void {
    const want = new Set<string>();
    const have = new Map<string, unknown>();
    const c = this.target.compiler;
    for (const s of c.eachService?.() ?? c.listServices()) have.set(keyOf('Service', s.namespace, s.name), s.raw);
    for (const s of c.eachSlice?.() ?? c.listSlices()) have.set(keyOf('EndpointSlice', s.namespace, s.name), s.raw);
    // An empty model and nothing skipped (a first full sync): every object goes, and no key is
    // needed — none to compare with, remove or forget.
    const keyed = have.size > 0 || this.skipped.size > 0;
    const consider = (kind: SyncKind, obj: KubeObject) => {
      // (what cannot be read goes to run(), which skips it with its reason)
      const unread = (f: () => boolean): boolean => { try { return f(); } catch { return true; } };
      if (cut && !unread(() => (kind === 'Service' ? serviceInFamiliesAtAll(obj, cut) : sliceInFamilies(obj, cut)))) return;
      if (!keyed) { upserts.push({ kind, obj }); return; }
      const k = keyOf(kind, obj.metadata?.namespace || 'default', obj.metadata?.name ?? '');
      want.add(k);
      const rv = obj.metadata?.resourceVersion;
      const cur = have.get(k) as StoredObject | undefined;
      if (cur && rv !== undefined && cur.metadata?.resourceVersion === rv && !unread(() => prunedByOlderModel(kind, cur, obj) || undatedByOlderModel(kind, cur, obj))
        && !unread(() => kind === 'Service' && familiesCanCut(obj) && familyShape(cur, null) !== familyShape(obj, cut))) {
        this.skipped.delete(k); // (an earlier version was refused; this one is programmed)
        return;
      }
      const sk = this.skipped.get(k);
      if (sk && sk.stage === 'invalid' && sk.rv === rv) return; // refused as it is: retried when it changes
      upserts.push({ kind, obj });
    };
    for (const o of this.source.services()) consider('Service', o);
    for (const o of this.source.slices()) consider('EndpointSlice', o);
    const gone: ObjectRef[] = [];
    for (const k of have.keys()) {
      if (want.has(k)) continue;
      const [kind, namespace, ...rest] = k.split('/');
      gone.push({ kind: kind as SyncKind, namespace, name: rest.join('/') });
    }
    // (in the order the sorted lists gave: Services, then slices, each by namespace/name)
    const order = (r: ObjectRef) => `${r.namespace}/${r.name}`;
    gone.sort((a, b) => (a.kind === b.kind ? (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0) : a.kind === 'Service' ? -1 : 1));
    for (const r of gone) removes.push(r);
    for (const k of [...this.skipped.keys()]) if (!want.has(k)) this.skipped.delete(k);
  }

  private partialBatch(taken: Pending[], upserts: Array<{ kind: SyncKind; obj: KubeObject }>, removes: ObjectRef[]): void {
    const inBatch = new Set<string>();
    let serviceChanged = false;
    for (const p of taken) {
      const k = keyOf(p.kind, p.namespace, p.name);
      inBatch.add(k);
      if (p.kind === 'Service') serviceChanged = true;
      if (p.obj) upserts.push({ kind: p.kind, obj: p.obj });
      else { removes.push({ kind: p.kind, namespace: p.namespace, name: p.name }); this.skipped.delete(k); }
    }
    if (!serviceChanged) return;
    // the other side of a clash may have changed or gone: clashing Services get another try
    let services: Map<string, KubeObject> | null = null;
    for (const [k, s] of this.skipped) {
      if (s.stage !== 'conflict' || s.kind !== 'Service' || inBatch.has(k)) continue;
      services ??= new Map(this.source.services().map((o) => [keyOf('Service', o.metadata?.namespace || 'default', o.metadata?.name ?? ''), o]));
      const o = services.get(k);
      if (o) upserts.push({ kind: 'Service', obj: o });
    }
  }

  /** Warns once per Service version that some of its addresses are not served. */
  private noteUnserved(obj: KubeObject, unserved: string[]): void {
    // (the common case, nothing left out and nothing warned about: no key made per Service)
    if (!unserved.length && !this.unservedWarned.size) return;
    const k = keyOf('Service', obj.metadata?.namespace || 'default', obj.metadata?.name ?? '');
    if (!unserved.length) { this.unservedWarned.delete(k); return; }
    const rv = obj.metadata?.resourceVersion;
    if (this.unservedWarned.has(k) && this.unservedWarned.get(k) === rv) return;
    this.unservedWarned.set(k, rv);
    this.o.log.warn({ object: k, resourceVersion: rv, addresses: unserved },
      'external or load-balancer IPs not served: multicast, broadcast, reserved or IPv4-mapped addresses no single host owns (the rest of the Service is)');
  }

  /** Warns once per Service version (and holder) about the external tuples it yields to another
   * Service; says so when it serves them again. */
  private noteWithheld(reports: readonly WithheldReport[], removes: readonly ObjectRef[]): void {
    for (const r of removes) if (r.kind === 'Service') this.withheldWarned.delete(keyOf('Service', r.namespace, r.name));
    for (const w of reports) {
      const k = keyOf('Service', w.namespace, w.name);
      if (!w.frontends.length) {
        if (this.withheldWarned.delete(k)) this.o.log.info({ object: k, resourceVersion: w.resourceVersion }, 'external frontends served again: no other Service holds them');
        continue;
      }
      const text = w.frontends.map((f) => f.heldAs === 'clusterIP' ? `${f.frontend} (the cluster IP and port of Service ${f.heldBy})` : `${f.frontend} (held by Service ${f.heldBy})`).join(', ');
      const seen = `${w.resourceVersion ?? ''} ${text}`;
      if (this.withheldWarned.get(k) === seen) continue;
      this.withheldWarned.set(k, seen);
      this.o.log.warn({ object: k, resourceVersion: w.resourceVersion, frontends: w.frontends },
        `external frontends not served for Service ${w.namespace}/${w.name}: ${text} — another Service claims the same address:port/protocol and ranks first (its cluster IP and port before any external address, then the older creationTimestamp, then namespace/name); the rest of the Service is served`);
    }
  }

  private recordSkips(upserts: Array<{ kind: SyncKind; obj: KubeObject }>, removes: ObjectRef[], skipped: SkippedObject[]): void {
    const now = new Map<string, SkippedObject>();
    for (const s of skipped) now.set(keyOf(s.kind, s.namespace, s.name), s);
    // (nothing skipped now or before — a first sync's 20k objects —: no key made per object)
    if (now.size || this.skipped.size) for (const u of upserts) {
      const k = keyOf(u.kind, u.obj.metadata?.namespace || 'default', u.obj.metadata?.name ?? '');
      const s = now.get(k);
      if (!s) { this.skipped.delete(k); continue; }
      const rv = u.obj.metadata?.resourceVersion;
      const message = s.errors.map((e) => e.message).join('; ');
      const before = this.skipped.get(k);
      this.skipped.set(k, { kind: u.kind, rv, stage: s.stage, message });
      if (!before || before.rv !== rv || before.message !== message) { // once per version and reason
        this.o.metrics?.skipped.inc({ kind: u.kind, stage: s.stage });
        this.o.log.warn({ object: k, resourceVersion: rv, stage: s.stage, reason: message }, s.stage === 'invalid'
          ? 'object skipped: invalid (retried when it changes)' : 'object skipped: clashes with another object (retried at the next service change)');
      }
    }
    for (const r of removes) { this.skipped.delete(keyOf(r.kind, r.namespace, r.name)); this.unservedWarned.delete(keyOf(r.kind, r.namespace, r.name)); }
    this.stats.lastSkipped = skipped;
    if (this.o.metrics) {
      let s = 0, e = 0;
      for (const v of this.skipped.values()) if (v.kind === 'Service') s++; else e++;
      this.o.metrics.skippedNow.set({ kind: 'Service' }, s);
      this.o.metrics.skippedNow.set({ kind: 'EndpointSlice' }, e);
    }
  }
}

type StoredObject = { metadata?: { resourceVersion?: string }; spec?: { healthCheckNodePort?: unknown }; status?: unknown };

/** A Service the model holds at the API's resourceVersion but without the healthCheckNodePort the
 * API's has: stored by a wdp whose model did not keep that field (a saved state from before it
 * did). Programmed again, or its health check would wait for the Service's next change. */
function prunedByOlderModel(kind: SyncKind, cur: StoredObject, obj: KubeObject): boolean {
  return kind === 'Service' && cur.spec?.healthCheckNodePort === undefined && (obj.spec as StoredObject['spec'] | undefined)?.healthCheckNodePort !== undefined;
}

/** A Service the model holds at the API's resourceVersion without the creationTimestamp the API's
 * has (stored by a wdp that did not keep it): programmed again, as its age ranks it against
 * another Service claiming one of its external tuples (src/compiler/external-claims.ts). */
function undatedByOlderModel(kind: SyncKind, cur: StoredObject, obj: KubeObject): boolean {
  return kind === 'Service' && (cur.metadata as { creationTimestamp?: unknown } | undefined)?.creationTimestamp === undefined && obj.metadata?.creationTimestamp !== undefined;
}

/** An object the sync could not turn into the model's input (a shape the conversion does not
 * expect), as the model's refusals are reported: skipped, stage invalid, with the error. */
function unreadableObject(kind: SyncKind, obj: KubeObject, e: unknown): SkippedObject {
  const namespace = obj?.metadata?.namespace || 'default', name = String(obj?.metadata?.name ?? '');
  return { kind, namespace, name, stage: 'invalid', errors: [fieldError(kind, namespace, name, '', 'FieldValueInvalid', `cannot be read: ${(e as Error)?.message ?? String(e)}`)] };
}
