// kube-proxy's per-service health checks (pkg/proxy/healthcheck, ServiceHealthServer): for every
// LoadBalancer Service with externalTrafficPolicy Local, HTTP servers on its healthCheckNodePort
// answering 200 while this node has ready local endpoints for it (and the proxy itself is
// healthy), 503 otherwise, so the cloud load balancer sends only to nodes that can serve the
// traffic locally. Body as kube-proxy's, in its layout (tab-indented, no trailing newline —
// scripts grep for `"localEndpoints": 0`):
//   {"service": {"namespace": ..., "name": ...}, "localEndpoints": N, "serviceProxyHealthy": bool}
// with the header X-Load-Balancing-Endpoint-Weight: N (weighted load balancers read it). Every
// path and method gets that answer: kube-proxy's handler has no routes either.
//
// Where they listen is kube-proxy's rule (healthCheckAddresses below): kube-proxy runs one proxier
// per IP family, each with its own health server that knows only its family's endpoints and
// listens on that family's nodePortAddresses — the node's addresses of the family inside the
// configured CIDRs, or every address of the family when no CIDR of it is configured (an IPv4
// socket on 0.0.0.0, an IPv6-only one on ::, since kubernetes#137370; before it both families'
// servers tried one dual-stack 0.0.0.0 socket and the second failed). So a listener answers with
// its family's local endpoint count: a dual-stack pod is one endpoint to each; and a Service is
// served only on the families of its cluster IPs (the other family's proxier does not know a
// single-stack Service) — except on a healthCheckBindAddress that is one address (wdp's setting,
// boundHealthCheckAddresses), which serves every Service. kube-proxy reads
// the addresses once at start and exits to be restarted when the node's IPs change; here the
// listeners follow the node's addresses in place (setAddresses). The listeners are the host's
// (wdp runs with hostNetwork in a cluster). A listener that cannot be opened is logged once and
// retried at every sync and address change; the service's others keep serving (kube-proxy closes
// all of a family's listeners of the service then and retries them together).
import type { Logger } from 'pino';
import { isIP } from 'node:net';
import { nodePortFamilies } from './nodeport-addresses.js';
import { listenHttp, type HttpListener } from './listen.js';
import type { IpFamily } from './no-local-endpoints.js';

/** One health-check listen address: a node address, or a family's every-address wildcard.
 * `pinned`: the one address healthCheckBindAddress names, which serves every Service whatever its
 * families (boundHealthCheckAddresses). */
export interface HealthCheckAddress { host: string; family: 4 | 6; pinned?: boolean }

export type LocalCounts = Record<IpFamily, number>;

const FAMILY_NAME = { 4: 'IPv4', 6: 'IPv6' } as const;
const WILDCARD = { 4: '0.0.0.0', 6: '::' } as const;

/** Where the health-check servers listen, as kube-proxy: per family (nodePortFamilies, the one
 * reading of the nodePortAddresses config `filter`), that family's wildcard when the list does not
 * restrict it (MatchAll: no CIDR of the family, a zero CIDR, or "primary" without a primary IP of
 * the family), else the node addresses of the family among `nodePortAddresses` (what
 * nodeport-addresses.ts `nodePortAddresses` selected) — none when it selects no address of it. */
export function healthCheckAddresses(nodePortAddresses: readonly string[], filter: readonly string[], primary: readonly string[]): HealthCheckAddress[] {
  const out: HealthCheckAddress[] = [];
  for (const { family, matchAll } of nodePortFamilies(filter, primary)) {
    if (matchAll) { out.push({ host: WILDCARD[family], family }); continue; }
    for (const a of nodePortAddresses) if (isIP(a) === family) out.push({ host: a, family });
  }
  return out;
}

/** A configured healthCheckBindAddress: 0.0.0.0 or :: every address of both families (one
 * wildcard listener per family, as without the setting and without a filter); another address
 * alone, pinned: every Service's health check is there, a Service of only the other family's
 * too (answering with that family's count) — as kube-proxy's one --healthz-bind-address serves
 * the node's health for both family proxiers. The operator named where health checks answer:
 * leaving such a Service without one would fail its load balancer's checks with nothing said. */
export function boundHealthCheckAddresses(ip: string): HealthCheckAddress[] {
  if (ip === '0.0.0.0' || ip === '::') return [{ host: WILDCARD[4], family: 4 }, { host: WILDCARD[6], family: 6 }];
  return [{ host: ip, family: isIP(ip) === 6 ? 6 : 4, pinned: true }];
}

/** Whether `a` serves a Service of `families`. */
function serves(a: HealthCheckAddress, families: ReadonlyArray<4 | 6>): boolean {
  return a.pinned === true || families.includes(a.family);
}

/** The family whose local endpoints a listener on `a` counts for a Service of `families`: the
 * address's own, or (a pinned address of the other family) the Service's. */
function countedFamily(a: HealthCheckAddress, families: ReadonlyArray<4 | 6>): 4 | 6 {
  return families.includes(a.family) ? a.family : families[0] ?? a.family;
}

/** One Service's health check: its port, local endpoints per family, and the families of its
 * cluster IPs (the listeners of other families are not opened). */
export interface HealthCheckWant { port: number; localEndpoints: LocalCounts; families?: ReadonlyArray<4 | 6> }

interface Instance { port: number; counts: LocalCounts; families: ReadonlyArray<4 | 6>; listeners: Map<string, HttpListener> }

const BOTH: ReadonlyArray<4 | 6> = [4, 6];

export class ServiceHealthServers {
  private readonly services = new Map<string, Instance>();
  private want = new Map<string, HealthCheckWant>();
  /** Reconciliations run one after another (a sync and an address change may ask at once). */
  private queue: Promise<void> = Promise.resolve();
  /** The last error opening a (service, address): logged once, not at every retry. */
  private readonly failed = new Map<string, string>();
  /** Whether a pinned address serving a Service of the other family only was logged (once). */
  private crossFamilyLogged = false;
  private closed = false;

  constructor(private addresses: HealthCheckAddress[], private readonly proxyHealthy: () => boolean, private readonly log: Logger) {}

  /** Makes the set of servers equal `want` (by service key "ns/name"). */
  sync(want: Map<string, HealthCheckWant>): Promise<void> {
    this.want = want;
    return this.reconcile();
  }

  /** The listen addresses changed (the node's addresses did): listeners move to the new ones. */
  setAddresses(addresses: HealthCheckAddress[]): Promise<void> {
    const same = addresses.length === this.addresses.length && addresses.every((a, i) => a.host === this.addresses[i].host && a.family === this.addresses[i].family);
    if (same) return this.queue;
    this.addresses = addresses;
    this.log.info({ addresses: addresses.map((a) => a.host) }, 'service health checks listen on new addresses');
    return this.reconcile();
  }

  private reconcile(): Promise<void> {
    this.queue = this.queue.then(() => this.apply(), (e) => { this.log.warn({ error: (e as Error).message }, 'service health check reconciliation failed'); });
    return this.queue;
  }

  private async apply(): Promise<void> {
    if (this.closed) return;
    const want = this.want;
    for (const [key, inst] of this.services) {
      const w = want.get(key);
      if (!w || w.port !== inst.port) {
        this.services.delete(key);
        await Promise.all([...inst.listeners.values()].map((l) => l.close()));
        if (inst.listeners.size) this.log.info({ service: key, port: inst.port }, 'closed service health check');
        continue;
      }
      inst.counts = w.localEndpoints;
      inst.families = w.families ?? BOTH;
      const hosts = new Set(this.addresses.filter((a) => serves(a, inst.families)).map((a) => a.host));
      for (const [host, l] of inst.listeners) if (!hosts.has(host)) { inst.listeners.delete(host); await l.close(); }
    }
    for (const k of this.failed.keys()) if (!want.has(k.slice(0, k.lastIndexOf('|')))) this.failed.delete(k);
    const opening: Array<Promise<void>> = [];
    for (const [key, w] of want) {
      let inst = this.services.get(key);
      if (!inst) this.services.set(key, inst = { port: w.port, counts: w.localEndpoints, families: w.families ?? BOTH, listeners: new Map() });
      for (const a of this.addresses) {
        if (!serves(a, inst.families)) continue;
        if (!inst.families.includes(a.family) && !this.crossFamilyLogged) {
          this.crossFamilyLogged = true;
          const [own, other] = [FAMILY_NAME[a.family], FAMILY_NAME[countedFamily(a, inst.families)]];
          this.log.info({ address: a.host, service: key }, `healthCheckBindAddress is ${own}: Services of ${other} only get their health check there too, answering with their ${other} local endpoints (logged once)`);
        }
        if (!inst.listeners.has(a.host)) opening.push(this.open(key, inst, a));
      }
    }
    await Promise.all(opening);
  }

  private async open(key: string, inst: Instance, a: HealthCheckAddress): Promise<void> {
    const [ns, name] = key.split('/');
    const failKey = `${key}|${a.host}`;
    try {
      const l = await listenHttp({ host: a.host, port: inst.port, family: a.family }, (_req, res) => {
        const n = inst.counts[FAMILY_NAME[countedFamily(a, inst.families)]];
        const healthy = this.proxyHealthy();
        res.writeHead(n > 0 && healthy ? 200 : 503, { 'content-type': 'application/json', 'x-content-type-options': 'nosniff', 'x-load-balancing-endpoint-weight': String(n) })
          .end(JSON.stringify({ service: { namespace: ns, name }, localEndpoints: n, serviceProxyHealthy: healthy }, null, '\t'));
      });
      inst.listeners.set(a.host, l);
      this.failed.delete(failKey);
      this.log.info({ service: key, address: a.host, port: l.port }, 'opened service health check');
    } catch (e) {
      const msg = (e as Error).message;
      if (this.failed.get(failKey) !== msg) this.log.warn({ service: key, address: a.host, port: inst.port, error: msg }, 'cannot open the service health check port (retried at every sync)');
      this.failed.set(failKey, msg);
    }
  }

  ports(): Array<{ service: string; host: string; family: 4 | 6; port: number; localEndpoints: number }> {
    const out: Array<{ service: string; host: string; family: 4 | 6; port: number; localEndpoints: number }> = [];
    for (const [service, inst] of this.services) {
      for (const [host, l] of inst.listeners) {
        const a = this.addresses.find((x) => x.host === host) ?? { host, family: isIP(host) === 6 ? 6 : 4 };
        out.push({ service, host, family: a.family, port: l.port, localEndpoints: inst.counts[FAMILY_NAME[countedFamily(a, inst.families)]] });
      }
    }
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.queue;
    const all = [...this.services.values()];
    this.services.clear();
    await Promise.all(all.flatMap((i) => [...i.listeners.values()].map((l) => l.close())));
  }
}
