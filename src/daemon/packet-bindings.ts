// Which interfaces this process's AF_PACKET sockets are bound to now. An interface that leaves its
// network namespace unbinds every packet socket bound to it for good (the kernel's NETDEV_UNREGISTER
// sets the socket's ifindex to -1), also when it comes back under the same name and ifindex (a
// moved interface keeps a free ifindex; one can be created with its old one asked for): its port
// then receives and sends nothing while the link check's name and ifindex still match. The
// kernel's list of a namespace's packet sockets (/proc/net/packet: Iface, Inode) tells, for the
// sockets whose inode is one of this process's descriptors.
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { inNsRead } from './link-commands.js';

/** The inodes of this process's sockets (its descriptors' `socket:[inode]` links). */
function ownSocketInodes(): Set<string> {
  const out = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (m) out.add(m[1]);
    } catch { /* closed meanwhile */ }
  }
  return out;
}

/** The ifindexes this process's packet sockets in `netns` (this thread's namespace when unset:
 * the daemon's) are bound to, null when it cannot be read (nothing is judged from it then). */
export function packetSocketIfindexes(netns?: string): Set<number> | null {
  let text: string;
  try {
    text = netns
      ? inNsRead(netns, 'cat', ['/proc/net/packet'])
      : readFileSync('/proc/net/packet', 'utf8');
  } catch { return null; }
  let ours: Set<string>;
  try { ours = ownSocketInodes(); } catch { return null; }
  const lines = text.split('\n');
  const head = lines[0]?.trim().split(/\s+/) ?? [];
  const iface = head.indexOf('Iface'), inode = head.indexOf('Inode');
  if (iface < 0 || inode < 0) return null;
  const bound = new Set<number>();
  for (const line of lines.slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length > Math.max(iface, inode) && ours.has(f[inode])) bound.add(parseInt(f[iface], 10));
  }
  return bound;
}
