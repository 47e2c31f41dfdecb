// The watcher's metrics, beside the control plane's (src/api/metrics.ts) in one registry, so
// the metrics listener (metricsBindAddress, :10249; serveMetrics below) and the control API's
// /metrics show both.
// Names and meanings are kube-proxy's where it has one:
//   kubeproxy_sync_full_proxy_rules_duration_seconds / ..._partial_... {ip_family}: one histogram
//     per sync kind (their _count is the number of full and partial syncs), each sync observed
//     once per IP family kube-proxy would run a proxier for (kube-proxy 1.33+ labels them by the
//     family proxier that synced; wdp's one sync serves every family);
//   kubeproxy_sync_proxy_rules_{service,endpoint}_changes_pending: changes received, not synced;
//   kubeproxy_proxy_healthz_total / _livez_total {code}: healthz answers;
//   kubeproxy_sync_proxy_rules_no_local_endpoints_total {traffic_policy}: services with a Local
//     policy and no local endpoint at the last sync (a gauge in meaning, as kube-proxy's).
// kubeproxy_sync_proxy_rules_duration_seconds, ..._last_timestamp_seconds,
// ..._last_queued_timestamp_seconds {ip_family} and kubeproxy_network_programming_duration_seconds
// {ip_family} (from the EndpointSlice last-change-trigger-time annotation) are the control
// plane's (src/api/metrics.ts), observed on every change it programs, per the families the
// watcher gives it (ipFamilies below); the watcher also sets the last-sync timestamp after syncs
// that changed nothing, as kube-proxy does, and the last-queued one per change: an EndpointSlice's
// for its own family, a Service's for every family (kube-proxy's family proxiers each queue theirs).
import { Counter, Gauge, Histogram, type Registry } from '../util/prom-client.js';
import { KUBE_PROXY_SYNC_BUCKETS } from '../api/metrics.js';
import { GO_TEXT_HEADERS, listenHttp, notFound, type HttpListener } from './listen.js';

export class KubeMetrics {
  readonly fullSync: Histogram<'ip_family'>;
  readonly partialSync: Histogram<'ip_family'>;
  readonly servicesPending: Gauge;
  readonly endpointsPending: Gauge;
  readonly healthz: Counter<'code'>;
  readonly livez: Counter<'code'>;
  readonly noLocalEndpoints: Gauge<'traffic_policy' | 'ip_family'>;
  readonly skipped: Counter<'kind' | 'stage'>;
  readonly skippedNow: Gauge<'kind'>;
  readonly syncFailures: Counter;
  readonly watchErrors: Counter<'resource'>;
  readonly lists: Counter<'resource'>;

  constructor(registry: Registry) {
    const r = [registry];
    this.fullSync = new Histogram({ name: 'kubeproxy_sync_full_proxy_rules_duration_seconds', help: 'SyncProxyRules latency in seconds for full resyncs', labelNames: ['ip_family'], buckets: [...KUBE_PROXY_SYNC_BUCKETS], registers: r });
    this.partialSync = new Histogram({ name: 'kubeproxy_sync_partial_proxy_rules_duration_seconds', help: 'SyncProxyRules latency in seconds for partial resyncs', labelNames: ['ip_family'], buckets: [...KUBE_PROXY_SYNC_BUCKETS], registers: r });
    this.servicesPending = new Gauge({ name: 'kubeproxy_sync_proxy_rules_service_changes_pending', help: 'Pending proxy rules Service changes', registers: r });
    this.endpointsPending = new Gauge({ name: 'kubeproxy_sync_proxy_rules_endpoint_changes_pending', help: 'Pending proxy rules Endpoint changes', registers: r });
    this.healthz = new Counter({ name: 'kubeproxy_proxy_healthz_total', help: 'Cumulative proxy healthz HTTP status', labelNames: ['code'], registers: r });
    this.livez = new Counter({ name: 'kubeproxy_proxy_livez_total', help: 'Cumulative proxy livez HTTP status', labelNames: ['code'], registers: r });
    this.noLocalEndpoints = new Gauge({ name: 'kubeproxy_sync_proxy_rules_no_local_endpoints_total', help: 'Number of services with a Local traffic policy and no endpoints', labelNames: ['traffic_policy', 'ip_family'], registers: r });
    this.skipped = new Counter({ name: 'wdp_kube_objects_skipped_total', help: 'Services/EndpointSlices left out of a sync: invalid, or clashing with another object', labelNames: ['kind', 'stage'], registers: r });
    this.skippedNow = new Gauge({ name: 'wdp_kube_objects_skipped', help: 'Services/EndpointSlices currently left out (their last version was refused)', labelNames: ['kind'], registers: r });
    this.syncFailures = new Counter({ name: 'wdp_kube_sync_failures_total', help: 'Syncs the dataplane or persistence refused (retried with backoff)', registers: r });
    this.watchErrors = new Counter({ name: 'wdp_kube_watch_errors_total', help: 'List/watch failures per resource (each followed by a restart with backoff)', labelNames: ['resource'], registers: r });
    this.lists = new Counter({ name: 'wdp_kube_lists_total', help: 'Full lists per resource (the first one, and re-lists after 410 Gone)', labelNames: ['resource'], registers: r });
  }
}

/** The metrics listener (metricsBindAddress, kube-proxy's :10249), its routes as kube-proxy's
 * serveMetrics: /metrics; /proxyMode (kube-proxy names its mode, wdp says "wdp", so the e2e tests
 * gated on "iptables" skip); /healthz and /healthz/ping, the apiserver's healthz handler with its
 * only check, ping — "ok" whenever the process answers, not the proxy's health (that is :10256);
 * anything else 404 as Go's mux. Not served: /configz, /flagz, /statusz, /metrics/slis. */
export function serveMetrics(bind: string, render: () => Promise<string>): Promise<HttpListener> {
  return listenHttp(bind, (req, res) => {
    const [path, query = ''] = (req.url ?? '').split('?', 2);
    if (path === '/healthz' || path === '/healthz/ping') {
      const verbose = path === '/healthz' && new URLSearchParams(query).has('verbose');
      res.writeHead(200, GO_TEXT_HEADERS).end(verbose ? '[+]ping ok\nhealthz check passed\n' : 'ok');
      return;
    }
    if (path === '/proxyMode') { res.writeHead(200, GO_TEXT_HEADERS).end('wdp'); return; }
    if (path !== '/metrics') { notFound(res); return; }
    render().then(
      (text) => { res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(text); },
      (e) => { if (!res.headersSent) res.writeHead(500, GO_TEXT_HEADERS); res.end(String(e)); },
    );
  });
}
