// The addresses of frontends an apply removed, for steering with several workers on one interface
// (assembly/steer.ts keptFlowOwner): a TCP or SCTP flow (and an orphaned UDP one) outlives its
// Service as the kernel's conntrack entry does under kube-proxy, keyed to the worker of its client,
// but once its address names no frontend nothing in the tables says that a frame to it is a
// client's — for a LoadBalancer or external IP, or a node address of a NodePort, reached from a
// pod port, whose fanout places frames by destination. The core steers a frame to a retired
// address by its source.
// The core's exact set holds the latest STEER_RETIRED_MAX addresses removed; an older one goes into
// the core's filter (a bit an address: docs/performance.md "Several workers on one interface"),
// counted `steer_retired_filtered`, and frames the filter alone steered are counted
// `steer_retired_filter_hits` — where the bound shows. Bits no worker's flow needs any more are
// cleared every STEER_RETIRED_SWEEP_EVERY retirements (retired-sweep.ts: the rule and why it keeps
// every live flow's; counters `steer_retired_filter_bits`, `_sweeps`, `_cleared`; without the
// workers' shared block, as in a core alone, never). An address that is a frontend's again
// stays retired (a frame to its live ports has a frontend; one to another of its ports goes by its
// source, as a removed port's kept flow needs). Not saved: at a restart
// the frontend addresses of restored flows that no frontend holds are retired again (restored).
// Cost: per apply, one look at the old record of each removed or upserted frontend id; the core's
// set is rewritten only when the list changed (at most STEER_RETIRED_MAX calls).
import * as L from '../../assembly/layout.js';
import type { IrDiff } from '../ir/diff.js';
import type { FrontRecords } from './front-records.js';
import { formatAddr, parseAddr, type Family } from '../util/addr.js';
import { FILTER_WORDS, RetiredSweep, filterBitAt } from './retired-sweep.js';

export interface RetiredSetCore {
  readonly exports: {
    steer_retired_stage(): number; steer_retired_clear(): void; steer_retired_add(family: number): number; steer_retired_filter_add(): void;
    steer_retired_filter(): number; steer_retired_filter_set(bits: number): void;
  };
  readonly u8: Uint8Array;
  readonly u32: Uint32Array;
  readonly map: { ctFlows: number; ctFlowsMax: number };
}

/** Retirements between two sweeps of the filter: the filter gains at most this many bits between
 * them, past what live flows hold (1/64 of its bits); each sweep scans every worker's flow table. */
export const STEER_RETIRED_SWEEP_EVERY = 1024;

export class RetiredFronts {
  /** family + '|' + address, oldest first (a Map keeps insertion order). */
  private readonly list = new Map<string, { family: number; addr: string }>();
  /** Addresses moved out of the list into the core's filter. */
  filtered = 0;
  /** Sweeps of the filter done, and the bits they cleared. */
  sweeps = 0;
  cleared = 0;
  /** Retirements between sweeps (tests lower it). */
  sweepEvery = STEER_RETIRED_SWEEP_EVERY;
  /** Applies noted (every worker gets every apply: the count names the same point in all). */
  private applies = 0;
  /** Addresses retired since the last sweep began. */
  private retirements = 0;
  /** The apply count this worker's sweep began at (0: none under way), and the filter bits set
   * since; the count this worker's latest scan was taken at. */
  private mark = 0;
  private since?: Uint32Array;
  private scannedAt = 0;
  private readonly sweep?: RetiredSweep;

  /** `sweep`: the block the workers sharing the interfaces age the filter by (retired-sweep.ts). */
  constructor(sweep?: RetiredSweep) { this.sweep = sweep; }

  /** Addresses retired, oldest first (inspection). */
  get addresses(): string[] { return [...this.list.values()].map((a) => a.addr); }

  /** Notes the addresses `diff` takes from the frontends the table writer's records (`recs`,
   * before the apply: the Ir may already be the next one) hold, and rewrites the core's set if the
   * list changed. */
  note(core: RetiredSetCore, recs: FrontRecords, diff: IrDiff): void {
    this.applies++;
    let changed = false, retired = 0;
    const retire = (id: number, addr?: string) => {
      if (!recs.has(id) || recs.kindOf(id) === 'ClusterPolicy') return;
      const was = recs.addrOf(id), family = recs.familyOf(id);
      if (was === addr) return;
      const key = `${family}|${was}`;
      if (this.list.has(key)) this.list.delete(key);   // re-inserted: newest
      this.list.set(key, { family, addr: was });
      changed = true; retired++;
    };
    if (recs.size === 0) return;
    diff.frontendsRemove.forEach((id) => retire(id));
    diff.frontendsUpsert.forEach((f) => retire(f.id, f.addr));
    if (this.sweep && retired > 0) {
      this.retirements += retired;
      // a sweep begins at this apply, before its additions to the filter (kept, as all after
      // them); the scans are taken by the workers' polls, off the apply's answer (retired-sweep.ts).
      // One that begins before the last one swept replaces it (that one's bits are this one's older)
      if (this.retirements >= this.sweepEvery) {
        this.retirements = 0;
        this.mark = this.applies;
        this.since = new Uint32Array(FILTER_WORDS);
        this.sweep.ask(this.mark);
      }
    }
    if (changed) this.write(core);
  }

  /** Publishes this worker's flows' bits, taken at the apply count now. */
  private scan(core: RetiredSetCore): void {
    const bits = new Uint32Array(FILTER_WORDS), u32 = core.u32, u8 = core.u8, base = core.map.ctFlows, max = core.map.ctFlowsMax;
    if (base & 3) throw new Error('flow table not word-aligned');
    // every entry in use, expired or not (its frames may still come before the expiry sweep frees it)
    for (let f = 1, e = base + L.CT_SIZE; f <= max; f++, e += L.CT_SIZE) {
      if (u8[e + L.CT_STATE] === L.CTS_NONE) continue;
      const b = filterBitAt(u32, (e + L.CT_VIP) >>> 2);
      bits[b >>> 5] |= 1 << (b & 31);
    }
    this.sweep!.publish(this.applies, bits);
    this.scannedAt = this.applies;
  }

  /** Takes a scan when a worker asks for one from a point this one has reached and its latest is
   * older; once every worker's scan was taken at or after this one's mark, keeps of its filter the
   * bits some worker's flow needs and those set since the mark. The worker calls it between
   * batches: a look at each worker's asked count when nothing is due. */
  poll(core: RetiredSetCore): void {
    const sweep = this.sweep;
    if (!sweep) return;
    const asked = sweep.asked();
    if (asked > this.scannedAt && asked <= this.applies) this.scan(core);
    if (this.mark === 0 || !sweep.scannedFrom(this.mark)) return;
    const at = core.exports.steer_retired_filter();
    if (at & 3) throw new Error('retired filter not word-aligned');
    const filter = core.u32.subarray(at >>> 2, (at >>> 2) + FILTER_WORDS);
    const was = popcount(filter);
    this.sweep!.keepNeeded(filter);
    const since = this.since!;
    for (let k = 0; k < FILTER_WORDS; k++) filter[k] = filter[k]! | since[k]!;
    const now = popcount(filter);
    core.exports.steer_retired_filter_set(now);
    this.sweeps++; this.cleared += was - now;
    this.mark = 0; this.since = undefined;
  }

  /** Bits set in the core's filter now (counter steer_retired_filter_bits). */
  filterBits(core: RetiredSetCore): number {
    const at = core.exports.steer_retired_filter() >>> 2;
    return popcount(core.u32.subarray(at, at + FILTER_WORDS));
  }

  /** Notes the frontend addresses (16 bytes each, with their family) of restored flows that no
   * frontend holds now (the checkpoint outlived their Service), and rewrites the core's set if the
   * list changed. */
  restored(core: RetiredSetCore, addrs: Array<{ family: number; bytes: Uint8Array }>): void {
    let changed = false;
    for (const a of addrs) {
      const addr = formatAddr(a.bytes, a.family as Family);
      const key = `${a.family}|${addr}`;
      if (this.list.has(key)) continue;
      this.list.set(key, { family: a.family, addr });
      changed = true;
    }
    if (changed) this.write(core);
  }

  /** The list into the core's set; its oldest past STEER_RETIRED_MAX into the core's filter. */
  private write(core: RetiredSetCore): void {
    const stage = core.exports.steer_retired_stage();
    if (stage & 3) throw new Error('retired stage not word-aligned');
    while (this.list.size > L.STEER_RETIRED_MAX) {
      const [key, a] = this.list.entries().next().value!;
      this.list.delete(key);
      core.u8.set(parseAddr(a.addr).bytes, stage);
      core.exports.steer_retired_filter_add();
      this.filtered++;
      if (this.since) { const b = filterBitAt(core.u32, stage >>> 2); this.since[b >>> 5] = this.since[b >>> 5]! | (1 << (b & 31)); }
    }
    core.exports.steer_retired_clear();
    for (const a of this.list.values()) {
      core.u8.set(parseAddr(a.addr).bytes, stage);
      core.exports.steer_retired_add(a.family);
    }
  }
}

function popcount(words: Uint32Array): number {
  let n = 0;
  for (let k = 0; k < words.length; k++) { let x = words[k]!; x -= (x >>> 1) & 0x55555555; x = (x & 0x33333333) + ((x >>> 2) & 0x33333333); n += (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24); }
  return n;
}
