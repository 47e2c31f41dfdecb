// The IPv6 configuration of an interface taken as an AF_PACKET / AF_XDP port, saved before the port
// turns IPv6 off on it (port-manager.ts ipv6Off) and put back when the interface is handed back to
// the kernel (the daemon stops, the port is removed, a saved port is not restored).
//
// What turning IPv6 off loses (`disable_ipv6=1`; where /proc/sys is read-only, netlink's
// `addrgenmode none` and flushes): every IPv6 address of the interface — static ones with their
// flags (nodad, noprefixroute, ...), the link-local — and every IPv6 route through it, in any table,
// besides the connected ones. Setting `disable_ipv6` back to 0 alone brings back only a
// kernel-generated link-local: static addresses and routes are gone for good. accept_ra, autoconf
// and the other per-interface sysctls are not touched by either way, and IPv4 is not touched at all.
// So what is saved: disable_ipv6, addr_gen_mode, the addresses without a lifetime (the static
// ones and the link-local; those with one — SLAAC, DHCPv6, privacy addresses — come back from
// their router or client: accept_ra is as it was and the kernel solicits a router when IPv6 comes
// back on), and the routes through the interface that neither the kernel (connected, local,
// multicast) nor a router advertisement made. Put back in that order: the sysctls, the addresses
// (with their flags), the routes (which need the addresses' prefixes).
//
// Saved in <stateDir>/ipv6-handback.json (written atomically) as well as in memory: a daemon that
// was killed leaves its interfaces with IPv6 off, and the next start must not take "IPv6 off" for
// what the interface had. An entry is kept while the interface it was saved from (same name and
// ifindex) exists: a start that takes it again keeps the entry; an interface deleted and created
// again under its name (another pod's veth) is another interface, saved afresh; a start whose
// ports no longer include it (taken out of the config, a killed daemon's runtime port not restored)
// puts it back (giveBackStale). Cost: a few `ip` / `sysctl` forks per port at its take and at its
// hand-back, and a file write.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { writeFileAtomic } from '../util/atomic-file.js';

const FILE = 'ipv6-handback.json';
/** valid_life_time of an address without a lifetime (INFINITY_LIFE_TIME). */
const FOREVER = 0xffffffff;
/** The address flags `ip addr add` takes back (the others are states: tentative, dadfailed, ...). */
const ADDR_FLAGS = ['nodad', 'noprefixroute', 'home', 'mngtmpaddr', 'optimistic', 'autojoin'];

interface SavedAddress { local: string; prefixlen: number; flags: string[] }
interface SavedRoute { dst: string; gateway?: string; metric?: number; table?: string; protocol?: string; onlink?: boolean; src?: string }
/** An interface's IPv6 as it was before it became a port. */
export interface SavedIpv6 {
  ifname: string; netns?: string; ifindex: number;
  disableIpv6?: string; addrGenMode?: string;
  addresses: SavedAddress[]; routes: SavedRoute[];
}

function ip(netns: string | undefined, args: string[]): string {
  return execFileSync('ip', netns ? ['-n', netns, ...args] : args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
function sysctlRead(netns: string | undefined, key: string): string | undefined {
  try {
    if (!netns) return readFileSync(`/proc/sys/${key.replace(/\./g, '/')}`, 'utf8').trim();
    return execFileSync('ip', ['netns', 'exec', netns, 'sysctl', '-n', key], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch { return undefined; }
}
function sysctlWrite(netns: string | undefined, key: string, value: string): void {
  if (!netns) { writeFileSync(`/proc/sys/${key.replace(/\./g, '/')}`, value); return; }
  execFileSync('ip', ['netns', 'exec', netns, 'sysctl', '-qw', `${key}=${value}`], { stdio: 'pipe' });
}
/** The interface's ifindex now; undefined when there is none of that name. (In the daemon's own
 * namespace a sysfs read, no fork.) */
function ifindexOf(ifname: string, netns: string | undefined): number | undefined {
  try {
    const i = parseInt(netns ? ip(netns, ['-o', 'link', 'show', 'dev', ifname]) : readFileSync(`/sys/class/net/${ifname}/ifindex`, 'utf8'), 10);
    return Number.isInteger(i) ? i : undefined;
  } catch { return undefined; }
}
const key = (ifname: string, netns: string | undefined) => `${netns ?? ''}/${ifname}`;
const firstLine = (e: unknown) => (e as Error).message.split('\n')[0];

/** The interface's IPv6 now (see above for what is read). */
export function readIpv6(ifname: string, netns: string | undefined, ifindex: number): SavedIpv6 {
  const conf = (k: string) => sysctlRead(netns, `net.ipv6.conf.${ifname}.${k}`);
  const addresses: SavedAddress[] = [];
  type AddrInfo = { family: string; local: string; prefixlen: number; valid_life_time?: number; temporary?: boolean } & Record<string, unknown>;
  const links = JSON.parse(ip(netns, ['-j', '-6', 'addr', 'show', 'dev', ifname]) || '[]') as Array<{ addr_info?: AddrInfo[] }>;
  for (const a of links[0]?.addr_info ?? []) {
    if (a.family !== 'inet6' || a.temporary || (a.valid_life_time ?? FOREVER) !== FOREVER) continue;
    addresses.push({ local: a.local, prefixlen: a.prefixlen, flags: ADDR_FLAGS.filter((f) => a[f] === true) });
  }
  type RouteInfo = { dst: string; gateway?: string; metric?: number; table?: string; protocol?: string; type?: string; flags?: string[]; expires?: number; nexthops?: unknown; prefsrc?: string };
  const routes: SavedRoute[] = [];
  const list = JSON.parse(ip(netns, ['-j', '-6', 'route', 'show', 'table', 'all', 'dev', ifname]) || '[]') as RouteInfo[];
  for (const r of list) {
    // the kernel's (connected prefixes, local and multicast entries) come back with the addresses;
    // a router's (proto ra, or with an expiry) with its next advertisement; multipath: not ours to split
    if (r.protocol === 'kernel' || r.protocol === 'ra' || r.table === 'local' || (r.type && r.type !== 'unicast') || r.expires !== undefined || r.nexthops) continue;
    routes.push({
      dst: r.dst, ...(r.gateway ? { gateway: r.gateway } : {}), ...(r.metric !== undefined ? { metric: r.metric } : {}),
      ...(r.table && r.table !== 'main' ? { table: r.table } : {}), ...(r.protocol ? { protocol: r.protocol } : {}),
      ...(r.flags?.includes('onlink') ? { onlink: true } : {}), ...(r.prefsrc ? { src: r.prefsrc } : {}),
    });
  }
  return {
    ifname, ...(netns ? { netns } : {}), ifindex, addresses, routes,
    ...(conf('disable_ipv6') !== undefined ? { disableIpv6: conf('disable_ipv6') } : {}),
    ...(conf('addr_gen_mode') !== undefined ? { addrGenMode: conf('addr_gen_mode') } : {}),
  };
}

/** `ip link set addrgenmode` names for the addr_gen_mode sysctl's values. */
const GEN_MODES: Record<string, string> = { 0: 'eui64', 1: 'none', 2: 'stable_secret', 3: 'random' };

/** Puts `s` back on its interface; what could not be put back (empty: everything was). Forks
 * only for what there is to put back: an interface that had no static address or route (a pod's
 * veth whose addresses the CNI plugin flushed) costs a sysctl write in the daemon's namespace. */
export function restoreIpv6(s: SavedIpv6): string[] {
  const failed: string[] = [];
  const ns = s.netns;
  const conf = (k: string) => `net.ipv6.conf.${s.ifname}.${k}`;
  let genModeBack = false;
  if (s.addrGenMode !== undefined && sysctlRead(ns, conf('addr_gen_mode')) !== s.addrGenMode) {
    try { ip(ns, ['link', 'set', 'dev', s.ifname, 'addrgenmode', GEN_MODES[s.addrGenMode] ?? 'eui64']); genModeBack = true; } catch (e) { failed.push(`addrgenmode: ${firstLine(e)}`); }
  }
  let turnedOn = false;
  if (s.disableIpv6 !== undefined && sysctlRead(ns, conf('disable_ipv6')) !== s.disableIpv6) {
    try { sysctlWrite(ns, conf('disable_ipv6'), s.disableIpv6); turnedOn = s.disableIpv6 === '0'; } catch (e) { failed.push(`disable_ipv6: ${firstLine(e)}`); }
  }
  if (s.disableIpv6 === '1') return failed;   // it had IPv6 off: nothing more was there
  // The kernel makes its link-local again as IPv6 comes back on (disable_ipv6 turned on, by its
  // addr_gen_mode: a random or stable one is another address than the saved one); not when only
  // addr_gen_mode is set back (the netlink way): then the saved one is added.
  const kernelLinkLocal = turnedOn && !genModeBack;
  const wanted = s.addresses.filter((a) => !(kernelLinkLocal && /^fe[89ab]/i.test(a.local)));
  for (const a of wanted) {
    // (replace: one the kernel made meanwhile, the same address, takes the saved flags)
    try { ip(ns, ['-6', 'addr', 'replace', `${a.local}/${a.prefixlen}`, 'dev', s.ifname, ...a.flags]); } catch (e) { failed.push(`${a.local}/${a.prefixlen}: ${firstLine(e)}`); }
  }
  for (const r of s.routes) {
    const args = ['-6', 'route', 'replace', r.dst, ...(r.gateway ? ['via', r.gateway] : []), 'dev', s.ifname, ...(r.onlink ? ['onlink'] : []),
      ...(r.src ? ['src', r.src] : []), ...(r.metric !== undefined ? ['metric', String(r.metric)] : []), ...(r.table ? ['table', r.table] : []),
      ...(r.protocol ? ['proto', r.protocol] : [])];
    try { ip(ns, args); } catch (e) { failed.push(`route ${r.dst}: ${firstLine(e)}`); }
  }
  return failed;
}

/** The saved IPv6 of the interfaces the daemon's ports have taken, in memory and in the state
 * directory. */
export class Ipv6Handback {
  private readonly saved = new Map<string, SavedIpv6>();
  private warnedSave = false;
  /** Inside batch(): the file is written once at its end. */
  private batching = false;
  private dirty = false;

  constructor(private readonly stateDir: string, private readonly log: Logger) {
    const file = join(stateDir, FILE);
    if (!existsSync(file)) return;
    try {
      const j = JSON.parse(readFileSync(file, 'utf8')) as { interfaces?: SavedIpv6[] };
      for (const s of j.interfaces ?? []) {
        if (typeof s?.ifname === 'string' && Number.isInteger(s.ifindex) && Array.isArray(s.addresses) && Array.isArray(s.routes)) this.saved.set(key(s.ifname, s.netns), s);
      }
    } catch (e) {
      log.warn({ file, error: firstLine(e) }, 'the saved IPv6 of the ports\' interfaces is unreadable: interfaces a killed daemon left are not given their IPv6 back');
    }
  }

  /** Before interface `ifname` (in `netns`) becomes a port: its IPv6 as it is now is saved — unless
   * an entry from this very interface is there already (a killed daemon's: the interface has IPv6
   * off since, by wdp). */
  take(ifname: string, netns: string | undefined, port: string): void {
    if (!existsSync('/proc/sys/net/ipv6')) return;   // no IPv6 in this kernel: nothing is turned off
    const ifindex = ifindexOf(ifname, netns);
    if (ifindex === undefined) return;   // (the port's open says it is missing)
    const k = key(ifname, netns), before = this.saved.get(k);
    if (before?.ifindex === ifindex) return;
    try { this.saved.set(k, readIpv6(ifname, netns, ifindex)); } catch (e) {
      this.log.warn({ port, ifname, error: firstLine(e) }, 'cannot read this port\'s IPv6 configuration: it is not put back when the interface is handed back');
      this.saved.delete(k);
    }
    this.persist();
  }

  /** Interface `ifname` is the kernel's again: its saved IPv6 is put back (if it is still the
   * interface it was saved from) and forgotten. */
  giveBack(ifname: string, netns: string | undefined, why: string, persist = true): void {
    const k = key(ifname, netns), s = this.saved.get(k);
    if (!s) return;
    this.saved.delete(k);
    if (ifindexOf(ifname, netns) === s.ifindex) {
      const failed = restoreIpv6(s);
      if (failed.length) this.log.warn({ ifname, failed, why }, 'an interface handed back has not all its IPv6 configuration back');
      else this.log.info({ ifname, addresses: s.addresses.length, routes: s.routes.length, why }, 'interface handed back with its IPv6 configuration');
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
   * `netns`), left by a daemon that was killed, are put back. */
  giveBackStale(keep: Set<string>, netns: string | undefined): void {
    const before = this.saved.size;
    for (const s of [...this.saved.values()]) {
      if (s.netns === netns && keep.has(s.ifname)) continue;
      this.giveBack(s.ifname, s.netns, 'a killed daemon\'s port no port being opened accounts for', false);
    }
    if (this.saved.size !== before) this.persist();
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
    } catch (e) {
      if (!this.warnedSave) this.log.warn({ file: join(this.stateDir, FILE), error: firstLine(e) }, 'cannot save the ports\' interfaces\' IPv6: a killed daemon leaves them with IPv6 off');
      this.warnedSave = true;
    }
  }
}
