// How large a frontend's Maglev table is: M, a prime from a short list (the table writer's range
// allocator reuses ranges by exact size, so few sizes keep fragmentation low). Validation checks
// the wdp.io/maglev-table-size annotation against the list; the compiler picks the default.

export const MAGLEV_SIZES = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521];
export const MAGLEV_MAX = 65521;

/** Slots per backend the default table size aims for. Backends take slots in turns, so each one
 * owns floor or ceil of M/N slots: the worst share is off 1/N by at most N/M (5% here; 3.6% for
 * 10 backends in 251 slots). The paper's M >= 100·N bounds that at 1% but costs 4x the memory
 * and ~5x the build time (M·ln M probes per table): at 10k services x 10 endpoints that is 40 MB
 * and most of a 100 ms compile budget. Services that need finer shares set the
 * wdp.io/maglev-table-size annotation. Measured figures: docs/api.md, "Control-plane performance". */
export const MAGLEV_SLOTS_PER_BACKEND = 20;

/** Smallest listed prime >= MAGLEV_SLOTS_PER_BACKEND x backends (largest listed beyond that). */
export function defaultMaglevSize(backends: number): number {
  for (const m of MAGLEV_SIZES) if (m >= backends * MAGLEV_SLOTS_PER_BACKEND) return m;
  return MAGLEV_MAX;
}
