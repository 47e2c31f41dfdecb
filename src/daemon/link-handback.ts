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
// by the port manager (letKernelIn). test/port-link-handback.test.js checks each of these after
// a stop, a failed start and a kill followed by a start and a stop.
//
// Put back in this order: the link down (if it was: IPv6 addresses added to a link that then
// goes down are flushed by the kernel, so a link that was down gets them back while down), the
// MAC (before IPv6 comes back on: the kernel derives the link-local from it), the IPv6.
//
// Saved in <stateDir>/link-handback.json (written atomically; an older wdp's ipv6-handback.json is
// read when there is none, and removed once this one is written) as well as in memory: a daemon
// that was killed leaves its interfaces as its ports had them (IPv6 off, up, the port's MAC), and
// the next start must not take that for what the interface had. An entry is kept while the
// interface it was saved from (same name and ifindex) exists: a start that takes it again keeps
// the entry (with the MAC that start's port sets); an interface deleted and created again under
// its name (another pod's veth) is another interface, saved afresh; a start whose ports no longer
// include it (taken out of the config, a killed daemon's runtime port not restored) puts it back
// (giveBackStale). Cost: at a take, a sysfs read (another namespace: an `ip -j link` fork) and the
// IPv6 reads; at a hand-back, what there is to put back; a file write for either.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { writeFileAtomic } from '../util/atomic-file.js';
import { readIpv6, restoreIpv6, type SavedIpv6 } from './ipv6-handback.js';

const FILE = 'link-handback.json';
/** What an older wdp saved (the IPv6 alone, the same fields). */
const LEGACY_FILE = 'ipv6-handback.json';

/** The link as it was before the port took it. */
export interface SavedLinkState {
  /** its MAC (lowercase) */
  mac: string;
  /** administratively up */
  up: boolean;
  /** the MAC the port sets on it (its `mac:`), when another */
  macSet?: string;
}

/** An interface as it was before it became a port: its IPv6 (SavedIpv6's fields, empty where the
 * kernel has no IPv6) and its link (missing in an older wdp's entry). */
export interface SavedInterface extends SavedIpv6 { link?: SavedLinkState }

function ip(netns: string | undefined, args: string[]): string {
  return execFileSync('ip', netns ? ['-n', netns, ...args] : args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
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
    const [l] = JSON.parse(ip(netns, ['-j', 'link', 'show', 'dev', ifname]) || '[]') as Array<{ ifindex: number; address?: string; flags?: string[] }>;
    return l && Number.isInteger(l.ifindex) ? { ifindex: l.ifindex, mac: (l.address ?? '').toLowerCase(), up: !!l.flags?.includes('UP') } : undefined;
  } catch { return undefined; }
}

const key = (ifname: string, netns: string | undefined) => `${netns ?? ''}/${ifname}`;
const firstLine = (e: unknown) => (e as Error).message.split('\n')[0];

/** The saved state of the interfaces the daemon's ports have taken, in memory and in the state
 * directory. */
export class LinkHandback {
  private readonly saved = new Map<string, SavedInterface>();
  private warnedSave = false;
  /** Inside batch(): the file is written once at its end. */
  private batching = false;
  private dirty = false;
  /** An older wdp's file was read: removed once this one is written. */
  private legacy = false;

  constructor(private readonly stateDir: string, private readonly log: Logger) {
    let file = join(stateDir, FILE);
    if (!existsSync(file)) {
      file = join(stateDir, LEGACY_FILE);
      if (!existsSync(file)) return;
      this.legacy = true;
    }
    try {
      const j = JSON.parse(readFileSync(file, 'utf8')) as { interfaces?: SavedInterface[] };
      for (const s of j.interfaces ?? []) {
        if (typeof s?.ifname === 'string' && Number.isInteger(s.ifindex) && Array.isArray(s.addresses) && Array.isArray(s.routes)) this.saved.set(key(s.ifname, s.netns), s);
      }
    } catch (e) {
      log.warn({ file, error: firstLine(e) }, 'the saved state of the ports\' interfaces is unreadable: interfaces a killed daemon left are not given their IPv6, MAC and link state back');
    }
  }

  /** Before interface `ifname` (in `netns`) becomes port `port`, which sets MAC `mac` on it (its
   * `mac:`; undefined: it keeps its own): its state as it is now is saved — unless an entry from
   * this very interface is there already (a killed daemon's: the interface has that daemon's
   * changes since), which then takes the MAC this port sets. */
  take(ifname: string, netns: string | undefined, port: string, mac?: string): void {
    const now = linkNow(ifname, netns);
    if (!now) return;   // (the port's open says it is missing)
    const k = key(ifname, netns), before = this.saved.get(k);
    const macSet = mac && mac.toLowerCase() !== (before?.link?.mac ?? now.mac) ? mac.toLowerCase() : undefined;
    if (before?.ifindex === now.ifindex) {
      if (before.link && before.link.macSet !== macSet) {
        before.link = { mac: before.link.mac, up: before.link.up, ...(macSet ? { macSet } : {}) };
        this.persist();
      }
      return;
    }
    const link: SavedLinkState = { mac: now.mac, up: now.up, ...(macSet ? { macSet } : {}) };
    let v6: SavedIpv6 = { ifname, ...(netns ? { netns } : {}), ifindex: now.ifindex, addresses: [], routes: [] };
    if (existsSync('/proc/sys/net/ipv6')) {   // (no IPv6 in this kernel: nothing is turned off)
      try { v6 = readIpv6(ifname, netns, now.ifindex); } catch (e) {
        this.log.warn({ port, ifname, error: firstLine(e) }, 'cannot read this port\'s IPv6 configuration: it is not put back when the interface is handed back');
      }
    }
    this.saved.set(k, { ...v6, link });
    this.persist();
  }

  /** Interface `ifname` is the kernel's again: its saved state is put back (if it is still the
   * interface it was saved from) and forgotten. */
  giveBack(ifname: string, netns: string | undefined, why: string, persist = true): void {
    const k = key(ifname, netns), s = this.saved.get(k);
    if (!s) return;
    this.saved.delete(k);
    const now = linkNow(ifname, netns);
    if (now?.ifindex === s.ifindex) {
      const failed = [...restoreLink(s, now), ...restoreIpv6(s)];
      if (failed.length) this.log.warn({ ifname, failed, why }, 'an interface handed back has not all its configuration back');
      else this.log.info({ ifname, addresses: s.addresses.length, routes: s.routes.length, ...(s.link ? { mac: s.link.mac, up: s.link.up } : {}), why }, 'interface handed back with its IPv6 configuration and link state');
    }
    if (persist) this.persist();
  }

  /** giveBack for each of `ifnames`, the file written once (the daemon's stop: one write, not one
   * per port). */
  giveBackAll(ifnames: string[], netns: string | undefined, why: string): void {
    const before = this.saved.size;
    for (const i of ifnames) this.giveBack(i, netns, why, false);
    if (this.saved.size !== before) this.persist();
  }

  /** At start: the entries no port being opened accounts for (`keep`: their interfaces in
   * `netns`), left by a daemon that was killed, are put back — but for those `othersHold`
   * (another running wdp's port now), forgotten. */
  giveBackStale(keep: Set<string>, netns: string | undefined, othersHold?: (ifname: string, netns: string | undefined) => boolean): void {
    const before = this.saved.size;
    for (const s of [...this.saved.values()]) {
      if (s.netns === netns && keep.has(s.ifname)) continue;
      if (othersHold?.(s.ifname, s.netns)) {
        // another running wdp has taken it since: what is on it is that daemon's port's now
        this.saved.delete(key(s.ifname, s.netns));
        this.log.warn({ ifname: s.ifname }, 'an interface a killed daemon left is a port of another running wdp now: not given its saved state back');
        continue;
      }
      this.giveBack(s.ifname, s.netns, 'a killed daemon\'s port no port being opened accounts for', false);
    }
    if (this.saved.size !== before || this.legacy) this.persist();
  }

  /** Runs `fn` with the file written once at its end, if anything changed (the start's ports:
   * one write, not one per port). */
  batch<T>(fn: () => T): T {
    this.batching = true;
    try { return fn(); } finally {
      this.batching = false;
      if (this.dirty) this.persist();
    }
  }

  private persist(): void {
    if (this.batching) { this.dirty = true; return; }
    this.dirty = false;
    try {
      writeFileAtomic(this.stateDir, FILE, Buffer.from(JSON.stringify({ interfaces: [...this.saved.values()] }, null, 1)));
      this.warnedSave = false;
      if (this.legacy) {
        try { unlinkSync(join(this.stateDir, LEGACY_FILE)); } catch { /* gone */ }
        this.legacy = false;
      }
    } catch (e) {
      if (!this.warnedSave) this.log.warn({ file: join(this.stateDir, FILE), error: firstLine(e) }, 'cannot save the state of the ports\' interfaces: a killed daemon leaves them with IPv6 off, up, with the port\'s MAC');
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
    try { ip(ns, ['link', 'set', 'dev', s.ifname, 'down']); up = false; } catch (e) { failed.push(`down: ${firstLine(e)}`); }
  }
  if (l.macSet && now.mac === l.macSet && l.mac !== now.mac) {
    try { ip(ns, ['link', 'set', 'dev', s.ifname, 'address', l.mac]); } catch (e) {
      // a driver that refuses a MAC change while up (no IFF_LIVE_ADDR_CHANGE): down, set, up
      if (!up) failed.push(`address ${l.mac}: ${firstLine(e)}`);
      else {
        try {
          ip(ns, ['link', 'set', 'dev', s.ifname, 'down']);
          try { ip(ns, ['link', 'set', 'dev', s.ifname, 'address', l.mac]); } finally { ip(ns, ['link', 'set', 'dev', s.ifname, 'up']); }
        } catch (e2) { failed.push(`address ${l.mac}: ${firstLine(e2)}`); }
      }
    }
  }
  return failed;
}
