// A port's egress MTU: its interface's MTU, read when the port opens, which the worker programs
// into its core (Core.setPortMtu) so a packet too big for the link is answered with ICMP
// fragmentation needed / packet too big instead of being lost in the port's send (docs/core.md
// "Egress MTU"). Read from sysfs in the daemon's own namespace (a file read), with `ip -n` in
// another one (a TAP created in its pod's namespace; about 2 ms, once per port).
import { readFileSync } from 'node:fs';
import { ipCmd } from './port-manager.js';

/** The MTU of interface `ifname` (in namespace `netns`, else this one), or an error message. */
export function interfaceMtu(ifname: string, netns?: string): number | string {
  if (!/^[^/\s\0]{1,15}$/.test(ifname)) return `"${ifname}" is not an interface name`;
  let text: string;
  try {
    text = netns ? /\bmtu (\d+)\b/.exec(ipCmd(netns, ['-o', 'link', 'show', 'dev', ifname]))?.[1] ?? ''
      : readFileSync(`/sys/class/net/${ifname}/mtu`, 'utf8');
  } catch (e) {
    return (e as Error).message.split('\n')[0];
  }
  const mtu = Number(text.trim());
  return Number.isInteger(mtu) && mtu >= 68 && mtu <= 0xffff ? mtu : `no MTU in "${text.trim()}"`;
}
