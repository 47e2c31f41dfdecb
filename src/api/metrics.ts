// Prometheus metrics, named after kube-proxy's so existing dashboards and alerts carry over
// (kubeproxy_sync_proxy_rules_*, kubeproxy_network_programming_duration_seconds), plus wdp's own
// packet/drop/per-service counters. Dataplane counters are read once per scrape (one snapshot,
// handed to every collector) rather than once per metric.
import { Counter, Gauge, Histogram, Registry } from '../util/prom-client.js';
import type { CounterSnapshot } from '../core/dataplane-types.js';
import type { Compiler } from '../compiler/compiler.js';
import { reasonsHelp } from '../../assembly/reasons.js';

const SYNC_BUCKETS = [0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384];
// The reason help texts come from the one reason table (assembly/reasons.ts), as docs/core.md's list.
const DROPS_HELP = `Dropped packets by reason. ${reasonsHelp('drop')}`;
const VERDICT_REASONS_HELP = 'Packets by verdict reason (every verdict, not only drops; drop_* reasons as in wdp_drops_total). ' +
  `${reasonsHelp('forward')} ${reasonsHelp('reject')} ${reasonsHelp('to_host')}`;
const PROGRAMMING_BUCKETS = [0.25, 0.5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 45, 60, 120, 180, 240, 300];

export class ControlPlaneMetrics {
  readonly registry = new Registry();
  private snapshot: CounterSnapshot | null = null;
  readonly syncDuration: Histogram;
  readonly programmingDuration: Histogram;
  readonly lastSync: Gauge;
  readonly lastQueued: Gauge;
  readonly serviceChanges: Counter;
  readonly endpointChanges: Counter;
  readonly syncErrors: Counter;
  readonly apiRequests: Counter;

  constructor(private readonly compiler: Compiler, private readonly generation: () => number) {
    const r = [this.registry];
    this.syncDuration = new Histogram({ name: 'kubeproxy_sync_proxy_rules_duration_seconds', help: 'SyncProxyRules latency in seconds: validate, compile, program the dataplane, persist', buckets: SYNC_BUCKETS, registers: r });
    this.programmingDuration = new Histogram({ name: 'kubeproxy_network_programming_duration_seconds', help: 'In Cluster Network Programming Latency in seconds (from the EndpointSlice last-change-trigger-time annotation to programmed)', buckets: PROGRAMMING_BUCKETS, registers: r });
    this.lastSync = new Gauge({ name: 'kubeproxy_sync_proxy_rules_last_timestamp_seconds', help: 'The last time proxy rules were successfully synced', registers: r });
    this.lastQueued = new Gauge({ name: 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds', help: 'The last time a sync of proxy rules was queued', registers: r });
    this.serviceChanges = new Counter({ name: 'kubeproxy_sync_proxy_rules_service_changes_total', help: 'Cumulative proxy rules Service changes', registers: r });
    this.endpointChanges = new Counter({ name: 'kubeproxy_sync_proxy_rules_endpoint_changes_total', help: 'Cumulative proxy rules EndpointSlice changes', registers: r });
    this.syncErrors = new Counter({ name: 'wdp_sync_errors_total', help: 'Applies refused by validation, the dataplane or persistence', labelNames: ['stage'], registers: r });
    this.apiRequests = new Counter({ name: 'wdp_api_requests_total', help: 'Control API requests by route and status code', labelNames: ['method', 'route', 'code'], registers: r });
    const self = this;
    new Gauge({ name: 'wdp_generation', help: 'Active table generation', registers: r, collect() { this.set(self.generation()); } });
    new Gauge({ name: 'wdp_services', help: 'Services in the desired state', registers: r, collect() { this.set(self.compiler.serviceCount()); } });
    new Gauge({ name: 'wdp_endpointslices', help: 'EndpointSlices in the desired state', registers: r, collect() { this.set(self.compiler.sliceCount()); } });
    new Gauge({ name: 'wdp_frontends', help: 'Frontends (service address x port) programmed', registers: r, collect() { this.set(self.compiler.ir.frontends.size); } });
    new Gauge({ name: 'wdp_backends', help: 'Backends (endpoint x service port) programmed', registers: r, collect() { this.set(self.compiler.ir.backends.size); } });
    // Dataplane counters are absolute values read from the core: reset + inc re-exposes them as
    // counters without keeping a second running total here.
    new Counter({ name: 'wdp_packets_total', help: 'Packets by verdict', labelNames: ['verdict'], registers: r, collect() {
      const g = self.snapshot?.global; this.reset(); if (!g) return;
      for (const v of ['forward', 'reject', 'to_host', 'drop']) this.inc({ verdict: v }, g[v] ?? 0);
    } });
    new Counter({ name: 'wdp_received_bytes_total', help: 'Bytes received by the forwarding core', registers: r, collect() {
      this.reset(); if (self.snapshot) this.inc(self.snapshot.global.rx_bytes ?? 0);
    } });
    new Counter({ name: 'wdp_drops_total', help: DROPS_HELP, labelNames: ['reason'], registers: r, collect() {
      this.reset(); if (!self.snapshot) return;
      for (const [reason, n] of Object.entries(self.snapshot.reasons)) if (reason.startsWith('drop_')) this.inc({ reason }, n);
    } });
    new Counter({ name: 'wdp_verdict_reasons_total', help: VERDICT_REASONS_HELP, labelNames: ['reason'], registers: r, collect() {
      this.reset(); if (!self.snapshot) return;
      for (const [reason, n] of Object.entries(self.snapshot.reasons)) this.inc({ reason }, n);
    } });
    new Gauge({ name: 'wdp_conntrack_entries', help: 'Conntrack flows in use', registers: r, collect() {
      this.set(self.snapshot?.global.ct_active ?? 0);
    } });
    const perService = (field: 'packets' | 'bytes') => function (this: Counter) {
      this.reset(); if (!self.snapshot) return;
      for (const [idText, c] of Object.entries(self.snapshot.frontends)) {
        const f = self.compiler.ir.frontends.get(Number(idText));
        if (!f || !c[field]) continue;
        this.inc({ service: f.service, port: f.portName, kind: f.kind, address: f.addr }, c[field]);
      }
    };
    new Counter({ name: 'wdp_service_packets_total', help: 'Packets per service frontend', labelNames: ['service', 'port', 'kind', 'address'], registers: r, collect: perService('packets') });
    new Counter({ name: 'wdp_service_bytes_total', help: 'Bytes per service frontend', labelNames: ['service', 'port', 'kind', 'address'], registers: r, collect: perService('bytes') });
  }

  async render(snapshot: CounterSnapshot | null): Promise<string> {
    this.snapshot = snapshot;
    try { return await this.registry.metrics(); } finally { this.snapshot = null; }
  }
}
