// The compiler's Maglev table builder: produces exactly the table of the paper's algorithm
// (test/lib/maglev-reference.js; test/compiler-maglev.test.js checks it on random inputs) but
//  - hashes each key straight from its characters in int32 arithmetic (no word arrays: two
//    hashes per backend were ~40 ms of garbage at 100k backends; no >>> 0 until the end, which
//    halved what remained),
//  - walks each backend's permutation incrementally (pos += skip, branch-free wrap) instead of
//    computing (offset + next * skip) % M per probe,
//  - reuses module-level scratch arrays and skips the sort when keys arrive sorted (the compiler
//    sorts them already).
// What the probe loop costs: each turn is one claim after a random number of failed probes, so
// the loop's exit branch mispredicts about once per turn, and that (~20 cycles x M turns), more
// than the probes themselves, was most of the time. Two phases therefore:
//  1. blocks of 4: a turn looks at its next 4 permutation slots at once and picks the first free
//     one without branching (occupancy is a 0 / -1 byte array, so the pick is masks); it loops
//     only if all 4 are taken. While the table is mostly empty that removes the misprediction;
//     it costs 4 loads per turn where 1 would often do. -25% at M=251 x 10 backends.
//  2. the last F free slots, only for many backends (N >= 2F, F = sqrt(M)/2): M is prime, so
//     backend j meets slot c at step k = (c - offset_j) * skip_j^-1 mod M of its permutation,
//     and its next claim is the free slot with the smallest k still ahead of it (free slots it
//     already passed do not exist: it passed only taken ones). One turn is then a scan of the f
//     free slots, O(f), with a mulmod each, instead of ~M/f probes. That pays only where the
//     probe count really is ~M/f per turn: with few backends each one's position has already
//     run past most taken slots (total probes <= N·M; at M=251 x 10 backends ~1050 probes, not
//     M·ln M ~1500), and the scan measured slower than probing. Measured: -5..10% at 1021 x 50,
//     +5..25% at 251 x 2..10.
import { hashFinish as finish, hashMix as mix, HASH_START } from '../core/hash.js';
import { maglevSlotBytes } from '../core/maglev-range.js';

// the first word of each hash is its tag
const OFFSET0 = mix(HASH_START, 0x6d61676c), SKIP0 = mix(HASH_START, 0x6c657631);

/** hashWords([tag, ...little-endian UTF-16 pairs of s, s.length]) for both Maglev tags at once —
 * the words buildMaglev() hashes, without building them. Writes into hashOut[0..1]. */
function keyHashes(s: string, hashOut: Uint32Array): void {
  let a = OFFSET0, b = SKIP0;
  const n = s.length;
  let i = 0;
  for (; i + 1 < n; i += 2) { const w = s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16); a = mix(a, w); b = mix(b, w); }
  if (i < n) { const w = s.charCodeAt(i); a = mix(a, w); b = mix(b, w); }
  a = mix(a, n); b = mix(b, n);
  hashOut[0] = finish(a); hashOut[1] = finish(b);
}

// scratch for keyHashesAddrPort: the UTF-16 units of "addr:port" (an IPv6 address is at most 45)
let units = new Uint16Array(64);
const POW10 = [1, 10, 100, 1000, 10000];
const portDigits = (port: number): number => (port < 10 ? 1 : port < 100 ? 2 : port < 1000 ? 3 : port < 10000 ? 4 : 5);

/** Code unit `i` of a backend's Maglev key, the string `${addr}:${port}`, or -1 past its end —
 * without building it (the one definition the hash and the sort order below both read). */
export function keyUnit(addr: string, port: number, i: number): number {
  if (i < addr.length) return addr.charCodeAt(i);
  if (i === addr.length) return 58; // ':'
  const digits = portDigits(port), d = i - addr.length - 1;
  return d < digits ? 48 + (Math.floor(port / POW10[digits - 1 - d]) % 10) : -1;
}

/** Orders backends as their key strings `${addr}:${port}` would sort, without making them: the
 * addresses decide unless one is a prefix of the other ("10.0.0.1" and "10.0.0.10"), where the
 * rest is compared unit by unit. */
export function backendKeyCmp(a: string, ap: number, b: string, bp: number): number {
  if (a !== b && !(a.length < b.length ? b.startsWith(a) : a.startsWith(b))) return a < b ? -1 : 1;
  for (let i = Math.min(a.length, b.length); ; i++) {
    const x = keyUnit(a, ap, i), y = keyUnit(b, bp, i);
    if (x !== y) return x - y;
    if (x < 0) return 0;
  }
}

/** The rank of each octet's digits among the 256, in the order the key strings sort them: the
 * first three octets are followed by '.', which sorts below every digit ("1." < "10."), the last
 * by ':', which sorts above them ("10:" < "1:"). */
const OCTET_RANK = octetRanks('.'), LAST_OCTET_RANK = octetRanks(':');
function octetRanks(next: string): Uint32Array {
  const strs = Array.from({ length: 256 }, (_, o) => `${o}${next}`).sort();
  const rank = new Uint32Array(256);
  strs.forEach((s, r) => { rank[Number(s.slice(0, -1))] = r; });
  return rank;
}

/** A number that orders IPv4 addresses (given as u32 or int32) exactly as their Maglev keys
 * `${addr}:${port}` sort when the addresses differ: the key strings differ first within the first
 * octet that differs, and there the octets' digits decide as OCTET_RANK / LAST_OCTET_RANK say.
 * Equal ranks mean equal addresses (the ports decide: backendKeyCmp). Sorting a port's backends by
 * these instead of by backendKeyCmp takes ~4 table loads per backend instead of ~2 string
 * compares per comparison. */
export function ipv4KeyRank(a: number): number {
  // an int32 (no heap number when it leaves a function): the first octet's rank with its top bit
  // flipped, so that signed order is the unsigned order of the four ranks
  return (((OCTET_RANK[a >>> 24] ^ 0x80) << 24) | (OCTET_RANK[(a >>> 16) & 255] << 16) | (OCTET_RANK[(a >>> 8) & 255] << 8) | LAST_OCTET_RANK[a & 255]);
}

/** keyHashes(`${addr}:${port}`) without making the string: the compiler has the address and the
 * port, and 100k key strings (plus their flattened copies) were garbage of a full compile. */
function keyHashesAddrPort(addr: string, port: number, hashOut: Uint32Array): void {
  const al = addr.length, n = al + 1 + portDigits(port);
  if (units.length < n) units = new Uint16Array(n * 2);
  for (let i = 0; i < al; i++) units[i] = addr.charCodeAt(i);
  for (let i = al; i < n; i++) units[i] = keyUnit(addr, port, i);
  hashUnits(n, hashOut);
}

/** keyHashesAddrPort(a as a dotted quad, port) from the address's u32 value: the key's units
 * are the same digits (canonical: no leading zeros), so the Maglev worker can hash keys the
 * compiler's thread hands it as numbers (it has no strings). */
export function keyHashesIPv4Port(a: number, port: number, hashOut: Uint32Array): void {
  let n = 0;
  for (let shift = 24; shift >= 0; shift -= 8) {
    const o = (a >>> shift) & 255;
    if (o >= 100) units[n++] = 48 + ((o / 100) | 0);
    if (o >= 10) units[n++] = 48 + (((o / 10) | 0) % 10);
    units[n++] = 48 + (o % 10);
    units[n++] = shift ? 46 : 58; // '.' between octets, ':' before the port
  }
  const digits = portDigits(port);
  for (let d = 0; d < digits; d++) units[n++] = 48 + (Math.floor(port / POW10[digits - 1 - d]) % 10);
  hashUnits(n, hashOut);
}

/** The two Maglev hashes of the key whose UTF-16 units are units[0 .. n). */
function hashUnits(n: number, hashOut: Uint32Array): void {
  let a = OFFSET0, b = SKIP0;
  let i = 0;
  for (; i + 1 < n; i += 2) { const w = units[i] | (units[i + 1] << 16); a = mix(a, w); b = mix(b, w); }
  if (i < n) { const w = units[i]; a = mix(a, w); b = mix(b, w); }
  a = mix(a, n); b = mix(b, n);
  hashOut[0] = finish(a); hashOut[1] = finish(b);
}

/** Where maglevIndexTableAt hands a table's backends to be filled by another thread
 * (maglev-pool.ts's MaglevJobs). */
export interface MaglevJobQueue {
  /** A job's index for a table over n backends, or -1 when the queue is full (filled here). */
  reserve(n: number, table: Uint8Array | Uint16Array | Uint32Array): number;
  /** Backend j of job `at`: its permutation's start and step (a job published without `keys`). */
  setBackend(at: number, j: number, pos: number, skip: number): void;
  /** Backends 0 .. n-1 of job `at` as keys (a job published with `keys`): IPv4 addresses (int32)
   * and ports, in one call (a call per backend costs while the compiler's code is not optimised). */
  setKeys(at: number, n: number, v4: number[], ports: number[]): void;
  /** Hands job `at` over: its table is out[off .. off + m). */
  publish(at: number, n: number, m: number, out: Uint8Array | Uint16Array | Uint32Array, off: number, keys: boolean): void;
}

// scratch for one build (the builder is synchronous and not re-entrant): grown, never shrunk.
// pos[j]: backend j's next slot; skip2[j] = 2·skip[j] mod M; occ[c]: -1 once slot c is taken
// (64 KiB at M = 65521, a quarter of the table, so the probes stay in cache); free: phase 2's
// free slots.
let pos = new Int32Array(64), skip = new Int32Array(64), skip2 = new Int32Array(64), idOf = new Uint32Array(64);
let occ = new Int8Array(256), free = new Int32Array(256);
const hashes = new Uint32Array(2);

function isSorted(keys: string[]): boolean {
  for (let i = 1; i < keys.length; i++) if (keys[i - 1] > keys[i]) return false;
  return true;
}

/** a^-1 mod m for prime m and 0 < a < m (extended Euclid; every value stays below m). */
function modInverse(a: number, m: number): number {
  let r0 = m, r1 = a, t0 = 0, t1 = 1;
  while (r1 !== 0) {
    const q = Math.floor(r0 / r1);
    let t = r0 - q * r1; r0 = r1; r1 = t;
    t = t0 - q * t1; t0 = t1; t1 = t;
  }
  return t0 < 0 ? t0 + m : t0;
}

/** The paper's table (test/lib/maglev-reference.js buildMaglev(ids, keys, m)): `keys[i]` is the stable name of backend `ids[i]`.
 * `alloc` must return a zero-filled table of the given length. */
export function maglevTable(ids: number[], keys: string[], m: number, alloc?: (words: number) => Uint32Array): Uint32Array {
  const n = ids.length;
  const table = n && alloc ? alloc(m) : new Uint32Array(n ? m : 0);
  if (n === 0) return table;
  if (n === 1) { table.fill(ids[0]); return table; }
  reserve(n, m);
  // the paper's order: by key, so the table depends on the set, not on the listed order
  let order: number[] | null = null;
  if (!isSorted(keys)) {
    order = ids.map((_, i) => i);
    order.sort((a, b) => (keys[a] < keys[b] ? -1 : keys[a] > keys[b] ? 1 : 0));
  }
  for (let j = 0; j < n; j++) {
    const k = order ? order[j] : j;
    keyHashes(keys[k], hashes);
    setBackend(j, ids[k], m);
  }
  return fill(table, n, m);
}

// the index table is filled here (u32, so the fill loop stays monomorphic) and then narrowed;
// the views of its first m slots are kept per m (a handful of primes): a subarray per table was
// ~100 bytes of garbage each
let scratch = new Uint32Array(256);
let scratchViews = new Map<number, Uint32Array>();
function scratchTable(m: number): Uint32Array {
  if (scratch.length < m) { scratch = new Uint32Array(Math.max(m, scratch.length * 2)); scratchViews = new Map(); }
  return scratch;
}
function scratchView(m: number): Uint32Array {
  let v = scratchViews.get(m);
  if (v === undefined) { v = scratch.subarray(0, m); scratchViews.set(m, v); }
  return v;
}

/** Bytes a slot of an index table over n backends: 1 up to 256 backends, 2 up to 65536, else 4 —
 * the core's slot width (src/core/maglev-range.ts), so the table writer copies the tables as they are. */
export function maglevSlotWidth(n: number): 1 | 2 | 4 { return maglevSlotBytes(n); }

/** The Maglev table of backends j = 0..n-1 with keys `${addrs[j]}:${ports[j]}` (already in key
 * order), as *indexes* j rather than ids: maglevTable(ids, keys)[c] === ids[index[c]]. One byte
 * a slot up to 256 backends, two up to 65536 — a quarter or half of the memory of u32 ids (2.5 MB
 * of tables at 10k services instead of 10 MB, all of it freshly touched by the compile).
 * Written into out[off .. off + m) (a run of a slab: no view object per table); `out`
 * has maglevSlotWidth(n) bytes a slot and the run is zero (one backend: every slot is index 0).
 * `v4`: the addresses as numbers (int32) when they are all IPv4 — then the job carries the
 * numbers and the worker hashes them too (~15 ms of a 10k-service compile off the compiler's
 * thread). */
export function maglevIndexTableAt(addrs: string[], ports: number[], m: number, n: number, out: Uint8Array | Uint16Array | Uint32Array, off: number, jobs?: MaglevJobQueue | null, v4?: number[] | null): void {
  if (n <= 1) return;
  const at = jobs ? jobs.reserve(n, out) : -1;
  if (at >= 0) { // filled by the pool's worker or its drain()
    if (v4) jobs!.setKeys(at, n, v4, ports);
    else for (let j = 0; j < n; j++) { // hashed here (the strings are here)
      keyHashesAddrPort(addrs[j], ports[j], hashes);
      jobs!.setBackend(at, j, hashes[0] % m, (hashes[1] % (m - 1)) + 1);
    }
    jobs!.publish(at, n, m, out, off, v4 != null);
    return;
  }
  reserve(n, m);
  for (let j = 0; j < n; j++) {
    keyHashesAddrPort(addrs[j], ports[j], hashes);
    setBackend(j, j, m);
  }
  narrow(fill(scratchTable(m), n, m), m, out, off);
}

/** Fills `out` (m slots) with the index table of backends 0..n-1 whose permutation starts and
 * steps are posIn/skipIn[at + j] — or, with `keys`, whose IPv4 addresses and ports they are
 * (hashed here): maglevIndexTableAt's fill, for the pool's jobs. */
export function fillIndexTable(posIn: Int32Array, skipIn: Int32Array, at: number, n: number, m: number, out: Uint8Array | Uint16Array | Uint32Array, off = 0, keys = false): void {
  reserve(n, m);
  if (keys) for (let j = 0; j < n; j++) { keyHashesIPv4Port(posIn[at + j] >>> 0, skipIn[at + j], hashes); setBackend(j, j, m); }
  else for (let j = 0; j < n; j++) {
    const s = skipIn[at + j];
    pos[j] = posIn[at + j]; skip[j] = s; skip2[j] = s + s - (m & ((m - 1 - s - s) >> 31)); idOf[j] = j;
  }
  narrow(fill(scratchTable(m), n, m), m, out, off);
}

/** Copies the u32 scratch table into out[off .. off + m) at out's width. A plain loop per width:
 * TypedArray.set between element types takes V8's generic converting path, ~1.3 µs a 251-slot
 * table (13 ms of a 10k-service compile); this is ~0.2 µs. */
function narrow(t: Uint32Array, m: number, out: Uint8Array | Uint16Array | Uint32Array, off: number): void {
  if (out instanceof Uint8Array) for (let i = 0; i < m; i++) out[off + i] = t[i];
  else if (out instanceof Uint16Array) for (let i = 0; i < m; i++) out[off + i] = t[i];
  else out.set(scratchView(m), off);
}

function reserve(n: number, m: number): void {
  if (pos.length < n) {
    const c = Math.max(n, pos.length * 2);
    pos = new Int32Array(c); skip = new Int32Array(c); skip2 = new Int32Array(c); idOf = new Uint32Array(c);
  }
  if (occ.length < m) { occ = new Int8Array(m); free = new Int32Array(m); }
}

/** Backend j's start and step from its two hashes (in `hashes`). */
function setBackend(j: number, id: number, m: number): void {
  pos[j] = hashes[0] % m;
  const s = (hashes[1] % (m - 1)) + 1;
  skip[j] = s;
  // c - m when c >= m, without a branch that mispredicts on every wrap: c -= m & ((m - 1 - c) >> 31)
  skip2[j] = s + s - (m & ((m - 1 - s - s) >> 31));
  idOf[j] = id;
}

/** The two phases over backends 0..n-1 as set up by setBackend. */
function fill(table: Uint32Array, n: number, m: number): Uint32Array {
  occ.fill(0, 0, m);
  const fTail = Math.floor(Math.sqrt(m) / 2);
  const stop = n >= 2 * fTail ? m - fTail : m;
  // phase 1: claims until `stop` slots are taken
  let filled = 0, j = 0;
  outer: for (;;) {
    for (j = 0; j < n; j++) {
      let c0 = pos[j], c = 0;
      const s = skip[j], s2 = skip2[j];
      for (;;) {
        // slots c0, c1, c2, c3 = the next 4 of the permutation (c2, c3 from c0, c1: shorter chain)
        let c1 = c0 + s; c1 -= m & ((m - 1 - c1) >> 31);
        let c2 = c0 + s2; c2 -= m & ((m - 1 - c2) >> 31);
        let c3 = c1 + s2; c3 -= m & ((m - 1 - c3) >> 31);
        const q0 = occ[c0], q1 = occ[c1], q2 = occ[c2], q3 = occ[c3];
        // the first free of them: x ^ ((x ^ y) & q) is y if q = -1 (taken), else x
        c = c2 ^ ((c2 ^ c3) & q2); c = c1 ^ ((c1 ^ c) & q1); c = c0 ^ ((c0 ^ c) & q0);
        if ((q0 & q1 & q2 & q3) === 0) break;
        c0 = c3 + s; c0 -= m & ((m - 1 - c0) >> 31);
      }
      table[c] = idOf[j]; occ[c] = -1;
      c += s; c -= m & ((m - 1 - c) >> 31);
      pos[j] = c;
      if (++filled === stop) { j++; break outer; }
    }
  }
  if (filled === m) return table;
  // phase 2: the rest, turns continuing with backend j
  let f = 0;
  for (let c = 0; c < m; c++) { free[f] = c; f += 1 + occ[c]; }
  const rm = 1 / m;
  for (;;) {
    for (; j < n; j++) {
      const p = pos[j], s = skip[j], inv = modInverse(s, m);
      // min over free slots of (k << 15) | index, branch-free: k < 2^16 and f <= fTail < 2^15.
      // k = x·inv mod M: the product reaches ~4.3e9 (past int32) but is exact in a double, and
      // floor(prod / M) via the reciprocal is exact too: prod mod M >= 1 unless prod = 0, so the
      // quotient is never within rounding distance (< 2^-20) below an integer.
      let best = 0x7fffffff;
      for (let i = 0; i < f; i++) {
        let x = free[i] - p; x += m & (x >> 31);
        const prod = x * inv;
        const key = ((prod - Math.floor(prod * rm) * m) << 15) | i;
        const t = key - best; best += t & (t >> 31);
      }
      const i = best & 0x7fff;
      let c = free[i];
      table[c] = idOf[j];
      free[i] = free[--f];
      c += s; c -= m & ((m - 1 - c) >> 31);
      pos[j] = c;
      if (f === 0) return table;
    }
    j = 0;
  }
}
