// Which worker each saved flow and affinity entry goes back to at a restore. A checkpoint holds
// each worker's records under the index of the worker that saved them; which worker a flow's
// frames reach now depends on the configuration the daemon starts with:
//   * one worker: every record goes to it — also those saved by workers the configuration no
//     longer has (they would otherwise be lost as workerGone);
//   * several workers sharing fanout ports: steering (assembly/steer.ts) hands every frame to the
//     owner of its key, which depends on the number of workers. A record goes to the worker that
//     owns both directions of its flow now (original: the client address, or the node's SNAT
//     address with its port; reply: the client, or the SNAT / hairpin address with the allocated
//     port). A masqueraded flow whose two directions now key to different workers cannot continue
//     (its SNAT port was allocated under the old count) and is left out, counted `workerChanged`;
//     an affinity entry goes to the owner of its client;
//   * several workers on ports of their own ("worker: N"): a flow enters and leaves through ports
//     of one worker, so it goes to the worker that has its client's port (by name) now — the one
//     that saved it unless the port moved — and an affinity entry to the worker of a flow of the
//     same client (else back to the one that saved it). A flow whose port is gone stays with the
//     worker that saved it, whose import counts it portGone.
// With the configuration unchanged every record stays where it was saved.
import * as L from '../../assembly/layout.js';
import { parseAddr } from '../util/addr.js';
import type { WorkerCheckpoint } from './checkpoint.js';

export interface Placement {
  workers: number;
  /** Fanout ports shared by the workers: frames are steered to their flow's owner. */
  steering: boolean;
  /** Without steering: the worker that has the port of this name now (undefined: no such port). */
  portWorker?: (name: string) => number | undefined;
}

/** assembly/owner.ts ownerOf: the worker of `workers` that owns (16-byte address at b[off], port). */
export function ownerOf(b: Uint8Array, off: number, port: number, workers: number): number {
  const v = new DataView(b.buffer, b.byteOffset + off, 16);
  let x = (v.getUint32(0) ^ v.getUint32(4) ^ v.getUint32(8) ^ v.getUint32(12)) >>> 0;
  x = (x ^ Math.imul(port, 0x9e3779b1)) >>> 0;
  x ^= x >>> 16; x = Math.imul(x, 0x85ebca6b) >>> 0;
  x ^= x >>> 13; x = Math.imul(x, 0xc2b2ae35) >>> 0;
  x ^= x >>> 16;
  return (x >>> 0) % workers;
}

const addr16 = (s: string | null | undefined): Uint8Array | null => (s ? parseAddr(s).bytes : null);
const sameAddr = (a: Uint8Array, off: number, b: Uint8Array | null): boolean => {
  if (!b) return false;
  for (let i = 0; i < 16; i++) if (a[off + i] !== b[i]) return false;
  return true;
};

const clientKey = (b: Uint8Array, off: number): string => Buffer.from(b.buffer, b.byteOffset + off, 16).toString('hex');

/** The worker steering hands both directions of flow record `o` to under `workers`, -1 when the
 * two directions key to different workers (steer.ts ownerOfKey, for a flow to a frontend). */
function flowOwner(r: WorkerCheckpoint, v: DataView, o: number, workers: number, snat: { 4: Uint8Array | null; 6: Uint8Array | null }, hairpin: { 4: Uint8Array | null; 6: Uint8Array | null }): number {
  const f = r.flows, fam = f[o + L.CT_FAMILY] === 6 ? 6 : 4;
  const cport = v.getUint16(o + L.CT_CPORT, true), bport = v.getUint16(o + L.CT_BPORT, true), nport = v.getUint16(o + L.CT_NPORT, true);
  const sn = snat[fam], hp = hairpin[fam];
  // original direction: client -> frontend
  const orig = sameAddr(f, o + L.CT_CLIENT, sn) ? ownerOf(f, o + L.CT_CLIENT, cport, workers) : ownerOf(f, o + L.CT_CLIENT, 0, workers);
  // reply direction: backend -> the client, or the address and port it was translated to
  const flags = f[o + L.CT_FLAGS];
  let reply: number;
  if (flags & L.CTF_SNAT) {
    const to = flags & L.CTF_HAIRPIN ? hp : sn;
    if (!to) return -1;
    if (!(flags & L.CTF_HAIRPIN) && sameAddr(f, o + L.CT_BACKEND, sn)) reply = ownerOf(f, o + L.CT_BACKEND, bport, workers);
    else reply = ownerOf(to, 0, nport, workers);
  } else if (sameAddr(f, o + L.CT_BACKEND, sn)) {
    reply = ownerOf(f, o + L.CT_BACKEND, bport, workers);
  } else {
    reply = sameAddr(f, o + L.CT_CLIENT, sn) ? ownerOf(f, o + L.CT_CLIENT, cport, workers) : ownerOf(f, o + L.CT_CLIENT, 0, workers);
  }
  return orig === reply ? orig : -1;
}

/** Records of several workers as one (their id and port references are one process's: merged). */
function merge(parts: WorkerCheckpoint[], worker: number): WorkerCheckpoint {
  if (parts.length === 1) return { ...parts[0]!, worker };   // no copy of a large table's records
  const cat = (xs: Uint8Array[]) => { const out = new Uint8Array(xs.reduce((n, x) => n + x.length, 0)); let at = 0; for (const x of xs) { out.set(x, at); at += x.length; } return out; };
  const byId = <T extends { id: number }>(xs: T[]) => [...new Map(xs.map((x) => [x.id, x])).values()];
  const first = parts[0];
  return {
    worker, flows: cat(parts.map((p) => p.flows)), affinity: cat(parts.map((p) => p.affinity)),
    frontends: byId(parts.flatMap((p) => p.frontends)), backends: byId(parts.flatMap((p) => p.backends)),
    ports: [...new Map(parts.flatMap((p) => p.ports).map((p) => [p.index, p])).values()],
    snatV4: first?.snatV4 ?? null, snatV6: first?.snatV6 ?? null, hairpinV4: first?.hairpinV4 ?? null, hairpinV6: first?.hairpinV6 ?? null,
  };
}

/** The saved records regrouped by the worker they go to under `p`; `dropped` counts what has
 * no worker (workerChanged). Records of a worker index `p` does not have are left under it (the
 * dataplane counts them workerGone) but with one worker. */
export function placeSavedFlows(saved: WorkerCheckpoint[], p: Placement): { workers: WorkerCheckpoint[]; dropped: Record<string, number> } {
  if (!saved.length) return { workers: saved, dropped: {} };
  if (p.workers === 1) return { workers: [merge(saved, 0)], dropped: {} };
  if (!p.steering && !p.portWorker) return { workers: saved, dropped: {} };
  // a saved worker index the configuration lacks keeps its records (the dataplane counts them)
  const n = Math.max(p.workers, ...saved.map((r) => r.worker + 1));
  const flows: number[][][] = Array.from({ length: n }, () => saved.map(() => []));
  const aff: number[][][] = Array.from({ length: n }, () => saved.map(() => []));
  let changed = 0;
  saved.forEach((r, i) => {
    const v = new DataView(r.flows.buffer, r.flows.byteOffset, r.flows.byteLength);
    if (p.steering) {
      const snat = { 4: addr16(r.snatV4), 6: addr16(r.snatV6) }, hairpin = { 4: addr16(r.hairpinV4), 6: addr16(r.hairpinV6) };
      for (let o = 0; o < r.flows.length; o += L.CT_SIZE) {
        const w = flowOwner(r, v, o, p.workers, snat, hairpin);
        if (w < 0) changed++; else flows[w]![i]!.push(o);
      }
      for (let o = 0; o < r.affinity.length; o += L.AFF_SIZE) aff[ownerOf(r.affinity, o + L.AFF_CLIENT, 0, p.workers)]![i]!.push(o);
      return;
    }
    // ports of their own: the worker of the client's port now; its clients' affinity with it
    const portName = new Map(r.ports.map((x) => [x.index, x.name]));
    const clientWorker = new Map<string, number>();
    for (let o = 0; o < r.flows.length; o += L.CT_SIZE) {
      const name = portName.get(v.getUint16(o + L.CT_CLIENT_PORT, true));
      const now = name === undefined ? undefined : p.portWorker!(name);
      const w = now !== undefined && now < p.workers ? now : r.worker;
      flows[w]![i]!.push(o);
      const client = clientKey(r.flows, o + L.CT_CLIENT);
      if (!clientWorker.has(client)) clientWorker.set(client, w);
    }
    for (let o = 0; o < r.affinity.length; o += L.AFF_SIZE) aff[clientWorker.get(clientKey(r.affinity, o + L.AFF_CLIENT)) ?? r.worker]![i]!.push(o);
  });
  // nothing moves (the configuration is the one they were saved with): the records as they are
  const stays = saved.every((r, i) => r.worker < p.workers && flows[r.worker]![i]!.length * L.CT_SIZE === r.flows.length && aff[r.worker]![i]!.length * L.AFF_SIZE === r.affinity.length);
  if (stays && !changed) return { workers: saved, dropped: {} };
  const pick = (src: Uint8Array, offs: number[], size: number) => { const out = new Uint8Array(offs.length * size); offs.forEach((o, k) => out.set(src.subarray(o, o + size), k * size)); return out; };
  const workers = Array.from({ length: n }, (_, w) => merge(saved.map((r, i) => ({ ...r, flows: pick(r.flows, flows[w]![i]!, L.CT_SIZE), affinity: pick(r.affinity, aff[w]![i]!, L.AFF_SIZE) })), w))
    .filter((w) => w.worker < p.workers || w.flows.length || w.affinity.length);
  return { workers, dropped: changed ? { workerChanged: changed } : {} };
}
