// The table writer's record of every frontend id it wrote: where its Maglev words and CIDRs are
// placed (the same offsets in both table sets) and the service-map key it was written with (the
// Ir handed to an apply may be the caller's live object, already mutated to the next state, so
// the old keys are kept here, not read from the Ir).
//
// By column, indexed by id, like IdMap: a full sync records 10k frontends, and a Map of an object
// per frontend for each of the two records was 20k objects that all survive — scavenged, promoted,
// and fresh heap pages faulted in — on the worker's critical path. Memory follows the highest id.
import { FRONTEND_KIND_CODE, FRONTEND_KINDS, PROTO_CODE, PROTOS, type Family, type FrontendKind, type IrFrontend, type Proto } from '../ir/ir.js';
import { checkId } from '../ir/id-map.js';

/** Where a frontend's Maglev words and source-range CIDRs are (range allocator offsets). */
export interface FrontPlacement { maglevOff: number; maglevLen: number; cidrOff: number; cidrLen: number }

export class FrontRecords {
  /** FRONTEND_KIND_CODE + 1 of each id's frontend; 0: no record. */
  private kind = new Uint8Array(64);
  private port = new Uint16Array(64);
  private proto = new Uint8Array(64);
  private family = new Uint8Array(64);
  private addr: string[] = [];
  private mOff = new Int32Array(64);
  private mLen = new Int32Array(64);
  private cOff = new Int32Array(64);
  private cLen = new Int32Array(64);
  private count = 0;

  /** Records sized for ids up to `maxId` at once (a regrow's: no doubling copies). */
  static sized(maxId: number): FrontRecords {
    const r = new FrontRecords();
    r.room(maxId);
    return r;
  }

  get size(): number { return this.count; }

  has(id: number): boolean { return id >= 0 && id < this.kind.length && this.kind[id] !== 0; }

  /** Records frontend `f` written with its Maglev words at `maglevOff` and CIDRs at `cidrOff`. */
  set(f: IrFrontend, maglevOff: number, cidrOff: number): void {
    const id = f.id;
    this.room(id);
    if (this.kind[id] === 0) this.count++;
    this.kind[id] = FRONTEND_KIND_CODE[f.kind] + 1;
    this.port[id] = f.port; this.proto[id] = PROTO_CODE[f.proto]; this.family[id] = f.family;
    while (this.addr.length < id) this.addr.push(''); // (appended, never written past the end: a dense array)
    this.addr[id] = f.addr;
    this.mOff[id] = maglevOff; this.mLen[id] = f.maglev.length;
    this.cOff[id] = cidrOff; this.cLen[id] = f.sourceRanges.length;
  }

  delete(id: number): void {
    if (!this.has(id)) return;
    this.kind[id] = 0; this.addr[id] = '';
    this.count--;
  }

  /** Id `id`'s placement (it has a record). */
  maglevOff(id: number): number { return this.mOff[id]; }
  maglevLen(id: number): number { return this.mLen[id]; }
  cidrOff(id: number): number { return this.cOff[id]; }
  cidrLen(id: number): number { return this.cLen[id]; }

  /** Whether `f` has the service-map key id `id` was written with (the same entry, or none for
   * both: a ClusterPolicy frontend is not in the service map). */
  sameKey(id: number, f: IrFrontend): boolean {
    return this.addr[id] === f.addr && this.port[id] === f.port && this.proto[id] === PROTO_CODE[f.proto] && this.family[id] === f.family &&
      (this.kind[id] - 1 === FRONTEND_KIND_CODE.ClusterPolicy) === (f.kind === 'ClusterPolicy');
  }

  kindOf(id: number): FrontendKind { return FRONTEND_KINDS[this.kind[id] - 1]; }
  addrOf(id: number): string { return this.addr[id]; }
  familyOf(id: number): Family { return this.family[id] as Family; }
  portOf(id: number): number { return this.port[id]; }
  protoOf(id: number): Proto { return PROTOS[this.proto[id]]; }

  /** fn(id) for every recorded id, ascending. */
  forEachId(fn: (id: number) => void): void {
    const kind = this.kind;
    for (let id = 1; id < kind.length; id++) if (kind[id] !== 0) fn(id);
  }

  private room(id: number): void {
    checkId('FrontRecords', id);
    if (id < this.kind.length) return;
    let n = this.kind.length;
    while (n <= id) n *= 2;
    const grow = <A extends Uint8Array | Uint16Array | Int32Array>(a: A, make: (n: number) => A): A => { const b = make(n); b.set(a); return b; };
    this.kind = grow(this.kind, (k) => new Uint8Array(k)); this.port = grow(this.port, (k) => new Uint16Array(k));
    this.proto = grow(this.proto, (k) => new Uint8Array(k)); this.family = grow(this.family, (k) => new Uint8Array(k));
    this.mOff = grow(this.mOff, (k) => new Int32Array(k)); this.mLen = grow(this.mLen, (k) => new Int32Array(k));
    this.cOff = grow(this.cOff, (k) => new Int32Array(k)); this.cLen = grow(this.cLen, (k) => new Int32Array(k));
  }
}
