// The layout hash (assembly/hash.ts's, constants in assembly/layout.ts), in TypeScript: the one
// TypeScript copy. Flow selection, the service map's slots and Maglev permutations must agree bit
// for bit between the core, the table writer, the compiler, the reference model and tests
// (test/layout.test.js checks this copy against the core's).
import * as L from '../../assembly/layout.js';

/** The hash state before the first word. */
export const HASH_START = L.HASH_SEED | 0;
const M1 = L.HASH_M1 | 0, M2 = L.HASH_M2 | 0, ADD = L.HASH_ADD | 0, F1 = L.HASH_F1 | 0, F2 = L.HASH_F2 | 0;

/** One word into the hash state. int32 arithmetic throughout (Math.imul, | 0): the same bits as
 * the core's u32 arithmetic, and no heap numbers in the compiler's key hashing, which calls this
 * for every word of 100k keys. */
export function hashMix(h: number, w: number): number {
  h ^= Math.imul(w, M1);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, M2) + ADD) | 0;
}

/** The final avalanche: the hash of the words mixed into `h`, as a u32. */
export function hashFinish(h: number): number {
  h ^= h >>> 16; h = Math.imul(h, F1);
  h ^= h >>> 13; h = Math.imul(h, F2);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The layout hash of `words` (u32 values). */
export function hashWords(words: ArrayLike<number>): number {
  let h = HASH_START;
  for (let i = 0; i < words.length; i++) h = hashMix(h, words[i] | 0);
  return hashFinish(h);
}

/** Little-endian u32 words of a 16-byte address, as the core loads them. */
export function addrWords(b: Uint8Array, out: number[] = []): number[] {
  for (let i = 0; i < 16; i += 4) out.push((b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0);
  return out;
}

/** Maglev key: src addr, dst addr, sport | dport << 16, proto. Ports in host order. */
export function flowHash(src: Uint8Array, dst: Uint8Array, sport: number, dport: number, proto: number): number {
  const w = addrWords(src); addrWords(dst, w);
  w.push(((sport & 0xffff) | ((dport & 0xffff) << 16)) >>> 0, proto >>> 0);
  return hashWords(w);
}

/** Affinity key: client addr, frontend id. */
export function affinityHash(client: Uint8Array, frontId: number): number {
  const w = addrWords(client); w.push(frontId >>> 0);
  return hashWords(w);
}

/** The Maglev hash of a sessionAffinity miss: the flow hash mixed with the clock (ms), so a
 * client whose affinity expired is picked afresh (assembly/select.ts freshPickHash). */
export function freshPickHash(flowHash: number, now: number): number {
  return hashFinish(hashMix(hashMix(HASH_START, flowHash | 0), now | 0));
}
