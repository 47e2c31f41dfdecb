// The flow hash of assembly/layout.ts, in TypeScript: Maglev selection must agree bit for bit
// between the core, the reference model and tests.
import * as L from '../../assembly/layout.js';

export function hashWords(words: ArrayLike<number>): number {
  let h = L.HASH_SEED >>> 0;
  for (let i = 0; i < words.length; i++) {
    h = (h ^ Math.imul(words[i] >>> 0, L.HASH_M1)) >>> 0;
    h = ((h << 13) | (h >>> 19)) >>> 0;
    h = (Math.imul(h, L.HASH_M2) + L.HASH_ADD) >>> 0;
  }
  h ^= h >>> 16; h = Math.imul(h, L.HASH_F1) >>> 0;
  h ^= h >>> 13; h = Math.imul(h, L.HASH_F2) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
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
