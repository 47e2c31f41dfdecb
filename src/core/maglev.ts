// Maglev consistent hashing (Eisenbud et al., NSDI 2016, section 3.4): each backend gets a
// permutation of the M table slots from two hashes of its name; backends take turns claiming their
// next preferred free slot. Removing one backend moves only ~1/N of the slots it did not own.
// Memory: M x 4 bytes per frontend (u32 backend ids). M is prime.
import { hashWords } from './hash.js';

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

function strWords(s: string): number[] {
  const w: number[] = [];
  for (let i = 0; i < s.length; i += 2) w.push((s.charCodeAt(i) | ((s.charCodeAt(i + 1) || 0) << 16)) >>> 0);
  w.push(s.length);
  return w;
}

/** Builds the table. `keys[i]` is the stable name of backend `ids[i]` (e.g. "10.0.0.5:8080"). */
export function buildMaglev(ids: number[], keys: string[], m: number): Uint32Array {
  const table = new Uint32Array(ids.length ? m : 0);
  const n = ids.length;
  if (n === 0) return table;
  // sort by key so the table depends on the set, not on the order it was listed in
  const order = ids.map((_, i) => i).sort((a, b) => (keys[a] < keys[b] ? -1 : keys[a] > keys[b] ? 1 : 0));
  const offset = new Uint32Array(n), skip = new Uint32Array(n), next = new Uint32Array(n);
  for (let j = 0; j < n; j++) {
    const w = strWords(keys[order[j]]);
    offset[j] = hashWords([0x6d61676c, ...w]) % m;
    skip[j] = (hashWords([0x6c657631, ...w]) % (m - 1)) + 1;
  }
  let filled = 0;
  for (;;) {
    for (let j = 0; j < n; j++) {
      let c = (offset[j] + next[j] * skip[j]) % m;
      while (table[c] !== 0) { next[j]++; c = (offset[j] + next[j] * skip[j]) % m; }
      table[c] = ids[order[j]];
      next[j]++;
      if (++filled === m) return table;
    }
  }
}
