// Where the node sends packets for an endpoint address: a neighbour (same link), else the longest
// matching route of the NodeConfig, else nowhere (the backend keeps PORT_NONE: drop_no_route).
import { cidrContains, ipv4Value, parseAddr, parseCidr, type Cidr } from '../util/addr.js';
import { L, type IrRoute } from '../ir/ir.js';

const NO_MAC = '00:00:00:00:00:00';
import type { NodeSpec, RouteSpec } from '../model/types.js';

/** Out of which port, to which MAC, from which MAC. One class for every next hop (the
 * neighbours', the routes', the backend table's), so they share one object shape. */
export class NextHop {
  constructor(readonly outPort: number, readonly dstMac: string, readonly srcMac: string) {}
}

/** A route's next hop; one whose MAC is not resolved yet is no next hop (PORT_NONE: the prefix
 * drops, drop_no_route, instead of falling through to a shorter route). */
function routeHop(r: RouteSpec): NextHop {
  return r.nextHopMac ? new NextHop(r.port, r.nextHopMac, r.localMac) : new NextHop(L.PORT_NONE, NO_MAC, NO_MAC);
}

/** An IPv4 route as integers. */
class Route4 { constructor(readonly net: number, readonly mask: number, readonly hop: NextHop) {} }
class RouteCidr { constructor(readonly cidr: Cidr, readonly hop: NextHop) {} }

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** A NodeConfig's neighbours and routes, indexed for lookups by endpoint address. Immutable once
 * built, except for its cache of IPv6 lookups. */
export class NodeHops {
  private readonly neighbours = new Map<string, NextHop>();
  private readonly routeCidrs: RouteCidr[] = [];  // longest prefix first
  private readonly routes4: Route4[] = [];        // the IPv4 ones, longest prefix first
  private readonly cache = new Map<string, NextHop | null>();

  constructor(private readonly node: NodeSpec | null) {
    if (!node) return;
    for (const n of node.neighbours) this.neighbours.set(n.address, new NextHop(n.port, n.mac, n.localMac));
    for (const r of node.routes) {
      const hop = routeHop(r);
      this.routeCidrs.push(new RouteCidr(parseCidr(r.prefix), hop));
      if (r.family === 4) {
        const mask = r.plen === 0 ? 0 : (0xffffffff << (32 - r.plen)) >>> 0;
        this.routes4.push(new Route4((ipv4Value(r.prefix.slice(0, r.prefix.indexOf('/'))) & mask) >>> 0, mask, hop));
      }
    }
  }

  /** The Ir's routes: a host route per neighbour, then the NodeConfig's routes, longest prefix
   * first (a neighbour and an identical host route: the neighbour wins, the more specific fact). */
  irRoutes(): IrRoute[] {
    if (!this.node) return [];
    const host: IrRoute[] = this.node.neighbours.map((n) => ({ prefix: `${n.address}/${n.family === 4 ? 32 : 128}`, outPort: n.port, dstMac: n.mac, srcMac: n.localMac }));
    const plen = (p: string): number => Number(p.slice(p.indexOf('/') + 1));
    // service CIDRs last: a node route with the same prefix wins (kept by the de-duplication)
    const svc: IrRoute[] = this.node.serviceCIDRs.map((prefix) => ({ prefix, outPort: L.PORT_NONE, dstMac: NO_MAC, srcMac: NO_MAC, serviceCidr: true }));
    const all = [...host, ...this.node.routes.map((r) => { const h = routeHop(r); return { prefix: r.prefix, outPort: h.outPort, dstMac: h.dstMac, srcMac: h.srcMac }; }), ...svc];
    const seen = new Set<string>();
    const out = all.filter((r) => (seen.has(r.prefix) ? false : (seen.add(r.prefix), true)));
    return out.sort((a, b) => plen(b.prefix) - plen(a.prefix) || cmp(a.prefix, b.prefix)).concat(this.localSources());
  }

  /** Whether the local-traffic detector of `family` has pod entries (kube-proxy's
   * `IsImplemented()`): then a ClusterIP of that family masquerades the sources it does not take
   * for pods (FEF_MASQUERADE_OUTSIDE). kube-proxy builds one detector per family (server.go
   * getLocalDetectors): a family that the cluster or pod CIDRs do not cover gets the no-op one,
   * so its ClusterIPs masquerade nothing; pod ports (interface-based modes) detect both. */
  detectsPods(family: 4 | 6): boolean {
    const n = this.node;
    if (!n) return false;
    if (n.detectLocalMode === 'PodPort') return n.podPorts.length > 0;
    const cidrs = n.detectLocalMode === 'NodeCIDR' ? n.podCIDRs : n.clusterCIDRs;
    for (let i = 0; i < cidrs.length; i++) if (cidrs[i].includes(':') === (family === 6)) return true;
    return false;
  }

  /** kube-proxy's local-traffic detector as Ir entries after the routes: the pod sources
   * (detectLocalMode ClusterCIDR: the cluster CIDRs; NodeCIDR: the node's pod CIDRs; PodPort:
   * what arrives on a pod port; none given: no pod detection, like kube-proxy's no-op detector),
   * then the node itself (its addresses and masquerade addresses: what kube-proxy's
   * `fib saddr type local` matches of the node). */
  private localSources(): IrRoute[] {
    const n = this.node!;
    const own = [...n.addresses, ...(n.snatV4 ? [n.snatV4] : []), ...(n.snatV6 ? [n.snatV6] : [])].map((a) => `${a}/${a.includes(':') ? 128 : 32}`);
    const entry = (prefix: string, localSource: 'pod' | 'node'): IrRoute => ({ prefix, outPort: L.PORT_NONE, dstMac: NO_MAC, srcMac: NO_MAC, localSource });
    const pods = n.detectLocalMode === 'PodPort'
      ? n.podPorts.map((port): IrRoute => ({ prefix: '0.0.0.0/0', outPort: port, dstMac: NO_MAC, srcMac: NO_MAC, localSource: 'podPort' }))
      : [...new Set(n.detectLocalMode === 'NodeCIDR' ? n.podCIDRs : n.clusterCIDRs)].map((p) => entry(p, 'pod'));
    return pods.concat([...new Set(own)].map((p) => entry(p, 'node')));
  }

  /** The next hop of endpoint address `addr` (validated, canonical). */
  lookup(addr: string): NextHop | null {
    if (!addr.includes(':')) return this.lookup4(ipv4Value(addr), addr);
    if (this.neighbours.size) { const n = this.neighbours.get(addr); if (n) return n; }
    let hop = this.cache.get(addr);
    if (hop !== undefined) return hop;
    hop = null;
    if (this.routeCidrs.length) {
      const a = parseAddr(addr);
      for (const rc of this.routeCidrs) if (cidrContains(rc.cidr, a)) { hop = rc.hop; break; }
    }
    if (this.cache.size > 1_000_000) this.cache.clear();
    this.cache.set(addr, hop);
    return hop;
  }

  /** lookup() of IPv4 address `addr` whose value (int32 or u32: only its bits are used) the
   * caller has already. */
  lookup4(a: number, addr: string): NextHop | null {
    if (this.neighbours.size) { const n = this.neighbours.get(addr); if (n) return n; }
    const routes = this.routes4;
    for (let i = 0; i < routes.length; i++) if (((a & routes[i].mask) >>> 0) === routes[i].net) return routes[i].hop;
    return null;
  }
}
