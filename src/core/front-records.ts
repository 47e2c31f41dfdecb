// The table writer's record of every frontend id it wrote: where its Maglev range and CIDRs are
// placed (the same offsets in both table sets) and the service-map key it was written with (the
// Ir handed to an apply may be the caller's live object, already mutated to the next state, so
// the old keys are kept here, not read from the Ir).
//
// By column, indexed by id, like IdMap: a full sync records 10k frontends, and a Map of an object
// per frontend for each of the two records was 20k objects that all survive — scavenged, promoted,
// and fresh heap pages faulted in — on the worker's critical path. The columns come in chunks of
// 4096 ids, as the compiler's tables do (src/compiler/backend-table.ts): a new id past the end adds
// a chunk and copies nothing (doubling copied every column). Memory follows the highest id.
//
// Why the key is kept here, when the compiler's frontend table holds the same fields: the writer
// runs in the forwarding worker (src/daemon/worker-apply.ts), and that table is in the main
// thread; the worker's own Ir is patched to the next state before the write (patchIrInPlace), and
// an in-process caller hands its live Ir, already mutated. The key a write must delete from the
// service map (and the ClusterIP address a frontend leaves) is known only here. The placements
// (Maglev and CIDR offsets) are the writer's own.
import { FRONTEND_KIND_CODE, FRONTEND_KINDS, PROTO_CODE, PROTOS, type Family, type FrontendKind, type IrFrontend, type Proto } from '../ir/ir.js';
import { checkId } from '../ir/id-map.js';
import { maglevRangeWords } from './maglev-range.js';

const CHUNK_BITS = 12, CHUNK = 1 << CHUNK_BITS, MASK = CHUNK - 1;

/** Ids k * 4096 .. k * 4096 + 4095 of every column. */
class Chunk {
  /** FRONTEND_KIND_CODE + 1 of each id's frontend; 0: no record. */
  readonly kind = new Uint8Array(CHUNK);
  readonly port = new Uint16Array(CHUNK);
  readonly proto = new Uint8Array(CHUNK);
  readonly family = new Uint8Array(CHUNK);
  readonly addr: string[] = new Array<string>(CHUNK).fill('');
  /** The Service port it belongs to: its service and port name (one string each a Service port:
   * references, not copies). */
  readonly service: string[] = new Array<string>(CHUNK).fill('');
  readonly portName: string[] = new Array<string>(CHUNK).fill('');
  readonly mOff = new Int32Array(CHUNK);
  readonly mLen = new Int32Array(CHUNK);
  readonly cOff = new Int32Array(CHUNK);
  readonly cLen = new Int32Array(CHUNK);
}

export class FrontRecords {
  private chunks: Chunk[] = [];
  private count = 0;

  /** Records with the chunks for ids up to `maxId` allocated at once (a regrow's). */
  static sized(maxId: number): FrontRecords {
    const r = new FrontRecords();
    r.room(maxId);
    return r;
  }

  get size(): number { return this.count; }

  has(id: number): boolean {
    const c = this.chunks[id >>> CHUNK_BITS];
    return c !== undefined && (id >>> 0) === id && c.kind[id & MASK] !== 0;
  }

  /** Records frontend `f` written with its Maglev range at word `maglevOff` and CIDRs at `cidrOff`. */
  set(f: IrFrontend, maglevOff: number, cidrOff: number): void {
    const id = f.id, c = this.room(id), i = id & MASK;
    if (c.kind[i] === 0) this.count++;
    c.kind[i] = FRONTEND_KIND_CODE[f.kind] + 1;
    c.port[i] = f.port; c.proto[i] = PROTO_CODE[f.proto]; c.family[i] = f.family; c.addr[i] = f.addr;
    c.service[i] = f.service; c.portName[i] = f.portName;
    c.mOff[i] = maglevOff; c.mLen[i] = maglevRangeWords(f.maglev.length, f.backends.length);
    c.cOff[i] = cidrOff; c.cLen[i] = f.sourceRanges.length;
  }

  delete(id: number): void {
    if (!this.has(id)) return;
    const c = this.chunks[id >>> CHUNK_BITS], i = id & MASK;
    c.kind[i] = 0; c.addr[i] = ''; c.service[i] = ''; c.portName[i] = '';
    this.count--;
  }

  /** Id `id`'s placement (it has a record): its Maglev range's first word and words, its CIDRs'. */
  maglevOff(id: number): number { return this.chunks[id >>> CHUNK_BITS].mOff[id & MASK]; }
  maglevLen(id: number): number { return this.chunks[id >>> CHUNK_BITS].mLen[id & MASK]; }
  cidrOff(id: number): number { return this.chunks[id >>> CHUNK_BITS].cOff[id & MASK]; }
  cidrLen(id: number): number { return this.chunks[id >>> CHUNK_BITS].cLen[id & MASK]; }

  /** Whether `f` has the service-map key id `id` was written with (the same entry, or none for
   * both: a ClusterPolicy frontend is not in the service map). */
  sameKey(id: number, f: IrFrontend): boolean {
    const c = this.chunks[id >>> CHUNK_BITS], i = id & MASK;
    return c.addr[i] === f.addr && c.port[i] === f.port && c.proto[i] === PROTO_CODE[f.proto] && c.family[i] === f.family &&
      (c.kind[i] - 1 === FRONTEND_KIND_CODE.ClusterPolicy) === (f.kind === 'ClusterPolicy');
  }

  kindOf(id: number): FrontendKind { return FRONTEND_KINDS[this.chunks[id >>> CHUNK_BITS].kind[id & MASK] - 1]; }
  addrOf(id: number): string { return this.chunks[id >>> CHUNK_BITS].addr[id & MASK]; }
  familyOf(id: number): Family { return this.chunks[id >>> CHUNK_BITS].family[id & MASK] as Family; }
  portOf(id: number): number { return this.chunks[id >>> CHUNK_BITS].port[id & MASK]; }
  /** "service|portName": the Service port id `id` belongs to. */
  servicePortOf(id: number): string { const c = this.chunks[id >>> CHUNK_BITS], i = id & MASK; return `${c.service[i]}|${c.portName[i]}`; }
  protoOf(id: number): Proto { return PROTOS[this.chunks[id >>> CHUNK_BITS].proto[id & MASK]]; }

  /** fn(id) for every recorded id, ascending. */
  forEachId(fn: (id: number) => void): void {
    const chunks = this.chunks;
    for (let k = 0; k < chunks.length; k++) {
      const kind = chunks[k].kind, base = k << CHUNK_BITS;
      for (let i = 0; i < CHUNK; i++) if (kind[i] !== 0 && base + i !== 0) fn(base + i);
    }
  }

  /** The chunk of `id` (checked), allocated with those below it if need be: nothing is copied. */
  private room(id: number): Chunk {
    checkId('FrontRecords', id);
    const k = id >>> CHUNK_BITS;
    while (this.chunks.length <= k) this.chunks.push(new Chunk());
    return this.chunks[k];
  }
}
