// kube-proxy's proxy health (pkg/proxy/healthcheck, ProxyHealthServer), what kubelet probes and
// cloud load balancers use to drain a node:
//
// * queued(): a Service/EndpointSlice change arrived that is not programmed yet. The oldest such
//   moment is kept until the next successful sync (updated()).
// * healthy: still starting (the sync loop has not started: KubeSync.start() marks it updated, as
//   kube-proxy's SyncLoop), nothing is pending, or the oldest pending change is younger than healthTimeout
//   (kube-proxy: 2 x syncPeriod). A sync loop that is stuck or failing therefore turns unhealthy
//   once changes wait too long — not merely because nothing changed for a while.
// * /healthz: healthy AND the node is eligible (not being deleted, not tainted
//   ToBeDeletedByClusterAutoscaler); 200 or 503 with kube-proxy's ProxyHealth as Go's
//   json.Marshal writes it (kubernetes#129271, 1.33+): compact, in its field order,
//     {"lastUpdated","currentTime","nodeEligible","healthy","status":{"IPv4":{"lastUpdated","healthy"},...}}
//   "healthy" is the proxy's own health (a node being deleted answers 503 with "healthy":true);
//   "status" has one entry per IP family proxier that has synced — kube-proxy runs one per family
//   of the node's IPs; wdp's one sync loop programs both, so each family present shows the same
//   (none before the loop starts). lastUpdated is "now" while healthy, as kube-proxy keeps it for
//   old clients, else the last successful sync (Go's zero time when there was none). Times are
//   RFC 3339 in UTC with the fraction's trailing zeros dropped, as Go's.
// * /livez: the same without nodeEligible, healthy only (a node being deleted is still alive).
// Also unhealthy while the daemon is stopping (the dataplane no longer forwards).
import type { Counter } from '../util/prom-client.js';
import { listenHttp, notFound, type HttpListener } from './listen.js';

export type IpFamilyName = 'IPv4' | 'IPv6';

/** Go's time.Time as json.Marshal writes it (RFC 3339 with nanoseconds, trailing zeros dropped),
 * from milliseconds since the epoch, in UTC; 0 = Go's zero time. */
export function goJsonTime(ms: number): string {
  return ms ? new Date(ms).toISOString().replace(/\.?0+Z$/, 'Z') : '0001-01-01T00:00:00Z';
}

export class ProxyHealth {
  private lastUpdated = 0;
  private oldestPending = 0;
  nodeEligible = true;

  /** `families`: the IP families kube-proxy would run a proxier for (the node's IPs'). */
  constructor(readonly healthTimeoutMs: number, private readonly now: () => number = Date.now, private readonly forwarding: () => boolean = () => true,
    private readonly families: () => readonly IpFamilyName[] = () => ['IPv4']) {}

  queued(): void { if (!this.oldestPending) this.oldestPending = this.now(); }
  updated(): void { this.oldestPending = 0; this.lastUpdated = this.now(); }

  healthy(): boolean {
    if (!this.forwarding()) return false;
    // healthy while starting up (kube-proxy: until its sync loop starts nothing is judged)
    return !this.lastUpdated || !this.oldestPending || this.now() - this.oldestPending < this.healthTimeoutMs;
  }

  /** [status code, body] of /healthz (withNode) or /livez. */
  answer(withNode: boolean): [number, Record<string, unknown>] {
    const healthy = this.healthy();
    const ok = healthy && (!withNode || this.nodeEligible);
    const now = this.now();
    const body: Record<string, unknown> = {
      lastUpdated: goJsonTime(ok ? now : this.lastUpdated),
      currentTime: goJsonTime(now),
    };
    if (withNode) body.nodeEligible = this.nodeEligible;
    body.healthy = healthy;
    if (this.lastUpdated) {
      const status: Record<string, { lastUpdated: string; healthy: boolean }> = {};
      for (const f of [...this.families()].sort()) status[f] = { lastUpdated: goJsonTime(this.lastUpdated), healthy };
      body.status = status;
    }
    return [ok ? 200 : 503, body];
  }
}

export function serveProxyHealth(bind: string, health: ProxyHealth, counters: { healthz: Counter<'code'>; livez: Counter<'code'> }): Promise<HttpListener> {
  return listenHttp(bind, (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/healthz' && path !== '/livez') {
      notFound(res);
      return;
    }
    const [code, body] = health.answer(path === '/healthz');
    (path === '/healthz' ? counters.healthz : counters.livez).inc({ code: String(code) });
    res.writeHead(code, { 'content-type': 'application/json', 'x-content-type-options': 'nosniff' }).end(JSON.stringify(body));
  });
}
