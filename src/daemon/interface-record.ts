// What an interface had before a wdp port took it, kept beside the interface's claim
// (interface-claim.ts) rather than in one daemon's state directory: the record is the interface's,
// whichever wdp takes it. A daemon killed (SIGKILL, OOM) leaves its interfaces as its ports had
// them (IPv6 off, up, the port's MAC); the next wdp to take one — the same state directory or
// another — must find what it had before that daemon took it, not take the leftovers for it (and
// a record in the killed daemon's state directory would be put back later over an interface
// another daemon had handed back since). systemd-networkd keeps its per-link runtime state the
// same way, one file per ifindex under /run.
//
// <runDir>/interfaces/net<nsInode>-if<ifindex>.handback.json (the claim's key: an ifindex is
// unique within its namespace, and an interface deleted and created again under its name — the
// next pod's veth — has another one). Written (atomically) by the claim's holder before the port
// touches the interface, removed once it is handed back; read by the next holder of the claim.
// What does not make a record the interface's:
//   * another boot: /run is a tmpfs, so after a reboot there is none — and the kernel made every
//     interface afresh, with nothing of a port's left to undo. A WDP_RUN_DIR that outlives a boot
//     (not a tmpfs) keeps records whose key the next boot's interfaces may have (the root
//     namespace's inode is fixed, eth0's ifindex the same every boot): the record carries the
//     kernel's boot_id, and one of another boot is ignored and removed;
//   * another interface under the key: a namespace's inode is reused once it is freed, so a
//     record its last daemon left (killed) may name a new namespace's interface with that ifindex.
//     The record names the interface (a rename is taken for another interface), and the caller
//     checks the interface still shows a port's marks (link-handback.ts leftByPort).
// Cost: a small file write per interface taken, a read per interface taken (none there but after
// a kill), a directory read at start (this namespace's records no port takes).
import { readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-file.js';
import { claimKey, CLAIM_SUBDIR, runDir } from './interface-claim.js';
import type { SavedIpv6 } from './ipv6-handback.js';

const FORMAT = 'wdp-interface-handback';
const SUFFIX = '.handback.json';

/** The link as it was before the port took it. */
export interface SavedLinkState {
  /** its MAC (lowercase) */
  mac: string;
  /** administratively up */
  up: boolean;
  /** the MAC the port sets on it (its `mac:`, or one a killed wdp's port left), when another */
  macSet?: string;
}

/** An interface as it was before it became a port: its IPv6 (SavedIpv6's fields, empty where the
 * kernel has no IPv6) and its link (missing in an older wdp's entry). */
export interface SavedInterface extends SavedIpv6 { link?: SavedLinkState }

/** A record as stored: the interface's saved state, and who took it (for the logs). */
export interface InterfaceRecord {
  nsInode: number; ifindex: number;
  /** the daemon that wrote it: pid, state directory, port */
  pid: number; stateDir: string; port: string;
  saved: SavedInterface;
}

let boot: string | undefined;
/** The kernel's boot_id ('' where it cannot be read: then every record counts as this boot's). */
function bootId(): string {
  if (boot === undefined) { try { boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(); } catch { boot = ''; } }
  return boot;
}

const dir = () => join(runDir(), CLAIM_SUBDIR);
const name = (nsInode: number, ifindex: number) => `${claimKey(nsInode, ifindex)}${SUFFIX}`;

/** Writes the record of interface `ifindex` of namespace `nsInode` (the caller holds its claim);
 * throws when it cannot. */
export function writeRecord(r: InterfaceRecord): void {
  writeFileAtomic(dir(), name(r.nsInode, r.ifindex), Buffer.from(JSON.stringify({ format: FORMAT, bootId: bootId(), ...r })));
}

/** The record of interface `ifindex` of namespace `nsInode`, if there is one of this boot (one of
 * another boot, or unreadable, is removed: the caller holds the claim). */
export function readRecord(nsInode: number, ifindex: number): InterfaceRecord | undefined {
  const file = join(dir(), name(nsInode, ifindex));
  let j: Partial<InterfaceRecord> & { format?: string; bootId?: string };
  try { j = JSON.parse(readFileSync(file, 'utf8')); } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') removeRecord(nsInode, ifindex);
    return undefined;
  }
  const s = j.saved;
  const ok = j.format === FORMAT && (j.bootId ?? '') === bootId() && j.nsInode === nsInode && j.ifindex === ifindex && typeof s?.ifname === 'string'
    && s.ifindex === ifindex && Array.isArray(s.addresses) && Array.isArray(s.routes);
  if (!ok) { removeRecord(nsInode, ifindex); return undefined; }
  return { nsInode, ifindex, pid: j.pid ?? 0, stateDir: String(j.stateDir ?? ''), port: String(j.port ?? ''), saved: s };
}

export function removeRecord(nsInode: number, ifindex: number): void {
  try { unlinkSync(join(dir(), name(nsInode, ifindex))); } catch { /* gone */ }
}

/** The ifindexes of namespace `nsInode` that have a record. */
export function recordedIfindexes(nsInode: number): number[] {
  let names: string[];
  try { names = readdirSync(dir()); } catch { return []; }
  const prefix = `${claimKey(nsInode, 0).slice(0, -1)}`;   // net<nsInode>-if
  return names.filter((n) => n.startsWith(prefix) && n.endsWith(SUFFIX))
    .map((n) => Number(n.slice(prefix.length, -SUFFIX.length))).filter((i) => Number.isInteger(i) && i > 0);
}
