// Frontend ids by what they name — (protocol, VIP, port) — in an Ir: the restore (flow-export.ts)
// finds the ids saved flows name now, and the conntrack listing (host.ts flowEntry) checks that a
// kept flow's frontend id still names its (VIP, port). Keys built from address bytes: no string
// per IPv4 lookup.
import { PROTO_NUMBER, type Ir } from '../ir/ir.js';
import { formatAddr, parseAddr, type Family } from '../util/addr.js';

/** (address, port) as a Map key without building a string for IPv4: the address's 32 bits ×
 * 65536 + the port (below 2^48); IPv6 as text. */
export function addrPortKey(b: Uint8Array, off: number, family: Family, port: number): number | string {
  if (family === 6) return `${formatAddr(b, 6, off)}|${port}`;
  return (((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0) * 65536 + port;
}

/** addrPortKey of a textual address. */
export const keyOf = (addr: string, port: number): number | string => { const a = parseAddr(addr); return addrPortKey(a.bytes, 0, a.family, port); };

/** Frontend ids by protocol number, then by addrPortKey(VIP, port). */
export type FrontendIndex = Map<number, Map<number | string, number>>;

/** The FrontendIndex of `ir`: the frontends packets are addressed to (the service map's). A
 * ClusterPolicy frontend shares its ClusterIP's (VIP, port) and no packet is addressed to it:
 * with `clusterPolicy` the index holds those instead (an affinity entry keyed by one is restored
 * under the ClusterPolicy frontend of the same key). */
export function frontendIndex(ir: Ir, clusterPolicy = false): FrontendIndex {
  const frontBy: FrontendIndex = new Map();
  for (const [id, fe] of ir.frontends) {
    if ((fe.kind === 'ClusterPolicy') !== clusterPolicy) continue;
    const proto = PROTO_NUMBER[fe.proto];
    if (!frontBy.has(proto)) frontBy.set(proto, new Map());
    frontBy.get(proto)!.set(keyOf(fe.addr, fe.port), id);
  }
  return frontBy;
}
