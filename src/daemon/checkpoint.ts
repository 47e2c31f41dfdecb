// The flow checkpoint: every worker's conntrack and affinity records (src/core/flow-export.ts)
// plus the learned neighbours, in one file in the state directory, so a restart or an upgrade of
// the daemon keeps established connections. Written on a graceful stop and every
// conntrack.checkpointSeconds; read once at start, before forwarding resumes.
//
// File (little-endian):
//   0  magic "WDPFLOWS"            8 bytes
//   8  format version u32          CHECKPOINT_VERSION; a reader refuses any other
//   12 header size u32             HEADER_SIZE
//   16 layout hash u32             recordLayoutHash(): the CT_* / CTS_* / CTF_* / AFF_* constants
//                                  the records are laid out with (assembly/layout.ts)
//   20 flow entry size u32         L.CT_SIZE        24 affinity entry size u32   L.AFF_SIZE
//   28 flows u32                   32 affinity entries u32   (totals over the workers)
//   36 meta length u32             40 payload length u32 (meta + records)
//   44 payload CRC-32 u32          48 header CRC-32 u32 (bytes 0..47)      52..63 zero
//   payload: meta (JSON: save time, per worker its counts, id references, masquerade addresses
//   and ports; the neighbours), then per worker its flow records, then its affinity records.
// A newer wdp reading an older file either understands its version and layout hash or refuses
// it with the reason; so is a file whose metadata does not parse (every address, MAC and
// reference is checked with the file, not when the start uses it); a refused file is renamed to flows.ckpt.rejected-<time> (kept for
// inspection, never deleted) and the daemon starts with empty tables.
//
// A checkpoint describes one moment and is restored once: when its flows are in the running
// workers the start retires it (retireCheckpoint, or a fresh checkpoint written over it), so a
// crash later never brings back flows that ended, or whose 5-tuple a new connection took, since.
//
// Writes are atomic: flows.ckpt.tmp is written and fsynced, renamed over flows.ckpt, and the
// directory is fsynced; a crash leaves the old checkpoint or the new one, never a mix. Cost: one
// pass over each worker's tables (~6 MB to scan at 65,536 flows) and ~100 bytes per flow on disk.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import * as L from '../../assembly/layout.js';
import { hashFinish, hashMix, HASH_START } from '../core/hash.js';
import type { FlowRecords } from '../core/flow-export.js';
import type { Neighbour } from './l2.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { isIp, parseAddr, parseMacShared } from '../util/addr.js';

export const CHECKPOINT_FILE = 'flows.ckpt';
export const CHECKPOINT_MAGIC = 'WDPFLOWS';
export const CHECKPOINT_VERSION = 1;
export const HEADER_SIZE = 64;

export interface WorkerCheckpoint extends FlowRecords { worker: number }

export interface Checkpoint {
  savedAt: number;                 // wall clock, ms since the epoch
  reason: 'stop' | 'periodic';
  workers: WorkerCheckpoint[];
  neighbours: Neighbour[];         // learned ones: restored so backends resolve before forwarding
}

export class CheckpointError extends Error {
  constructor(message: string) { super(message); this.name = 'CheckpointError'; }
}

/** The layout hash (src/core/hash.ts) of every constant that shapes a flow or affinity record,
 * names included: any change to the records' format changes it. */
export function recordLayoutHash(): number {
  return layoutHashOf(L as unknown as Record<string, number>);
}

function layoutHashOf(constants: Record<string, number>): number {
  let h = HASH_START;
  const names = Object.keys(constants).filter((n) => /^(LAYOUT_VERSION$|CT_|CTS_|CTF_|AFF_)/.test(n)).sort();
  for (const n of names) {
    for (let i = 0; i < n.length; i++) h = hashMix(h, n.charCodeAt(i));
    h = hashMix(h, constants[n]);
  }
  return hashFinish(h);
}

/** The SCTP states the kernel's conntrack tracks were added as states of their own (11–16), and
 * the state count went 16 → 32. A record of the layout before them is a record of this one:
 * same entry, same fields, and its one SCTP state (CTS_SCTP, 6) is this layout's established
 * association, as its timeout says. So an upgrade across that change keeps its flows. */
const SCTP_STATES_ADDED = ['CTS_SCTP_CLOSED', 'CTS_SCTP_COOKIE_WAIT', 'CTS_SCTP_COOKIE_ECHOED', 'CTS_SCTP_SHUTDOWN',
  'CTS_SCTP_SHUTDOWN_ACK_SENT', 'CTS_SCTP_HEARTBEAT_SENT'];
function beforeSctpStates(): number {
  const c: Record<string, number> = { ...(L as unknown as Record<string, number>), CTS_COUNT: 16 };
  for (const n of SCTP_STATES_ADDED) delete c[n];
  return layoutHashOf(c);
}

/** Layout hashes whose records this build reads as its own (recordLayoutHash first). */
export function readableLayoutHashes(): number[] {
  return [recordLayoutHash(), beforeSctpStates()];
}

export function encodeCheckpoint(c: Checkpoint): Buffer {
  const meta = Buffer.from(JSON.stringify({
    savedAt: c.savedAt, reason: c.reason, neighbours: c.neighbours,
    workers: c.workers.map((w) => ({
      worker: w.worker, flows: w.flows.length / L.CT_SIZE, affinity: w.affinity.length / L.AFF_SIZE,
      frontends: w.frontends, backends: w.backends, snatV4: w.snatV4, snatV6: w.snatV6,
      hairpinV4: w.hairpinV4 ?? null, hairpinV6: w.hairpinV6 ?? null, ports: w.ports,
    })),
  }));
  const payload = Buffer.concat([meta, ...c.workers.flatMap((w) => [w.flows, w.affinity])]);
  const h = Buffer.alloc(HEADER_SIZE);
  h.write(CHECKPOINT_MAGIC, 0, 'latin1');
  h.writeUInt32LE(CHECKPOINT_VERSION, 8);
  h.writeUInt32LE(HEADER_SIZE, 12);
  h.writeUInt32LE(recordLayoutHash(), 16);
  h.writeUInt32LE(L.CT_SIZE, 20);
  h.writeUInt32LE(L.AFF_SIZE, 24);
  h.writeUInt32LE(c.workers.reduce((s, w) => s + w.flows.length / L.CT_SIZE, 0), 28);
  h.writeUInt32LE(c.workers.reduce((s, w) => s + w.affinity.length / L.AFF_SIZE, 0), 32);
  h.writeUInt32LE(meta.length, 36);
  h.writeUInt32LE(payload.length, 40);
  h.writeUInt32LE(crc32(payload), 44);
  h.writeUInt32LE(crc32(h.subarray(0, 48)), 48);
  return Buffer.concat([h, payload]);
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isAddr = (x: unknown, family?: unknown): boolean => {
  if (typeof x !== 'string' || !isIp(x)) return false;
  try { const a = parseAddr(x); return family === undefined || a.family === family; } catch { return false; }
};
const isMac = (x: unknown): boolean => { try { return typeof x === 'string' && parseMacShared(x).length === 6; } catch { return false; } };
const isUint = (x: unknown, max = 0xffffffff): boolean => Number.isInteger(x) && (x as number) >= 0 && (x as number) <= max;

/** What is wrong with the metadata's references and neighbours (null: nothing). Checked here, with
 * the file, so that a checkpoint the start cannot use is refused and kept aside like a damaged one
 * — a neighbour or port reference that no parser takes would otherwise fail the start itself, and
 * every start after it, since the file stays. */
function metaProblem(meta: Record<string, unknown>): string | null {
  const bad = (what: string, i: number, x: unknown) => `metadata is malformed (${what} ${i}: ${JSON.stringify(x).slice(0, 200)})`;
  const seen = new Set<number>();
  for (const [i, n] of (meta.neighbours as unknown[]).entries()) {
    if (!isObj(n) || (n.family !== 4 && n.family !== 6) || !isAddr(n.addr, n.family) || !isMac(n.mac) || typeof n.portName !== 'string') return bad('neighbour', i, n);
  }
  for (const [i, w] of (meta.workers as Array<Record<string, unknown>>).entries()) {
    if (!isUint(w.worker, 0xffff) || seen.has(w.worker as number)) return bad('worker', i, w.worker);
    seen.add(w.worker as number);
    for (const f of w.frontends as unknown[]) {
      if (!isObj(f) || !isUint(f.id) || !isAddr(f.addr) || !isUint(f.port, 0xffff) || !isUint(f.proto, 0xff) || (f.kind !== undefined && f.kind !== 'ClusterPolicy')) return bad('frontend reference of worker', i, f);
    }
    for (const b of w.backends as unknown[]) if (!isObj(b) || !isUint(b.id) || !isAddr(b.addr) || !isUint(b.port, 0xffff)) return bad('backend reference of worker', i, b);
    for (const p of w.ports as unknown[]) if (!isObj(p) || !isUint(p.index, 0xffff) || typeof p.name !== 'string' || !isMac(p.mac)) return bad('port of worker', i, p);
    for (const k of ['snatV4', 'snatV6', 'hairpinV4', 'hairpinV6']) {
      if (w[k] !== undefined && w[k] !== null && !isAddr(w[k], k.endsWith('4') ? 4 : 6)) return bad(`${k} of worker`, i, w[k]);
    }
  }
  return null;
}

/** Parses and checks a checkpoint; throws CheckpointError saying exactly what is wrong. */
export function decodeCheckpoint(buf: Buffer): Checkpoint {
  if (buf.length < 12) throw new CheckpointError(`truncated: ${buf.length} bytes, shorter than the header`);
  if (buf.toString('latin1', 0, 8) !== CHECKPOINT_MAGIC) throw new CheckpointError('not a wdp flow checkpoint (magic missing)');
  const version = buf.readUInt32LE(8);
  if (version !== CHECKPOINT_VERSION) throw new CheckpointError(`format version ${version}; this wdp reads version ${CHECKPOINT_VERSION}`);
  if (buf.length < HEADER_SIZE) throw new CheckpointError(`truncated: ${buf.length} bytes, shorter than the ${HEADER_SIZE}-byte header`);
  if (buf.readUInt32LE(12) !== HEADER_SIZE) throw new CheckpointError(`header size ${buf.readUInt32LE(12)}, expected ${HEADER_SIZE}`);
  if (crc32(buf.subarray(0, 48)) !== buf.readUInt32LE(48)) throw new CheckpointError('header checksum mismatch (corrupt)');
  const layout = buf.readUInt32LE(16);
  if (!readableLayoutHashes().includes(layout)) {
    throw new CheckpointError(`records were written with layout hash ${hex(layout)}; this build's is ${hex(recordLayoutHash())} (the flow entry format changed)`);
  }
  const ctSize = buf.readUInt32LE(20), affSize = buf.readUInt32LE(24);
  if (ctSize !== L.CT_SIZE || affSize !== L.AFF_SIZE) throw new CheckpointError(`entry sizes ${ctSize}/${affSize}, expected ${L.CT_SIZE}/${L.AFF_SIZE}`);
  const flows = buf.readUInt32LE(28), affinity = buf.readUInt32LE(32), metaLen = buf.readUInt32LE(36), payloadLen = buf.readUInt32LE(40);
  if (buf.length !== HEADER_SIZE + payloadLen) {
    throw new CheckpointError(`${buf.length < HEADER_SIZE + payloadLen ? 'truncated' : 'trailing bytes'}: ${buf.length - HEADER_SIZE} payload bytes, the header says ${payloadLen}`);
  }
  const payload = buf.subarray(HEADER_SIZE);
  if (crc32(payload) !== buf.readUInt32LE(44)) throw new CheckpointError('payload checksum mismatch (corrupt)');
  if (metaLen + flows * ctSize + affinity * affSize !== payloadLen) throw new CheckpointError('record counts do not add up to the payload length');
  let meta: unknown;
  try { meta = JSON.parse(payload.toString('utf8', 0, metaLen)); } catch (e) { throw new CheckpointError(`metadata is not JSON: ${(e as Error).message}`); }
  if (!isObj(meta) || typeof meta.savedAt !== 'number' || !Array.isArray(meta.workers) || !Array.isArray(meta.neighbours)) {
    throw new CheckpointError('metadata is malformed');
  }
  for (const w of meta.workers as unknown[]) {
    if (!isObj(w) || !Number.isInteger(w.worker) || !Number.isInteger(w.flows) || !Number.isInteger(w.affinity) ||
        !Array.isArray(w.frontends) || !Array.isArray(w.backends) || !Array.isArray(w.ports)) {
      throw new CheckpointError('metadata is malformed (worker entry)');
    }
  }
  const problem = metaProblem(meta);
  if (problem) throw new CheckpointError(problem);
  let at = metaLen;
  const workers: WorkerCheckpoint[] = [];
  for (const w of meta.workers as Array<Record<string, unknown>>) {
    const nf = (w.flows as number) * ctSize, na = (w.affinity as number) * affSize;
    if (at + nf + na > payload.length) throw new CheckpointError('metadata counts exceed the payload');
    // copies: the records outlive the file buffer and cross to a worker thread
    workers.push({
      worker: w.worker as number,
      flows: new Uint8Array(payload.subarray(at, at + nf)), affinity: new Uint8Array(payload.subarray(at + nf, at + nf + na)),
      frontends: w.frontends as WorkerCheckpoint['frontends'], backends: w.backends as WorkerCheckpoint['backends'],
      snatV4: typeof w.snatV4 === 'string' ? w.snatV4 : null, snatV6: typeof w.snatV6 === 'string' ? w.snatV6 : null,
      hairpinV4: typeof w.hairpinV4 === 'string' ? w.hairpinV4 : null, hairpinV6: typeof w.hairpinV6 === 'string' ? w.hairpinV6 : null,
      ports: w.ports as WorkerCheckpoint['ports'],
    });
    at += nf + na;
  }
  if (at !== payload.length) throw new CheckpointError('metadata counts do not cover the payload');
  return { savedAt: meta.savedAt, reason: meta.reason === 'periodic' ? 'periodic' : 'stop', workers, neighbours: meta.neighbours as Neighbour[] };
}

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

/** Writes atomically (tmp + fsync + rename + directory fsync). Returns the file's size. */
export function writeCheckpoint(dir: string, c: Checkpoint): number {
  return writeFileAtomic(dir, CHECKPOINT_FILE, encodeCheckpoint(c));
}

export interface CheckpointLoad {
  checkpoint: Checkpoint | null;   // null: none saved, or refused
  problem?: string;                // why it was refused
  keptAs?: string;                 // where the refused file was moved
}

/** Reads the checkpoint in `dir`. Never throws: a refused file is moved aside and reported. */
export function readCheckpoint(dir: string): CheckpointLoad {
  const file = join(dir, CHECKPOINT_FILE);
  if (!existsSync(file)) return { checkpoint: null };
  try {
    return { checkpoint: decodeCheckpoint(readFileSync(file)) };
  } catch (e) {
    const problem = e instanceof CheckpointError ? e.message : `cannot read: ${(e as Error).message}`;
    const keptAs = `${file}.rejected-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    try { renameSync(file, keptAs); return { checkpoint: null, problem, keptAs }; } catch { return { checkpoint: null, problem }; }
  }
}

/** Removes the checkpoint in `dir` durably (the directory fsynced: a power loss does not bring it
 * back). Throws when it cannot (it then stays, and a later start restores it again). */
export function retireCheckpoint(dir: string): void {
  try { unlinkSync(join(dir, CHECKPOINT_FILE)); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; }
  const d = openSync(dir, 'r');
  try { fsyncSync(d); } finally { closeSync(d); }
}
