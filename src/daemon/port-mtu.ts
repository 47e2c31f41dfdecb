// A port's egress MTU: its interface's MTU, read when the port opens (and again while it runs,
// a few ports a second: worker.ts refreshMtus; a TAP in a pod's namespace by the main thread,
// PortManager.refreshNamespacedMtus), which the worker programs
// into its core (Core.setPortMtu) so a packet too big for the link is answered with ICMP
// fragmentation needed / packet too big instead of being lost in the port's send (docs/core.md
// "Egress MTU"). With the native addon: SIOCGIFMTU inside the interface's namespace (a setns pair
// and an ioctl, microseconds); without it (the python relay): sysfs in this namespace, `ip -n` in
// another (a fork, ~2-5 ms).
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Ports' MTUs are read again while they run, MTU_REFRESH_PORTS of them every MTU_REFRESH_MS
 * (round-robin), so an `ip link set ... mtu` reaches the core within ports / 4 seconds. */
export const MTU_REFRESH_MS = 1000;
export const MTU_REFRESH_PORTS = 4;

/** What reads an MTU natively (src/ports/native.ts NativeAddon). */
export interface MtuReader { interfaceMtu(name: string, netns: string | null): number }

/** The MTU of interface `ifname` (in namespace `netns`, else this one), or why it is unknown. */
export function interfaceMtu(ifname: string, netns: string | undefined, native?: MtuReader): number | string {
  if (!IFNAME.test(ifname)) return notAnInterface(ifname);
  let text: string;
  try {
    if (native) text = String(native.interfaceMtu(ifname, netns ?? null));
    else if (netns) text = mtuInLink(execFileSync('ip', ipLinkShow(ifname, netns), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
    else text = readFileSync(`/sys/class/net/${ifname}/mtu`, 'utf8');
  } catch (e) {
    return firstLine(e);
  }
  return mtuOf(text);
}

/** interfaceMtu without blocking this thread on a fork: `ip -n` (no native reader, another
 * namespace) runs as a child process awaited on the event loop; the other reads are immediate. */
export async function interfaceMtuAsync(ifname: string, netns: string | undefined, native?: MtuReader): Promise<number | string> {
  if (native || !netns) return interfaceMtu(ifname, netns, native);
  if (!IFNAME.test(ifname)) return notAnInterface(ifname);
  try {
    return mtuOf(mtuInLink((await execFileAsync('ip', ipLinkShow(ifname, netns), { encoding: 'utf8' })).stdout));
  } catch (e) {
    return firstLine(e);
  }
}

const IFNAME = /^[^/\s\0]{1,15}$/;
const notAnInterface = (ifname: string) => `"${ifname}" is not an interface name`;
const firstLine = (e: unknown) => (e as Error).message.split('\n')[0];
const ipLinkShow = (ifname: string, netns: string) => ['-n', netns, '-o', 'link', 'show', 'dev', ifname];
const mtuInLink = (line: string) => /\bmtu (\d+)\b/.exec(line)?.[1] ?? '';

function mtuOf(text: string): number | string {
  const mtu = Number(text.trim());
  // above 65535 (loopback's 65536): no IP packet is bigger, so 65535 checks nothing either
  return Number.isInteger(mtu) && mtu >= 68 ? Math.min(mtu, 0xffff) : `no MTU in "${text.trim()}"`;
}
