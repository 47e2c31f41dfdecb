// The addresses of frontends an apply removed, for steering with several workers on one interface
// (assembly/steer.ts keptFlowOwner): a TCP or SCTP flow (and an orphaned UDP one) outlives its
// Service as the kernel's conntrack entry does under kube-proxy, keyed to the worker of its client,
// but once its address names no frontend nothing in the tables says that a frame to it is a
// client's — for a LoadBalancer or external IP, or a node address of a NodePort, reached from a
// pod port, whose fanout places frames by destination. The core steers a frame to a retired
// address by its source.
// The core's exact set holds the latest STEER_RETIRED_MAX addresses removed; an older one goes into
// the core's filter (a bit an address, never cleared: docs/performance.md "Several workers on one
// interface"), counted `steer_retired_filtered`, and frames the filter alone steered are counted
// `steer_retired_filter_hits` — where the bound shows. An address that is a frontend's again
// stays retired (a frame to its live ports has a frontend; one to another of its ports goes by its
// source, as a removed port's kept flow needs). Not saved: at a restart
// the frontend addresses of restored flows that no frontend holds are retired again (restored).
// Cost: per apply, one look at the old record of each removed or upserted frontend id; the core's
// set is rewritten only when the list changed (at most STEER_RETIRED_MAX calls).
import * as L from '../../assembly/layout.js';
import type { IrDiff } from '../ir/diff.js';
import type { FrontRecords } from './front-records.js';
import { formatAddr, parseAddr, type Family } from '../util/addr.js';

export interface RetiredSetCore {
  readonly exports: { steer_retired_stage(): number; steer_retired_clear(): void; steer_retired_add(family: number): number; steer_retired_filter_add(): void };
  readonly u8: Uint8Array;
}

export class RetiredFronts {
  /** family + '|' + address, oldest first (a Map keeps insertion order). */
  private readonly list = new Map<string, { family: number; addr: string }>();
  /** Addresses moved out of the list into the core's filter. */
  filtered = 0;

  /** Addresses retired, oldest first (inspection). */
  get addresses(): string[] { return [...this.list.values()].map((a) => a.addr); }

  /** Notes the addresses `diff` takes from the frontends the table writer's records (`recs`,
   * before the apply: the Ir may already be the next one) hold, and rewrites the core's set if the
   * list changed. */
  note(core: RetiredSetCore, recs: FrontRecords, diff: IrDiff): void {
    let changed = false;
    const retire = (id: number, addr?: string) => {
      if (!recs.has(id) || recs.kindOf(id) === 'ClusterPolicy') return;
      const was = recs.addrOf(id), family = recs.familyOf(id);
      if (was === addr) return;
      const key = `${family}|${was}`;
      if (this.list.has(key)) this.list.delete(key);   // re-inserted: newest
      this.list.set(key, { family, addr: was });
      changed = true;
    };
    if (recs.size === 0) return;
    diff.frontendsRemove.forEach((id) => retire(id));
    diff.frontendsUpsert.forEach((f) => retire(f.id, f.addr));
    if (changed) this.write(core);
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
    while (this.list.size > L.STEER_RETIRED_MAX) {
      const [key, a] = this.list.entries().next().value!;
      this.list.delete(key);
      core.u8.set(parseAddr(a.addr).bytes, stage);
      core.exports.steer_retired_filter_add();
      this.filtered++;
    }
    core.exports.steer_retired_clear();
    for (const a of this.list.values()) {
      core.u8.set(parseAddr(a.addr).bytes, stage);
      core.exports.steer_retired_add(a.family);
    }
  }
}
