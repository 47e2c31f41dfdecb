// What a port changes on an interface it takes (AF_PACKET / AF_XDP: port-manager.ts prepare), saved
// before it changes it and put back when the interface is handed back to the kernel (the daemon
// stops, its start fails after the ports were taken, the port is removed, a saved port is not
// restored):
//   * its IPv6 (turned off on the port: ipv6-handback.ts says what that loses and how it is put back);
//   * its MAC, when the port's `mac:` sets another: put back when the interface still has the one
//     the port set (one set by hand since is left alone);
//   * its administrative state: the port sets the link up; one that was down is set down again.
// Nothing else of the link is changed by a port: the MTU is the interface's (only a TAP, wdp's own
// device, is created with one); promiscuous mode is a membership of the AF_PACKET socket (the
// kernel's promiscuity count, not the IFF_PROMISC flag: it ends with the socket, kill -9
// included); an AF_XDP port's program is attached through a BPF link, detached when its fd
// closes; offloads are not touched (a veth whose peer runs XDP has its peer's GSO turned off by
// the kernel while the program is attached, and back after). The nftables drop chain is removed
// by the port manager (kernel-drop-chains.ts letKernelIn). test/port-link-handback.test.js checks
// each of these after a stop, a failed start and a kill followed by a start and a stop.
//
// Put back in this order: the link down (if it was: IPv6 addresses added to a link that then
// goes down are flushed by the kernel, so a link that was down gets them back while down), the
// MAC (before IPv6 comes back on: the kernel derives the link-local from it), the IPv6.
//
// Saved, before the port touches the interface, as the interface's record beside its claim
// (interface-record.ts: <runDir>/interfaces/net<nsInode>-if<ifindex>.handback.json), and in memory;
// the record is removed once the interface is handed back. A daemon that was killed leaves its
// interfaces as its ports had them (IPv6 off, up, the port's MAC) and their records: the next wdp
// to take one — whatever its state directory — takes the record's state for what the interface
// had (its port's MAC noted as the one to undo), not what it finds; and a start whose ports do not
// include an interface of its namespace that has a record no live wdp holds (a killed daemon's
// port taken out of the config, a runtime port not restored, or a killed daemon of another state
// directory that is not coming back) puts it back and removes the record (giveBackStale) — its
// drop chain is removed by that start too (kernel-drop-chains.ts removeStaleChains). A record counts
// only while its interface still shows a port's marks (leftByPort: the MAC the port left and IPv6
// off): one whose interface was put back or had its MAC changed by hand since, or is another
// interface under a reused key (interface-record.ts), is dropped, the interface saved afresh —
// what it has then is what it gets back.
//
// Upgrades: an older wdp kept these entries in <stateDir>/link-handback.json (before that
// ipv6-handback.json, the IPv6 alone). Read at start: an entry whose interface (same name, ifindex
// and a port's marks) a port takes is that interface's record from then on; one no port takes is
// put back at the start (as above); the file is removed once the start has done either — never
// written again (a state directory's copy is what put a killed daemon's leftovers back over an
// interface another daemon had handed back since).
//
// Where the records cannot be written (no run directory, as for the claims) the ports go on, the
// state in memory only: a killed daemon then leaves its interfaces as its ports had them (logged
// once). Cost: at a take, a sysfs read (another namespace: an `ip -j link` fork), a record read
// (nothing there but after a kill: then a sysctl read or two) and, on a fresh take, the IPv6
// reads and a small file write; at a hand-back, what there is to put back and an unlink; at start,
// one directory read.
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { claimedElsewhere, claimedHere, claimInterface, InterfaceInUseError, netnsInode } from './interface-claim.js';
import { readRecord, recordedIfindexes, removeRecord, writeRecord, type SavedInterface, type SavedLinkState } from './interface-record.js';
import { ipv6TurnedOff, readIpv6, restoreIpv6, type SavedIpv6 } from './ipv6-handback.js';
import { ipCmd } from './link-commands.js';

export type { SavedInterface, SavedLinkState } from './interface-record.js';

/** An older wdp's files in the state directory (read for upgrades, then removed). */
const STATE_DIR_FILES = ['link-handback.json', 'ipv6-handback.json'];

const IFF_UP = 0x1;

/** The interface's ifindex, MAC and up flag now; undefined when there is none of that name (in
 * the daemon's own namespace sysfs reads, no fork). */
export function linkNow(ifname: string, netns: string | undefined): { ifindex: number; mac: string; up: boolean } | undefined {
  try {
    if (!netns) {
      const read = (f: string) => readFileSync(`/sys/class/net/${ifname}/${f}`, 'utf8').trim();
      const ifindex = parseInt(read('ifindex'), 10);
      return Number.isInteger(ifindex) ? { ifindex, mac: read('address').toLowerCase(), up: (parseInt(read('flags'), 16) & IFF_UP) !== 0 } : undefined;
    }
    const [l] = JSON.parse(ipCmd(netns, ['-j', 'link', 'show', 'dev', ifname]) || '[]') as Array<{ ifindex: number; address?: string; flags?: string[] }>;
    return l && Number.isInteger(l.ifindex) ? { ifindex: l.ifindex, mac: (l.address ?? '').toLowerCase(), up: !!l.flags?.includes('UP') } : undefined;
  } catch { return undefined; }
}

/** Whether interface `s.ifname` (in `netns`, MAC `mac` now) shows what a port left on it: the MAC
 * (the one the port set, else its own) and IPv6 off — where the interface had IPv6 off before (or
 * the kernel has none) that cannot tell, and the MAC, name and ifindex are all there is. One that
 * does not was put back (by hand, or by a hand-back killed before it removed the record), has had
 * its MAC changed by hand since, or is another interface: its saved state is not taken for what it
 * had. */
function leftByPort(s: SavedInterface, netns: string | undefined, mac: string): boolean {
  if (s.link && mac !== (s.link.macSet ?? s.link.mac)) return false;
  if (s.disableIpv6 === '1' || !existsSync('/proc/sys/net/ipv6')) return true;
  return ipv6TurnedOff(s.ifname, netns) !== false;
}

const key = (ifname: string, netns: string | undefined) => `${netns ?? ''}/${ifname}`;
const firstLine = (e: unknown) => (e as Error).message.split('\n')[0];

/** A taken interface: its saved state, and its namespace's inode (its record's key with the
 * ifindex; undefined: the namespace was unreadable, no record). */
type Taken = SavedInterface & { nsInode?: number };

/** The saved state of the interfaces the daemon's ports have taken: in memory, and as each
 * interface's record (interface-record.ts). */
export class LinkHandback {
  private readonly saved = new Map<string, Taken>();
  /** An older wdp's entries from the state directory, by key, until a port takes their interface
   * or the start puts them back (giveBackStale). */
  private readonly legacy = new Map<string, SavedInterface>();
  private legacyFiles: string[] = [];
  private warnedSave = false;

  constructor(private readonly stateDir: string, private readonly log: Logger) {
    for (const f of STATE_DIR_FILES) {
      const file = join(stateDir, f);
      if (!existsSync(file)) continue;
      this.legacyFiles.push(file);
      if (this.legacyFiles.length > 1) continue;   // (the newer one's entries: an older wdp wrote it last)
      try {
        const j = JSON.parse(readFileSync(file, 'utf8')) as { interfaces?: SavedInterface[] };
        for (const s of j.interfaces ?? []) {
          if (typeof s?.ifname === 'string' && Number.isInteger(s.ifindex) && Array.isArray(s.addresses) && Array.isArray(s.routes)) this.legacy.set(key(s.ifname, s.netns), s);
        }
      } catch (e) {
        log.warn({ file, error: firstLine(e) }, 'an older wdp\'s saved state of the ports\' interfaces is unreadable: interfaces a killed daemon left are not given their IPv6, MAC and link state back');
      }
    }
  }

  /** Before interface `ifname` (in `netns`) becomes port `port`, which sets MAC `mac` on it (its
   * `mac:`; undefined: it keeps the one it has): what it has is saved — unless a record of this
   * very interface is there (a killed wdp's, whatever its state directory: the interface has that
   * daemon's changes since), whose state then counts, with this port's MAC. The record is written
   * before the caller touches the interface. */
  take(ifname: string, netns: string | undefined, port: string, mac?: string): void {
    const now = linkNow(ifname, netns);
    if (!now) return;   // (the port's open says it is missing)
    let nsInode: number | undefined;
    try { nsInode = netnsInode(netns); } catch { /* (no record: see persist) */ }
    const k = key(ifname, netns), mine = this.saved.get(k);
    // (saved from an interface of this name that is gone since — re-created, the next pod's veth:
    // its record goes, its claim went with it)
    if (mine && mine.ifindex !== now.ifindex && mine.nsInode !== undefined) removeRecord(mine.nsInode, mine.ifindex);
    let before: SavedInterface | undefined = mine?.ifindex === now.ifindex ? mine : undefined;
    if (!before && nsInode !== undefined) {
      const r = readRecord(nsInode, now.ifindex);
      if (r && r.saved.ifname === ifname && leftByPort(r.saved, netns, now.mac)) {
        before = r.saved;
        this.log.info({ port, ifname, by: { pid: r.pid, stateDir: r.stateDir, port: r.port } }, 'an interface a wdp did not hand back (killed): what it had before that wdp took it is what it gets back');
      } else if (r) {
        this.log.info({ port, ifname, by: { pid: r.pid, stateDir: r.stateDir, port: r.port } }, 'a hand-back record that is not this interface\'s any more (put back since, or another interface): dropped');
      }
    }
    const old = this.legacy.get(k);
    if (old) {
      this.legacy.delete(k);
      if (!before && old.ifindex === now.ifindex && leftByPort(old, netns, now.mac)) before = old;
    }
    // the port's MAC (its own, or the one it finds — a killed wdp's port's, to undo) if not the original
    const original = before?.link?.mac ?? now.mac, portMac = (mac ?? now.mac).toLowerCase();
    const macSet = portMac !== original ? portMac : undefined;
    const linkOf = (l: SavedLinkState): SavedLinkState => ({ mac: l.mac, up: l.up, ...(macSet ? { macSet } : {}) });
    let entry: Taken;
    if (before) {
      entry = { ...before, ifname, ...(netns ? { netns } : {}), ...(before.link ? { link: linkOf(before.link) } : {}), nsInode };
      if (!netns) delete entry.netns;
    } else {
      let v6: SavedIpv6 = { ifname, ...(netns ? { netns } : {}), ifindex: now.ifindex, addresses: [], routes: [] };
      if (existsSync('/proc/sys/net/ipv6')) {   // (no IPv6 in this kernel: nothing is turned off)
        try { v6 = readIpv6(ifname, netns, now.ifindex); } catch (e) {
          this.log.warn({ port, ifname, error: firstLine(e) }, 'cannot read this port\'s IPv6 configuration: it is not put back when the interface is handed back');
        }
      }
      entry = { ...v6, link: linkOf({ mac: now.mac, up: now.up }), nsInode };
    }
    this.saved.set(k, entry);
    this.persist(entry, port);
  }

  /** Interface `ifname` is the kernel's again: its saved state is put back (if it is still the
   * interface it was saved from), then its record removed and the state forgotten. */
  giveBack(ifname: string, netns: string | undefined, why: string): void {
    const k = key(ifname, netns), s = this.saved.get(k);
    if (!s) return;
    this.saved.delete(k);
    const now = linkNow(ifname, netns);
    if (now?.ifindex === s.ifindex) this.restore(s, now, why);
    // (after: a kill in between leaves the record, which the interface put back no longer matches)
    if (s.nsInode !== undefined) removeRecord(s.nsInode, s.ifindex);
  }

  /** giveBack for each of `ifnames` (the daemon's stop). */
  giveBackAll(ifnames: string[], netns: string | undefined, why: string): void {
    for (const i of ifnames) this.giveBack(i, netns, why);
  }

  /** At start, once the ports being opened have taken their interfaces: what a killed wdp left
   * that none of them accounts for (`keep`: their interfaces in `netns`) is put back — an older
   * wdp's state-directory entries (but for an interface `othersHold`: another running wdp's port
   * now, forgotten), then every record of `netns` no live wdp holds — and the state directory's
   * old files removed. */
  giveBackStale(keep: Set<string>, netns: string | undefined, othersHold?: (ifname: string, netns: string | undefined) => boolean): void {
    const why = 'a killed daemon\'s port no port being opened accounts for';
    for (const [k, s] of [...this.legacy]) {
      this.legacy.delete(k);
      if (s.netns === netns && keep.has(s.ifname)) continue;   // (its interface is missing: the port starts absent)
      if (othersHold?.(s.ifname, s.netns)) {
        // another running wdp has taken it since: what is on it is that daemon's port's now
        this.log.warn({ ifname: s.ifname }, 'an interface a killed daemon left is a port of another running wdp now: not given its saved state back');
        continue;
      }
      const now = linkNow(s.ifname, s.netns);
      if (now?.ifindex === s.ifindex && leftByPort(s, s.netns, now.mac)) this.restore(s, now, why);
    }
    for (const f of this.legacyFiles) { try { unlinkSync(f); } catch { /* gone */ } }
    this.legacyFiles = [];
    this.giveBackOrphans(keep, netns, why);
  }

  /** The records of `netns` whose interface no port of this daemon has and no live wdp holds: put
   * back (claimed meanwhile, so that a wdp starting now waits for it, or is refused, rather than
   * taking it half put back) and removed; a record whose interface is gone is removed. */
  private giveBackOrphans(keep: Set<string>, netns: string | undefined, why: string): void {
    let nsInode: number;
    try { nsInode = netnsInode(netns); } catch { return; }
    const ours = new Set([...this.saved.values()].filter((s) => s.nsInode === nsInode).map((s) => s.ifindex));
    for (const ifindex of recordedIfindexes(nsInode)) {
      if (ours.has(ifindex) || claimedHere(nsInode, ifindex) || claimedElsewhere(netns, ifindex)) continue;
      const r = readRecord(nsInode, ifindex);
      if (!r) continue;
      const s = r.saved, now = linkNow(s.ifname, netns);
      if (now?.ifindex !== ifindex) { removeRecord(nsInode, ifindex); continue; }   // (gone, or renamed: not a port's any more)
      if (keep.has(s.ifname)) continue;
      let claim;
      try { claim = claimInterface(s.ifname, netns, ifindex, this.stateDir, `(hand-back of ${r.port})`); } catch (e) {
        if (e instanceof InterfaceInUseError) continue;   // (taken meanwhile: the record is that wdp's now)
        throw e;
      }
      try {
        // (read again under the claim: a wdp that took it and handed it back meanwhile removed it)
        const again = readRecord(nsInode, ifindex);
        if (again && leftByPort(again.saved, netns, now.mac)) {
          this.log.warn({ ifname: s.ifname, by: { pid: r.pid, stateDir: r.stateDir, port: r.port } }, 'an interface a killed wdp left, that no port being opened takes: given what it had back');
          this.restore({ ...again.saved, ifname: s.ifname, ...(netns ? { netns } : {}) }, now, why);
        }
        removeRecord(nsInode, ifindex);
      } finally { claim.release(); }
    }
  }

  /** Puts `s` back on its interface (`now`: as it is), logged. */
  private restore(s: SavedInterface, now: { mac: string; up: boolean }, why: string): void {
    const failed = [...restoreLink(s, now), ...restoreIpv6(s)];
    if (failed.length) this.log.warn({ ifname: s.ifname, failed, why }, 'an interface handed back has not all its configuration back');
    else this.log.info({ ifname: s.ifname, addresses: s.addresses.length, routes: s.routes.length, ...(s.link ? { mac: s.link.mac, up: s.link.up } : {}), why }, 'interface handed back with its IPv6 configuration and link state');
  }

  /** Writes `s` as its interface's record (taken by `port`). */
  private persist(s: Taken, port: string): void {
    try {
      if (s.nsInode === undefined) throw new Error('the network namespace is unreadable');
      const { nsInode, ...saved } = s;
      writeRecord({ nsInode, ifindex: s.ifindex, pid: process.pid, stateDir: this.stateDir, port, saved });
      this.warnedSave = false;
    } catch (e) {
      if (!this.warnedSave) this.log.warn({ ifname: s.ifname, error: firstLine(e) }, 'cannot save the state of a port\'s interface beside its claim: a killed daemon leaves it with IPv6 off, up, with the port\'s MAC');
      this.warnedSave = true;
    }
  }
}

/** Puts `s`'s link state back (the down state and the MAC, see above: the IPv6 after it); what
 * could not be put back. */
function restoreLink(s: SavedInterface, now: { mac: string; up: boolean }): string[] {
  const l = s.link;
  if (!l) return [];
  const failed: string[] = [];
  const ns = s.netns;
  let up = now.up;
  if (!l.up && up) {
    try { ipCmd(ns, ['link', 'set', 'dev', s.ifname, 'down']); up = false; } catch (e) { failed.push(`down: ${firstLine(e)}`); }
  }
  if (l.macSet && now.mac === l.macSet && l.mac !== now.mac) {
    try { ipCmd(ns, ['link', 'set', 'dev', s.ifname, 'address', l.mac]); } catch (e) {
      // a driver that refuses a MAC change while up (no IFF_LIVE_ADDR_CHANGE): down, set, up
      if (!up) failed.push(`address ${l.mac}: ${firstLine(e)}`);
      else {
        try {
          ipCmd(ns, ['link', 'set', 'dev', s.ifname, 'down']);
          try { ipCmd(ns, ['link', 'set', 'dev', s.ifname, 'address', l.mac]); } finally { ipCmd(ns, ['link', 'set', 'dev', s.ifname, 'up']); }
        } catch (e2) { failed.push(`address ${l.mac}: ${firstLine(e2)}`); }
      }
    }
  }
  return failed;
}
