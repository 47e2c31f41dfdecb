// What compiling one service yields: the ids it uses (CompiledService, scratch reused for every
// service) and what is kept of them for the service's lifetime (ServiceOutput) — where its ids are
// looked up when it is recompiled.
import type { FrontendKind } from '../ir/ir.js';

const NO_WARNINGS: string[] = Object.freeze([]) as unknown as string[];

/** Overwrites what `a` refers to with `none`, keeping its length: scratch holds no references
 * between compiles, and the next compile's stores stay in bounds (no append per store). */
export function dropRefs<T>(a: T[], none: T): void { a.fill(none); }

/** One service's ids as compileService leaves them: frontIds[0 .. nFronts) with each frontend's
 * kind and address (what emit() checks a port's duplicates by), backIds[0 .. nBackIds), and
 * warnings. Counts rather than `length = 0` between services: truncating drops an array's
 * backing store, so the next push allocates again. */
export class CompiledService {
  readonly frontIds: number[] = [];
  readonly frontKinds: FrontendKind[] = [];
  readonly frontAddrs: string[] = [];
  nFronts = 0;
  readonly backIds: number[] = [];
  nBackIds = 0;
  readonly warnings: string[] = [];
  // (length = 0 only when there is something to drop: setting an array's length is a call into
  // the runtime, once per service)
  reset(): void { this.nFronts = 0; this.nBackIds = 0; if (this.warnings.length !== 0) this.warnings.length = 0; }
  /** Drops every reference (between changes). */
  release(): void { this.reset(); dropRefs(this.frontAddrs, ''); }
}

/** What a service compiled to last time: its frontend and backend ids (deduplicated, distinct).
 * Kept for every service, so compact: ids are mostly a run of consecutive numbers (always so on
 * a full compile), kept as (first, count) without an array. */
export class ServiceOutput {
  // ids as a run from .. from + count - 1 when the list is null (fields, not an object per list:
  // this is one object a service)
  private readonly frontList: number[] | null;
  private readonly frontFrom: number;
  readonly frontCount: number;
  private readonly backList: number[] | null;
  private readonly backFrom: number;
  readonly backCount: number;
  readonly warnings: string[];
  /** Copies what it keeps: `c` is scratch. */
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
  backIds(): number[] { return this.backList ? this.backList.slice() : idRun(this.backFrom, this.backCount); }
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
