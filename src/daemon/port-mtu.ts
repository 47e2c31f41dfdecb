// A port's egress MTU: its interface's MTU, read when the port opens (and again while it runs,
// a few ports a second: worker.ts refreshMtus; a TAP in a pod's namespace by the main thread,
// PortManager.refreshNamespacedMtus), which the worker programs
// into its core (Core.setPortMtu) so a packet too big for the link is answered with ICMP
// fragmentation needed / packet too big instead of being lost in the port's send (docs/core.md
// "Egress MTU"). With the native addon: SIOCGIFMTU inside the interface's namespace (a setns pair
// and an ioctl, microseconds); without it (the python relay): sysfs in this namespace, `ip -n` in
// another (a fork, ~2-5 ms).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Ports' MTUs are read again while they run, MTU_REFRESH_PORTS of them every MTU_REFRESH_MS
 * (round-robin), so an `ip link set ... mtu` reaches the core within ports / 4 seconds. */
export const MTU_REFRESH_MS = 1000;
export const MTU_REFRESH_PORTS = 4;

/** What reads an MTU natively (src/ports/native.ts NativeAddon). */
export interface MtuReader { interfaceMtu(name: string, netns: string | null): number }

/** The MTU of interface `ifname` (in namespace `netns`, else this one), or why it is unknown. */
export function interfaceMtu(ifname: string, netns: string | undefined, native?: MtuReader): number | string {
  if (!/^[^/\s\0]{1,15}$/.test(ifname)) return `"${ifname}" is not an interface name`;
  let text: string;
  try {
    if (native) text = String(native.interfaceMtu(ifname, netns ?? null));
    else if (netns) text = /\bmtu (\d+)\b/.exec(execFileSync('ip', ['-n', netns, '-o', 'link', 'show', 'dev', ifname], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }))?.[1] ?? '';
    else text = readFileSync(`/sys/class/net/${ifname}/mtu`, 'utf8');
  } catch (e) {
    return (e as Error).message.split('\n')[0];
  }
  const mtu = Number(text.trim());
  // above 65535 (loopback's 65536): no IP packet is bigger, so 65535 checks nothing either
  return Number.isInteger(mtu) && mtu >= 68 ? Math.min(mtu, 0xffff) : `no MTU in "${text.trim()}"`;
}
