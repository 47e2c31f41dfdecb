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
//   ToBeDeletedByClusterAutoscaler); 200 or 503 with {lastUpdated, currentTime, nodeEligible}.
//   lastUpdated is "now" while healthy, as kube-proxy keeps it for old clients.
// * /livez: healthy only (a node being deleted is still alive).
// Also unhealthy while the daemon is stopping (the dataplane no longer forwards).
import type { Counter } from '../util/prom-client.js';
import { listenHttp, notFound, type HttpListener } from './listen.js';

export class ProxyHealth {
  private lastUpdated = 0;
  private oldestPending = 0;
  nodeEligible = true;

  constructor(readonly healthTimeoutMs: number, private readonly now: () => number = Date.now, private readonly forwarding: () => boolean = () => true) {}

  queued(): void { if (!this.oldestPending) this.oldestPending = this.now(); }
  updated(): void { this.oldestPending = 0; this.lastUpdated = this.now(); }

  healthy(): boolean {
    if (!this.forwarding()) return false;
    // healthy while starting up (kube-proxy: until its sync loop starts nothing is judged)
    return !this.lastUpdated || !this.oldestPending || this.now() - this.oldestPending < this.healthTimeoutMs;
  }

  /** [status code, body] of /healthz (withNode) or /livez. */
  answer(withNode: boolean): [number, Record<string, unknown>] {
    const ok = this.healthy() && (!withNode || this.nodeEligible);
    const now = this.now();
    const body: Record<string, unknown> = {
      lastUpdated: new Date(ok ? now : this.lastUpdated || now).toISOString(),
      currentTime: new Date(now).toISOString(),
    };
    if (withNode) body.nodeEligible = this.nodeEligible;
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
