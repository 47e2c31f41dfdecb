// Reading and setting a port's interface with `ip` (and sysfs / procfs where the interface is in
// this process's namespace: no fork): its MAC and ifindex, whether a network namespace is there,
// IPv6 off on it, and the made-up MAC a TAP gets. The port manager (port-manager.ts) uses these
// when it takes an interface and in its link check; the hand-back (link-handback.ts,
// ipv6-handback.ts) and the host port's stack (host-stack.ts) run their `ip` commands through
// ipCmd / inNs too. Each `ip` call is a fork (~2-5 ms): the link check asks once per namespace.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { ConfigError } from './config.js';

/** `ip ARGS` in network namespace `netns` (`ip -n`), else in this one; its output. Throws when it
 * fails (the error carries its stderr). */
export function ipCmd(netns: string | undefined, args: string[]): string {
  const full = netns ? ['-n', netns, ...args] : args;
  return execFileSync('ip', full, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Command `cmd` run in network namespace `netns` (`ip netns exec`), else in this one; its output
 * is not kept. Throws when it fails. */
export function inNs(netns: string | undefined, cmd: string, args: string[]): void {
  if (netns) execFileSync('ip', ['netns', 'exec', netns, cmd, ...args], { stdio: 'pipe' });
  else execFileSync(cmd, args, { stdio: 'pipe' });
}

/** inNs, returning what the command wrote to stdout. */
export function inNsRead(netns: string | undefined, cmd: string, args: string[]): string {
  return netns ? execFileSync('ip', ['netns', 'exec', netns, cmd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    : execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** An interface's MAC and ifindex (`ip -o link` begins "INDEX: NAME..."). */
export function linkOf(ifname: string, netns?: string): { mac: string; ifindex: number } {
  let out: string;
  try { out = ipCmd(netns, ['-o', 'link', 'show', 'dev', ifname]); } catch {
    throw new ConfigError(`interface "${ifname}" does not exist in ${netns ? `namespace ${netns}` : 'this network namespace'}`);
  }
  const m = /link\/ether ([0-9a-f:]{17})/.exec(out);
  if (!m) throw new ConfigError(`interface "${ifname}" is not an Ethernet interface`);
  return { mac: m[1], ifindex: parseInt(out, 10) };
}

/** The MAC interface `ifname` has now (lowercase), null when it cannot be read. Without a
 * namespace a sysfs read; in one, `ip -n`. */
export function macNow(ifname: string, netns?: string): string | null {
  try {
    if (!netns) return readFileSync(`/sys/class/net/${ifname}/address`, 'utf8').trim().toLowerCase();
    return /link\/ether ([0-9a-f:]{17})/.exec(ipCmd(netns, ['-o', 'link', 'show', 'dev', ifname]))?.[1] ?? null;
  } catch { return null; }
}

/** What the link check found for an interface name: its ifindex now, 'gone' (no interface by that
 * name), or 'unknown' (it could not be read this time: nothing is judged from it). */
export type IfindexNow = number | 'gone' | 'unknown';

/** The ifindex each of `names` has now in `netns`. Without a namespace a sysfs read per name (the
 * daemon's own namespace: cheap enough every few seconds; only ENOENT says gone); in one, one
 * `ip -n` listing for all of them — a listing that fails (a fork refused under memory pressure)
 * says nothing about the interfaces, so every name is unknown, never gone. */
export function ifindexesNow(names: string[], netns?: string): (name: string) => IfindexNow {
  if (!netns) {
    const out = new Map<string, IfindexNow>();
    for (const n of names) {
      try {
        const i = parseInt(readFileSync(`/sys/class/net/${n}/ifindex`, 'utf8'), 10);
        out.set(n, Number.isInteger(i) ? i : 'unknown');
      } catch (e) {
        out.set(n, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'gone' : 'unknown');
      }
    }
    return (n) => out.get(n) ?? 'unknown';
  }
  let text: string;
  try { text = ipCmd(netns, ['-o', 'link', 'show']); } catch { return () => 'unknown'; }
  const found = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(\d+): ([^:@\s]+)/.exec(line);
    if (m && names.includes(m[2])) found.set(m[2], Number(m[1]));
  }
  return (n) => found.get(n) ?? 'gone';
}

/** Whether network namespace `name` is there: /run/netns/NAME with a namespace mounted on it (a
 * device other than the directory's). `ip netns add` creates the file, then mounts; `ip netns del`
 * unmounts, then unlinks: a bare file is a namespace coming or going, not one to open a TAP in. */
export function netnsMounted(name: string): boolean {
  try { return statSync(join(NETNS_DIR, name)).dev !== statSync(NETNS_DIR).dev; } catch { return false; }
}
export const NETNS_DIR = '/run/netns';

/** IPv6 off on a port's interface, so that the kernel originates nothing there (link-local
 * address, DAD, router solicitations, MLD reports): `disable_ipv6` where /proc/sys is writable.
 * An unprivileged container (the DaemonSet) has /proc/sys read-only (and its image may have no
 * `sysctl`); there netlink, which CAP_NET_ADMIN allows, gets the same: no address generated
 * (addrgenmode none), none left and no IPv6 route through it (disable_ipv6 takes those too; a
 * CNI plugin's host route to its pod, say, would send the node's traffic past wdp). Either way
 * the interface loses its IPv6 addresses and routes: PortManager saves them first and puts them
 * back when it hands the interface back (link-handback.ts, ipv6-handback.ts). */
export function ipv6Off(ifname: string, netns: string | undefined, log: Logger, port: string): void {
  if (!existsSync('/proc/sys/net/ipv6')) return; // no IPv6 in this kernel
  let why: string;
  try {
    if (netns) inNs(netns, 'sysctl', ['-qw', `net.ipv6.conf.${ifname}.disable_ipv6=1`]);
    else {
      const file = `/proc/sys/net/ipv6/conf/${ifname}/disable_ipv6`;
      if (readFileSync(file, 'utf8').trim() !== '1') writeFileSync(file, '1');
    }
    return;
  } catch (e) { why = (e as Error).message.split('\n')[0]; }
  try {
    ipCmd(netns, ['link', 'set', 'dev', ifname, 'addrgenmode', 'none']);
    ipCmd(netns, ['-6', 'addr', 'flush', 'dev', ifname]);
    ipCmd(netns, ['-6', 'route', 'flush', 'dev', ifname]);
  } catch (e) {
    log.warn({ port, ifname, error: (e as Error).message.split('\n')[0], sysctl: why }, 'could not turn IPv6 off on this port: the kernel may send IPv6 neighbour discovery and MLD from it');
  }
}

/** A MAC for the dataplane side of a TAP that is stable across restarts (pods keep it in their
 * neighbour caches: a new MAC per restart would blackhole them until their entry goes stale). */
export function stableMac(seed: string): string {
  const b = createHash('sha256').update(seed).digest().subarray(0, 6);
  b[0] = (b[0] & 0xfc) | 0x02;      // locally administered, unicast
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}
