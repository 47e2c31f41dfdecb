// The IPv6 configuration of an interface taken as an AF_PACKET / AF_XDP port, saved before the port
// turns IPv6 off on it (link-commands.ts ipv6Off) and put back when the interface is handed back to
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
// Saved with the interface's link state, and put back, by link-handback.ts (which says when; where:
// interface-record.ts). Cost: a few `ip` / `sysctl` forks per port at its take and at its hand-back.
import { readFileSync, writeFileSync } from 'node:fs';
import { inNs, inNsRead, ipCmd } from './link-commands.js';

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

function sysctlRead(netns: string | undefined, key: string): string | undefined {
  try {
    if (!netns) return readFileSync(`/proc/sys/${key.replace(/\./g, '/')}`, 'utf8').trim();
    return inNsRead(netns, 'sysctl', ['-n', key]).trim();
  } catch { return undefined; }
}
function sysctlWrite(netns: string | undefined, key: string, value: string): void {
  if (!netns) { writeFileSync(`/proc/sys/${key.replace(/\./g, '/')}`, value); return; }
  inNs(netns, 'sysctl', ['-qw', `${key}=${value}`]);
}
const firstLine = (e: unknown) => (e as Error).message.split('\n')[0];

/** The interface's IPv6 now (see above for what is read). */
export function readIpv6(ifname: string, netns: string | undefined, ifindex: number): SavedIpv6 {
  const conf = (k: string) => sysctlRead(netns, `net.ipv6.conf.${ifname}.${k}`);
  const addresses: SavedAddress[] = [];
  type AddrInfo = { family: string; local: string; prefixlen: number; valid_life_time?: number; temporary?: boolean } & Record<string, unknown>;
  const links = JSON.parse(ipCmd(netns, ['-j', '-6', 'addr', 'show', 'dev', ifname]) || '[]') as Array<{ addr_info?: AddrInfo[] }>;
  for (const a of links[0]?.addr_info ?? []) {
    if (a.family !== 'inet6' || a.temporary || (a.valid_life_time ?? FOREVER) !== FOREVER) continue;
    addresses.push({ local: a.local, prefixlen: a.prefixlen, flags: ADDR_FLAGS.filter((f) => a[f] === true) });
  }
  type RouteInfo = { dst: string; gateway?: string; metric?: number; table?: string; protocol?: string; type?: string; flags?: string[]; expires?: number; nexthops?: unknown; prefsrc?: string };
  const routes: SavedRoute[] = [];
  const list = JSON.parse(ipCmd(netns, ['-j', '-6', 'route', 'show', 'table', 'all', 'dev', ifname]) || '[]') as RouteInfo[];
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

/** Whether IPv6 is off on interface `ifname` as a port turns it off (link-commands.ts ipv6Off:
 * `disable_ipv6` 1, or `addr_gen_mode` none); undefined where neither can be read. */
export function ipv6TurnedOff(ifname: string, netns: string | undefined): boolean | undefined {
  const d = sysctlRead(netns, `net.ipv6.conf.${ifname}.disable_ipv6`), g = sysctlRead(netns, `net.ipv6.conf.${ifname}.addr_gen_mode`);
  if (d === undefined && g === undefined) return undefined;
  return d === '1' || g === '1';
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
    try { ipCmd(ns, ['link', 'set', 'dev', s.ifname, 'addrgenmode', GEN_MODES[s.addrGenMode] ?? 'eui64']); genModeBack = true; } catch (e) { failed.push(`addrgenmode: ${firstLine(e)}`); }
  }
  let turnedOn = false;
  if (s.disableIpv6 !== undefined && sysctlRead(ns, conf('disable_ipv6')) !== s.disableIpv6) {
    try { sysctlWrite(ns, conf('disable_ipv6'), s.disableIpv6); turnedOn = s.disableIpv6 === '0'; } catch (e) { failed.push(`disable_ipv6: ${firstLine(e)}`); }
  }
  if (s.disableIpv6 === '1') return failed;   // it had IPv6 off: nothing more was there
  // The kernel makes its link-local again as IPv6 comes back on (disable_ipv6 turned on), from the
  // MAC the interface has now (or randomly, by its addr_gen_mode) — not always the saved one: a
  // link-local is made when the link comes up and stays when the MAC changes later, so an
  // interface whose MAC was set while it was up (a veth's random one, then the operator's) had
  // one the kernel does not make again. So the saved addresses are added, link-locals included
  // (replace: one the kernel made, the same address, takes the saved flags), and a link-local the
  // kernel made that was not there before is removed: the interface has the addresses it had.
  const kernelLinkLocal = turnedOn && !genModeBack;
  const isLinkLocal = (a: string) => /^fe[89ab]/i.test(a);
  for (const a of s.addresses) {
    try { ipCmd(ns, ['-6', 'addr', 'replace', `${a.local}/${a.prefixlen}`, 'dev', s.ifname, ...a.flags]); } catch (e) { failed.push(`${a.local}/${a.prefixlen}: ${firstLine(e)}`); }
  }
  if (kernelLinkLocal) {
    const saved = new Set(s.addresses.map((a) => `${a.local}/${a.prefixlen}`));
    let made: Array<{ local: string; prefixlen: number }> = [];
    try {
      made = ((JSON.parse(ipCmd(ns, ['-j', '-6', 'addr', 'show', 'dev', s.ifname, 'scope', 'link']) || '[]') as Array<{ addr_info?: Array<{ family: string; local: string; prefixlen: number }> }>)[0]?.addr_info ?? [])
        .filter((a) => a.family === 'inet6' && isLinkLocal(a.local));
    } catch (e) { failed.push(`link-local: ${firstLine(e)}`); }
    for (const a of made) {
      if (saved.has(`${a.local}/${a.prefixlen}`)) continue;
      try { ipCmd(ns, ['-6', 'addr', 'del', `${a.local}/${a.prefixlen}`, 'dev', s.ifname]); } catch (e) { failed.push(`${a.local}/${a.prefixlen}: ${firstLine(e)}`); }
    }
  }
  for (const r of s.routes) {
    const args = ['-6', 'route', 'replace', r.dst, ...(r.gateway ? ['via', r.gateway] : []), 'dev', s.ifname, ...(r.onlink ? ['onlink'] : []),
      ...(r.src ? ['src', r.src] : []), ...(r.metric !== undefined ? ['metric', String(r.metric)] : []), ...(r.table ? ['table', r.table] : []),
      ...(r.protocol ? ['proto', r.protocol] : [])];
    try { ipCmd(ns, args); } catch (e) { failed.push(`route ${r.dst}: ${firstLine(e)}`); }
  }
  return failed;
}
