// Keeping the kernel off a port's interface: an nftables netdev ingress chain with policy drop per
// AF_PACKET / AF_XDP port (keepKernelOut), removed when the interface is handed back
// (letKernelIn), and the chains a daemon that did not stop cleanly left removed at the next start
// (removeStaleChains). The port manager (port-manager.ts) decides when; this file knows the chains.
import type { Logger } from 'pino';
import { systemTool } from '../util/system-tool.js';
import { claimedElsewhere } from './interface-claim.js';
import { ifindexesNow, inNs, inNsRead } from './link-commands.js';

/** The kernel must not process what arrives on a dataplane port: when the daemon's namespace is
 * the node's (a host port), the node addresses are local there, and the kernel would answer ARP
 * for them on pod ports and take TCP for them on the uplink (a RST from the host for every
 * NodePort SYN) — besides wdp forwarding it. An nftables netdev ingress chain with policy drop
 * per port does it (table `netdev wdp`, chain `in_<ifname>`): packet sockets bound to ETH_P_ALL
 * (ours) see frames before the ingress hook, the kernel's IP/ARP after it. */
export function keepKernelOut(ifname: string, netns: string | undefined, log: Logger, port: string): void {
  const chain = kernelChain(ifname);
  try {
    inNs(netns, nft(), ['add', 'table', 'netdev', NFT_TABLE]);
    try { inNs(netns, nft(), ['delete', 'chain', 'netdev', NFT_TABLE, chain]); } catch { /* none yet */ }
    inNs(netns, nft(), ['add', 'chain', 'netdev', NFT_TABLE, chain, `{ type filter hook ingress device "${ifname}" priority 0; policy drop; }`]);
  } catch (e) {
    log.warn({ port, error: (e as Error).message.split('\n')[0] }, 'could not keep the kernel off this port (nftables netdev ingress drop): with local addresses in this namespace the kernel answers too');
  }
}

/** Undoes keepKernelOut (the port is removed, the daemon stops): the interface is the host's again
 * (its IPv6: PortManager.handBack). */
export function letKernelIn(ifname: string, netns: string | undefined): void {
  try { inNs(netns, nft(), ['delete', 'chain', 'netdev', NFT_TABLE, kernelChain(ifname)]); } catch { /* gone with its pod, or never added */ }
}

/** The drop chains in the wdp table of `netns` (none when there is no table, or no `nft`), each
 * with the interface its hook names (chains made by keepKernelOut name one). */
function kernelChains(netns: string | undefined): Array<{ chain: string; ifname?: string }> {
  let text: string;
  try { text = inNsRead(netns, nft(), ['list', 'table', 'netdev', NFT_TABLE]); } catch { return []; }
  return text.split(/^\s*chain /m).slice(1).map((c) => ({ chain: c.split(/\s/, 1)[0], ifname: /\bdevice "([^"]+)"/.exec(c)?.[1] }));
}

/** Removes the drop chains that none of the ports about to open accounts for (`keep`: their chain
 * names). A daemon killed (SIGKILL, OOM, a node crash) leaves its chains; when it starts again
 * without one's port (taken out of the config, a saved runtime port not restored, a config-file
 * port whose interface is missing) nothing else would remove it, and the kernel would stay off
 * that interface for good — and, where the kernel keeps a netdev chain whose device is gone and
 * hooks it by name (Linux 6.16+), off the next interface of that name too (another pod's veth).
 * The table in a namespace is the one daemon's forwarding there. Each removal is logged. */
export function removeStaleChains(keep: Set<string>, netns: string | undefined, log: Logger): void {
  for (const { chain, ifname } of kernelChains(netns)) {
    if (keep.has(chain)) continue;
    // another live wdp's port (another state directory, same namespace: interface-claim.ts)
    const other = ifname ? foreignClaim(ifname, netns) : null;
    if (other) { log.info({ chain, ifname, pid: other.pid, stateDir: other.stateDir }, 'a drop chain of another running wdp\'s port: left alone'); continue; }
    try {
      inNs(netns, nft(), ['delete', 'chain', 'netdev', NFT_TABLE, chain]);
      log.warn({ chain, ifname }, 'a drop chain no port being opened accounts for (left by a daemon that did not stop cleanly): removed, the kernel has the interface again');
    } catch (e) {
      log.error({ chain, ifname, error: (e as Error).message.split('\n')[0] }, 'a drop chain no port being opened accounts for could not be removed: the kernel stays off its interface');
    }
  }
}

const NFT_TABLE = 'wdp';

/** Who claims interface `ifname` of `netns` when it is another live wdp than this process's
 * daemons (interface-claim.ts), else null. */
export function foreignClaim(ifname: string, netns: string | undefined): { pid?: number; stateDir?: string } | null {
  const at = ifindexesNow([ifname], netns)(ifname);
  return typeof at === 'number' ? claimedElsewhere(netns, at) : null;
}

/** nftables' `nft` from the system directories (src/util/system-tool.ts says why not PATH). */
const nft = (): string => systemTool('nft') ?? 'nft';
export const kernelChain = (ifname: string) => `in_${ifname.replace(/[^A-Za-z0-9_]/g, '_')}`;
