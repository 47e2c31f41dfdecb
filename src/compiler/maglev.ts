// The compiler's Maglev table builder: produces exactly the table of src/core/maglev.ts
// buildMaglev() (test/compiler-maglev.test.js checks it on random inputs) but walks each
// backend's permutation incrementally (pos += skip, wrap by subtraction) instead of computing
// (offset + next * skip) % M per probe, and reuses one scratch table. At 10k services x 1021
// slots this is the difference between seconds and tens of milliseconds of a full compile.
import { hashWords } from '../core/hash.js';

function keyWords(s: string, tag: number): number[] {
  const w: number[] = [tag];
  for (let i = 0; i < s.length; i += 2) w.push((s.charCodeAt(i) | ((s.charCodeAt(i + 1) || 0) << 16)) >>> 0);
  w.push(s.length);
  return w;
}

/** Carves zeroed tables out of shared 1 MiB buffers. One ArrayBuffer per table costs a backing
 * store allocation and external-memory GC pressure each — at 10k tables that is most of a full
 * compile. The price: a slab stays alive while any table in it does (at most one slab per ~250
 * tables of 1021 words), so it is used for bulk compiles only, whose tables mostly live and die
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

/** Same contract as buildMaglev(ids, keys, m): `keys[i]` is the stable name of backend `ids[i]`.
 * `alloc` must return a zero-filled table of the given length. */
export function maglevTable(ids: number[], keys: string[], m: number, alloc?: (words: number) => Uint32Array): Uint32Array {
  const n = ids.length;
  const table = n && alloc ? alloc(m) : new Uint32Array(n ? m : 0);
  if (n === 0) return table;
  const order = ids.map((_, i) => i);
  if (n > 1) order.sort((a, b) => (keys[a] < keys[b] ? -1 : keys[a] > keys[b] ? 1 : 0));
  if (n === 1) { table.fill(ids[0]); return table; }
  const pos = new Uint32Array(n), skip = new Uint32Array(n), id = new Uint32Array(n);
  for (let j = 0; j < n; j++) {
    const k = keys[order[j]];
    pos[j] = hashWords(keyWords(k, 0x6d61676c)) % m;
    skip[j] = (hashWords(keyWords(k, 0x6c657631)) % (m - 1)) + 1;
    id[j] = ids[order[j]];
  }
  let filled = 0;
  for (;;) {
    for (let j = 0; j < n; j++) {
      let c = pos[j];
      const s = skip[j];
      while (table[c] !== 0) { c += s; if (c >= m) c -= m; }
      table[c] = id[j];
      c += s; if (c >= m) c -= m;
      pos[j] = c;
      if (++filled === m) return table;
    }
  }
}
