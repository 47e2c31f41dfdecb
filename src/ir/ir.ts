// The intermediate representation between the control layer and the core.
//
// The compiler (src/compiler/) turns the validated Kubernetes model into an `Ir`; the table
// writer (src/core/table-writer.ts) turns an Ir *diff* (diff.ts) into bytes in the inactive table
// set and flips the generation; the reference model (src/reference/) executes an Ir directly.
// Everything the core needs to decide a packet's fate is here — nothing about Kubernetes objects is.
import * as L from '../../assembly/layout.js';
import type { Family } from '../util/addr.js';
import { IdMap } from './id-map.js';
import type { IrList } from './list.js';

export type Proto = 'TCP' | 'UDP' | 'SCTP';
export const PROTO_NUMBER: Record<Proto, number> = { TCP: 6, UDP: 17, SCTP: 132 };
export type { Family };
/** 'ClusterPolicy' is no address of the service: a service port's cluster-wide endpoints for the
 * in-cluster sources of its externalTrafficPolicy Local frontends when internalTrafficPolicy is
 * Local too (the ClusterIP then spreads over local ones only). addr is the port's ClusterIP of its
 * family; never in the service map (reached only as another frontend's clusterFront). */
export type FrontendKind = 'ClusterIP' | 'NodePort' | 'ExternalIP' | 'LoadBalancer' | 'ClusterPolicy';

/** Frontend kinds and protocols as small codes (an index into these lists): how the compiler's
 * frontend table and the diff's wire columns store them, one byte instead of a string a row. */
export const FRONTEND_KINDS: readonly FrontendKind[] = ['ClusterIP', 'NodePort', 'ExternalIP', 'LoadBalancer', 'ClusterPolicy'];
export const FRONTEND_KIND_CODE: Readonly<Record<FrontendKind, number>> = { ClusterIP: 0, NodePort: 1, ExternalIP: 2, LoadBalancer: 3, ClusterPolicy: 4 };
export const PROTOS: readonly Proto[] = ['TCP', 'UDP', 'SCTP'];
export const PROTO_CODE: Readonly<Record<Proto, number>> = { TCP: 0, UDP: 1, SCTP: 2 };

/** One (address, port, protocol) the dataplane answers for. id is stable across generations. */
export interface IrFrontend {
  id: number;                 // >= 1; also the per-service counter id
  service: string;            // "namespace/name"
  portName: string;           // Service port name ('' when unnamed)
  kind: FrontendKind;
  addr: string;               // VIP, node address, external IP or LB ingress IP
  family: Family;
  port: number;
  proto: Proto;
  flags: number;              // L.FEF_* bits
  affinityTimeoutMs: number;  // 0 unless FEF_AFFINITY
  sourceRanges: string[];     // CIDRs, checked when FEF_SOURCE_RANGES
  backends: number[];         // backend ids in the active set (what the Maglev table spreads over)
  maglev: MaglevSlots;        // Maglev lookup table; length 0 = no endpoints (reject). Backend ids, or with
                              // maglevIndexed, indexes into `backends` (read slots with maglevBackendAt)
  maglevIndexed?: boolean;    // the compiler's form: 1 byte a slot up to 256 backends (a quarter of the ids' memory)
  clusterFront?: number;      // externalTrafficPolicy Local (or, with FEF_AFFINITY_SHARED, the affinity key): the frontend (the port's ClusterIP, policy Cluster)
                              // whose table serves in-cluster sources (local-source routes); absent = none
}

/** A Maglev table's slots: u32 backend ids, or u8/u16/u32 indexes into the frontend's backends. */
export type MaglevSlots = Uint32Array | Uint16Array | Uint8Array;

/** The backend id in Maglev slot `slot` of `f`, whichever form its table has. */
export function maglevBackendAt(f: Pick<IrFrontend, 'maglev' | 'maglevIndexed' | 'backends'>, slot: number): number {
  const v = f.maglev[slot];
  return f.maglevIndexed ? f.backends[v] : v;
}

/** The table as backend ids (a new array when it holds indexes). */
export function maglevIds(f: Pick<IrFrontend, 'maglev' | 'maglevIndexed' | 'backends'>): Uint32Array {
  if (!f.maglevIndexed) return f.maglev instanceof Uint32Array ? f.maglev : Uint32Array.from(f.maglev);
  const out = new Uint32Array(f.maglev.length);
  for (let i = 0; i < out.length; i++) out[i] = f.backends[f.maglev[i]];
  return out;
}

/** One endpoint of one service port. id is stable while the (service port, address) exists. */
export interface IrBackend {
  id: number;                 // >= 1
  service: string;
  portName: string;           // the Service port it serves ('' when unnamed): with service, addr and port, what the id names
  addr: string;
  family: Family;
  port: number;               // resolved targetPort
  state: number;              // L.BES_READY | L.BES_TERMINATING_SERVING | L.BES_NOT_SERVING
  outPort: number;            // dataplane port the backend is reached through (L.PORT_NONE: unresolved)
  dstMac: string;             // "aa:bb:cc:dd:ee:ff"
  srcMac: string;             // our MAC on outPort
  nodeName?: string;
  zone?: string;
}

/** Plain forwarding for non-service traffic (and how the compiler resolves backends). */
export interface IrRoute {
  prefix: string;             // CIDR, e.g. "10.0.1.0/24" or "fd00::/64"
  outPort: number;
  dstMac: string;
  srcMac: string;
  /** A service CIDR (node config serviceCIDRs): traffic to it that no service takes is dropped
   * (drop_no_service_ip); outPort and the MACs are unused. */
  serviceCidr?: true;
  /** Not a route: an entry of kube-proxy's local-traffic detector. 'pod': a source in it is a pod
   * (cluster CIDRs or the node's pod CIDRs, by detectLocalMode); 'podPort': a frame that arrived
   * on dataplane port `outPort` is a pod's (detectLocalMode PodPort; the prefix is unused);
   * 'node': the node itself (a node or masquerade address). Never routed by; the MACs (and
   * outPort, but for 'podPort') are unused. */
  localSource?: 'pod' | 'podPort' | 'node';
}

/** An Ir's records by id: any Map<number, T>. A map that keeps its records in columns (the
 * compiler's tables) also lists them without an object per record; the table writer uses that
 * when it rewrites every record (a regrow), and reads the Map interface otherwise. */
export interface IrRecords<T> extends Map<number, T> {
  /** The ids in ascending order, as an array. */
  idArray?(): number[];
  /** Records `ids` (an array, or a count n meaning 1..n) as a list read from the columns. */
  rows?(ids: number[] | number): IrList<T>;
}

/** The frontends' records; a column store also answers a frontend's sizes without building it. */
export interface IrFrontendRecords extends IrRecords<IrFrontend> {
  /** Maglev slots of frontend `id` (which exists). */
  maglevLengthOf?(id: number): number;
  /** Backends (the active set's length) of frontend `id` (which exists). */
  backendCountOf?(id: number): number;
  /** Source-range CIDRs of frontend `id` (which exists). */
  sourceRangeCountOf?(id: number): number;
}

export interface Ir {
  frontends: IrFrontendRecords;
  backends: IrRecords<IrBackend>;
  routes: IrRoute[];
  snatV4?: string;            // masquerade / hairpin source address, IPv4
  snatV6?: string;
  hairpinV4?: string;         // source of flows from the node to a backend at a node address (the node itself)
  hairpinV6?: string;
}

/** The source addresses of source-translated flows: CONFIG's SNAT and hairpin addresses. */
export interface SnatAddresses { v4?: string; v6?: string; hairpinV4?: string; hairpinV6?: string }

/** The Ir's SNAT and hairpin addresses. */
export function snatOf(ir: Ir): SnatAddresses {
  return { v4: ir.snatV4, v6: ir.snatV6, hairpinV4: ir.hairpinV4, hairpinV6: ir.hairpinV6 };
}

/** Sets the Ir's SNAT and hairpin addresses to `s` (an undefined one is removed). */
export function setSnat(ir: Ir, s: SnatAddresses): void {
  if (s.v4 === undefined) delete ir.snatV4; else ir.snatV4 = s.v4;
  if (s.v6 === undefined) delete ir.snatV6; else ir.snatV6 = s.v6;
  if (s.hairpinV4 === undefined) delete ir.hairpinV4; else ir.hairpinV4 = s.hairpinV4;
  if (s.hairpinV6 === undefined) delete ir.hairpinV6; else ir.hairpinV6 = s.hairpinV6;
}

/** Whether two route lists are the same, entry for entry (every field). */
export function sameRoutes(a: IrRoute[], b: IrRoute[]): boolean {
  return a.length === b.length && a.every((r, i) => r.prefix === b[i].prefix && r.outPort === b[i].outPort &&
    r.dstMac === b[i].dstMac && r.srcMac === b[i].srcMac && r.serviceCidr === b[i].serviceCidr && r.localSource === b[i].localSource);
}

export function sameSnat(a: SnatAddresses, b: SnatAddresses): boolean {
  return a.v4 === b.v4 && a.v6 === b.v6 && a.hairpinV4 === b.hairpinV4 && a.hairpinV6 === b.hairpinV6;
}

/** An empty Ir whose maps are IdMaps (array-indexed by id; any Map<number, …> works in an Ir). */
export function emptyIr(): Ir {
  return { frontends: new IdMap(), backends: new IdMap(), routes: [] };
}

/** Field-by-field equality of two frontends (what decides whether a diff carries one). */
export function sameFrontend(a: IrFrontend, b: IrFrontend): boolean {
  if (a.addr !== b.addr || a.port !== b.port || a.proto !== b.proto || a.family !== b.family) return false;
  if (a.flags !== b.flags || a.affinityTimeoutMs !== b.affinityTimeoutMs || a.kind !== b.kind) return false;
  if ((a.clusterFront ?? 0) !== (b.clusterFront ?? 0)) return false;
  if (a.service !== b.service || a.portName !== b.portName) return false;
  if (a.sourceRanges.length !== b.sourceRanges.length || a.sourceRanges.some((c, i) => c !== b.sourceRanges[i])) return false;
  if (a.backends.length !== b.backends.length || a.backends.some((x, i) => x !== b.backends[i])) return false;
  if (!a.maglevIndexed !== !b.maglevIndexed) return false;
  if (a.maglev === b.maglev) return true;
  if (a.maglev.length !== b.maglev.length) return false;
  for (let i = 0; i < a.maglev.length; i++) if (a.maglev[i] !== b.maglev[i]) return false;
  return true;
}

/** Field-by-field equality of two backends. */
export function sameBackend(a: IrBackend, b: IrBackend): boolean {
  return a.addr === b.addr && a.port === b.port && a.family === b.family && a.state === b.state &&
    a.outPort === b.outPort && a.dstMac === b.dstMac && a.srcMac === b.srcMac && a.service === b.service && a.portName === b.portName &&
    a.nodeName === b.nodeName && a.zone === b.zone;
}

export { L };
