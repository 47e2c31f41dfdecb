// Maglev consistent hashing as the paper writes it (Eisenbud et al., NSDI 2016, section 3.4): the
// reference the compiler's builder (src/compiler/maglev.ts) is checked against, and what tests
// use to build expected tables. Each backend gets a permutation of the M table slots from two
// hashes of its name; backends take turns claiming their next preferred free slot.
import { hashWords } from '../../dist/src/core/hash.js';

export { MAGLEV_SIZES, MAGLEV_MAX, defaultMaglevSize } from '../../dist/src/ir/maglev-size.js';

function strWords(s) {
  const w = [];
  for (let i = 0; i < s.length; i += 2) w.push((s.charCodeAt(i) | ((s.charCodeAt(i + 1) || 0) << 16)) >>> 0);
  w.push(s.length);
  return w;
}

/** The table (u32 backend ids). `keys[i]` is the stable name of backend `ids[i]` (e.g. "10.0.0.5:8080"). */
export function buildMaglev(ids, keys, m) {
  const table = new Uint32Array(ids.length ? m : 0);
  const n = ids.length;
  if (n === 0) return table;
  // sorted by key so the table depends on the set, not on the order it was listed in
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
