// The compiler's Maglev table builder: produces exactly the table of src/core/maglev.ts
// buildMaglev() (test/compiler-maglev.test.js checks it on random inputs) but
//  - hashes each key straight from its characters (no word arrays: two hashes per backend were
//    ~40 ms of garbage at 100k backends),
//  - walks each backend's permutation incrementally (pos += skip, branch-free wrap) instead of
//    computing (offset + next * skip) % M per probe — the probe loop is the cost that remains:
//    about M·ln M probes per table, each an unpredictable branch,
//  - reuses module-level scratch arrays and skips the sort when keys arrive sorted (the compiler
//    sorts them already).
import * as L from '../../assembly/layout.js';

const TAG_OFFSET = 0x6d61676c, TAG_SKIP = 0x6c657631;

function mix(h: number, w: number): number {
  h = (h ^ Math.imul(w, L.HASH_M1)) >>> 0;
  h = ((h << 13) | (h >>> 19)) >>> 0;
  return (Math.imul(h, L.HASH_M2) + L.HASH_ADD) >>> 0;
}
function finish(h: number): number {
  h ^= h >>> 16; h = Math.imul(h, L.HASH_F1) >>> 0;
  h ^= h >>> 13; h = Math.imul(h, L.HASH_F2) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** hashWords([tag, ...little-endian UTF-16 pairs of s, s.length]) for both Maglev tags at once —
 * the words buildMaglev() hashes, without building them. Writes into hashOut[0..1]. */
function keyHashes(s: string, hashOut: Uint32Array): void {
  let a = mix(L.HASH_SEED >>> 0, TAG_OFFSET), b = mix(L.HASH_SEED >>> 0, TAG_SKIP);
  const n = s.length;
  let i = 0;
  for (; i + 1 < n; i += 2) { const w = (s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16)) >>> 0; a = mix(a, w); b = mix(b, w); }
  if (i < n) { const w = s.charCodeAt(i); a = mix(a, w); b = mix(b, w); }
  a = mix(a, n); b = mix(b, n);
  hashOut[0] = finish(a); hashOut[1] = finish(b);
}

/** Carves zeroed tables out of shared 1 MiB buffers. One ArrayBuffer per table costs a backing
 * store allocation and external-memory GC pressure each — at 10k tables that is most of a full
 * compile. The price: a slab stays alive while any table in it does (at most one slab per ~1000
 * tables of 251 words), so it is used for bulk compiles only, whose tables mostly live and die
 * together. */
export function slabAllocator(slabWords = 1 << 18): (words: number) => Uint32Array {
  let slab: ArrayBuffer | null = null, used = 0;
  return (words) => {
    if (words > slabWords >> 2) return new Uint32Array(words);
    if (!slab || used + words > slabWords) { slab = new ArrayBuffer(slabWords * 4); used = 0; }
    const t = new Uint32Array(slab, used * 4, words);
    used += words;
    return t;
  };
}

// scratch for one build (the builder is synchronous and not re-entrant): grown, never shrunk
let pos = new Uint32Array(64), skip = new Uint32Array(64), idOf = new Uint32Array(64);
const hashes = new Uint32Array(2);

function isSorted(keys: string[]): boolean {
  for (let i = 1; i < keys.length; i++) if (keys[i - 1] > keys[i]) return false;
  return true;
}

/** Same contract as buildMaglev(ids, keys, m): `keys[i]` is the stable name of backend `ids[i]`.
 * `alloc` must return a zero-filled table of the given length. */
export function maglevTable(ids: number[], keys: string[], m: number, alloc?: (words: number) => Uint32Array): Uint32Array {
  const n = ids.length;
  const table = n && alloc ? alloc(m) : new Uint32Array(n ? m : 0);
  if (n === 0) return table;
  if (n === 1) { table.fill(ids[0]); return table; }
  if (pos.length < n) { const c = Math.max(n, pos.length * 2); pos = new Uint32Array(c); skip = new Uint32Array(c); idOf = new Uint32Array(c); }
  // buildMaglev's order: by key, so the table depends on the set, not on the listed order
  let order: number[] | null = null;
  if (!isSorted(keys)) {
    order = ids.map((_, i) => i);
    order.sort((a, b) => (keys[a] < keys[b] ? -1 : keys[a] > keys[b] ? 1 : 0));
  }
  for (let j = 0; j < n; j++) {
    const k = order ? order[j] : j;
    keyHashes(keys[k], hashes);
    pos[j] = hashes[0] % m;
    skip[j] = (hashes[1] % (m - 1)) + 1;
    idOf[j] = ids[k];
  }
  // id 0 marks a free slot (backend ids are >= 1); c - m when c >= m, without a branch that
  // mispredicts on every wrap
  let filled = 0;
  for (;;) {
    for (let j = 0; j < n; j++) {
      let c = pos[j];
      const s = skip[j];
      while (table[c] !== 0) { c += s; c -= m & ((m - 1 - c) >> 31); }
      table[c] = idOf[j];
      c += s; c -= m & ((m - 1 - c) >> 31);
      pos[j] = c;
      if (++filled === m) return table;
    }
  }
}
