// Many frontends as columns: how a full sync's frontends travel to a forwarding worker (the
// frontends' counterpart of backend-columns.ts).
//
//   row i ─┬─ id, family, port, flags, affinityTimeoutMs, clusterFront, indexed   typed arrays
//          ├─ kind[i], proto[i]   codes into FRONTEND_KINDS, PROTOS (ir.ts)
//          ├─ owner[i] ──▶ ownerService[k], ownerPortName[k]   (one entry per run of one service port's rows)
//          ├─ addr: addrs.slice(addrAt[i], addrAt[i + 1])      (every address in one string)
//          ├─ source ranges: ranges[rangeAt[i] .. rangeAt[i + 1])
//          ├─ backends: backends[backendsAt[i] .. backendsAt[i + 1])
//          └─ Maglev table: maglevLen[i] slots of maglevWidth[i] bytes at maglevAt[i] in maglev1/2/4
//
// Why: a structured clone writes every object with all its property names. By column, the
// numbers are one copy each and the strings need no separator (nothing a string holds can break
// the encoding, so every large frontend list goes by column). The compiler's frontend table writes
// rows here straight from its own columns (FrontendColumnsWriter.add takes parts, not an object):
// a full sync's frontends are never objects on the main thread.
import { FRONTEND_KIND_CODE, FRONTEND_KINDS, PROTO_CODE, PROTOS, type Family, type IrFrontend, type MaglevSlots } from './ir.js';
import { columnsHold, offsetsFit, OwnerRuns } from './wire-columns.js';

/** The wire form (what postMessage clones). */
export interface FrontendColumns {
  n: number;
  id: Uint32Array; family: Uint8Array; port: Uint32Array; flags: Uint32Array; affinityTimeoutMs: Float64Array;
  /** IrFrontend.clusterFront, 0 for none (as in the compiler's frontend table). */
  clusterFront: Uint32Array;
  /** IrFrontend.maglevIndexed: 0 absent, 1 false, 3 true (bit 1: present, bit 2: its value). */
  indexed: Uint8Array;
  kind: Uint8Array; proto: Uint8Array;
  owner: Uint32Array; ownerService: string[]; ownerPortName: string[];
  addrs: string; addrAt: Uint32Array;
  rangeAt: Uint32Array; ranges: string[];
  backendsAt: Uint32Array; backends: Uint32Array;
  maglevWidth: Uint8Array; maglevAt: Uint32Array; maglevLen: Uint32Array; maglev1: Uint8Array; maglev2: Uint16Array; maglev4: Uint32Array;
}

/** IrFrontend.maglevIndexed as its `indexed` code. */
export function indexedCode(maglevIndexed: boolean | undefined): number { return maglevIndexed === undefined ? 0 : maglevIndexed ? 3 : 1; }

const NO_RANGES: string[] = Object.freeze([]) as unknown as string[];

/** Fills FrontendColumns row by row. Sized up front: rows, backend ids, and Maglev slots of each
 * width (what a caller sums in a first pass). */
export class FrontendColumnsWriter {
  readonly c: FrontendColumns;
  private readonly owners = new OwnerRuns();
  private readonly addrs: string[];
  private i = 0;
  private b = 0;
  private at1 = 0; private at2 = 0; private at4 = 0;
  private addrEnd = 0;

  constructor(n: number, nBackends: number, slots1: number, slots2: number, slots4: number) {
    this.c = {
      n, id: new Uint32Array(n), family: new Uint8Array(n), port: new Uint32Array(n), flags: new Uint32Array(n), affinityTimeoutMs: new Float64Array(n),
      clusterFront: new Uint32Array(n), indexed: new Uint8Array(n), kind: new Uint8Array(n), proto: new Uint8Array(n),
      owner: new Uint32Array(n), ownerService: this.owners.service, ownerPortName: this.owners.portName,
      addrs: '', addrAt: new Uint32Array(n + 1), rangeAt: new Uint32Array(n + 1), ranges: [],
      backendsAt: new Uint32Array(n + 1), backends: new Uint32Array(nBackends),
      maglevWidth: new Uint8Array(n), maglevAt: new Uint32Array(n), maglevLen: new Uint32Array(n),
      maglev1: new Uint8Array(slots1), maglev2: new Uint16Array(slots2), maglev4: new Uint32Array(slots4),
    };
    this.addrs = new Array<string>(n);
  }

  /** The next row, from its parts: backend ids backends[bOff .. bOff + bLen) and Maglev slots
   * mag[mOff .. mOff + mLen) (copied). `kind`, `proto`: codes (FRONTEND_KINDS, PROTOS);
   * `indexed`: indexedCode(). */
  add(id: number, service: string, portName: string, kind: number, proto: number, addr: string, family: number, port: number,
    flags: number, affinityTimeoutMs: number, clusterFront: number, indexed: number, ranges: readonly string[],
    backends: ArrayLike<number>, bOff: number, bLen: number, mag: MaglevSlots, mOff: number, mLen: number): void {
    const c = this.c, i = this.i++;
    c.id[i] = id; c.family[i] = family; c.port[i] = port; c.flags[i] = flags; c.affinityTimeoutMs[i] = affinityTimeoutMs;
    c.clusterFront[i] = clusterFront; c.indexed[i] = indexed; c.kind[i] = kind; c.proto[i] = proto;
    c.owner[i] = this.owners.of(service, portName);
    this.addrs[i] = addr; this.addrEnd += addr.length; c.addrAt[i + 1] = this.addrEnd;
    for (let k = 0; k < ranges.length; k++) c.ranges.push(ranges[k]);
    c.rangeAt[i + 1] = c.ranges.length;
    let b = this.b;
    const out = c.backends;
    for (let k = 0; k < bLen; k++) out[b++] = backends[bOff + k];
    this.b = b; c.backendsAt[i + 1] = b;
    const w = mag.BYTES_PER_ELEMENT, run = mOff === 0 && mLen === mag.length ? mag : mag.subarray(mOff, mOff + mLen);
    c.maglevWidth[i] = w; c.maglevLen[i] = mLen;
    if (w === 1) { c.maglevAt[i] = this.at1; c.maglev1.set(run, this.at1); this.at1 += mLen; }
    else if (w === 2) { c.maglevAt[i] = this.at2; c.maglev2.set(run, this.at2); this.at2 += mLen; }
    else { c.maglevAt[i] = this.at4; c.maglev4.set(run, this.at4); this.at4 += mLen; }
  }

  /** The columns, once every row was added. */
  finish(): FrontendColumns {
    const c = this.c;
    if (this.i !== c.n || this.b !== c.backends.length || this.at1 !== c.maglev1.length || this.at2 !== c.maglev2.length || this.at4 !== c.maglev4.length) {
      throw new Error(`internal: frontend columns sized for ${c.n} rows got ${this.i}`);
    }
    c.addrs = this.addrs.join('');
    return c;
  }
}

/** `fs` by column. */
export function encodeFrontendColumns(fs: readonly IrFrontend[]): FrontendColumns {
  let nBackends = 0;
  const slots = [0, 0, 0, 0, 0];
  for (let i = 0; i < fs.length; i++) { const f = fs[i]; nBackends += f.backends.length; slots[f.maglev.BYTES_PER_ELEMENT] += f.maglev.length; }
  const w = new FrontendColumnsWriter(fs.length, nBackends, slots[1], slots[2], slots[4]);
  for (let i = 0; i < fs.length; i++) {
    const f = fs[i];
    w.add(f.id, f.service, f.portName, FRONTEND_KIND_CODE[f.kind], PROTO_CODE[f.proto], f.addr, f.family, f.port, f.flags, f.affinityTimeoutMs,
      f.clusterFront ?? 0, indexedCode(f.maglevIndexed), f.sourceRanges, f.backends, 0, f.backends.length, f.maglev, 0, f.maglev.length);
  }
  return w.finish();
}

const FRONTEND_ROW_COLUMNS = ['id', 'family', 'port', 'flags', 'affinityTimeoutMs', 'clusterFront', 'indexed', 'kind', 'proto', 'owner', 'maglevWidth', 'maglevAt', 'maglevLen'] as const;

/** Received columns as frontend objects (what the worker's table writer and Ir take). The Maglev
 * tables are views of the received arrays, which live as long as any frontend of the diff. */
export function frontendObjects(c: FrontendColumns): IrFrontend[] {
  const n = c.n;
  // checked whole first: every offset and length from the message fits what came with it (a
  // subarray or slice past the end would clamp: a short Maglev table, an empty address)
  if (!(Number.isInteger(n) && n >= 0 && columnsHold(c, FRONTEND_ROW_COLUMNS, n) && typeof c.addrs === 'string' && offsetsFit(c.addrAt, n, c.addrs.length) &&
    Array.isArray(c.ranges) && offsetsFit(c.rangeAt, n, c.ranges.length) && c.backends?.length !== undefined && offsetsFit(c.backendsAt, n, c.backends.length) &&
    c.ownerPortName?.length === c.ownerService?.length && c.maglev1 && c.maglev2 && c.maglev4)) {
    throw new Error(`internal: frontend columns of ${n} rows are inconsistent`);
  }
  const out: IrFrontend[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const o = c.owner[i], kind = FRONTEND_KINDS[c.kind[i]], proto = PROTOS[c.proto[i]];
    if (!(o < c.ownerService.length) || kind === undefined || proto === undefined) throw new Error(`internal: frontend column row ${i} names no owner, kind or protocol`);
    const w = c.maglevWidth[i], m0 = c.maglevAt[i], m1 = m0 + c.maglevLen[i];
    const slots = w === 1 ? c.maglev1 : w === 2 ? c.maglev2 : w === 4 ? c.maglev4 : undefined;
    if (slots === undefined || !(m1 <= slots.length)) throw new Error(`internal: frontend columns of ${n} rows are inconsistent (row ${i}: Maglev slots ${m0}..${m1} of width ${w})`);
    const from = c.backendsAt[i], to = c.backendsAt[i + 1];
    const backends: number[] = new Array(to - from);
    for (let k = from; k < to; k++) backends[k - from] = c.backends[k];
    const maglev: MaglevSlots = slots.subarray(m0, m1);
    const r0 = c.rangeAt[i], r1 = c.rangeAt[i + 1];
    const f: IrFrontend = {
      id: c.id[i], service: c.ownerService[o], portName: c.ownerPortName[o], kind, addr: c.addrs.slice(c.addrAt[i], c.addrAt[i + 1]), family: c.family[i] as Family,
      port: c.port[i], proto, flags: c.flags[i], affinityTimeoutMs: c.affinityTimeoutMs[i],
      sourceRanges: r0 === r1 ? NO_RANGES : c.ranges.slice(r0, r1), backends, maglev,
    };
    if (c.clusterFront[i]) f.clusterFront = c.clusterFront[i];
    if (c.indexed[i] & 1) f.maglevIndexed = (c.indexed[i] & 2) !== 0;
    out[i] = f;
  }
  return out;
}
