// Model → Ir, incrementally.
//
// The compiler owns the desired state (Services, EndpointSlices, the node config) and the Ir built
// from it. `change()` applies a batch of upserts/removals as one transaction and returns the
// IrDiff plus a rollback. Two kinds of change share the per-service compilation (compileService,
// which hands each service's records to a ServiceSink):
//   full compile         from empty (daemon start, state restore, benchmarks): every service,
//                        straight into the column tables (TableSink); the diff lists the tables'
//                        rows; nothing to undo but "back to empty".
//   incremental compile  the services the batch touches (a Service and its slices are one unit),
//                        as objects (ObjectSink) compared with the current ones; an undo log.
// Cost is proportional to the touched services' size, never to the number of services — except a
// node config change, which re-resolves every backend (rare).
//
// Determinism: services are compiled in key order, ports in spec order, slices in name order and
// endpoints in listed order, so the same history of changes yields the same Ir and ids.
import { emptyIr, L, sameBackend, sameFrontend, sameRoutes, sameSnat, setSnat, snatOf, type SnatAddresses, type MaglevSlots, type Family, type Ir, type IrBackend, type IrFrontend, type FrontendKind } from '../ir/ir.js';
import { emptyDiff, type IrDiff, type IrDiffData } from '../ir/diff.js';
import { IdRange } from '../ir/list.js';
import { defaultMaglevSize } from '../ir/maglev-size.js';
import { ActiveSet, FrontendTable } from './frontend-table.js';
import type { PortOwner } from './columns.js';
import { Slab, typedArray } from './slab.js';
import { BackendTable } from './backend-table.js';
import { NodeHops } from './next-hops.js';
import { backendKeyCmp, ipv4KeyRank, maglevIndexTableAt, maglevSlotWidth } from './maglev.js';
import { MaglevJobs, startMaglevWorker } from './maglev-pool.js';
import { IdAllocator, type Undo } from './ids.js';
import { claimKeys, describeClaim, externalClaim, forEachClaim, type Claim } from './claims.js';
import { duplicateError, groupFresh, unlabelledSliceWarnings, unlabelledWarning } from './batch.js';
import { sliceCount, type ServiceRecord } from './service-record.js';
import { CompiledService, dropRefs, ServiceOutput } from './service-output.js';
import { ObjectSink, TableSink, type ServiceSink } from './service-sink.js';
import { Candidates } from './candidates.js';
import { firewallSources } from './firewall-sources.js';
import { noLocalEndpoint } from './local-policy.js';
import { HOLD_MS, HOLD_PER_ADDRESS } from '../util/neighbour-hold.js';
import {
  fieldError, ValidationError, type FieldError, type ModelObject, type NodeSpec, type ServicePortSpec,
  type ServiceSpec, type SliceSpec, servedByProxy,
} from '../model/types.js';

const NO_RANGES: string[] = Object.freeze([]) as unknown as string[];
/** Compiler.topologyMode's answers: no hint filter, node hints, zone hints. */
const TOPO_NONE = 0, TOPO_NODE = 1, TOPO_ZONE = 2;

export interface ObjectRef { kind: 'Service' | 'EndpointSlice' | 'NodeConfig'; namespace?: string; name: string }

export interface ChangeBatch { upsert?: ModelObject[]; remove?: ObjectRef[] }

export interface Change {
  diff: IrDiff;
  /** The diff that takes the dataplane back to the state before this change. */
  undoDiff: IrDiff;
  /** Restores the compiler (model, ids, ir) to the state before this change. Call at most once. */
  rollback(): void;
  warnings: string[];
  servicesRecompiled: number;
  /** A full compile that used the Maglev worker: tables published to it, and how many it filled
   * (the rest the compiler's thread filled at the end). */
  maglevWorker?: { tables: number; filledByWorker: number };
}

/** What emit() needs to know about the service port being compiled (reused for every port). */
class PortState {
  svc!: ServiceSpec;
  sp!: ServicePortSpec;
  portStart = 0;                 // the current port's frontends start at svcOut.frontIds[portStart]
  undo: Undo = null;
  sink: ServiceSink | null = null;
  owner: PortOwner | null = null; // the port's owner object, shared by its frontends and backends
  prevFront: Map<string, number> | null = null; // previous frontend ids, on a recompile
  aff = 0;                       // FEF_AFFINITY when the service has session affinity
  // one active set per (family, local-only) pair the port's frontends ask for: [4 all, 4 local, 6 all, 6 local]
  readonly sets = [new ActiveSet(), new ActiveSet(), new ActiveSet(), new ActiveSet()];
  built = 0;                     // bit k: sets[k] is built for the current port
  release(): void { for (const a of this.sets) a.release(); this.owner = null; this.prevFront = null; this.undo = null; this.sink = null; }
}

/** compileService's scratch, one set per thread rather than per Compiler (a change() is
 * synchronous and no compiler's change() runs inside another's, so they cannot overlap). Released
 * (no strings, specs or next hops held) after every change(). */
class Scratch {
  /** one service port's candidates: the backends in listed order */
  readonly cands = new Candidates();
  readonly candSeen = new Map<string, number>(); // addr -> first index in cands, for ports with many endpoints
  readyIdx = new Int32Array(64);                 // activeSet's indexes into cands
  rank = new Int32Array(64);                     // ... and the IPv4 candidates' ipv4KeyRank, by candidate index
  terminatingIdx = new Int32Array(64);
  readonly keyAddrs: string[] = [];              // the active set's Maglev keys as (addr, port)
  readonly keyPorts: number[] = [];
  readonly keyV4: number[] = [];                 // ... and the addresses as int32 in an IPv4 set
  readonly svcOut = new CompiledService();       // compileService's ids
  readonly objects = new ObjectSink();           // an incremental compile's records
  readonly port = new PortState();
}
const SCRATCH = new Scratch();

/** Sorts candidate indexes active[0 .. n) into Maglev key order — by `rank` (IPv4) when given —
 * for ports with many endpoints. Its own function: a comparator closure in activeSet made V8
 * allocate a context for every activeSet call (~0.9 MB a 10k-service compile). */
function sortIndexes(active: Int32Array, n: number, addr: string[], port: number[], rank: Int32Array | null): void {
  const sorted = Array.from(active.subarray(0, n)).sort(rank
    ? (x, y) => rank[x] - rank[y] || backendKeyCmp(addr[x], port[x], addr[y], port[y])
    : (x, y) => backendKeyCmp(addr[x], port[x], addr[y], port[y]));
  for (let i = 0; i < n; i++) active[i] = sorted[i];
}

/** out[off + i] = id[active[i]]: the active set's ids. One function per kind of `out` (a full
 * compile's slab, an incremental compile's array): one loop storing into both was polymorphic,
 * and slower in the full compile once an incremental change had run it. */
function idsIntoSlab(out: Uint32Array, off: number, active: Int32Array, n: number, id: number[]): void {
  for (let i = 0; i < n; i++) out[off + i] = id[active[i]];
}
function idsIntoArray(out: number[], active: Int32Array, n: number, id: number[]): void {
  for (let i = 0; i < n; i++) out[i] = id[active[i]];
}

function refKey(ns: string | undefined, name: string): string { return `${ns || 'default'}/${name}`; }
function cmp(a: string, b: string): number { return a < b ? -1 : a > b ? 1 : 0; }

export interface CompilerOptions {
  /** Fill a full compile's Maglev tables on a worker thread (src/compiler/maglev-pool.ts):
   * 'auto' (default) from POOL_MIN_BACKENDS backends up, 'always', or 'never'. */
  maglevWorker?: 'auto' | 'always' | 'never';
}
/** Below this many backends a full compile fills its Maglev tables on its own thread. */
export const POOL_MIN_BACKENDS = 20_000;

/** Starts the Maglev worker ahead of a big full compile: it takes ~20-30 ms to boot, which
 * validating the objects first (~130 ms at 10k services) hides. `raws` are unvalidated objects;
 * their EndpointSlices' endpoints are counted, nothing is checked. */
export function warmMaglevWorker(raws: readonly unknown[]): void {
  let endpoints = 0;
  for (const r of raws) {
    const o = r as { kind?: unknown; endpoints?: unknown };
    if (o && o.kind === 'EndpointSlice' && Array.isArray(o.endpoints)) endpoints += o.endpoints.length;
  }
  if (endpoints >= POOL_MIN_BACKENDS) startMaglevWorker();
}

function noNodeWarning(backends: number): string {
  return `no NodeConfig applied: ${backends} backend(s) have no next hop; packets to them are dropped (drop_no_route) until one is applied`;
}

/** A node config and what it compiled to: what a full compile from a node-only state keeps. */
interface NodeState { node: NodeSpec | null; hops: NodeHops; routes: Ir['routes']; snat: SnatAddresses }

const NO_RECORDS: ServiceRecord[] = Object.freeze([]) as unknown as ServiceRecord[];
const NO_REPLACED: ReadonlySet<string> = new Set();
/** A Service's place in the model's map while indexFresh checks the batch for duplicates. */
const PENDING: ServiceRecord = Object.freeze({ spec: undefined, slices: undefined, out: undefined }) as ServiceRecord;
const NOTHING_COMPILED = new CompiledService();

/** Which objects a batch names, kind by kind: one object may appear once per request ("apply A
 * then A'" in one body is ambiguous). */
class SeenObjects {
  private readonly services = new Set<string>();
  private readonly slices = new Set<string>();
  node = false;
  /** Whether (kind, key) was seen before; marks it seen. */
  again(kind: ObjectRef['kind'], key: string): boolean {
    if (kind === 'NodeConfig') { const had = this.node; this.node = true; return had; }
    const set = kind === 'Service' ? this.services : this.slices;
    const n = set.size;
    set.add(key);
    return set.size === n;
  }
}

/** The errors of removing `r`: named twice in the batch, or not there. */
function removeErrors(r: ObjectRef, seen: SeenObjects, exists: boolean, errors: FieldError[]): void {
  if (seen.again(r.kind, r.kind === 'NodeConfig' ? '' : refKey(r.namespace, r.name))) errors.push(fieldError(r.kind, r.namespace || 'default', r.name, 'metadata.name', 'FieldValueDuplicate', 'Duplicate value: the object appears more than once in this request'));
  if (!exists) errors.push(fieldError(r.kind, r.kind === 'NodeConfig' ? undefined : r.namespace || 'default', r.name, '', 'NotFound', 'not found'));
}

/** The SNAT and hairpin addresses a node config gives the core (none without a node config). */
function nodeSnat(node: NodeSpec | null): SnatAddresses {
  if (!node) return {};
  const s: SnatAddresses = {};
  if (node.snatV4) s.v4 = node.snatV4;
  if (node.snatV6) s.v6 = node.snatV6;
  if (node.hairpinV4) s.hairpinV4 = node.hairpinV4;
  if (node.hairpinV6) s.hairpinV6 = node.hairpinV6;
  return s;
}

export class Compiler {
  constructor(private readonly opts: CompilerOptions = {}) {}
  // frontends and backends by column (frontend-table.ts, backend-table.ts): a full compile makes
  // no object per record
  private readonly backends = new BackendTable();
  private readonly frontends = new FrontendTable();
  readonly ir: Ir = { frontends: this.frontends, backends: this.backends, routes: [] };
  // per service key: the Service, the slices naming it, what it compiled to (see ServiceRecord)
  private readonly recs = new Map<string, ServiceRecord>();
  private nServices = 0;
  private readonly slices = new Map<string, SliceSpec>();
  private node: NodeSpec | null = null;
  private hops = new NodeHops(null);
  private frontendIdPool = new IdAllocator();
  private backendIdPool = new IdAllocator();
  private claims = new Map<Claim, string>();
  private readonly tableSink = new TableSink(this.backends, this.frontends);
  private slab: Slab | undefined;                 // set during a full compile
  private maglevJobs: MaglevJobs | null = null;   // set during a full compile that uses the worker
  // compileService's scratch (see Scratch): the same objects for every compiler
  private readonly cands = SCRATCH.cands;
  private readonly candSeen = SCRATCH.candSeen;
  private readonly keyAddrs = SCRATCH.keyAddrs;
  private readonly keyPorts = SCRATCH.keyPorts;
  private readonly keyV4 = SCRATCH.keyV4;
  private readonly svcOut = SCRATCH.svcOut;
  private readonly objects = SCRATCH.objects;
  private readonly portState = SCRATCH.port;

  // ---- read side ---------------------------------------------------------------------------
  getService(ns: string, name: string): ServiceSpec | undefined { return this.recs.get(refKey(ns, name))?.spec; }
  /** The Service of key "ns/name", or undefined. */
  serviceByKey(key: string): ServiceSpec | undefined { return this.recs.get(key)?.spec; }
  /** The key of the Service that holds claim `c` (src/compiler/claims.ts), or undefined. */
  claimHolder(c: Claim): string | undefined { return this.claims.get(c); }
  getSlice(ns: string, name: string): SliceSpec | undefined { return this.slices.get(refKey(ns, name)); }
  getNode(): NodeSpec | null { return this.node; }
  listServices(): ServiceSpec[] {
    const out: ServiceSpec[] = [];
    for (const r of this.recs.values()) if (r.spec) out.push(r.spec);
    return out.sort((a, b) => cmp(a.key, b.key));
  }
  /** The Services in no particular order, without listServices' copy and sort. */
  *eachService(): IterableIterator<ServiceSpec> { for (const r of this.recs.values()) if (r.spec) yield r.spec; }
  listSlices(): SliceSpec[] { return [...this.slices.values()].sort((a, b) => cmp(a.key, b.key)); }
  /** The slices in no particular order, without listSlices' copy and sort (~10k keys). */
  eachSlice(): IterableIterator<SliceSpec> { return this.slices.values(); }
  serviceCount(): number { return this.nServices; }
  sliceCount(): number { return this.slices.size; }
  frontendIdsOf(serviceKey: string): number[] { return this.recs.get(serviceKey)?.out?.frontIds() ?? []; }
  backendIdsOf(serviceKey: string): number[] { return this.recs.get(serviceKey)?.out?.backIds() ?? []; }
  warningsOf(serviceKey: string): string[] { return [...(this.recs.get(serviceKey)?.out?.warnings ?? [])]; }
  /** Highest frontend / backend id in use so far (what the core's tables must hold). */
  idHighWater(): { frontend: number; backend: number } { return { frontend: this.frontendIdPool.highWater, backend: this.backendIdPool.highWater }; }

  /** Everything as applied, for persistence: raw objects in key order. */
  snapshot(): { services: unknown[]; endpointSlices: unknown[]; node: unknown | null } {
    return {
      services: this.listServices().map((s) => s.raw),
      endpointSlices: this.listSlices().map((s) => s.raw),
      node: this.node ? this.node.raw : null,
    };
  }

  // ---- write side --------------------------------------------------------------------------
  /** Applies a batch atomically. Throws ValidationError (and changes nothing) on clashes or
   * removals of objects that do not exist. */
  change(batch: ChangeBatch): Change {
    this.frontendIdPool.compact(); this.backendIdPool.compact();
    const upserts = batch.upsert ?? [];
    const removes = batch.remove ?? [];
    // a node config alone (the daemon programs its own before the first sync) holds no id, no
    // service and no claim: the first sync after it is a full compile too (10k x 10: 3.7-4.5x
    // faster than the incremental path, docs/performance.md, "Full sync"). Invariant: no id was handed out, so
    // the full compile's ids 1..n name nothing else. Removals need the incremental path (the node
    // config can be one).
    if (!this.holdsNoService() || (removes.length && this.node !== null)) return this.incrementalCompile(upserts, removes);
    if (removes.length) this.refuseFromEmpty(upserts, removes); // from empty nothing can be removed
    return this.fullCompile(upserts);
  }

  /** No service, slice, record or claim, and no id handed out (a node config may be applied): a
   * change from here can be a full compile, which numbers ids 1, 2, 3, ... as the incremental
   * path would from here. */
  private holdsNoService(): boolean {
    return this.recs.size === 0 && this.nServices === 0 && this.slices.size === 0 && this.ir.frontends.size === 0 &&
      this.ir.backends.size === 0 && this.frontendIdPool.highWater === 0 && this.backendIdPool.highWater === 0 && this.claims.size === 0;
  }

  /** From empty: compiles every service of the batch straight into the column tables. Nothing to
   * undo but "back to empty" (reset()), so no undo log: most of the garbage a 100k-backend compile
   * would make. The batch is compiled first and put into the model's maps after, while the Maglev
   * thread fills the tables; the duplicate and clash checks come after the compile then, and a
   * refused batch throws its compile away. */
  private fullCompile(upserts: ModelObject[]): Change {
    const errors: FieldError[] = [];
    // what "back to the start" restores: the node config alone, or nothing
    const base = this.nodeState();
    // every endpoint is at most one backend per slice port: size the columns once. One slab for
    // the backend columns (16 bytes a backend), the active sets' ids (4 bytes a backend) and the
    // Maglev tables (~20 one-byte slots a backend at the default size): whole 2 MiB pages, 1 MiB
    // for small compiles
    const group = groupFresh(upserts), bound = group.bound;
    const want = bound * 40 + (2 << 20);
    const pool = this.opts.maglevWorker ?? 'auto';
    // a job per table of >= 2 backends; an endpoint is in at most 2 sets of its family
    this.maglevJobs = pool === 'always' || (pool === 'auto' && bound >= POOL_MIN_BACKENDS) ? MaglevJobs.create((bound >> 1) + 64, 2 * bound + 64) : null;
    this.slab = new Slab(want <= 4 << 20 ? 1 << 20 : Math.min(want, 64 << 20) & ~((2 << 20) - 1), this.maglevJobs !== null);
    this.backends.grow(bound + 1, this.slab.alloc);
    const buf = this.slab.buffer;
    if (this.maglevJobs && buf instanceof SharedArrayBuffer) this.maglevJobs.prefault(buf);
    const diff = emptyDiff();
    try {
      // the batch's claims are all the claims there are
      const batchClaims = new Map<Claim, string>();
      this.claims = batchClaims;
      if (group.node) { const prev = this.node; this.node = group.node; this.nodeChanged(prev, diff, null); }
      const warnings: string[] = [];
      this.compileRecords(group.recs, warnings);
      // the model's maps, the duplicate checks and the claims (in one pass), while the Maglev
      // thread works
      const claimErrors: FieldError[] = [];
      this.indexFresh(upserts, group.batchRecs, group.orphans, errors, this.freshClaims(batchClaims, claimErrors));
      for (let i = 0; i < claimErrors.length; i++) errors.push(claimErrors[i]);
      if (errors.length) throw new ValidationError(errors);
      this.maglevJobs?.drain(); // every table filled before anything reads one
      // ids were handed out 1, 2, 3, ... and every one became a frontend or a backend: the diff
      // upserts rows 1..n of the tables, read from them when the diff is read
      const nBacks = this.backendIdPool.highWater, nFronts = this.frontendIdPool.highWater;
      if (this.backends.size !== nBacks) throw new Error(`internal: fresh compile wrote ${this.backends.size} backends for ${nBacks} ids`);
      if (this.frontends.size !== nFronts) throw new Error(`internal: fresh compile wrote ${this.frontends.size} frontends for ${nFronts} ids`);
      const result: IrDiff = { ...diff, frontendsUpsert: this.frontends.rows(nFronts), backendsUpsert: this.backends.rows(nBacks) };
      if (!this.node && nBacks) warnings.push(noNodeWarning(nBacks));
      for (let i = 0; i < group.unlabelled.length; i++) warnings.push(unlabelledWarning(group.unlabelled[i]));
      let done = false;
      const rollback = (): void => { if (!done) { done = true; this.reset(base); } };
      // everything this change programmed is new: undoing it removes it all
      const undoDiff: IrDiff = { ...emptyDiff(), frontendsRemove: new IdRange(nFronts), backendsRemove: new IdRange(nBacks) };
      if (diff.routes) undoDiff.routes = base.routes;
      if (diff.snat) undoDiff.snat = base.snat;
      const jobs = this.maglevJobs;
      return { diff: result, undoDiff, rollback, warnings, servicesRecompiled: group.services, ...(jobs ? { maglevWorker: { tables: jobs.published, filledByWorker: jobs.published - jobs.filledHere } } : {}) };
    } catch (e) {
      this.reset(base);
      throw e;
    } finally {
      this.maglevJobs?.abandon(); // a failed compile's jobs are not claimed any more
      this.maglevJobs = null;
      this.slab = undefined;
      this.releaseScratch();
    }
  }

  /** From empty, a batch that removes anything is refused (nothing exists): with every error a
   * full compile's checks would report about its upserts as well. */
  private refuseFromEmpty(upserts: ModelObject[], removes: ObjectRef[]): never {
    const errors: FieldError[] = [];
    const seen = new SeenObjects();
    // the model's maps serve as the upserts' duplicate check, as in a full compile
    const claimErrors: FieldError[] = [];
    seen.node = this.indexFresh(upserts, null, NO_RECORDS, errors, this.freshClaims(new Map(), claimErrors));
    for (const r of removes) removeErrors(r, seen, false, errors);
    errors.push(...claimErrors);
    this.reset();
    throw new ValidationError(errors);
  }

  /** Recompiles the services the batch touches, as objects compared with the current ones; every
   * change to the model, the ids and the Ir is logged to be undone. */
  private incrementalCompile(upserts: ModelObject[], removes: ObjectRef[]): Change {
    const errors: FieldError[] = [];
    const seen = new SeenObjects();
    for (let u = 0; u < upserts.length; u++) {
      const o = upserts[u];
      if (seen.again(o.kind, o.kind === 'NodeConfig' ? '' : o.key)) errors.push(duplicateError(o));
    }
    for (const r of removes) {
      const key = refKey(r.namespace, r.name);
      // the NodeConfig is one per node, but a delete names it: another name is not there (a 404,
      // as the API server answers), not a delete of the one held
      removeErrors(r, seen, r.kind === 'Service' ? this.recs.get(key)?.spec !== undefined : r.kind === 'EndpointSlice' ? this.slices.has(key) : this.node?.name === r.name, errors);
    }
    // cross-service clashes, against the current state minus the services this batch replaces
    const replaced = new Set<string>();
    if (this.claims.size) {
      for (const o of upserts) if (o.kind === 'Service') replaced.add(o.key);
      for (const r of removes) if (r.kind === 'Service') replaced.add(refKey(r.namespace, r.name));
    }
    const upsertClaims: Array<Claim[] | undefined> = new Array(upserts.length); // by upsert index, reused by setClaims
    this.claimBatch(upserts, replaced, upsertClaims, errors);
    if (errors.length) throw new ValidationError(errors);

    const undo: Array<() => void> = [];
    const prevFront = new Map<number, IrFrontend | undefined>();
    const prevBack = new Map<number, IrBackend | undefined>();
    const prevRoutes = this.ir.routes, prevSnat = snatOf(this.ir), prevNode = this.node;
    const diff = emptyDiff();
    const dirty = new Set<string>();
    let nodeChanged = false;

    const mapSet = <K, V>(m: Map<K, V>, k: K, v: V | undefined): void => {
      const had = m.has(k), old = m.get(k);
      undo.push(() => { if (had) m.set(k, old as V); else m.delete(k); });
      if (v === undefined) m.delete(k); else m.set(k, v);
    };
    // a service's slices stay sorted by key (compileService reads them in name order); a
    // transaction replaces the array rather than editing it, so undo is putting the old array
    // back. Removal is by key: `sl` may be the previous version of the slice.
    const linkSlice = (svc: string | null, sl: SliceSpec, add: boolean): void => {
      if (svc === null) return;
      const entry = this.recs.get(svc)?.slices, sliceKey = sl.key;
      if (entry === undefined) { if (add) this.setRecord(svc, 'slices', sl, undo); return; }
      const have = Array.isArray(entry) ? entry : [entry];
      let at = 0, hi = have.length;
      while (at < hi) { const mid = (at + hi) >> 1; if (have[mid].key < sliceKey) at = mid + 1; else hi = mid; }
      const present = at < have.length && have[at].key === sliceKey;
      if (add === present) return;
      if (add) this.setRecord(svc, 'slices', [...have.slice(0, at), sl, ...have.slice(at)], undo);
      else {
        const next = have.filter((k) => k.key !== sliceKey);
        this.setRecord(svc, 'slices', next.length === 0 ? undefined : next.length === 1 ? next[0] : next, undo);
      }
    };
    const setClaims = (svcKey: string, next: ServiceSpec | undefined, nextClaims?: Claim[]): void => {
      const old = this.recs.get(svcKey)?.spec;
      if (old) for (const c of claimKeys(old)) if (this.claims.get(c) === svcKey) mapSet(this.claims, c, undefined);
      if (next) for (const c of nextClaims ?? claimKeys(next)) mapSet(this.claims, c, svcKey);
    };
    const rollbackNow = (): void => { for (let i = undo.length - 1; i >= 0; i--) undo[i](); };

    try {
      for (const r of removes) {
        const key = refKey(r.namespace, r.name);
        if (r.kind === 'Service') { setClaims(key, undefined); this.setRecord(key, 'spec', undefined, undo); dirty.add(key); }
        else if (r.kind === 'EndpointSlice') {
          const old = this.slices.get(key)!;
          linkSlice(old.service, old, false); mapSet(this.slices, key, undefined);
          if (old.service) dirty.add(old.service);
        } else { this.node = null; nodeChanged = true; }
      }
      for (let u = 0; u < upserts.length; u++) {
        const o = upserts[u];
        if (o.kind === 'Service') { setClaims(o.key, o, upsertClaims[u]); this.setRecord(o.key, 'spec', o, undo); dirty.add(o.key); }
        else if (o.kind === 'EndpointSlice') {
          const old = this.slices.get(o.key);
          if (old) { linkSlice(old.service, old, false); if (old.service) dirty.add(old.service); }
          linkSlice(o.service, o, true); mapSet(this.slices, o.key, o);
          if (o.service) dirty.add(o.service);
        } else { this.node = o; nodeChanged = true; }
      }
      if (nodeChanged) {
        this.nodeChanged(prevNode, diff, undo);
        for (const [k, r] of this.recs) if (r.spec || r.out) dirty.add(k); // every backend's next hop may have changed
      }

      const setFront = (f: IrFrontend | undefined, id: number): void => {
        if (!prevFront.has(id)) prevFront.set(id, this.ir.frontends.get(id));
        mapSet(this.ir.frontends, id, f);
      };
      const setBack = (b: IrBackend | undefined, id: number): void => {
        if (!prevBack.has(id)) prevBack.set(id, this.ir.backends.get(id));
        mapSet(this.ir.backends, id, b);
      };

      const releaseFront: number[] = [], releaseBack: number[] = [];
      const warnings: string[] = [];
      // default sort: UTF-16 code unit order, same as cmp, without a comparator call per step
      const order = [...dirty].sort();
      const objects = this.objects;
      for (let k = 0; k < order.length; k++) {
        const key = order[k];
        const rec = this.recs.get(key);
        const svc = rec?.spec;
        const prev = rec?.out;
        objects.reset();
        const out = svc ? this.compileService(svc, rec!.slices, undo, prev, objects) : NOTHING_COMPILED;
        for (let i = 0; i < objects.nBacks; i++) {
          const b = objects.backs[i];
          const old = this.backends.get(b.id);
          if (!old || !sameBackend(old, b)) { setBack(b, b.id); diff.backendsUpsert.push(b); }
        }
        for (let i = 0; i < objects.nFronts; i++) {
          const f = objects.fronts[i];
          const old = this.ir.frontends.get(f.id);
          if (!old || !sameFrontend(old, f)) { setFront(f, f.id); diff.frontendsUpsert.push(f); }
        }
        if (prev) { // ids the service no longer uses (compileService reused the others)
          const fs = new Set<number>(out.frontIds.slice(0, out.nFronts)), bs = new Set<number>(out.backIds.slice(0, out.nBackIds));
          for (const id of prev.frontIds()) if (!fs.has(id)) releaseFront.push(id);
          for (const id of prev.backIds()) if (!bs.has(id)) releaseBack.push(id);
        }
        const stored = svc || out.nFronts || out.nBackIds ? new ServiceOutput(out) : undefined;
        this.setRecord(key, 'out', stored, undo);
        for (let i = 0; i < out.warnings.length; i++) warnings.push(out.warnings[i]);
      }
      // release only after every allocation of this change: an id never changes owner within one diff
      for (const id of releaseFront) { setFront(undefined, id); this.frontendIdPool.release(id, undo); diff.frontendsRemove.push(id); }
      for (const id of releaseBack) { setBack(undefined, id); this.backendIdPool.release(id, undo); diff.backendsRemove.push(id); }
      if (!this.node && diff.backendsUpsert.length) warnings.push(noNodeWarning(diff.backendsUpsert.length));
      unlabelledSliceWarnings(upserts, warnings);

      let done = false;
      const rollback = (): void => { if (!done) { done = true; rollbackNow(); } };
      const undoDiff = emptyDiff();
      for (const [id, f] of prevFront) if (f) undoDiff.frontendsUpsert.push(f); else undoDiff.frontendsRemove.push(id);
      for (const [id, b] of prevBack) if (b) undoDiff.backendsUpsert.push(b); else undoDiff.backendsRemove.push(id);
      if (diff.routes) undoDiff.routes = prevRoutes;
      if (diff.snat) undoDiff.snat = prevSnat;
      return { diff, undoDiff, rollback, warnings, servicesRecompiled: order.length };
    } catch (e) {
      rollbackNow();
      throw e;
    } finally {
      this.releaseScratch();
    }
  }

  /** After this.node changed (from `prevNode`): the next hops, and the Ir's routes and SNAT
   * addresses, into `diff` where they differ; logged to `undo`. */
  private nodeChanged(prevNode: NodeSpec | null, diff: IrDiffData, undo: Undo): void {
    const prevHops = this.hops, prevRoutes = this.ir.routes, prevSnat = snatOf(this.ir);
    undo?.push(() => { this.node = prevNode; this.hops = prevHops; });
    this.hops = new NodeHops(this.node);
    const routes = this.hops.irRoutes();
    if (!sameRoutes(routes, prevRoutes)) { this.ir.routes = routes; diff.routes = routes; }
    const snat = nodeSnat(this.node);
    if (!sameSnat(snat, prevSnat)) { setSnat(this.ir, snat); diff.snat = snat; }
    undo?.push(() => {
      this.ir.routes = prevRoutes;
      setSnat(this.ir, prevSnat);
    });
  }

  /** An incremental batch's Services against the claims (cluster IPs, node ports, frontend
   * tuples) of the current state minus `replaced` and of the batch so far. `upsertClaims[u]` gets
   * upsert u's claims, for setClaims. */
  private claimBatch(upserts: ModelObject[], replaced: Set<string>, upsertClaims: Array<Claim[] | undefined>, errors: FieldError[]): void {
    const batchClaims = new Map<Claim, string>();
    for (let u = 0; u < upserts.length; u++) {
      const o = upserts[u];
      if (o.kind !== 'Service') continue;
      const keys = claimKeys(o);
      upsertClaims[u] = keys;
      for (let i = 0; i < keys.length; i++) this.takeClaim(o, keys[i], i, replaced, batchClaims, errors);
    }
  }

  /** A batch from empty: what claims one Service after another into `batchClaims` (the batch's
   * claims are all there are), a clash an error in `errors`. One visitor for the whole batch: a
   * closure per service was garbage. */
  private freshClaims(batchClaims: Map<Claim, string>, errors: FieldError[]): (o: ServiceSpec) => void {
    let svc: ServiceSpec, n = 0;
    const take = (claim: Claim): void => { this.takeClaim(svc, claim, n++, NO_REPLACED, batchClaims, errors); };
    return (o) => { svc = o; n = 0; forEachClaim(o, take); };
  }

  /** A full compile's services, in order (key order), straight into the tables; keeps what each
   * compiled to. */
  private compileRecords(recs: ServiceRecord[], warnings: string[]): void {
    for (let k = 0; k < recs.length; k++) {
      const rec = recs[k], svc = rec.spec;
      if (svc === undefined) continue; // slices naming a service the batch does not hold
      const out = this.compileService(svc, rec.slices, null, undefined, this.tableSink);
      rec.out = new ServiceOutput(out);
      for (let i = 0; i < out.warnings.length; i++) warnings.push(out.warnings[i]);
    }
  }

  /** From empty (after the compile): every Service and EndpointSlice of the batch into the
   * model's maps, which serve as the duplicate check (errors in batch order); a Service as its
   * record (`batchRecs`, the batch's services in batch order: a placeholder when null), then the
   * records of slices naming a service the batch does not hold; `claim` is called with every
   * Service in batch order (the same pass: one look at each object). True when the batch holds a
   * NodeConfig. */
  private indexFresh(upserts: ModelObject[], batchRecs: ServiceRecord[] | null, orphans: ServiceRecord[], errors: FieldError[], claim: (o: ServiceSpec) => void): boolean {
    let nodes = 0, s = 0;
    const recs = this.recs, slices = this.slices;
    for (let u = 0; u < upserts.length; u++) {
      const o = upserts[u];
      if (o.kind === 'NodeConfig') { if (nodes++ > 0) errors.push(duplicateError(o)); continue; }
      if (o.kind === 'Service') {
        const n = recs.size;
        recs.set(o.key, batchRecs ? batchRecs[s++] : PENDING);
        if (recs.size === n) errors.push(duplicateError(o));
        claim(o);
      } else {
        const n = slices.size;
        slices.set(o.key, o);
        if (slices.size === n) errors.push(duplicateError(o));
      }
    }
    for (let k = 0; k < orphans.length; k++) {
      const sl = orphans[k].slices!;
      recs.set((Array.isArray(sl) ? sl[0] : sl).service!, orphans[k]);
    }
    this.nServices = s;
    return nodes > 0;
  }

  /** Claim number i of service o (forEachClaim's order), against the current claims minus those
   * of `replaced` services and the batch's so far; a clash is an error naming the other service. */
  private takeClaim(o: ServiceSpec, claim: Claim, i: number, replaced: ReadonlySet<string>, batchClaims: Map<Claim, string>, errors: FieldError[]): void {
    // (in a full compile there are no current claims: this.claims is batchClaims)
    const owner = this.claims === batchClaims || this.claims.size === 0 ? undefined : this.claims.get(claim);
    const other = owner !== undefined && owner !== o.key && !replaced.has(owner) ? owner : batchClaims.get(claim);
    if (other !== undefined && other !== o.key) {
      const c = describeClaim(o, i); // the error path only
      errors.push(fieldError('Service', o.namespace, o.name, c.field, 'FieldValueInvalid',
        `Invalid value: ${c.what}: already allocated to Service ${other}`));
    } else batchClaims.set(claim, o.key);
  }

  /** Sets one field of a service's record (creating the record, or dropping it once empty),
   * logging how to undo it. */
  private setRecord<F extends keyof ServiceRecord>(key: string, field: F, value: ServiceRecord[F], undo: Undo): void {
    const recs = this.recs;
    let r = recs.get(key);
    if (r === undefined) {
      if (value === undefined) return;
      r = { spec: undefined, slices: undefined, out: undefined };
      recs.set(key, r);
      undo?.push(() => { recs.delete(key); });
    }
    const rec = r, old = rec[field];
    if (old === value) return;
    rec[field] = value;
    const dServices = field === 'spec' ? (value !== undefined ? 1 : 0) - (old !== undefined ? 1 : 0) : 0;
    this.nServices += dServices;
    undo?.push(() => { rec[field] = old; this.nServices -= dServices; });
    if (rec.spec === undefined && rec.slices === undefined && rec.out === undefined) {
      recs.delete(key);
      undo?.push(() => { recs.set(key, rec); });
    }
  }

  /** Scratch holds no strings, specs or next hops between changes. */
  private releaseScratch(): void {
    this.cands.release();
    this.candSeen.clear();
    dropRefs(this.keyAddrs, '');
    this.svcOut.release();
    this.objects.release();
    this.portState.release();
  }

  /** The node config and what it compiled to (the state a full compile starts from). */
  private nodeState(): NodeState {
    return { node: this.node, hops: this.hops, routes: this.ir.routes, snat: snatOf(this.ir) };
  }

  /** Back to no service at all, with `base`'s node config (the rollback of a full compile). */
  private reset(base?: NodeState): void {
    this.ir.frontends.clear(); this.ir.backends.clear(); this.ir.routes = base ? base.routes : [];
    setSnat(this.ir, base ? base.snat : {});
    this.recs.clear(); this.nServices = 0; this.slices.clear(); this.claims.clear();
    this.node = base ? base.node : null;
    this.frontendIdPool = new IdAllocator(); this.backendIdPool = new IdAllocator();
    this.hops = base ? base.hops : new NodeHops(null);
  }

  /** Recompiles every service from the current model without changing ids and returns the Ir it
   * would produce — what `ir` must equal (tests compare the two). Does not modify anything. */
  recompileAll(): Ir {
    const ir = emptyIr();
    ir.routes = this.hops.irRoutes();
    setSnat(ir, nodeSnat(this.node));
    const undo: Array<() => void> = [];
    const objects = this.objects;
    try {
      for (const svc of this.listServices()) {
        const rec = this.recs.get(svc.key)!;
        objects.reset();
        this.compileService(svc, rec.slices, undo, rec.out, objects);
        for (let i = 0; i < objects.nFronts; i++) ir.frontends.set(objects.fronts[i].id, objects.fronts[i]);
        for (let i = 0; i < objects.nBacks; i++) ir.backends.set(objects.backs[i].id, objects.backs[i]);
      }
    } finally {
      for (let i = undo.length - 1; i >= 0; i--) undo[i]();
      this.releaseScratch();
    }
    return ir;
  }

  // ---- one service -------------------------------------------------------------------------
  /** Compiles one service. Ids it had before (`prev`) are reused for what they named; anything
   * new gets a fresh id. Costs O(endpoints) plus one Maglev table per (port, family, local-only)
   * set its frontends ask for; the lookup maps of previous ids are built only on a recompile.
   * The result's arrays are scratch (valid until the next call): the caller copies what it keeps. */
  private compileService(svc: ServiceSpec, sliceEntry: ServiceRecord['slices'], undo: Undo, prev: ServiceOutput | undefined, sink: ServiceSink): CompiledService {
    const out = this.svcOut, portState = this.portState;
    const backIds = out.backIds, warnings = out.warnings;
    out.reset();
    if (svc.headless || svc.type === 'ExternalName' || !this.serves(svc)) return out;
    const backends = this.backends;
    const nSlices = sliceCount(sliceEntry);
    let unresolved: string[] | null = null;
    let prevBack: Map<string, number> | null = null;
    portState.svc = svc; portState.undo = undo; portState.prevFront = null; portState.sink = sink;
    portState.aff = svc.affinityTimeoutMs ? L.FEF_AFFINITY : 0;
    if (prev && prev.backCount) { prevBack = new Map(); for (const id of prev.backIds()) prevBack.set(`${backends.portNameOf(id)}|${backends.addrOf(id)}|${backends.targetPortOf(id)}`, id); }
    if (prev && prev.frontCount) {
      const frontends = this.frontends;
      portState.prevFront = new Map();
      for (const id of prev.frontIds()) portState.prevFront.set(`${frontends.portNameOf(id)}|${frontends.kindOf(id)}|${frontends.addrOf(id)}`, id);
    }
    const cands = this.cands;
    const external = L.FEF_EXTERNAL | (svc.externalLocal ? 0 : L.FEF_MASQUERADE);
    const fam = svc.families;
    // a cluster IP that is one of the node's own addresses (the API server does not check it) gets
    // no ClusterIP frontend: the node's traffic stays the node's, whichever arrived first (the node
    // change recompiles every Service); the rest of the Service is served
    const nodeOwned = this.clusterIPsOfNode(svc);
    if (nodeOwned !== null) warnings.push(`Service ${svc.key}: cluster IP ${nodeOwned.join(', ')} is an address of node ${this.node!.name}: not served (the node's own traffic is not taken over; the rest of the Service is served)`);

    for (let pi = 0; pi < svc.ports.length; pi++) {
      const sp = svc.ports[pi];
      portState.sp = sp;
      // candidates in listed order. A backend listed twice (in two slices, or twice in one) is one
      // backend whose best state wins; found by a scan while the port is small, by an address
      // index beyond that
      cands.n = 0;
      const cId = cands.id, cAddr = cands.addr, cPort = cands.port, cKey = cands.key, cFamily = cands.family, cState = cands.state, cHop = cands.hop, cEp = cands.ep;
      let seen: Map<string, number> | null = null;
      for (let si = 0; si < nSlices; si++) {
        const sl = Array.isArray(sliceEntry) ? sliceEntry[si] : sliceEntry!;
        if (sl.addressType === 'FQDN' || !this.serves(sl)) continue;
        const slPort = matchSlicePort(sp, sl);
        if (!slPort) continue;
        // no port number: kube-proxy ignores the slice port ("invalid endpoint port")
        const port = slPort.port;
        if (port === undefined) { warnings.push(`Service ${svc.key} port ${sp.name || sp.port}: EndpointSlice ${sl.key} gives no port number for it: its endpoints are not used`); continue; }
        const family: Family = sl.addressType === 'IPv6' ? 6 : 4;
        const eps = sl.endpoints;
        for (let e = 0; e < eps.length; e++) {
          const ep = eps[e], addr = ep.addresses[0]; // like kube-proxy: only the first address of an endpoint is used
          const state = ep.ready ? L.BES_READY : ep.serving && ep.terminating ? L.BES_TERMINATING_SERVING : L.BES_NOT_SERVING;
          let dup = -1, from = 0;
          const n = cands.n;
          if (n > 32 && seen === null) { // switch to the index: first index per address
            seen = this.candSeen; seen.clear();
            for (let i = n - 1; i >= 0; i--) seen.set(cAddr[i], i);
          }
          if (seen !== null) { const at = seen.get(addr); from = at === undefined ? n : at; }
          const key = family === 4 ? ep.v4 | 0 : 0; // int32 (validated: the address's value): a small integer to V8 whatever the address
          for (let i = from; i < n; i++) if (cKey[i] === key && cPort[i] === port && cAddr[i] === addr) { dup = i; break; }
          if (dup >= 0) {
            // one address listed twice (in two slices, or twice in one): as kube-proxy's
            // endpointslicecache, a copy that is not terminating replaces a terminating one — an
            // address the pod network gave a new pod before the old, terminating one's Pod object
            // is gone is the new pod's, its conditions, node and hints; between copies alike the
            // one with the best state wins (where kube-proxy's slice map order decides), whole:
            // kube-proxy's result is always one copy, never one's state with another's node
            const wasTerm = cEp[dup]!.terminating;
            if ((wasTerm && !ep.terminating) || (wasTerm === ep.terminating && state < cState[dup])) cands.retake(dup, state, ep);
            continue;
          }
          const id = (prevBack !== null && prevBack.get(`${sp.name}|${addr}|${port}`)) || this.backendIdPool.allocate(undo);
          const hop = family === 6 ? this.hops.lookup(addr) : this.hops.lookup4(key, addr);
          if (!hop) (unresolved ??= []).push(addr);
          if (seen !== null && !seen.has(addr)) seen.set(addr, n);
          cId[n] = id; cAddr[n] = addr; cKey[n] = key; cPort[n] = port; cFamily[n] = family; cState[n] = state; cHop[n] = hop; cEp[n] = ep;
          cands.n = n + 1;
        }
      }
      // the port's backends, final states known, to the sink; the owner object names the port
      // for all of its backends and frontends
      const owner: PortOwner = { service: svc.key, portName: sp.name };
      portState.owner = owner;
      for (let i = 0; i < cands.n; i++) backIds[out.nBackIds++] = cands.id[i];
      sink.backends(owner, cands);

      portState.built = 0;
      portState.portStart = out.nFronts;
      // kube-proxy's internal chain: with --masquerade-all every flow to the ClusterIP is
      // masqueraded, else (with a local-traffic detector of the ClusterIP's family) those not from a pod
      for (let i = 0; i < svc.clusterIPs.length; i++) {
        const ip = svc.clusterIPs[i];
        if (nodeOwned !== null && nodeOwned.includes(ip)) continue; // the node's own address: never taken over
        const outsideMasq = this.node?.masqueradeAll ? L.FEF_MASQUERADE : this.hops.detectsPods(ip.includes(':') ? 6 : 4) ? L.FEF_MASQUERADE_OUTSIDE : 0;
        this.emit('ClusterIP', ip, sp.port, outsideMasq, svc.internalLocal, NO_RANGES);
      }
      // both traffic policies Local: the ClusterIP spreads over local endpoints only, so the
      // cluster-wide set that in-cluster sources of the external addresses get (kube-proxy's
      // cluster policy chain) is a frontend of its own, outside the service map
      // A cluster IP that is a node address has no ClusterIP frontend: its ClusterPolicy frontend
      // (no service-map key, so the node's traffic stays the node's) holds the cluster-wide set in
      // its place, for a Local policy's pods and for the port's shared affinity (clusterFrontOf)
      // (the common case, no such address and a Cluster policy, tests what it did before)
      if ((nodeOwned !== null || (svc.internalLocal && svc.externalLocal)) && (sp.nodePort !== undefined || svc.externalIPs.length || svc.lbIngress.length))
        for (let i = 0; i < svc.clusterIPs.length; i++) {
          const owned = nodeOwned !== null && nodeOwned.includes(svc.clusterIPs[i]);
          if (owned ? svc.externalLocal || portState.aff !== 0 : svc.internalLocal && svc.externalLocal) this.emit('ClusterPolicy', svc.clusterIPs[i], sp.port, 0, false, NO_RANGES);
        }
      if (sp.nodePort !== undefined && this.node)
        for (let i = 0; i < this.node.nodePortAddresses.length; i++) {
          const a = this.node.nodePortAddresses[i];
          if (this.ofFamily(fam, a)) this.emit('NodePort', a, sp.nodePort, external, svc.externalLocal, NO_RANGES);
        }
      // as the nftables proxier: loadBalancerSourceRanges guard LB ingress IPs only (its
      // firewall-ips map holds LoadBalancerVIPs), not externalIPs as such; and external / LB IPs of a
      // family the service has no cluster IP of are not programmed (kube-proxy's per-family
      // proxier does not know the service)
      // (indexed loops: an array iterator per loop per service was ~0.6 MB of a 10k-service compile)
      // An externalIP that is an LB IP too is one frontend, the ExternalIP, and takes the ranges:
      // kube-proxy's firewall is keyed by LB IP and port, whatever else the address is
      const ext = svc.externalIPs, lb = svc.lbIngress, guarded = svc.sourceRanges.length !== 0;
      // (a tuple the Service yields to another that claims it too: src/compiler/external-claims.ts)
      const withheld = svc.withheld;
      for (let i = 0; i < ext.length; i++) if (this.ofFamily(fam, ext[i]) && !this.portTaken(ext[i]) && !(withheld && withheld.has(externalClaim(sp.protocol, ext[i], sp.port)))) this.emit('ExternalIP', ext[i], sp.port, external, svc.externalLocal, guarded && lb.includes(ext[i]) ? svc.sourceRanges : NO_RANGES);
      for (let i = 0; i < lb.length; i++) if (this.ofFamily(fam, lb[i]) && !this.portTaken(lb[i]) && !(withheld && withheld.has(externalClaim(sp.protocol, lb[i], sp.port)))) this.emit('LoadBalancer', lb[i], sp.port, external, svc.externalLocal, svc.sourceRanges);
    }
    portState.built = 0;
    if (unresolved && this.node) { // without a node config change() reports it once, not per service
      const uniq = [...new Set(unresolved)];
      // (what a daemon does meanwhile: src/daemon/worker.ts probes, src/daemon/hold-queue.ts holds)
      warnings.push(`Service ${svc.key}: no neighbour or route for ${uniq.length} endpoint address(es) (${uniq.slice(0, 5).join(', ')}${uniq.length > 5 ? ', ...' : ''}) yet: `
        + `a daemon asks for them (ARP/ND) every probeIntervalMs and holds a new flow's first packets to them (${HOLD_PER_ADDRESS} per address, up to ${HOLD_MS / 1000} s) until one answers; packets beyond those are dropped (drop_no_route)`);
    }
    return out;
  }

  /** The cluster IPs of `svc` that are addresses of the node, or null (the common case: no array). */
  private clusterIPsOfNode(svc: ServiceSpec): string[] | null {
    const own = this.node?.addresses;
    if (!own || !own.length) return null;
    let out: string[] | null = null;
    for (let i = 0; i < svc.clusterIPs.length; i++) if (own.includes(svc.clusterIPs[i])) (out ??= []).push(svc.clusterIPs[i]);
    return out;
  }

  /** Whether the service is this proxy's to program (kube-proxy's label selector
   * `!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless`): not when it is
   * labelled headless, nor when it names a service proxy other than the node config's
   * serviceProxyName (none by default). Checked here, where the control API's applies and the
   * Kubernetes watcher's syncs both pass, so adding or removing a label (a recompile of the
   * service) programs or removes it. The same for an EndpointSlice: kube-proxy's slice informer
   * has the same selector, so a slice so labelled adds no endpoints. */
  serves(obj: ServiceSpec | SliceSpec): boolean {
    return servedByProxy(obj, this.node?.serviceProxyName);
  }

  /** One frontend of the current service port (this.portState), unless the port has it already.
   * One Maglev set per (family, local-only) pair its frontends ask for: [4 all, 4 local, 6 all,
   * 6 local]. A method over reused state rather than a closure per service: the closures and
   * their context were ~250 bytes of garbage a service. */
  private emit(kind: FrontendKind, addr: string, port: number, flags: number, localOnly: boolean, ranges: string[]): void {
    const portState = this.portState, out = this.svcOut, svc = portState.svc, sp = portState.sp;
    const kinds = out.frontKinds, addrs = out.frontAddrs;
    for (let i = portState.portStart; i < out.nFronts; i++) if (kinds[i] === kind && addrs[i] === addr) return; // listed twice
    const family: Family = addr.includes(':') ? 6 : 4;
    const setIndex = (family === 6 ? 2 : 0) + (localOnly ? 1 : 0);
    const set = portState.sets[setIndex];
    if ((portState.built & (1 << setIndex)) === 0) {
      this.activeSet(svc, family, localOnly ? this.node?.name ?? null : undefined, this.svcOut.warnings, set);
      portState.built |= 1 << setIndex;
    }
    const id = (portState.prevFront !== null && portState.prevFront.get(`${sp.name}|${kind}|${addr}`)) || this.frontendIdPool.allocate(portState.undo);
    const i = out.nFronts++;
    out.frontIds[i] = id; kinds[i] = kind; addrs[i] = addr;
    // an empty local set while the service has endpoints elsewhere: drop, not reject (kube-proxy)
    // (the local set is empty exactly when no usable endpoint is local: noLocalEndpoint is then
    // "the port has a usable endpoint elsewhere"; the gauge of src/kube applies the same rule)
    const policyDrop = localOnly && set.idsLen === 0 && noLocalEndpoint(this.cands, family, this.node?.name ?? null) ? L.FEF_POLICY_DROP : 0;
    // the ranges of the frontend's family; none of it = no check (kube-proxy filters the ranges by
    // family and programs its firewall only when some are left)
    let fRanges = ranges.length ? ranges.filter((c) => (c.includes(':') ? 6 : 4) === family) : NO_RANGES;
    // and the LB IPs when a range holds the node IP (kube-proxy's allowFromNode); without a node
    // config kube-proxy's fallback node IP, the loopback address
    if (fRanges.length) fRanges = firewallSources(fRanges, family, family === 6 ? this.node?.nodeIPv6 ?? '::1' : this.node?.nodeIPv4 ?? '127.0.0.1', svc.lbIngress);
    const fflags = flags | portState.aff | policyDrop | (set.fallback ? L.FEF_FALLBACK : 0) | (fRanges.length ? L.FEF_SOURCE_RANGES : 0);
    // externalTrafficPolicy Local: the frontend in-cluster sources are short-circuited to
    const shortCircuit = localOnly && kind !== 'ClusterIP' ? this.clusterFrontOf(family, svc.internalLocal ? 'ClusterPolicy' : 'ClusterIP') : 0;
    // sessionAffinity is per service port in kube-proxy (one affinity set per endpoint, which every
    // chain of the port consults): every frontend of the port keys its affinity entries by the
    // port's ClusterIP frontend of the family (core: select.ts affinityKey) — the short-circuit
    // frontend names it (directly, or as a ClusterPolicy frontend's FE_CLUSTER_FRONT); any other
    // names it with FEF_AFFINITY_SHARED
    const sharedAff = shortCircuit === 0 && portState.aff !== 0 && kind !== 'ClusterIP' ? this.clusterFrontOf(family, 'ClusterIP') : 0;
    const clusterFront = shortCircuit || sharedAff;
    // with a Local policy the port's sets differ: a frontend whose set is narrower than what the
    // others pin to (this node's endpoints, or a topology-filtered cluster set; kube-proxy's chain
    // consults the affinity sets of its own endpoints only) follows a pin only to a backend in it
    const inSet = portState.aff !== 0 && (svc.internalLocal || svc.externalLocal) && (localOnly || this.topologyMode(family) !== TOPO_NONE)
      ? L.FEF_AFFINITY_IN_SET : 0;
    // the nftables proxier filters the node's own packets before DNAT: to an external or LB IP
    // without a local endpoint they meet the "drop" of no-endpoint-services (a NodePort has no
    // such check on output: short-circuited)
    const nodeDrop = shortCircuit && policyDrop && kind !== 'NodePort' ? L.FEF_NODE_SOURCE_DROP : 0;
    portState.sink!.frontend(id, portState.owner!, kind, addr, family, port, sp.protocol, fflags | nodeDrop | inSet | (sharedAff ? L.FEF_AFFINITY_SHARED : 0), svc.affinityTimeoutMs, fRanges, set, clusterFront);
  }

  /** The current port's frontend of `kind` and `family` that holds the cluster-wide endpoints
   * (emitted before its external ones), 0 = none: the ClusterIP while internalTrafficPolicy is
   * Cluster, else the port's ClusterPolicy frontend. An externalTrafficPolicy Local frontend names
   * it: in-cluster sources use its table (kube-proxy's "short-circuit pod traffic" goes to the
   * cluster policy chain). */
  private clusterFrontOf(family: Family, kind: FrontendKind): number {
    const out = this.svcOut, kinds = out.frontKinds, addrs = out.frontAddrs;
    for (let i = this.portState.portStart; i < out.nFronts; i++) {
      if (kinds[i] === kind && (addrs[i].includes(':') ? 6 : 4) === family) return out.frontIds[i];
    }
    // no ClusterIP frontend (its cluster IP is a node address): the ClusterPolicy one in its place
    return kind === 'ClusterIP' ? this.clusterFrontOf(family, 'ClusterPolicy') : 0;
  }

  /** How the current port's `family` endpoints are filtered by their hints (kube-proxy's
   * topologyModeFromHints): TOPO_NODE when every ready endpoint has node hints and one is hinted
   * for this node (PreferSameNode); else TOPO_ZONE when every ready endpoint has zone hints and
   * one is hinted for the node's zone; else TOPO_NONE (all ready endpoints). The
   * serving-terminating fallback never looks at hints (as kube-proxy). */
  private topologyMode(family: Family): number {
    const node = this.node;
    if (node === null) return TOPO_NONE;
    // a node without a zone label is in the zone "" (kube-proxy reads the label's value: "" when absent)
    const name = node.name, zone = node.zone ?? '';
    const cands = this.cands, cFamily = cands.family, cState = cands.state, cEp = cands.ep;
    let allNode = true, forNode = false, allZone = true, forZone = false;
    for (let i = 0; i < cands.n && (allNode || allZone); i++) {
      if (cFamily[i] !== family || cState[i] !== L.BES_READY) continue;
      const ep = cEp[i]!, nh = ep.nodeHints, zh = ep.zoneHints;
      if (nh === undefined) allNode = false; else if (!forNode && nh.includes(name)) forNode = true;
      if (zh === undefined) allZone = false; else if (!forZone && zh.includes(zone)) forZone = true;
    }
    return allNode && forNode ? TOPO_NODE : allZone && forZone ? TOPO_ZONE : TOPO_NONE;
  }

  /** Whether `addr` is of one of the service's families. */
  private ofFamily(fam: Family[], addr: string): boolean { return fam.includes(addr.includes(':') ? 6 : 4); }

  /** Whether the current port already answers on `ip` as a ClusterIP, ExternalIP or LoadBalancer frontend. */
  private portTaken(ip: string): boolean {
    const out = this.svcOut, kinds = out.frontKinds, addrs = out.frontAddrs;
    for (let i = this.portState.portStart; i < out.nFronts; i++) if (addrs[i] === ip && kinds[i] !== 'NodePort') return true;
    return false;
  }

  /** The backends a frontend of the current port spreads over (this.cands, one family; only this
   * node's when `localNode` is not undefined): the ready ones, else the terminating-but-serving
   * ones (fallback). Ids in Maglev key order, and the Maglev table over them. Allocates only what
   * the frontend keeps (its id list and table): the index lists are typed scratch. */
  private activeSet(svc: ServiceSpec, family: Family, localNode: string | null | undefined, warnings: string[], set: ActiveSet): void {
    const cands = this.cands;
    if (SCRATCH.readyIdx.length < cands.n) { SCRATCH.readyIdx = new Int32Array(cands.n * 2); SCRATCH.terminatingIdx = new Int32Array(cands.n * 2); }
    const ready = SCRATCH.readyIdx, terminating = SCRATCH.terminatingIdx;
    let nReady = 0, nTerminating = 0;
    const cFamily = cands.family, cState = cands.state, cEp = cands.ep, cAddr = cands.addr, cPort = cands.port;
    // topology-aware routing, for the cluster-wide set only (kube-proxy's clusterEndpoints): the
    // ready endpoints hinted for this node, or for its zone
    const topo = localNode === undefined ? this.topologyMode(family) : TOPO_NONE;
    const want = topo === TOPO_NODE ? this.node!.name : topo === TOPO_ZONE ? this.node!.zone ?? '' : '';
    for (let i = 0; i < cands.n; i++) {
      if (cFamily[i] !== family) continue;
      if (localNode !== undefined && (localNode === null || cEp[i]!.nodeName !== localNode)) continue;
      const state = cState[i];
      if (state === L.BES_READY) { if (topo === TOPO_NONE || (topo === TOPO_NODE ? cEp[i]!.nodeHints : cEp[i]!.zoneHints)!.includes(want)) ready[nReady++] = i; }
      else if (state === L.BES_TERMINATING_SERVING) terminating[nTerminating++] = i;
    }
    let active = ready, n = nReady, fallback = false;
    if (n === 0) { active = terminating; n = nTerminating; fallback = n > 0; }
    // Maglev key order ("addr:port"): IPv4 by rank (numbers; the strings only where two addresses
    // are equal), else by the strings; insertion sort while small: a port has few endpoints, often
    // listed in order
    if (family === 4) {
      const rank = SCRATCH.rank.length < cands.n ? (SCRATCH.rank = new Int32Array(cands.n * 2)) : SCRATCH.rank, cKey = cands.key;
      for (let i = 0; i < n; i++) rank[active[i]] = ipv4KeyRank(cKey[active[i]]);
      if (n <= 64) {
        for (let i = 1; i < n; i++) {
          const v = active[i], rv = rank[v];
          let j = i;
          for (; j > 0; j--) {
            const u = active[j - 1], d = rank[u] - rv;
            if (d < 0 || (d === 0 && backendKeyCmp(cAddr[u], cPort[u], cAddr[v], cPort[v]) <= 0)) break;
            active[j] = u;
          }
          active[j] = v;
        }
      } else sortIndexes(active, n, cAddr, cPort, rank);
    } else if (n <= 64) {
      for (let i = 1; i < n; i++) {
        const v = active[i], va = cAddr[v], vp = cPort[v];
        let j = i;
        for (; j > 0 && backendKeyCmp(cAddr[active[j - 1]], cPort[active[j - 1]], va, vp) > 0; j--) active[j] = active[j - 1];
        active[j] = v;
      }
    } else sortIndexes(active, n, cAddr, cPort, null);
    // the ids and the table: runs of the full compile's slab, else arrays of their own
    const slab = this.slab, m = svc.maglevSize ?? defaultMaglevSize(n), size = n ? m : 0, width = maglevSlotWidth(n);
    let ids: Uint32Array | number[], idsOff = 0;
    if (slab) { idsOff = slab.carve(n, 4); ids = slab.view as Uint32Array; } else ids = new Array<number>(n);
    const addrs = this.keyAddrs, ports = this.keyPorts, v4 = this.keyV4, cKey = cands.key;
    if (slab) idsIntoSlab(ids as Uint32Array, idsOff, active, n, cands.id); else idsIntoArray(ids as number[], active, n, cands.id);
    for (let i = 0; i < n; i++) { const k = active[i]; addrs[i] = cAddr[k]; ports[i] = cPort[k]; v4[i] = cKey[k]; }
    if (n > m) warnings.push(`Service ${svc.key}: ${n} endpoints exceed the Maglev table size ${m}; some get no traffic`);
    let mag: MaglevSlots, magOff = 0;
    if (slab && size) { magOff = slab.carve(size, width); mag = slab.view; } else mag = typedArray(size, width);
    maglevIndexTableAt(addrs, ports, m, n, mag, magOff, this.maglevJobs, family === 4 ? v4 : null);
    set.ids = ids; set.idsOff = idsOff; set.idsLen = n;
    set.mag = mag; set.magOff = magOff; set.magLen = size;
    set.fallback = fallback;
  }
}

/** The EndpointSlice port serving Service port `sp`: the first with the Service port's name and
 * protocol — what the EndpointSlice controller writes, and the only match kube-proxy's
 * endpointslicecache makes (a slice port of another name, e.g. the targetPort's, serves nothing). */
export function matchSlicePort(sp: ServicePortSpec, sl: SliceSpec): { name: string; port?: number } | undefined {
  const ports = sl.ports; // (indexed: an iterator per slice while the code is not optimised yet)
  for (let i = 0; i < ports.length; i++) if (ports[i].protocol === sp.protocol && ports[i].name === sp.name) return ports[i];
  return undefined;
}

/** Full compile: a new compiler holding exactly `objects` (benchmarks, tests, fresh starts). */
export function compileAll(objects: ModelObject[], opts?: CompilerOptions): Compiler {
  const c = new Compiler(opts);
  c.change({ upsert: objects });
  return c;
}
