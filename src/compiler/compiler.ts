// Model → Ir, incrementally.
//
// The compiler owns the desired state (Services, EndpointSlices, the node config) and the Ir built
// from it. `change()` applies a batch of upserts/removals as one transaction: it recompiles only the
// services the batch touches (a Service and its slices are one unit), writes the result into `ir`
// and returns the IrDiff plus a rollback. Cost is proportional to the touched services' size, never
// to the number of services — except a node config change, which re-resolves every backend (rare).
//
// Determinism: services are compiled in key order, ports in spec order, slices in name order and
// endpoints in listed order, so the same history of changes yields the same Ir and ids.
import { cidrContains, ipv4Value, parseAddr, parseCidr, type Cidr } from '../util/addr.js';
import { emptyIr, L, PROTO_NUMBER, sameBackend, sameFrontend, type MaglevSlots, type Family, type Ir, type IrBackend, type IrFrontend, type IrRoute, type FrontendKind } from '../ir/ir.js';
import { emptyDiff, type IrDiff } from '../ir/diff.js';
import { IdRange } from '../ir/list.js';
import { defaultMaglevSize } from '../ir/maglev-size.js';
import { ActiveSet, FrontendTable } from './frontend-table.js';
import type { PortOwner } from './columns.js';
import { Slab, typedArray } from './slab.js';
import { detachProtectorEarly } from '../core/jit.js';
import { BackendTable, NextHop } from './backend-table.js';
import { backendKeyCmp, ipv4KeyRank, maglevIndexTableAt, maglevSlotWidth } from './maglev.js';
import { MaglevJobs, startMaglevWorker } from './maglev-pool.js';
import { IdAllocator, type Undo } from './ids.js';
import {
  fieldError, ValidationError, type FieldError, type ModelObject, type NodeSpec, type ServicePortSpec,
  type ServiceSpec, type SliceSpec,
} from '../model/types.js';

const NO_MAC = '00:00:00:00:00:00';
const NO_RANGES: string[] = Object.freeze([]) as unknown as string[];
const NO_WARNINGS: string[] = Object.freeze([]) as unknown as string[];

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

/** What a service compiled to last time: its frontend and backend ids (deduplicated, distinct) —
 * where its ids are looked up when it is recompiled. Kept for every service, so compact: ids are
 * mostly a run of consecutive numbers (always so on a full compile), kept without an array. Two
 * arrays per service were ~1.8 MB at 10k services, and on the CI VM every fresh page of it is a
 * ~15 µs page fault. */
class ServiceOutput {
  // ids as a run from .. from + count - 1 when the list is null (fields, not an object per list:
  // this is one object a service)
  private readonly frontList: number[] | null;
  private readonly frontFrom: number;
  readonly frontCount: number;
  private readonly backList: number[] | null;
  private readonly backFrom: number;
  readonly backCount: number;
  readonly warnings: string[];
  /** Copies what it keeps: the arguments may be scratch. */
  constructor(c: CompiledService) {
    const nf = c.nFronts, nb = c.nBackIds;
    this.frontList = isRun(c.frontIds, nf) ? null : c.frontIds.slice(0, nf);
    this.frontFrom = nf ? c.frontIds[0] : 0;
    this.frontCount = nf;
    this.backList = isRun(c.backIds, nb) ? null : c.backIds.slice(0, nb);
    this.backFrom = nb ? c.backIds[0] : 0;
    this.backCount = nb;
    this.warnings = c.warnings.length ? c.warnings.slice() : NO_WARNINGS;
  }
  /** The frontend ids (a new array). */
  frontIds(): number[] { return this.frontList ? this.frontList.slice() : idRun(this.frontFrom, this.frontCount); }
  /** The backend ids (a new array). */
  backs(): number[] { return this.backList ? this.backList.slice() : idRun(this.backFrom, this.backCount); }
}
function isRun(ids: number[], n: number): boolean {
  for (let i = 1; i < n; i++) if (ids[i] !== ids[0] + i) return false;
  return true;
}
function idRun(from: number, n: number): number[] {
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = from + i;
  return out;
}

/** Everything the compiler keeps under one service key: the Service (when applied), the
 * EndpointSlices that name it — sorted by key, the one slice itself when there is one — and what
 * it compiled to last. One map of these instead of three maps: at 10k services each 10k-entry Map
 * was ~0.5 MB of hash table grown by doubling into fresh pages (on the CI VM, page faults were
 * most of their cost), and a full compile looked every service up in each. A record leaves the
 * map when all three are gone. */
interface ServiceRecord {
  spec: ServiceSpec | undefined;
  slices: SliceSpec | SliceSpec[] | undefined;
  out: ServiceOutput | undefined;
}
const sliceCount = (e: ServiceRecord['slices']): number => (e === undefined ? 0 : Array.isArray(e) ? e.length : 1);

/** What compileService builds: the frontends' ids (with kind and address: what emit() checks
 * duplicates by), the backend ids, and — unless it wrote them to the tables itself (a full
 * compile) — the frontends and backends as objects to compare and diff. */
class CompiledService {
  // [0 .. nFronts) and backIds[0 .. nBackIds): counts rather than `length = 0` between services,
  // which drops an array's backing store so the next push allocates a new one (~150 bytes a
  // service per array)
  readonly frontIds: number[] = [];
  readonly frontKinds: FrontendKind[] = [];
  readonly frontAddrs: string[] = [];
  readonly fronts: IrFrontend[] = [];  // incremental compiles only
  nFronts = 0;
  readonly backIds: number[] = [];
  nBackIds = 0;
  readonly backs: IrBackend[] = [];    // incremental compiles only (empty on a fresh one)
  readonly warnings: string[] = [];
  reset(): void { this.nFronts = 0; this.nBackIds = 0; this.backs.length = 0; this.warnings.length = 0; }
  /** Drops every reference (between changes), keeping the arrays' lengths (see dropRefs). */
  release(): void { this.reset(); dropRefs(this.fronts, undefined); dropRefs(this.frontAddrs, ''); }
}
const NOTHING_COMPILED = new CompiledService();

/** Overwrites what `a` refers to with `none` rather than truncating it. Scratch arrays are
 * appended to only while they grow; after `length = 0` every store of the next compile was an
 * append again, and the previous compile's optimised code (which had seen only in-bounds stores)
 * deoptimised on the first of them ("out of bounds"). */
function dropRefs<T>(a: T[], none: T): void { a.fill(none); }

/** One service port's candidate backends, by column: scratch reused for every port, so a full
 * compile makes no object per endpoint (100k short-lived objects were ~11 MB of young-generation
 * churn, two or three extra scavenges per compile). */
class Candidates {
  n = 0;
  readonly id: number[] = []; readonly addr: string[] = []; readonly port: number[] = []; readonly family: Family[] = [];
  // the IPv4 address as an int32 (0 for IPv6): the duplicate check compares these before the strings,
  // which are distinct objects even when equal (a content compare each: ~450k at 10k x 10)
  readonly key: number[] = [];
  readonly state: number[] = []; readonly node: Array<string | undefined> = []; readonly zone: Array<string | undefined> = [];
  readonly res: Array<Resolved | null> = [];
  push(id: number, addr: string, key: number, port: number, family: Family, state: number, node: string | undefined, zone: string | undefined, res: Resolved | null): void {
    const i = this.n++;
    this.id[i] = id; this.addr[i] = addr; this.key[i] = key; this.port[i] = port; this.family[i] = family; this.state[i] = state;
    this.node[i] = node; this.zone[i] = zone; this.res[i] = res;
  }
  /** Drops the references (strings, next hops) so scratch holds nothing between compiles. */
  release(): void {
    this.n = 0;
    dropRefs(this.addr, ''); dropRefs(this.node, undefined); dropRefs(this.zone, undefined); dropRefs(this.res, null);
  }
}

type Resolved = NextHop;
/** A route of the node config, IPv4 as integers (classes for stable maps: see NextHop). */
class Route4 { constructor(readonly net: number, readonly mask: number, readonly r: Resolved) {} }
class RouteCidr { constructor(readonly cidr: Cidr, readonly r: Resolved) {} }

/** What emit() needs to know about the service port being compiled (reused for every service). */
class EmitState {
  svc!: ServiceSpec;
  sp!: ServicePortSpec;
  portStart = 0;                 // the current port's frontends start at svcOut.fronts[portStart]
  undo: Undo = null;
  direct = false;                // a full compile: frontends go into the table as columns
  owner: PortOwner | null = null; // the port's owner object (full compile), shared with its backends
  prevFront: Map<string, number> | null = null; // previous frontend ids, on a recompile
  aff = 0;                       // FEF_AFFINITY when the service has session affinity
  readonly sets = [new ActiveSet(), new ActiveSet(), new ActiveSet(), new ActiveSet()];
  built = 0;                     // bit k: sets[k] is built for the current port
  release(): void { for (const a of this.sets) a.release(); this.owner = null; this.prevFront = null; this.undo = null; }
}

/** compileService's scratch, one set per thread rather than per Compiler: a change() is
 * synchronous and no compiler's change() runs inside another's, so they cannot overlap. Per
 * Compiler, each new compiler's fresh arrays had other elements kinds and no capacity, and the
 * optimised compileService, activeSet and emit of the previous one deoptimised on them ("wrong
 * map", "out of bounds") — a full recompile of the hot functions (~50 ms each on TurboFan's
 * thread) in the next full compile. Released (no strings, specs or next hops held) after every
 * change(). */
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
  readonly svcOut = new CompiledService();       // compileService's result
  readonly emitState = new EmitState();
}
const SCRATCH = new Scratch();
detachProtectorEarly(); // before any of this module's code is optimised (src/core/jit.ts)

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

/** Claims are what two services may not share: a cluster IP, a node port, a frontend tuple.
 * One key space without a string per claim where it can be helped: a cluster IP is its address
 * string as validated, a node port the number protocol·65536 + port, and only an external
 * frontend tuple (rare) a made string "fe proto addr port". None can equal another kind's. */
type Claim = string | number;
const nodePortClaim = (p: ServicePortSpec): number => PROTO_NUMBER[p.protocol] * 65536 + p.nodePort!;

/** serviceClaims(s)[i].claim === claimKeys(s)[i], with the field and text an error about each
 * would show (the error path only). */
function serviceClaims(s: ServiceSpec): Array<{ claim: Claim; field: string; what: string }> {
  const out: Array<{ claim: Claim; field: string; what: string }> = [];
  s.clusterIPs.forEach((ip, i) => out.push({ claim: ip, field: `spec.clusterIPs[${i}]`, what: `clusterIP ${ip}` }));
  s.ports.forEach((p, i) => {
    if (p.nodePort !== undefined) out.push({ claim: nodePortClaim(p), field: `spec.ports[${i}].nodePort`, what: `nodePort ${p.nodePort}/${p.protocol}` });
    const ext = [...s.externalIPs.map((a) => ['externalIPs', a] as const), ...s.lbIngress.map((a) => ['status.loadBalancer.ingress', a] as const)];
    const seen = new Set<string>();
    for (const [f, a] of ext) {
      const c = `fe ${p.protocol} ${a} ${p.port}`;
      if (seen.has(c) || s.clusterIPs.includes(a)) continue; // same service, same tuple: one frontend
      seen.add(c);
      out.push({ claim: c, field: `spec.${f}`, what: `${a}:${p.port}/${p.protocol}` });
    }
  });
  return out;
}

/** The claims of serviceClaims(s), in the same order, without building the descriptions: the
 * common single-cluster-IP service makes one small array and no string. */
function claimKeys(s: ServiceSpec): Claim[] {
  const hasExt = s.externalIPs.length > 0 || s.lbIngress.length > 0;
  let n = s.clusterIPs.length;
  for (let i = 0; i < s.ports.length; i++) if (s.ports[i].nodePort !== undefined) n++;
  if (!hasExt) { // exact size: no growth (a pushed-to array takes room for 17)
    const out: Claim[] = new Array(n);
    let k = 0;
    for (let i = 0; i < s.clusterIPs.length; i++) out[k++] = s.clusterIPs[i];
    for (let i = 0; i < s.ports.length; i++) if (s.ports[i].nodePort !== undefined) out[k++] = nodePortClaim(s.ports[i]);
    return out;
  }
  const out: Claim[] = [];
  for (let i = 0; i < s.clusterIPs.length; i++) out.push(s.clusterIPs[i]);
  for (let i = 0; i < s.ports.length; i++) {
    const p = s.ports[i];
    if (p.nodePort !== undefined) out.push(nodePortClaim(p));
    if (!hasExt) continue;
    const seen = new Set<string>();
    for (const list of [s.externalIPs, s.lbIngress]) {
      for (const a of list) {
        const c = `fe ${p.protocol} ${a} ${p.port}`;
        if (seen.has(c) || s.clusterIPs.includes(a)) continue;
        seen.add(c);
        out.push(c);
      }
    }
  }
  return out;
}

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

const NO_KEYS: string[] = Object.freeze([]) as unknown as string[];
const NO_RECORDS: ServiceRecord[] = Object.freeze([]) as unknown as ServiceRecord[];
/** A Service's place in the model's map while indexFresh checks the batch for duplicates. */
const PENDING: ServiceRecord = Object.freeze({ spec: undefined, slices: undefined, out: undefined }) as ServiceRecord;

const bySpecKey = (a: ServiceRecord, b: ServiceRecord): number => cmp(a.spec!.key, b.spec!.key);
const bySliceService = (a: SliceSpec, b: SliceSpec): number => cmp(a.service!, b.service!) || cmp(a.key, b.key);
/** `xs` in `order`: xs itself when it is in order already (the common case: a listing is sorted;
 * O(n) instead of a sort), else sorted — in place, or as a copy with `copy`. */
function sortedBy<T>(xs: T[], order: (a: T, b: T) => number, copy = false): T[] {
  for (let i = 1; i < xs.length; i++) if (order(xs[i - 1], xs[i]) > 0) return (copy ? xs.slice() : xs).sort(order);
  return xs;
}

/** From empty: the batch's services as records in key order, each with its slices (sorted by
 * key, one slice alone, as linkSlice keeps them), found by merging two sorted lists rather than
 * by map lookups; slices naming a service the batch does not hold get a record without spec.
 * Unlabelled slices are in no record. `node`: the batch's (last) NodeConfig. */
function groupFresh(upserts: ModelObject[]): { recs: ServiceRecord[]; batchRecs: ServiceRecord[]; orphans: ServiceRecord[]; services: number; node: NodeSpec | null } {
  const batchRecs: ServiceRecord[] = [], slices: SliceSpec[] = [];
  let node: NodeSpec | null = null;
  for (let u = 0; u < upserts.length; u++) {
    const o = upserts[u];
    if (o.kind === 'Service') batchRecs.push({ spec: o, slices: undefined, out: undefined });
    else if (o.kind === 'EndpointSlice') { if (o.service !== null) slices.push(o); } else node = o;
  }
  const svcRecs = sortedBy(batchRecs, bySpecKey, true); // batchRecs stays in batch order (indexFresh)
  sortedBy(slices, bySliceService);
  const recs: ServiceRecord[] = [], orphans: ServiceRecord[] = [];
  let j = 0;
  const take = (key: string): ServiceRecord['slices'] => { // the slices naming `key`, from slices[j]
    const from = j;
    while (j < slices.length && slices[j].service === key) j++;
    if (j - from === 0) return undefined;
    if (j - from === 1) return slices[from];
    const list = [slices[from]];
    for (let k = from + 1; k < j; k++) if (slices[k].key !== slices[k - 1].key) list.push(slices[k]); // a repeat: refused later
    return list.length === 1 ? list[0] : list;
  };
  const orphan = (key: string): void => { const r: ServiceRecord = { spec: undefined, slices: take(key), out: undefined }; recs.push(r); orphans.push(r); };
  for (let i = 0; i < svcRecs.length; i++) {
    const rec = svcRecs[i], key = rec.spec!.key;
    while (j < slices.length && slices[j].service! < key) orphan(slices[j].service!);
    rec.slices = take(key);
    recs.push(rec);
  }
  while (j < slices.length) orphan(slices[j].service!);
  return { recs, batchRecs, orphans, services: batchRecs.length, node };
}

/** The error for an object listed twice in one request. */
function duplicateError(o: ModelObject): FieldError {
  return o.kind === 'NodeConfig'
    ? fieldError('NodeConfig', undefined, o.name, '', 'FieldValueDuplicate', 'Duplicate value: only one NodeConfig may be given per request')
    : fieldError(o.kind, o.namespace, o.name, 'metadata.name', 'FieldValueDuplicate', 'Duplicate value: the object appears more than once in this request');
}

/** At most as many backends as the batch's slices have endpoints times ports (each >= 1). */
function backendBound(upserts: ModelObject[]): number {
  let bound = 0;
  for (let u = 0; u < upserts.length; u++) { const o = upserts[u]; if (o.kind === 'EndpointSlice') bound += o.endpoints.length * Math.max(1, o.ports.length); }
  return bound;
}

function unlabelledSliceWarnings(upserts: ModelObject[], warnings: string[]): void {
  for (let u = 0; u < upserts.length; u++) {
    const o = upserts[u];
    if (o.kind === 'EndpointSlice' && !o.service) warnings.push(`EndpointSlice ${o.key}: no kubernetes.io/service-name label; it is stored but used by no service`);
  }
}

export class Compiler {
  constructor(private readonly opts: CompilerOptions = {}) {}
  // backends by column (src/core/backend-table.ts): a full compile makes no object per backend
  private readonly bt = new BackendTable();
  private readonly ft = new FrontendTable(); // frontends by column (src/core/frontend-table.ts)
  readonly ir: Ir = { frontends: this.ft, backends: this.bt, routes: [] };
  // per service key: the Service, the slices naming it, what it compiled to (see ServiceRecord)
  private readonly recs = new Map<string, ServiceRecord>();
  private nServices = 0;
  private readonly slices = new Map<string, SliceSpec>();
  private node: NodeSpec | null = null;
  private fe = new IdAllocator();
  private be = new IdAllocator();
  private claims = new Map<Claim, string>();
  private neighbourMap = new Map<string, Resolved>();
  private routeCidrs: RouteCidr[] = [];
  private routes4: Route4[] = []; // IPv4 routes as integers, longest prefix first
  private resolveCache = new Map<string, Resolved | null>();
  private slab: Slab | undefined;                 // set during bulk (fresh) compiles
  private maglevJobs: MaglevJobs | null = null;   // set during bulk compiles that use the worker
  // compileService's scratch (see Scratch): the same objects for every compiler
  private readonly cands = SCRATCH.cands;
  private readonly candSeen = SCRATCH.candSeen;
  private readonly keyAddrs = SCRATCH.keyAddrs;
  private readonly keyPorts = SCRATCH.keyPorts;
  private readonly keyV4 = SCRATCH.keyV4;
  private readonly svcOut = SCRATCH.svcOut;
  private readonly emitState = SCRATCH.emitState;

  // ---- read side ---------------------------------------------------------------------------
  getService(ns: string, name: string): ServiceSpec | undefined { return this.recs.get(refKey(ns, name))?.spec; }
  getSlice(ns: string, name: string): SliceSpec | undefined { return this.slices.get(refKey(ns, name)); }
  getNode(): NodeSpec | null { return this.node; }
  listServices(): ServiceSpec[] {
    const out: ServiceSpec[] = [];
    for (const r of this.recs.values()) if (r.spec) out.push(r.spec);
    return out.sort((a, b) => cmp(a.key, b.key));
  }
  listSlices(): SliceSpec[] { return [...this.slices.values()].sort((a, b) => cmp(a.key, b.key)); }
  serviceCount(): number { return this.nServices; }
  sliceCount(): number { return this.slices.size; }
  frontendIdsOf(serviceKey: string): number[] { return this.recs.get(serviceKey)?.out?.frontIds() ?? []; }
  backendIdsOf(serviceKey: string): number[] { return this.recs.get(serviceKey)?.out?.backs() ?? []; }
  warningsOf(serviceKey: string): string[] { return [...(this.recs.get(serviceKey)?.out?.warnings ?? [])]; }
  /** Highest frontend / backend id in use so far (what the core's tables must hold). */
  idHighWater(): { frontend: number; backend: number } { return { frontend: this.fe.highWater, backend: this.be.highWater }; }

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
    this.fe.compact(); this.be.compact();
    const upserts = batch.upsert ?? [];
    const removes = batch.remove ?? [];
    const errors: FieldError[] = [];

    // Starting from nothing (daemon start, state restore, full-compile benchmark) there is nothing
    // to undo but "back to empty": skip the per-entry undo log, which is most of the garbage a
    // 100k-backend compile would make.
    const fresh = this.recs.size === 0 && this.nServices === 0 && this.slices.size === 0 && this.node === null && this.ir.frontends.size === 0 &&
      this.ir.backends.size === 0 && this.fe.highWater === 0 && this.be.highWater === 0 && this.claims.size === 0;

    // one object may appear once per request: "apply A then A'" in one body is ambiguous (one key
    // set per kind: no "kind key" string per object). From empty the model's own maps are those
    // sets for the upserts — filled by indexFresh (after the compile, or here when the batch also
    // removes), emptied again by reset() if the batch is refused — rather than two more
    // 10k-entry sets beside them. A set() and a size check is one hash
    // lookup instead of has() + set(); a duplicate overwrites, but its batch is refused anyway.
    const seenSvc = new Set<string>(), seenSlice = new Set<string>();
    let seenNode = false;
    const seenBefore = (kind: ObjectRef['kind'], key: string): boolean => {
      if (kind === 'NodeConfig') { const had = seenNode; seenNode = true; return had; }
      const set = kind === 'Service' ? seenSvc : seenSlice;
      const n = set.size;
      set.add(key);
      return set.size === n;
    };
    // From empty (and removing nothing: from empty a removal is an error), the batch is compiled
    // first and put into the model's maps after, while the Maglev thread fills the tables: the
    // maps' 20k inserts and the claims were ~30 ms before the first Maglev job, with that thread
    // idle. The duplicate and clash checks come after the compile then, and a refused batch
    // throws its compile away (reset()). From empty with removals, only the errors are wanted.
    const freshFirst = fresh && removes.length === 0;
    if (fresh && !freshFirst) seenNode = this.indexFresh(upserts, null, NO_RECORDS, errors);
    else if (!fresh) for (let u = 0; u < upserts.length; u++) {
      const o = upserts[u];
      if (seenBefore(o.kind, o.kind === 'NodeConfig' ? '' : o.key)) errors.push(duplicateError(o));
    }
    for (const r of removes) {
      const key = refKey(r.namespace, r.name);
      // from empty nothing exists (the maps now hold this batch's upserts, not the state)
      const exists = !fresh && (r.kind === 'Service' ? this.recs.get(key)?.spec !== undefined : r.kind === 'EndpointSlice' ? this.slices.has(key) : this.node !== null);
      if (seenBefore(r.kind, r.kind === 'NodeConfig' ? '' : key)) errors.push(fieldError(r.kind, r.namespace || 'default', r.name, 'metadata.name', 'FieldValueDuplicate', 'Duplicate value: the object appears more than once in this request'));
      if (!exists) errors.push(fieldError(r.kind, r.kind === 'NodeConfig' ? undefined : r.namespace || 'default', r.name, '', 'NotFound', 'not found'));
    }

    // cross-service clashes, against the current state minus the services this batch replaces
    // (no current state: no replaced set to build)
    const replaced = new Set<string>();
    if (this.claims.size) {
      for (const o of upserts) if (o.kind === 'Service') replaced.add(o.key);
      for (const r of removes) if (r.kind === 'Service') replaced.add(refKey(r.namespace, r.name));
    }
    const batchClaims = new Map<Claim, string>();
    const upsertClaims: Array<Claim[] | undefined> = new Array(fresh ? 0 : upserts.length); // by upsert index, reused by setClaims
    if (!freshFirst) this.claimBatch(upserts, fresh, replaced, batchClaims, upsertClaims, errors);
    if (errors.length) {
      if (fresh) this.reset();
      throw new ValidationError(errors);
    }
    const undo: Undo = fresh ? null : [];
    const log = undo ?? [];
    if (fresh) { // every endpoint is at most one backend per slice port: size the columns once
      const bound = backendBound(upserts);
      // one slab for the backend columns (16 bytes a backend), the active sets' ids (4 bytes a
      // backend) and the Maglev tables (~20 one-byte slots a backend at the default size): whole
      // 2 MiB pages, 1 MiB for small compiles
      const want = bound * 40 + (2 << 20);
      const pool = this.opts.maglevWorker ?? 'auto';
      // a job per table of >= 2 backends; an endpoint is in at most 2 sets of its family
      this.maglevJobs = pool === 'always' || (pool === 'auto' && bound >= POOL_MIN_BACKENDS) ? MaglevJobs.create((bound >> 1) + 64, 2 * bound + 64) : null;
      this.slab = new Slab(want <= 4 << 20 ? 1 << 20 : Math.min(want, 64 << 20) & ~((2 << 20) - 1), this.maglevJobs !== null);
      this.bt.grow(bound + 1, this.slab.alloc);
      const buf = this.slab.buffer;
      if (this.maglevJobs && buf instanceof SharedArrayBuffer) this.maglevJobs.prefault(buf);
    } else this.slab = undefined;
    const prevFront = new Map<number, IrFrontend | undefined>();
    const prevBack = new Map<number, IrBackend | undefined>();
    const prevRoutes = this.ir.routes, prevSnatV4 = this.ir.snatV4, prevSnatV6 = this.ir.snatV6;
    const prevNode = this.node, prevNeigh = this.neighbourMap, prevRouteCidrs = this.routeCidrs, prevCache = this.resolveCache, prevRoutes4 = this.routes4;
    const diff = emptyDiff();
    const dirty = new Set<string>();
    let nodeChanged = false;

    const mapSet = <K, V>(m: Map<K, V>, k: K, v: V | undefined): void => {
      if (undo) {
        const had = m.has(k), old = m.get(k);
        undo.push(() => { if (had) m.set(k, old as V); else m.delete(k); });
      }
      if (v === undefined) m.delete(k); else m.set(k, v);
    };
    // a service's slices stay sorted by key (compileService reads them in name order); a
    // transaction replaces the array rather than editing it, so undo is putting the old array
    // back (from empty, groupFresh builds the arrays). Removal is by key: `sl` may be the
    // previous version of the slice.
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
      // from empty, the batch's claims are all the claims there are (a fresh batch has no removals:
      // removing what does not exist is an error above)
      if (fresh) this.claims = batchClaims;
      // from empty every service is compiled: the batch grouped by service (the model's maps are
      // filled after the compile), and a NodeConfig taken
      const group = freshFirst ? groupFresh(upserts) : null;
      if (group?.node) { this.node = group.node; nodeChanged = true; }
      if (!fresh) for (let u = 0; u < upserts.length; u++) {
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
        undo?.push(() => { this.node = prevNode; this.neighbourMap = prevNeigh; this.routeCidrs = prevRouteCidrs; this.resolveCache = prevCache; this.routes4 = prevRoutes4; });
        this.indexNode();
        const routes = this.nodeRoutes();
        const sameR = routes.length === prevRoutes.length && routes.every((r, i) => r.prefix === prevRoutes[i].prefix &&
          r.outPort === prevRoutes[i].outPort && r.dstMac === prevRoutes[i].dstMac && r.srcMac === prevRoutes[i].srcMac);
        if (!sameR) { this.ir.routes = routes; diff.routes = routes; }
        const v4 = this.node?.snatV4, v6 = this.node?.snatV6;
        if (v4 !== prevSnatV4 || v6 !== prevSnatV6) {
          if (v4 === undefined) delete this.ir.snatV4; else this.ir.snatV4 = v4;
          if (v6 === undefined) delete this.ir.snatV6; else this.ir.snatV6 = v6;
          diff.snat = { v4, v6 };
        }
        undo?.push(() => {
          this.ir.routes = prevRoutes;
          if (prevSnatV4 === undefined) delete this.ir.snatV4; else this.ir.snatV4 = prevSnatV4;
          if (prevSnatV6 === undefined) delete this.ir.snatV6; else this.ir.snatV6 = prevSnatV6;
        });
        if (!fresh) for (const [k, r] of this.recs) if (r.spec || r.out) dirty.add(k); // from empty every service is compiled anyway
      }

      const setFront = (f: IrFrontend | undefined, id: number): void => {
        if (!fresh && !prevFront.has(id)) prevFront.set(id, this.ir.frontends.get(id));
        mapSet(this.ir.frontends, id, f);
      };
      const setBack = (b: IrBackend | undefined, id: number): void => {
        if (!fresh && !prevBack.has(id)) prevBack.set(id, this.ir.backends.get(id));
        mapSet(this.ir.backends, id, b);
      };

      const releaseFront: number[] = [], releaseBack: number[] = [];
      const warnings: string[] = [];
      // from empty every service is dirty, and a slice naming no service compiles to nothing.
      // Default sort: UTF-16 code unit order, same as cmp, without a comparator call per step
      const order = fresh ? NO_KEYS : [...dirty].sort();
      if (group) {
        this.compileFreshRecords(group.recs, warnings);
        // the model's maps, the duplicate checks and the claims, while the Maglev thread works
        this.indexFresh(upserts, group.batchRecs, group.orphans, errors);
        this.claimBatch(upserts, true, replaced, batchClaims, upsertClaims, errors);
        if (errors.length) throw new ValidationError(errors); // (the catch below resets)
      }
      for (let k = 0; k < order.length; k++) {
        const key = order[k];
        const rec = this.recs.get(key);
        const svc = rec?.spec;
        const prev = fresh ? undefined : rec?.out;
        // from empty, compileService writes the backends into the table itself (no objects)
        const out: CompiledService = svc ? this.compileService(svc, rec!.slices, undo, prev, fresh) : NOTHING_COMPILED;
        const backIds = out.backIds, nFronts = out.nFronts, nBackIds = out.nBackIds;
        for (let i = 0; i < out.backs.length; i++) {
          const b = out.backs[i];
          const old = this.bt.get(b.id);
          if (!old || !sameBackend(old, b)) { setBack(b, b.id); diff.backendsUpsert.push(b); }
        }
        if (!fresh) { // from empty, compileService wrote the frontends into the table itself
          for (let i = 0; i < nFronts; i++) {
            const f = out.fronts[i];
            const old = this.ir.frontends.get(f.id);
            if (!old || !sameFrontend(old, f)) { setFront(f, f.id); diff.frontendsUpsert.push(f); }
          }
        }
        if (prev) { // ids the service no longer uses (compileService reused the others)
          const fs = new Set<number>(out.frontIds.slice(0, nFronts)), bs = new Set<number>(backIds.slice(0, nBackIds));
          for (const id of prev.frontIds()) if (!fs.has(id)) releaseFront.push(id);
          for (const id of prev.backs()) if (!bs.has(id)) releaseBack.push(id);
        }
        // kept for the service's lifetime: exact-size copies (a pushed-to array keeps room for 17)
        const stored = svc || nFronts || nBackIds ? new ServiceOutput(out) : undefined;
        if (fresh) { if (rec) rec.out = stored; } else this.setRecord(key, 'out', stored, undo); // from empty: nothing to undo
        for (let i = 0; i < out.warnings.length; i++) warnings.push(out.warnings[i]);
      }
      this.maglevJobs?.drain(); // every table filled before anything reads one
      // release only after every allocation of this change: an id never changes owner within one diff
      for (const id of releaseFront) { setFront(undefined, id); this.fe.release(id, undo); diff.frontendsRemove.push(id); }
      for (const id of releaseBack) { setBack(undefined, id); this.be.release(id, undo); diff.backendsRemove.push(id); }
      // from empty, ids are handed out 1, 2, 3, ... and every one became a frontend or a backend:
      // the diff upserts rows 1..n of the tables, read from them when the diff is read
      const freshBacks = fresh ? this.be.highWater : 0, freshFronts = fresh ? this.fe.highWater : 0;
      let result: IrDiff = diff;
      if (fresh) {
        if (this.bt.size !== freshBacks) throw new Error(`internal: fresh compile wrote ${this.bt.size} backends for ${freshBacks} ids`);
        if (this.ft.size !== freshFronts) throw new Error(`internal: fresh compile wrote ${this.ft.size} frontends for ${freshFronts} ids`);
        result = { ...diff, frontendsUpsert: this.ft.rows(freshFronts), backendsUpsert: this.bt.rows(freshBacks) };
      }
      const upsertedBacks = result.backendsUpsert.length;
      if (!this.node && upsertedBacks)
        warnings.push(`no NodeConfig applied: ${upsertedBacks} backend(s) have no next hop; packets to them are dropped (drop_no_route) until one is applied`);
      unlabelledSliceWarnings(upserts, warnings);

      let done = false;
      const rollback = (): void => {
        if (done) return;
        done = true;
        if (fresh) this.reset(); else for (let i = log.length - 1; i >= 0; i--) log[i]();
      };
      const undoData = emptyDiff();
      for (const [id, f] of prevFront) if (f) undoData.frontendsUpsert.push(f); else undoData.frontendsRemove.push(id);
      for (const [id, b] of prevBack) if (b) undoData.backendsUpsert.push(b); else undoData.backendsRemove.push(id);
      // from empty, everything this change programmed is new: undoing it removes it all
      const undoDiff: IrDiff = fresh ? { ...undoData, frontendsRemove: new IdRange(freshFronts), backendsRemove: new IdRange(freshBacks) } : undoData;
      if (diff.routes) undoDiff.routes = prevRoutes;
      if (diff.snat) undoDiff.snat = { v4: prevSnatV4, v6: prevSnatV6 };
      const jobs = this.maglevJobs;
      return { diff: result, undoDiff, rollback, warnings, servicesRecompiled: group ? group.services : order.length, ...(jobs ? { maglevWorker: { tables: jobs.published, filledByWorker: jobs.published - jobs.filledHere } } : {}) };
    } catch (e) {
      if (fresh) this.reset(); else for (let i = log.length - 1; i >= 0; i--) log[i]();
      throw e;
    } finally {
      this.maglevJobs?.abandon(); // a failed compile's jobs are not claimed any more
      this.maglevJobs = null;
      this.slab = undefined;
      this.releaseScratch();
    }
  }

  // ---- the full compile's model bookkeeping: methods rather than closures made per change(), so
  // their optimised code is kept from one full compile to the next (--trace-opt showed the
  // closures re-optimised in every full compile; the time saved was within the VM's noise)

  /** The batch's Services against the claims (cluster IPs, node ports, frontend tuples) of the
   * current state minus `replaced` and of the batch so far. `upsertClaims[u]` gets upsert u's
   * claim keys, for setClaims (not from empty, where they are not kept). */
  private claimBatch(upserts: ModelObject[], fresh: boolean, replaced: Set<string>, batchClaims: Map<Claim, string>, upsertClaims: Array<Claim[] | undefined>, errors: FieldError[]): void {
    for (let u = 0; u < upserts.length; u++) {
      const o = upserts[u];
      if (o.kind !== 'Service') continue;
      if (fresh && o.externalIPs.length === 0 && o.lbIngress.length === 0) {
        // from empty the claims are not kept per service (setClaims is not called): the common
        // shape is checked in place, without claimKeys' array (~0.5 MB at 10k services)
        let i = 0;
        for (let c = 0; c < o.clusterIPs.length; c++) this.takeClaim(o, o.clusterIPs[c], i++, replaced, batchClaims, errors);
        for (let p = 0; p < o.ports.length; p++) if (o.ports[p].nodePort !== undefined) this.takeClaim(o, nodePortClaim(o.ports[p]), i++, replaced, batchClaims, errors);
        continue;
      }
      const keys = claimKeys(o);
      if (!fresh) upsertClaims[u] = keys;
      for (let i = 0; i < keys.length; i++) this.takeClaim(o, keys[i], i, replaced, batchClaims, errors);
    }
  }

  /** From empty: compiles the records' services in order (key order) straight into the tables
   * (compileService writes the backends and frontends itself) and keeps what each compiled to. */
  private compileFreshRecords(recs: ServiceRecord[], warnings: string[]): void {
    for (let k = 0; k < recs.length; k++) {
      const rec = recs[k], svc = rec.spec;
      if (svc === undefined) continue; // slices naming a service the batch does not hold
      const out = this.compileService(svc, rec.slices, null, undefined, true);
      // kept for the service's lifetime: exact-size copies (a pushed-to array keeps room for 17)
      rec.out = new ServiceOutput(out);
      for (let i = 0; i < out.warnings.length; i++) warnings.push(out.warnings[i]);
    }
  }

  /** From empty (after the compile): every Service and EndpointSlice of the batch into the
   * model's maps, which serve as the duplicate check (errors in batch order); a Service as its
   * record (`batchRecs`, the batch's services in batch order: a placeholder when null), then the
   * records of slices naming a service the batch does not hold. True when the batch holds a
   * NodeConfig. */
  private indexFresh(upserts: ModelObject[], batchRecs: ServiceRecord[] | null, orphans: ServiceRecord[], errors: FieldError[]): boolean {
    let nodes = 0, s = 0;
    const recs = this.recs, slices = this.slices;
    for (let u = 0; u < upserts.length; u++) {
      const o = upserts[u];
      if (o.kind === 'NodeConfig') { if (nodes++ > 0) errors.push(duplicateError(o)); continue; }
      const map: Map<string, unknown> = o.kind === 'Service' ? recs : slices;
      const n = map.size;
      map.set(o.key, o.kind === 'Service' ? (batchRecs ? batchRecs[s++] : PENDING) : o);
      if (map.size === n) errors.push(duplicateError(o));
    }
    for (let k = 0; k < orphans.length; k++) {
      const sl = orphans[k].slices!;
      recs.set((Array.isArray(sl) ? sl[0] : sl).service!, orphans[k]);
    }
    this.nServices = s;
    return nodes > 0;
  }

  /** Claim number i of service o (claimKeys' order), against the current claims minus those of
   * `replaced` services and the batch's so far; a clash is an error naming the other service. */
  private takeClaim(o: ServiceSpec, claim: Claim, i: number, replaced: Set<string>, batchClaims: Map<Claim, string>, errors: FieldError[]): void {
    // (from empty there are no current claims: from the batch's first, this.claims is batchClaims)
    const owner = this.claims === batchClaims || this.claims.size === 0 ? undefined : this.claims.get(claim);
    const other = owner !== undefined && owner !== o.key && !replaced.has(owner) ? owner : batchClaims.get(claim);
    if (other !== undefined && other !== o.key) {
      const c = serviceClaims(o)[i]; // the error path only
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
    this.emitState.release();
  }

  /** Back to the empty state (the rollback of a change that started from empty). */
  private reset(): void {
    this.ir.frontends.clear(); this.ir.backends.clear(); this.ir.routes = [];
    delete this.ir.snatV4; delete this.ir.snatV6;
    this.recs.clear(); this.nServices = 0; this.slices.clear(); this.claims.clear();
    this.node = null;
    this.fe = new IdAllocator(); this.be = new IdAllocator();
    this.indexNode();
  }

  /** Recompiles every service from the current model without changing ids and returns the Ir it
   * would produce — what `ir` must equal (tests compare the two). Does not modify anything. */
  recompileAll(): Ir {
    const ir = emptyIr();
    ir.routes = this.nodeRoutes();
    if (this.node?.snatV4) ir.snatV4 = this.node.snatV4;
    if (this.node?.snatV6) ir.snatV6 = this.node.snatV6;
    const undo: Array<() => void> = [];
    try {
      for (const svc of this.listServices()) {
        const rec = this.recs.get(svc.key)!;
        const out = this.compileService(svc, rec.slices, undo, rec.out);
        for (let i = 0; i < out.nFronts; i++) ir.frontends.set(out.fronts[i].id, out.fronts[i]);
        for (const b of out.backs) ir.backends.set(b.id, b);
      }
    } finally {
      for (let i = undo.length - 1; i >= 0; i--) undo[i]();
      this.releaseScratch();
    }
    return ir;
  }

  // ---- node --------------------------------------------------------------------------------
  private indexNode(): void {
    this.neighbourMap = new Map();
    this.routeCidrs = [];
    this.routes4 = [];
    this.resolveCache = new Map();
    if (!this.node) return;
    for (const n of this.node.neighbours) this.neighbourMap.set(n.address, new NextHop(n.port, n.mac, n.localMac));
    for (const r of this.node.routes) {
      const res = new NextHop(r.port, r.nextHopMac, r.localMac);
      this.routeCidrs.push(new RouteCidr(parseCidr(r.prefix), res));
      if (r.family === 4) {
        const mask = r.plen === 0 ? 0 : (0xffffffff << (32 - r.plen)) >>> 0;
        this.routes4.push(new Route4((ipv4Value(r.prefix.slice(0, r.prefix.indexOf('/'))) & mask) >>> 0, mask, res));
      }
    }
  }

  private nodeRoutes(): IrRoute[] {
    if (!this.node) return [];
    const host: IrRoute[] = this.node.neighbours.map((n) => ({ prefix: `${n.address}/${n.family === 4 ? 32 : 128}`, outPort: n.port, dstMac: n.mac, srcMac: n.localMac }));
    const plen = (p: string): number => Number(p.slice(p.indexOf('/') + 1));
    const all = [...host, ...this.node.routes.map((r) => ({ prefix: r.prefix, outPort: r.port, dstMac: r.nextHopMac, srcMac: r.localMac }))];
    // a neighbour and an identical host route: the neighbour wins (it is the more specific fact)
    const seen = new Set<string>();
    const out = all.filter((r) => (seen.has(r.prefix) ? false : (seen.add(r.prefix), true)));
    return out.sort((a, b) => plen(b.prefix) - plen(a.prefix) || cmp(a.prefix, b.prefix));
  }

  private resolve(addr: string): Resolved | null {
    if (!addr.includes(':')) return this.resolve4(ipv4Value(addr), addr); // (validated: canonical)
    if (this.neighbourMap.size) { const n = this.neighbourMap.get(addr); if (n) return n; }
    let r = this.resolveCache.get(addr);
    if (r !== undefined) return r;
    r = null;
    if (this.routeCidrs.length) {
      const a = parseAddr(addr);
      for (const rc of this.routeCidrs) if (cidrContains(rc.cidr, a)) { r = rc.r; break; } // longest prefix first
    }
    if (this.resolveCache.size > 1_000_000) this.resolveCache.clear();
    this.resolveCache.set(addr, r);
    return r;
  }

  /** resolve() of IPv4 address `addr` whose value is `a` (int32 or u32: only its bits are used) (already parsed by the caller). */
  private resolve4(a: number, addr: string): Resolved | null {
    if (this.neighbourMap.size) { const n = this.neighbourMap.get(addr); if (n) return n; }
    const routes = this.routes4;
    for (let i = 0; i < routes.length; i++) if (((a & routes[i].mask) >>> 0) === routes[i].net) return routes[i].r;
    return null;
  }

  // ---- one service -------------------------------------------------------------------------
  /** Compiles one service. Ids it had before (`prev`) are reused for what they named; anything
   * new gets a fresh id. Costs O(endpoints) plus one Maglev table per (port, family, local-only)
   * set its frontends ask for; the lookup maps of previous ids are built only on a recompile.
   * The result's arrays are scratch (valid until the next call): the caller copies what it keeps. */
  private compileService(svc: ServiceSpec, sliceEntry: ServiceRecord['slices'], undo: Undo, prev: ServiceOutput | undefined, direct = false): CompiledService {
    const out = this.svcOut, st = this.emitState;
    const backIds = out.backIds, backs = out.backs, warnings = out.warnings;
    out.reset();
    if (svc.headless || svc.type === 'ExternalName') return out;
    const bt = this.bt;
    const nSlices = sliceCount(sliceEntry);
    let unresolved: string[] | null = null;
    let prevBack: Map<string, number> | null = null;
    st.svc = svc; st.undo = undo; st.prevFront = null; st.direct = direct;
    st.aff = svc.affinityTimeoutMs ? L.FEF_AFFINITY : 0;
    if (prev && prev.backCount) { prevBack = new Map(); for (const id of prev.backs()) prevBack.set(`${bt.portNameOf(id)}|${bt.addrOf(id)}|${bt.targetPortOf(id)}`, id); }
    if (prev && prev.frontCount) {
      const ft = this.ft;
      st.prevFront = new Map();
      for (const id of prev.frontIds()) st.prevFront.set(`${ft.portNameOf(id)}|${ft.kindOf(id)}|${ft.addrOf(id)}`, id);
    }
    const cands = this.cands;
    const external = L.FEF_EXTERNAL | (svc.externalLocal ? 0 : L.FEF_MASQUERADE);
    const fam = svc.families;

    for (let pi = 0; pi < svc.ports.length; pi++) {
      const sp = svc.ports[pi];
      st.sp = sp;
      // candidates in listed order. A backend listed twice (in two slices, or twice in one) is one
      // backend whose best state wins; found by a scan while the port is small, by an address
      // index beyond that
      cands.n = 0;
      const cAddr = cands.addr, cPort = cands.port, cKey = cands.key;
      let seen: Map<string, number> | null = null;
      for (let si = 0; si < nSlices; si++) {
        const sl = Array.isArray(sliceEntry) ? sliceEntry[si] : sliceEntry!;
        if (sl.addressType === 'FQDN') continue;
        const slPort = matchSlicePort(sp, sl);
        if (!slPort) continue;
        const port = slPort.port ?? (typeof sp.targetPort === 'number' ? sp.targetPort : undefined);
        if (port === undefined) { warnings.push(`Service ${svc.key} port ${sp.name || sp.port}: EndpointSlice ${sl.key} gives no port number for it`); continue; }
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
          if (dup >= 0) { if (state < cands.state[dup]) cands.state[dup] = state; continue; }
          const id = (prevBack !== null && prevBack.get(`${sp.name}|${addr}|${port}`)) || this.be.allocate(undo);
          const res = family === 6 ? this.resolve(addr) : this.resolve4(key, addr);
          if (!res) (unresolved ??= []).push(addr);
          if (seen !== null && !seen.has(addr)) seen.set(addr, n);
          cands.push(id, addr, key, port, family, state, ep.nodeName, ep.zone, res);
        }
      }
      // the port's backends, final states known: into the table (fresh compile) or as objects
      // shared by the port's backends and frontends in the tables
      const owner: PortOwner | null = direct ? { service: svc.key, portName: sp.name } : null;
      st.owner = owner;
      for (let i = 0; i < cands.n; i++) {
        const id = cands.id[i], res = cands.res[i], node = cands.node[i], zone = cands.zone[i];
        backIds[out.nBackIds++] = id;
        if (direct) {
          bt.put(id, owner!, cAddr[i], cands.family[i], cPort[i], cands.state[i], res ? bt.hopOfObject(res) : 0, node, zone);
          continue;
        }
        const b: IrBackend = {
          id, service: svc.key, portName: sp.name, addr: cAddr[i], family: cands.family[i], port: cPort[i], state: cands.state[i],
          outPort: res ? res.outPort : L.PORT_NONE, dstMac: res ? res.dstMac : NO_MAC, srcMac: res ? res.srcMac : NO_MAC,
        };
        if (node !== undefined) b.nodeName = node;
        if (zone !== undefined) b.zone = zone;
        backs.push(b);
      }

      st.built = 0;
      st.portStart = out.nFronts;
      for (let i = 0; i < svc.clusterIPs.length; i++) this.emit('ClusterIP', svc.clusterIPs[i], sp.port, 0, svc.internalLocal, NO_RANGES);
      if (sp.nodePort !== undefined && this.node)
        for (let i = 0; i < this.node.addresses.length; i++) {
          const a = this.node.addresses[i];
          if (fam.includes(a.includes(':') ? 6 : 4)) this.emit('NodePort', a, sp.nodePort, external, svc.externalLocal, NO_RANGES);
        }
      // loadBalancerSourceRanges guard LB ingress IPs and, in wdp, externalIPs too (both are the
      // "outside" addresses of the service; kube-proxy's iptables mode does the same for externalIPs
      // only when the service is of type LoadBalancer — wdp always does, documented in docs/api.md)
      // (indexed loops: an array iterator per loop per service was ~0.6 MB of a 10k-service compile)
      const ext = svc.externalIPs, lb = svc.lbIngress;
      for (let i = 0; i < ext.length; i++) if (!this.portTaken(ext[i])) this.emit('ExternalIP', ext[i], sp.port, external, svc.externalLocal, svc.sourceRanges);
      for (let i = 0; i < lb.length; i++) if (!this.portTaken(lb[i])) this.emit('LoadBalancer', lb[i], sp.port, external, svc.externalLocal, svc.sourceRanges);
    }
    st.built = 0;
    if (unresolved && this.node) { // without a node config change() reports it once, not per service
      const uniq = [...new Set(unresolved)];
      warnings.push(`Service ${svc.key}: no neighbour or route for ${uniq.length} endpoint address(es) (${uniq.slice(0, 5).join(', ')}${uniq.length > 5 ? ', ...' : ''}); packets to them are dropped (drop_no_route)`);
    }
    return out;
  }

  /** One frontend of the current service port (this.emitState), unless the port has it already.
   * One Maglev set per (family, local-only) pair its frontends ask for: [4 all, 4 local, 6 all,
   * 6 local]. A method over reused state rather than a closure per service: the closures and
   * their context were ~250 bytes of garbage a service. */
  private emit(kind: FrontendKind, addr: string, port: number, flags: number, localOnly: boolean, ranges: string[]): void {
    const st = this.emitState, out = this.svcOut, svc = st.svc, sp = st.sp;
    const kinds = out.frontKinds, addrs = out.frontAddrs;
    for (let i = st.portStart; i < out.nFronts; i++) if (kinds[i] === kind && addrs[i] === addr) return; // listed twice
    const family: Family = addr.includes(':') ? 6 : 4;
    const tk = (family === 6 ? 2 : 0) + (localOnly ? 1 : 0);
    const set = st.sets[tk];
    if ((st.built & (1 << tk)) === 0) {
      this.activeSet(svc, family, localOnly ? this.node?.name ?? null : undefined, this.svcOut.warnings, set);
      st.built |= 1 << tk;
    }
    const id = (st.prevFront !== null && st.prevFront.get(`${sp.name}|${kind}|${addr}`)) || this.fe.allocate(st.undo);
    const i = out.nFronts++;
    out.frontIds[i] = id; kinds[i] = kind; addrs[i] = addr;
    const fflags = flags | st.aff | (set.fallback ? L.FEF_FALLBACK : 0) | (ranges.length ? L.FEF_SOURCE_RANGES : 0);
    const fRanges = ranges.length ? ranges.filter((c) => (c.includes(':') ? 6 : 4) === family) : NO_RANGES;
    if (st.direct) { this.ft.put(id, st.owner!, kind, addr, family, port, sp.protocol, fflags, svc.affinityTimeoutMs, fRanges, set); return; }
    out.fronts[i] = { // the set's arrays are its own here (offset 0, exact size)
      id, service: svc.key, portName: sp.name, kind, addr, family, port, proto: sp.protocol,
      flags: fflags, affinityTimeoutMs: svc.affinityTimeoutMs, sourceRanges: fRanges,
      backends: set.ids as number[], maglev: set.mag, maglevIndexed: true,
    };
  }

  /** Whether the current port already answers on `ip` as a ClusterIP, ExternalIP or LoadBalancer frontend. */
  private portTaken(ip: string): boolean {
    const out = this.svcOut, kinds = out.frontKinds, addrs = out.frontAddrs;
    for (let i = this.emitState.portStart; i < out.nFronts; i++) if (addrs[i] === ip && kinds[i] !== 'NodePort') return true;
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
    const cFamily = cands.family, cState = cands.state, cNode = cands.node, cAddr = cands.addr, cPort = cands.port;
    for (let i = 0; i < cands.n; i++) {
      if (cFamily[i] !== family) continue;
      if (localNode !== undefined && (localNode === null || cNode[i] !== localNode)) continue;
      const st = cState[i];
      if (st === L.BES_READY) ready[nReady++] = i; else if (st === L.BES_TERMINATING_SERVING) terminating[nTerminating++] = i;
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

/** The EndpointSlice port serving Service port `sp`: by the Service port's name (what the
 * EndpointSlice controller writes), else by targetPort name, else by targetPort number. */
export function matchSlicePort(sp: ServicePortSpec, sl: SliceSpec): { name: string; port?: number } | undefined {
  // one pass, no filtered copies: the first same-protocol port by name, else the first by target
  let byName: SliceSpec['ports'][number] | undefined, byTarget: SliceSpec['ports'][number] | undefined;
  const tp = sp.targetPort;
  for (const p of sl.ports) {
    if (p.protocol !== sp.protocol) continue;
    if (p.name === sp.name) { byName = p; break; }
    if (byTarget === undefined && (typeof tp === 'string' ? p.name === tp : p.port === tp)) byTarget = p;
  }
  return byName ?? byTarget;
}

/** Full compile: a new compiler holding exactly `objects` (benchmarks, tests, fresh starts). */
export function compileAll(objects: ModelObject[], opts?: CompilerOptions): Compiler {
  const c = new Compiler(opts);
  c.change({ upsert: objects });
  return c;
}
