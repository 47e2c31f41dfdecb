// The control plane's transaction logic, independent of HTTP: validate → compile → dataplane
// apply → persist, all or nothing, one at a time.
import { Compiler, warmMaglevWorker, type Change, type ObjectRef } from '../compiler/compiler.js';
import { validateAll, validatedAll, validateObject, identify, type Validated } from '../model/schema.js';
import { AddressIndex, nodeConfigPortErrors, refKey } from '../model/conflicts.js';
import { appliedAsOf } from '../model/applied-as.js';
import { ExternalClaims, type WithheldReport } from '../compiler/external-claims.js';
import { fieldError, ValidationError, type FieldError, type ModelObject, type NodeSpec, type ServiceSpec } from '../model/types.js';
import { L, type IrBackend, type IrFrontend, type SnatAddresses } from '../ir/ir.js';
import { isEmptyDiff } from '../ir/diff.js';
import type { IrList } from '../ir/list.js';
import type { Dataplane, Programmed } from '../core/dataplane-types.js';
import { STAGE_ON_THREAD_ROWS, type SourceText, type StagedWrite, type StateStore, type StoreWrite } from '../state/store.js';
import type { ObjectTexts } from '../model/load.js';
import type { SavedState } from './saved-state.js';
import { jsonEqual } from '../util/json-equal.js';
import { promoteYoungGeneration } from '../util/young-generation.js';

export interface ObjectResult { kind: string; namespace?: string; name: string; action: 'created' | 'configured' | 'unchanged' | 'deleted' }

export interface FrontendView {
  id: number; service: string; portName: string; kind: string; addr: string; port: number; proto: string;
  flags: string[]; affinityTimeoutMs: number; sourceRanges: string[]; backends: number[]; maglevSize: number;
}
export interface BackendView { id: number; service: string; addr: string; port: number; state: string; outPort: number | null; dstMac: string; srcMac: string; nodeName?: string; zone?: string }

export interface DiffView {
  frontendsUpsert: Array<FrontendView & { op: 'add' | 'update' }>;
  frontendsRemove: FrontendView[];
  backendsUpsert: Array<BackendView & { op: 'add' | 'update' }>;
  backendsRemove: BackendView[];
  routes?: Array<{ prefix: string; outPort: number; dstMac: string; srcMac: string }>;
  snat?: SnatAddresses;
  /** Full sizes of the four lists; each list shows at most DIFF_LIST_MAX entries. */
  counts: { frontendsUpsert: number; frontendsRemove: number; backendsUpsert: number; backendsRemove: number };
  truncated: boolean;
}

/** Entries per diff list in a response: a 10k-service apply must not answer with 20 MB. */
export const DIFF_LIST_MAX = 1000;

export interface ApplyResult {
  dryRun: boolean;
  generation: number;
  objects: ObjectResult[];
  diff: DiffView;
  warnings: string[];
  servicesRecompiled: number;
  syncSeconds: number;
  /** From the start of the transaction until every forwarding worker had switched to the new
   * tables: packets see the change from then on (the answer also waits for the store's commit).
   * 0 when nothing was programmed. */
  programmedSeconds: number;
  /** That instant on the host's monotonic clock (CLOCK_MONOTONIC in ns, Node's process.hrtime;
   * the same in every process and thread of the host): a client on the same host compares it with
   * when it sent the request. 0 when nothing was programmed. */
  programmedAtNs: number;
  /** From when the API had read the request's head until every worker had switched (reading
   * the body, parsing, waiting for earlier applies, the transaction up to the switch): the
   * daemon's own view of "until packets see it". Set by the HTTP API (src/api/server.ts); absent
   * for changes that did not come through it or programmed nothing. */
  receivedToProgrammedSeconds?: number;
}

/** The parts of an apply's answer that are final once the change went to the dataplane (the same
 * objects the ApplyResult holds): handed to `prepare` while the workers apply it. */
export interface AnswerParts { objects: ObjectResult[]; diff: DiffView; warnings: string[] }

/** Warnings per response: a 10k-object apply with a systematic problem must stay readable. */
export const WARNINGS_MAX = 100;
function capWarnings(ws: string[]): string[] {
  return ws.length > WARNINGS_MAX ? [...ws.slice(0, WARNINGS_MAX), `... and ${ws.length - WARNINGS_MAX} more warnings`] : ws;
}

/** An object applyEach left out: invalid on its own, or clashing with the rest of the state. */
export interface SkippedObject { kind: string; namespace?: string; name: string; stage: 'invalid' | 'conflict'; errors: FieldError[] }
/** applyEach's answer: `withheld`, per Service whose yielded frontends the change decided (an
 * external tuple another Service serves: src/compiler/external-claims.ts), even when none. */
export interface PartialApplyResult extends ApplyResult { skipped: SkippedObject[]; withheld: WithheldReport[] }
export type { WithheldReport } from '../compiler/external-claims.js';

/** ControlPlaneCore.apply's options. */
export interface ApplyOptions {
  dryRun?: boolean;
  /** Where in the request's JSON text each object is (parseManifestSources). */
  texts?: ObjectTexts | null;
  /** validateObject's verdict on each object, when the API validated them as the body arrived. */
  validated?: readonly Validated[];
  /** Called with the answer's final parts while the dataplane and the store take the change. */
  prepare?: (parts: AnswerParts) => void;
  /** Who builds the NodeConfig, when not the client (a daemon: src/daemon/daemon.ts). */
  nodeConfigOwner?: NodeConfigOwner;
}

/** ControlPlaneCore.remove's options. */
export interface RemoveOptions {
  dryRun?: boolean;
  /** Who builds the NodeConfig, when not the client (a daemon: src/daemon/daemon.ts). */
  nodeConfigOwner?: NodeConfigOwner;
}

/** The builder of the NodeConfig in force (a daemon builds its own): a NodeConfig applied or
 * deleted through the API is replaced by the owner's in the same transaction. Each is read when
 * the transaction starts, after every earlier one. */
export interface NodeConfigOwner {
  /** The NodeConfig programmed in place of `applied` (the owner's, with what it adopts of it and
   * the name it was applied as: applied-as.ts, which a delete by that name reads). */
  asApplied(applied: NodeSpec): unknown;
  /** The NodeConfig programmed in place of the one held when that is deleted (by its name or by
   * one it records having been applied as). */
  own(): unknown;
}

/** How `run` takes a change. `watcher`: the Kubernetes watcher's objects (applyEach, and a
 * restore): endpoint addresses are not checked against cluster IPs, a cluster IP that is a node
 * address is not refused (the compiler leaves that frontend out), and a Service yields an external
 * tuple an older one claims instead of clashing; `wdp apply` (false) refuses all three. */
interface RunOptions {
  dryRun?: boolean;
  /** `sources[i]`: the JSON text objs[i] came as, when it is that text's object unchanged. */
  sources?: ReadonlyArray<SourceText | undefined>;
  /** Called with the answer's final parts while the dataplane and the store take the change. */
  prepare?: (parts: AnswerParts) => void;
  watcher?: boolean;
}
type RunResult = ApplyResult & { withheld: WithheldReport[] };
const withoutWithheld = ({ withheld: _, ...r }: RunResult): ApplyResult => r;

export class ApplyFailure extends Error {
  constructor(message: string, readonly statusCode: number) { super(message); this.name = 'ApplyFailure'; }
}

const FLAG_NAMES: Array<[number, string]> = [
  [L.FEF_AFFINITY, 'affinity'], [L.FEF_MASQUERADE, 'masquerade'], [L.FEF_SOURCE_RANGES, 'source_ranges'],
  [L.FEF_EXTERNAL, 'external'], [L.FEF_FALLBACK, 'fallback'], [L.FEF_POLICY_DROP, 'policy_drop'],
  [L.FEF_NODE_SOURCE_DROP, 'node_source_drop'], [L.FEF_MASQUERADE_OUTSIDE, 'masquerade_outside'],
  [L.FEF_AFFINITY_SHARED, 'affinity_shared'], [L.FEF_AFFINITY_IN_SET, 'affinity_in_set'],
];
const BE_STATE = ['absent', 'ready', 'terminating_serving', 'not_serving'];

export function frontendView(f: IrFrontend): FrontendView {
  return {
    id: f.id, service: f.service, portName: f.portName, kind: f.kind, addr: f.addr, port: f.port, proto: f.proto,
    flags: FLAG_NAMES.filter(([b]) => f.flags & b).map(([, n]) => n), affinityTimeoutMs: f.affinityTimeoutMs,
    sourceRanges: f.sourceRanges, backends: f.backends, maglevSize: f.maglev.length,
  };
}
export function backendView(b: IrBackend): BackendView {
  return {
    id: b.id, service: b.service, addr: b.addr, port: b.port, state: BE_STATE[b.state] ?? String(b.state),
    outPort: b.outPort === L.PORT_NONE ? null : b.outPort, dstMac: b.dstMac, srcMac: b.srcMac,
    ...(b.nodeName ? { nodeName: b.nodeName } : {}), ...(b.zone ? { zone: b.zone } : {}),
  };
}

function diffView(ch: Change): DiffView {
  const d = ch.diff;
  const prevF = new Map(ch.undoDiff.frontendsUpsert.slice().map((f) => [f.id, f]));
  const prevB = new Map(ch.undoDiff.backendsUpsert.slice().map((b) => [b.id, b]));
  const cap = <T>(xs: IrList<T>): T[] => xs.slice(0, DIFF_LIST_MAX);
  const v: DiffView = {
    frontendsUpsert: cap(d.frontendsUpsert).map((f) => ({ ...frontendView(f), op: prevF.has(f.id) ? 'update' as const : 'add' as const })),
    frontendsRemove: cap(d.frontendsRemove).map((id) => prevF.get(id)).filter((f): f is IrFrontend => !!f).map(frontendView),
    backendsUpsert: cap(d.backendsUpsert).map((b) => ({ ...backendView(b), op: prevB.has(b.id) ? 'update' as const : 'add' as const })),
    backendsRemove: cap(d.backendsRemove).map((id) => prevB.get(id)).filter((b): b is IrBackend => !!b).map(backendView),
    counts: { frontendsUpsert: d.frontendsUpsert.length, frontendsRemove: d.frontendsRemove.length, backendsUpsert: d.backendsUpsert.length, backendsRemove: d.backendsRemove.length },
    // a full compile's backends stay in the compiler's columns: counted, not listed in full
    truncated: [d.frontendsUpsert.length, d.frontendsRemove.length, d.backendsUpsert.length, d.backendsRemove.length].some((n) => n > DIFF_LIST_MAX),
  };
  if (d.routes) v.routes = d.routes;
  if (d.snat) v.snat = d.snat;
  return v;
}

export interface SyncObserver {
  /** Called after every successful (non-dry-run) change with how long it took. */
  /** `triggers`: the changed IPv4/IPv6 EndpointSlices' last-change-trigger-time annotations. */
  onSync?(info: { seconds: number; serviceChanges: number; endpointChanges: number; triggers: Array<{ ms: number; family: 'IPv4' | 'IPv6' }> }): void;
}

export class ControlPlaneCore {
  readonly compiler = new Compiler();
  private queue: Promise<unknown> = Promise.resolve();
  lastUpdated = new Date();
  /** Raised by every change that upserts or removes a Service (and by a restore), whoever applied
   * it: what is derived from the Services alone can be kept while it stays the same (the
   * watcher's list of Services with a Local traffic policy, read after each of its syncs). */
  serviceChanges = 0;
  /** Problems found while restoring state (shown by the API and logged by the daemon). */
  restoreProblems: string[] = [];
  restoredFrom: 'store' | 'migrated' | 'none' | 'disabled' = 'disabled';
  /** Why the last write to the store failed; null once a write succeeded again. Applies are refused
   * meanwhile (each rolled back), and healthz answers 503 (src/api/server.ts). */
  persistError: string | null = null;
  persistFailures = 0;
  /** The dataplane's port indices now (NodeConfig neighbours and routes must use one); null: unknown. */
  ports: (() => ReadonlySet<number>) | null = null;
  private readonly addresses = new AddressIndex({
    node: () => this.compiler.getNode(),
    services: () => this.compiler.listServices(),
    slices: () => this.compiler.listSlices(),
    eachSlice: () => this.compiler.eachSlice(),
    sliceCount: () => this.compiler.sliceCount(),
  });
  private readonly externalClaims = new ExternalClaims(this.compiler);

  private readonly nodeListeners: Array<(node: NodeSpec | null) => void> = [];

  constructor(readonly dataplane: Dataplane, readonly store: StateStore | null, readonly observer: SyncObserver = {}) {}

  /** Whether the store takes writes. While saves are failing it tries a durable write, so a store
   * that recovered (space freed, lock released) is seen without waiting for the next apply; until
   * then, the store's cheap checks (StateStore.writeProblemAsync). An apply's outcome that comes
   * while they run is what counts. */
  async persistOk(): Promise<boolean> {
    if (!this.store) return true;
    // between failures, cheap checks (files gone, a read-only or full filesystem, a write the disk
    // does not complete): a store that cannot take the next apply is seen before one is refused.
    // Neither these nor the probe block this thread: each is waited for ~0.5 s at most (a hung
    // disk is a 503 then, and the API goes on answering — StateStore.writeProblemAsync)
    if (this.persistError === null) {
      const seen = await this.store.writeProblemAsync();
      if (this.persistError === null) this.persistError = seen;
      if (this.persistError === null) return true;
    }
    if (this.store.stagingBusy) return false; // an apply is writing: its outcome will tell
    const before = this.persistError, problem = await this.store.probeAsync();
    if (this.persistError === before) this.persistError = problem;
    return this.persistError === null;
  }

  /** Calls `fn` after every applied change that replaced or removed the NodeConfig, whoever
   * applied it (the daemon's own reprogramming, the Kubernetes watcher, `wdp apply`): the daemon
   * re-points its workers' ARP/ND answers at the node addresses. */
  onNodeChange(fn: (node: NodeSpec | null) => void): void { this.nodeListeners.push(fn); }

  private closing = false;

  /** No transaction starts from now on (each is refused 503); resolves once those under way have
   * finished (the store can close then: tables and store never part). */
  close(): Promise<void> {
    this.closing = true;
    return this.queue.then(() => undefined);
  }

  /** Runs `fn` after every earlier transaction finished: requests are applied one at a time. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closing) return Promise.reject(new ApplyFailure('the daemon is stopping: no change is applied any more', 503));
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** Programs the dataplane with the saved desired state (openSavedState; null: no store). `node`
   * is the node config from the daemon's configuration: used when the saved state has none. */
  restore(saved: SavedState | null, node?: unknown): Promise<void> {
    return this.serial(async () => {
      if (saved) { this.restoreProblems = saved.load.problems; this.restoredFrom = saved.load.source; }
      const savedNode = saved?.load.state?.node;
      // not validated twice: the saved objects as validated, plus the configured node when the state has none
      const configured = !savedNode && node ? validateAll([node]) : [];
      const objs: ModelObject[] = [...(saved?.objects ?? []), ...configured];
      if (!objs.length) return;
      // Services the watcher applied with a tuple yielded to another: decided again, by the same
      // rule (the decision is not stored)
      const yielded = this.externalClaims.resolve(objs, new Set(), true);
      for (const s of yielded.extra) objs.push(s);
      const ch = this.compiler.change({ upsert: objs });
      try { await this.dataplane.apply(ch.diff, this.compiler.ir); } catch (e) {
        ch.rollback();
        throw new ApplyFailure(`restoring the saved state failed in the dataplane: ${(e as Error).message}`, 500);
      }
      this.addresses.reset();
      this.externalClaims.reset(this.compiler.eachService());
      this.lastUpdated = new Date();
      this.serviceChanges++;
      // the configured node config is in force now: saved, as an apply of it would be. An apply of
      // the same node config later (the daemon's first program) changes nothing and saves nothing,
      // and a restart needs it: the node as last seen when the Kubernetes API server is away, and
      // the table images' key (src/daemon/daemon.ts). One small commit, once per store
      if (configured.length && this.store) {
        try { await this.store.commitAsync({ upsert: [{ kind: 'NodeConfig', key: '', raw: configured[0].raw }], remove: [] }); } catch (e) {
          this.persistError = (e as Error).message;
          this.persistFailures++;
          this.restoreProblems = [...this.restoreProblems, `the configured node config could not be saved: ${(e as Error).message}`];
        }
      }
    });
  }

  /** `opts.texts`: where in the request's JSON text each of `raws` is (parseManifestSources): an
   * object validation left unchanged is stored as that text. `opts.validated`: validateObject's
   * verdict on each of `raws`, when the API validated them as the body arrived. `raws` may be a
   * function, called when the transaction starts (after every earlier one): the daemon's own
   * NodeConfig is read then, so it carries what an apply queued before it changed (a user's node
   * addresses), not what held when it was queued. */
  apply(objects: unknown[] | (() => unknown[]), opts: ApplyOptions = {}): Promise<ApplyResult> {
    return this.serial(async () => {
      const raws = typeof objects === 'function' ? objects() : objects;
      if (this.compiler.serviceCount() === 0) warmMaglevWorker(raws); // a first sync: maybe a big one
      const objs = opts.validated?.length === raws.length ? validatedAll(opts.validated) : validateAll(raws);
      if (!objs.length) throw new ValidationError([fieldError('<request>', undefined, undefined, '', 'FieldValueRequired', 'Required value: the body contains no objects')]);
      // the NodeConfig as its owner programs it (read now, after every earlier transaction); the
      // answer still names the object the client sent, and its neighbours and routes, though not
      // programmed, must name ports the dataplane has (as any NodeConfig's)
      const owner = opts.nodeConfigOwner, sentNames = new Map<number, string>();
      if (owner) {
        for (let i = 0; i < objs.length; i++) {
          const o = objs[i];
          if (o.kind !== 'NodeConfig') continue;
          const wrong = this.ports ? nodeConfigPortErrors(o, this.ports()) : [];
          if (wrong.length) throw new ValidationError(wrong);
          sentNames.set(i, o.name);
          objs[i] = validateAll([owner.asApplied(o)])[0];
        }
      }
      const t = opts.texts;
      // (validateAll answers one object per raw, in order; a pruned object is a new one)
      const withTexts = !!t && t.spans.length === 2 * raws.length;
      const results: ObjectResult[] = [];
      // identical re-applies (a periodic full resync) cost nothing: only changed objects compile
      const changed: ModelObject[] = [];
      const sources: Array<SourceText | undefined> = [];
      for (let i = 0; i < objs.length; i++) {
        const o = objs[i], r = this.objectResult(o);
        const sent = sentNames.get(i);
        results.push(sent === undefined ? r : { ...r, name: sent });
        if (r.action === 'unchanged') continue;
        changed.push(o);
        sources.push(withTexts && o.raw === raws[i] ? { text: t!.text, start: t!.spans[2 * i], end: t!.spans[2 * i + 1] } : undefined);
      }
      return withoutWithheld(await this.run({ upsert: changed }, results, changed, { dryRun: opts.dryRun, sources: withTexts ? sources : undefined, prepare: opts.prepare }));
    });
  }

  remove(raws: unknown[], opts: RemoveOptions = {}): Promise<ApplyResult> {
    const errors: FieldError[] = [];
    const refs: ObjectRef[] = [];
    for (const raw of raws) {
      const id = identify(raw);
      if (id.kind !== 'Service' && id.kind !== 'EndpointSlice' && id.kind !== 'NodeConfig') {
        errors.push(fieldError(id.kind, id.namespace, id.name, 'kind', 'FieldValueNotSupported', `Unsupported value: ${JSON.stringify(id.kind)}: supported values: "Service", "EndpointSlice", "NodeConfig"`));
      } else if (!id.name) {
        errors.push(fieldError(id.kind, id.namespace, id.name, 'metadata.name', 'FieldValueRequired', 'Required value'));
      } else refs.push({ kind: id.kind, namespace: id.namespace, name: id.name });
    }
    return this.removeRefs(refs, opts, errors);
  }

  removeRefs(refs: ObjectRef[], opts: RemoveOptions = {}, preErrors: FieldError[] = []): Promise<ApplyResult> {
    return this.serial(async () => {
      if (preErrors.length) throw new ValidationError(preErrors);
      if (!refs.length) throw new ValidationError([fieldError('<request>', undefined, undefined, '', 'FieldValueRequired', 'Required value: the body names no objects')]);
      const results: ObjectResult[] = refs.map((r) => ({ kind: r.kind, ...(r.kind === 'NodeConfig' ? {} : { namespace: r.namespace || 'default' }), name: r.name, action: 'deleted' }));
      // the NodeConfig held (by its name, or by the name of one applied in its place, which it
      // records: applied-as.ts), when its owner builds it: deleted, and its owner's in its place
      // in the same transaction (never a moment without routes)
      let upsert: ModelObject[] = [];
      const held = this.compiler.getNode(), owner = opts.nodeConfigOwner;
      const appliedAs = held ? appliedAsOf(held.raw) : [];
      const named = (r: ObjectRef): boolean => r.kind === 'NodeConfig' && (r.name === held?.name || appliedAs.includes(r.name));
      if (owner && held && refs.some(named)) {
        upsert = validateAll([owner.own()]);
        refs = refs.filter((r) => !named(r));
      }
      return withoutWithheld(await this.run({ upsert, remove: refs }, results, upsert, { dryRun: opts.dryRun }));
    });
  }

  /** The watcher's apply (src/kube/): every object stands alone. An object that fails validation,
   * or that clashes with the rest (a cluster IP or node port another Service holds), is left out
   * with its errors and keeps whatever version of it was programmed before; everything else is
   * applied as one transaction. An external tuple two Services claim costs the one that ranks
   * second only that frontend (RunOptions.watcher; `withheld` in the answer). Removals of objects
   * that are not in the model are no-ops. A clash costs one more compile attempt per round (each
   * round leaves out every object the compiler named). `wdp apply` stays atomic: it does not use this. */
  applyEach(raws: unknown[], removes: ObjectRef[] = []): Promise<PartialApplyResult> {
    return this.serial(async () => {
      if (this.compiler.serviceCount() === 0 && raws.length) warmMaglevWorker(raws);
      const skipped: SkippedObject[] = [];
      let objs: ModelObject[] = [];
      for (const raw of raws) {
        const r = validateObject(raw);
        if (r.ok) objs.push(r.obj);
        else { const id = identify(raw); skipped.push({ kind: id.kind, namespace: id.namespace, name: id.name ?? '', stage: 'invalid', errors: r.errors }); }
      }
      const exists = (r: ObjectRef): boolean => r.kind === 'Service' ? !!this.compiler.getService(r.namespace || 'default', r.name)
        : r.kind === 'EndpointSlice' ? !!this.compiler.getSlice(r.namespace || 'default', r.name) : this.compiler.getNode()?.name === r.name;
      const refs = removes.filter(exists);
      const removed: ObjectResult[] = refs.map((r) => ({ kind: r.kind, ...(r.kind === 'NodeConfig' ? {} : { namespace: r.namespace || 'default' }), name: r.name, action: 'deleted' }));
      const label = (kind: string, ns: string | undefined, name: string | undefined) => `${kind}/${kind === 'NodeConfig' ? '' : ns ?? 'default'}/${name ?? ''}`;
      for (;;) {
        const results = objs.map((o) => this.objectResult(o));
        const changed = objs.filter((_, i) => results[i].action !== 'unchanged');
        try {
          const r = await this.run({ upsert: changed, remove: refs }, [...results, ...removed], changed, { watcher: true });
          return { ...r, skipped };
        } catch (e) {
          if (!(e instanceof ValidationError)) throw e;
          const named = new Map<string, FieldError[]>();
          for (const fe of e.errors) {
            const k = label(fe.kind, fe.namespace, fe.name);
            named.set(k, [...(named.get(k) ?? []), fe]);
          }
          const keep = objs.filter((o) => !named.has(label(o.kind, o.kind === 'NodeConfig' ? undefined : o.namespace, o.name)));
          if (keep.length === objs.length) throw e; // nothing to leave out: not an object's fault
          for (const o of objs) {
            const errs = named.get(label(o.kind, o.kind === 'NodeConfig' ? undefined : o.namespace, o.name));
            if (errs) skipped.push({ kind: o.kind, namespace: o.kind === 'NodeConfig' ? undefined : o.namespace, name: o.name, stage: 'conflict', errors: errs });
          }
          objs = keep;
        }
      }
    });
  }

  private objectResult(o: ModelObject): ObjectResult {
    const old = o.kind === 'NodeConfig' ? this.compiler.getNode() : this.current(o.kind, o.namespace, o.name);
    const action = !old ? 'created' : jsonEqual(old.raw, o.raw) ? 'unchanged' : 'configured';
    return o.kind === 'NodeConfig' ? { kind: 'NodeConfig', name: o.name, action } : { kind: o.kind, namespace: o.namespace, name: o.name, action };
  }

  /** The model's object of that kind and name now, or null. An empty kind answers without a
   * lookup (a first full sync asks 20k times). */
  private current(kind: string, namespace: string, name: string): ModelObject | null {
    if (kind === 'Service') return this.compiler.serviceCount() === 0 ? null : this.compiler.getService(namespace, name) ?? null;
    if (kind === 'EndpointSlice') return this.compiler.sliceCount() === 0 ? null : this.compiler.getSlice(namespace, name) ?? null;
    return this.compiler.getNode();
  }

  /** The objects a batch replaces or removes, as they are now, by refKey. */
  private currentOf(batch: Parameters<Compiler['change']>[0]): Map<string, ModelObject> {
    const out = new Map<string, ModelObject>();
    const add = (cur: ModelObject | null): void => { if (cur) out.set(refKey(cur.kind, cur.kind === 'NodeConfig' ? '' : cur.key), cur); };
    for (const o of batch.upsert ?? []) add(o.kind === 'NodeConfig' ? this.compiler.getNode() : this.current(o.kind, o.namespace, o.name));
    for (const r of batch.remove ?? []) add(this.current(r.kind, r.namespace || 'default', r.name));
    return out;
  }

  /** The store's write of a change, begun (StateStore.stage), or why it could not begin. */
  private stageWrite(batch: Parameters<Compiler['change']>[0], objs: ModelObject[], old: ReadonlyMap<string, ModelObject>, sources?: ReadonlyArray<SourceText | undefined>): StagedWrite | Error {
    // (the undo: for a commit whose outcome is not known, which this apply then refuses)
    try { return this.store!.stage(storeWrite(batch, objs, sources), () => inverseWrite(objs, old)); } catch (e) { return e as Error; }
  }

  /** One transaction (RunOptions). `prepare` runs while the main thread waits for the workers and
   * the store; a throw there changes nothing. */
  private async run(batch: Parameters<Compiler['change']>[0], results: ObjectResult[], objs: ModelObject[], opts: RunOptions = {}): Promise<RunResult> {
    const t0 = process.hrtime.bigint();
    const dryRun = !!opts.dryRun, sources = opts.sources, prepare = opts.prepare;
    // external tuples two Services claim: which one yields (and which the batch's change makes
    // yield or serve again, though the batch does not name them)
    const gone = new Set<string>();
    let nodeRemoved = false;
    for (const r of batch.remove ?? []) if (r.kind === 'Service') gone.add(`${r.namespace || 'default'}/${r.name}`); else if (r.kind === 'NodeConfig' && this.compiler.getNode()?.name === r.name) nodeRemoved = true;
    const yielded = this.externalClaims.resolve(batch.upsert ?? [], gone, !!opts.watcher, nodeRemoved);
    if (yielded.extra.length) {
      batch = { ...batch, upsert: [...(batch.upsert ?? []), ...yielded.extra] };
      objs = [...objs, ...yielded.extra];
      results = [...results, ...yielded.extra.map((s: ServiceSpec): ObjectResult => ({ kind: 'Service', namespace: s.namespace, name: s.name, action: 'configured' }))];
    }
    const withheld = yielded.reports;
    const old = this.currentOf(batch);
    const removed = new Set((batch.remove ?? []).map((r) => refKey(r.kind, `${r.namespace || 'default'}/${r.name}`)));
    const conflicts = this.addresses.check(batch.upsert ?? [], old, removed, this.ports && (batch.upsert ?? []).some((o) => o.kind === 'NodeConfig') ? this.ports() : null, !opts.watcher);
    if (conflicts.length) throw new ValidationError(conflicts);
    const nodeBefore = this.compiler.getNode();
    const modelChanged = results.some((r) => r.action !== 'unchanged');
    // The store's write starts before the compile (a large one is inserted by the store's writer
    // thread meanwhile) and is committed only once the change compiled and went to the dataplane;
    // it is aborted when the compile refuses the change. A large write with no request text (the
    // watcher's full sync; a YAML or List body) has its rows serialised on this thread
    // (JSON.stringify, ~5 µs an object): it is staged once the diff went to the workers, so that
    // the serialising runs while they apply the diff rather than before the compile. Either way
    // it is committed before the change is acknowledged.
    const storing = !!this.store && !dryRun && modelChanged;
    const stageLate = storing && !sources && objs.length >= this.store!.stageOnThreadRows;
    let staged = storing && !stageLate ? this.stageWrite(batch, objs, old, sources) : null;
    let ch: Change;
    try {
      ch = this.compiler.change(batch);
    } catch (e) { if (!(staged instanceof Error)) staged?.abort(); throw e; }
    if (dryRun) {
      const view = diffView(ch);
      ch.rollback();
      return { dryRun, generation: this.dataplane.generation(), objects: results, diff: view, warnings: capWarnings(ch.warnings), servicesRecompiled: ch.servicesRecompiled, syncSeconds: 0, programmedSeconds: 0, programmedAtNs: 0, withheld };
    }
    if (!modelChanged) {
      const view = diffView(ch);
      ch.rollback(); // nothing to undo but keeps the compiler's bookkeeping exact
      return { dryRun, generation: this.dataplane.generation(), objects: results, diff: view, warnings: capWarnings(ch.warnings), servicesRecompiled: 0, syncSeconds: 0, programmedSeconds: 0, programmedAtNs: 0, withheld };
    }
    // The dataplane takes the change (on the workers' threads) while the store commits it (an
    // fsync): the apply is acknowledged when both are done, in max(program, persist) instead of
    // their sum. Whichever fails, the other is undone — nothing is acknowledged half.
    // (a model change that programs nothing — a headless service, an unattached slice — needs no flip)
    const programming: Promise<Programmed> = isEmptyDiff(ch.diff) ? Promise.resolve({ generation: this.dataplane.generation(), programmedAtNs: Number(t0) })
      : this.dataplane.apply(ch.diff, this.compiler.ir, ch.undoDiff);
    programming.catch(() => undefined); // awaited below, after the commit
    if (stageLate) staged = this.stageWrite(batch, objs, old, sources);
    let programmedYet = false;
    programming.then(() => { programmedYet = true; }, () => undefined);
    // the answer's view of the diff, built while the workers apply it (the diff went to them
    // already: dataplane.apply encodes and posts it before its first await)
    const view = diffView(ch);
    const warnings = capWarnings(ch.warnings);
    // the store's commit begins (on its thread) before the answer's parts are prepared here
    const committing = staged && !(staged instanceof Error) ? staged.commit() : null;
    committing?.catch(() => undefined); // awaited below
    if (prepare) try { prepare({ objects: results, diff: view, warnings }); } catch { /* the answer is then written at the end */ }
    let saveError: Error | null = null;
    if (staged) {
      try {
        if (staged instanceof Error) throw staged;
        await committing;
        this.persistError = null;
        // a large apply's survivors promoted while this thread waits for the workers anyway, not
        // in the first scavenge after it, on a later change (src/util/young-generation.ts)
        if (objs.length >= STAGE_ON_THREAD_ROWS && !programmedYet) promoteYoungGeneration();
      } catch (e) {
        saveError = e as Error;
        this.persistError = saveError.message;
        this.persistFailures++;
      }
    }
    let generation: number, programmedAtNs: number;
    try { ({ generation, programmedAtNs } = await programming); } catch (e) {
      ch.rollback();
      let kept = '';
      if (this.store && !saveError) {
        // the store has the change the dataplane refused: put the previous objects back
        try { await this.store.commitAsync(inverseWrite(objs, old)); } catch (e2) {
          this.persistError = (e2 as Error).message;
          kept = `; the saved state still holds it, and undoing that failed too (${(e2 as Error).message}): restart to resynchronise`;
        }
      }
      throw new ApplyFailure(`the dataplane refused the change (nothing applied${kept}): ${(e as Error).message}`, 500);
    }
    if (saveError) {
      // an acknowledged apply must survive a restart: undo it everywhere rather than ack it
      ch.rollback();
      let undone = 'the dataplane was restored to the previous state';
      if (!isEmptyDiff(ch.diff)) {
        try { await this.dataplane.apply(ch.undoDiff, this.compiler.ir); } catch (e2) { undone = `restoring the dataplane failed too: ${(e2 as Error).message}`; }
      }
      throw new ApplyFailure(`saving the desired state failed (nothing applied; ${undone}): ${saveError.message}`, 500);
    }
    this.addresses.update(old.values(), batch.upsert ?? []);
    this.externalClaims.update(old.values(), batch.upsert ?? []);
    this.lastUpdated = new Date();
    if (batch.upsert?.some((o) => o.kind === 'Service') || batch.remove?.some((r) => r.kind === 'Service')) this.serviceChanges++;
    const node = this.compiler.getNode();
    if (node !== nodeBefore) {
      // the change is applied and saved: a listener that throws must not turn it into an error reply
      for (const fn of this.nodeListeners) { try { fn(node); } catch { /* the listener reports its own failures */ } }
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (this.observer.onSync) {
      // plain loops: on the answer's path, and a flatMap of 20k one-element arrays cost ~10 ms
      let serviceChanges = 0, endpointChanges = 0;
      for (const r of results) {
        if (r.action === 'unchanged') continue;
        if (r.kind === 'Service') serviceChanges++; else if (r.kind === 'EndpointSlice') endpointChanges++;
      }
      // (an FQDN slice programs nothing, and kube-proxy has no proxier for it)
      const triggers: Array<{ ms: number; family: 'IPv4' | 'IPv6' }> = [];
      for (const o of objs) if (o.kind === 'EndpointSlice' && o.triggerTimeMs !== undefined && o.addressType !== 'FQDN') triggers.push({ ms: o.triggerTimeMs, family: o.addressType });
      this.observer.onSync({ seconds, serviceChanges, endpointChanges, triggers });
    }
    return {
      dryRun, generation, objects: results, diff: view, warnings, servicesRecompiled: ch.servicesRecompiled, syncSeconds: seconds,
      programmedSeconds: Math.max(0, (programmedAtNs - Number(t0)) / 1e9), programmedAtNs: isEmptyDiff(ch.diff) ? 0 : programmedAtNs, withheld,
    };
  }
}

/** The store rows that undo storeWrite(_, changed): the objects as they were (`old`, by refKey),
 * and the removal of those the batch created. */
function inverseWrite(changed: ModelObject[], old: ReadonlyMap<string, ModelObject>): StoreWrite {
  const row = (o: ModelObject) => ({ kind: o.kind, key: o.kind === 'NodeConfig' ? '' : o.key, raw: o.raw });
  const created = changed.filter((o) => !old.has(refKey(o.kind, o.kind === 'NodeConfig' ? '' : o.key)));
  return { upsert: [...old.values()].map(row), remove: created.map((o) => ({ kind: o.kind, key: o.kind === 'NodeConfig' ? '' : o.key })) };
}

/** The store rows of one change: the objects that changed (`changed`: the batch's upserts minus the
 * unchanged ones) and the removed ones — never the rest of the state. `sources[i]`: the JSON text
 * changed[i] came as, when it is `raw` unchanged. */
function storeWrite(batch: Parameters<Compiler['change']>[0], changed: ModelObject[], sources?: ReadonlyArray<SourceText | undefined>): StoreWrite {
  return {
    upsert: changed.map((o, i) => ({ kind: o.kind, key: o.kind === 'NodeConfig' ? '' : o.key, raw: o.raw, source: sources?.[i] })),
    remove: (batch.remove ?? []).map((r) => ({ kind: r.kind, key: r.kind === 'NodeConfig' ? '' : `${r.namespace || 'default'}/${r.name}` })),
  };
}
