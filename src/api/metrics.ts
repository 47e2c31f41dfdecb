// Prometheus metrics, named after kube-proxy's so existing dashboards and alerts carry over
// (kubeproxy_sync_proxy_rules_*, kubeproxy_network_programming_duration_seconds), plus wdp's own
// packet/drop/per-service counters. Dataplane counters are read once per scrape (one snapshot,
// handed to every collector) rather than once per metric.
//
// The kube-proxy metrics have kube-proxy 1.33+'s names, types, buckets, help and labels: those
// its family proxiers observe are labelled ip_family. wdp's one sync serves every family, so a
// sync is observed (and its timestamps set) once per family kube-proxy would run a proxier for
// (ipFamilies: the watcher's, else the node config's addresses', IPv4 when none); a slice's
// programming latency once, with the slice's family (kube-proxy's proxier of that family
// programs it). The change counters have no label. With a Kubernetes watcher (fedBy 'watcher')
// the sync histogram is observed by the watcher's syncs — every full and partial one, also one
// that changed nothing, as kube-proxy's syncProxyRules observes it on every run, so its count is
// the full and partial counts together — and the change counters count the informers' events as
// kube-proxy's change trackers do (changeEvent); else (fedBy 'applies') each programmed apply is
// a sync and its objects are the changes.
import { Counter, Gauge, Histogram, Registry } from '../util/prom-client.js';
import type { CounterSnapshot } from '../core/dataplane-types.js';
import type { Compiler } from '../compiler/compiler.js';
import { ExternalClaims } from '../compiler/external-claims.js';
import { reasonsHelp } from '../../assembly/reasons.js';

export type IpFamilyLabel = 'IPv4' | 'IPv6';

/** kube-proxy's sync latency buckets: ExponentialBuckets(0.001, 2, 15), 1 ms .. 16.384 s. */
export const KUBE_PROXY_SYNC_BUCKETS: readonly number[] = Array.from({ length: 15 }, (_, i) => 0.001 * 2 ** i);
// The reason help texts come from the one reason table (assembly/reasons.ts), as docs/core.md's list.
const DROPS_HELP = `Dropped packets by reason. ${reasonsHelp('drop')}`;
const VERDICT_REASONS_HELP = 'Packets by verdict reason (every verdict, not only drops; drop_* reasons as in wdp_drops_total). ' +
  `${reasonsHelp('forward')} ${reasonsHelp('reject')} ${reasonsHelp('to_host')}`;
/** kube-proxy's programming latency buckets: MergeBuckets (which starts with a 0 bucket) of
 * 0.25, 0.5; 1..59 s by 1; 60..115 by 5; 120..300 by 30. */
const PROGRAMMING_BUCKETS: readonly number[] = [0, 0.25, 0.5, ...steps(1, 1, 59), ...steps(60, 5, 12), ...steps(120, 30, 7)];
function steps(start: number, width: number, count: number): number[] { return Array.from({ length: count }, (_, i) => start + i * width); }

/** The families of these addresses, IPv4 when there are none (kube-proxy's fallback node IP is
 * 127.0.0.1). */
export function ipFamiliesOf(addrs: readonly string[]): IpFamilyLabel[] {
  const out: IpFamilyLabel[] = [];
  if (addrs.some((a) => !a.includes(':'))) out.push('IPv4');
  if (addrs.some((a) => a.includes(':'))) out.push('IPv6');
  return out.length ? out : ['IPv4'];
}

export class ControlPlaneMetrics {
  readonly registry = new Registry();
  private snapshot: CounterSnapshot | null = null;
  private readonly startedMs = Date.now();
  readonly syncDuration: Histogram<'ip_family'>;
  readonly programmingDuration: Histogram<'ip_family'>;
  readonly lastSync: Gauge<'ip_family'>;
  readonly lastQueued: Gauge<'ip_family'>;
  /** The IP families kube-proxy would run a proxier for (the watcher sets its own: the Node's). */
  ipFamilies: () => readonly IpFamilyLabel[];
  readonly serviceChanges: Counter;
  readonly endpointChanges: Counter;
  readonly syncErrors: Counter;
  readonly apiRequests: Counter;

  constructor(private readonly compiler: Compiler, private readonly generation: () => number) {
    const r = [this.registry];
    this.ipFamilies = () => ipFamiliesOf(compiler.getNode()?.addresses ?? []);
    const ip_family = ['ip_family'] as const;
    // (a sync: validate, compile, program the dataplane, persist)
    this.syncDuration = new Histogram({ name: 'kubeproxy_sync_proxy_rules_duration_seconds', help: 'SyncProxyRules latency in seconds', labelNames: ip_family, buckets: [...KUBE_PROXY_SYNC_BUCKETS], registers: r });
    // (from the EndpointSlice's endpoints.kubernetes.io/last-change-trigger-time to programmed)
    this.programmingDuration = new Histogram({ name: 'kubeproxy_network_programming_duration_seconds', help: 'In Cluster Network Programming Latency in seconds', labelNames: ip_family, buckets: [...PROGRAMMING_BUCKETS], registers: r });
    this.lastSync = new Gauge({ name: 'kubeproxy_sync_proxy_rules_last_timestamp_seconds', help: 'The last time proxy rules were successfully synced', labelNames: ip_family, registers: r });
    this.lastQueued = new Gauge({ name: 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds', help: 'The last time a sync of proxy rules was queued', labelNames: ip_family, registers: r });
    this.serviceChanges = new Counter({ name: 'kubeproxy_sync_proxy_rules_service_changes_total', help: 'Cumulative proxy rules Service changes', registers: r });
    this.endpointChanges = new Counter({ name: 'kubeproxy_sync_proxy_rules_endpoint_changes_total', help: 'Cumulative proxy rules Endpoint changes', registers: r });
    this.syncErrors = new Counter({ name: 'wdp_sync_errors_total', help: 'Applies refused by validation, the dataplane or persistence', labelNames: ['stage'], registers: r });
    this.apiRequests = new Counter({ name: 'wdp_api_requests_total', help: 'Control API requests by route and status code', labelNames: ['method', 'route', 'code'], registers: r });
    const self = this;
    new Gauge({ name: 'wdp_generation', help: 'Active table generation', registers: r, collect() { this.set(self.generation()); } });
    new Gauge({ name: 'wdp_services', help: 'Services in the desired state', registers: r, collect() { this.set(self.compiler.serviceCount()); } });
    new Gauge({ name: 'wdp_endpointslices', help: 'EndpointSlices in the desired state', registers: r, collect() { this.set(self.compiler.sliceCount()); } });
    new Gauge({ name: 'wdp_frontends', help: 'Frontends (service address x port) programmed', registers: r, collect() { this.set(self.compiler.ir.frontends.size); } });
    // frontends a Service has and is not served: its external tuple another Service holds (an
    // older one's external address, or a cluster IP and port), its cluster IP a node address
    // (docs/core.md Known differences (11), (21)); every reason shown, 0 included
    new Gauge({ name: 'wdp_frontends_withheld', help: 'Frontends not served: external_clash (an external address:port/protocol another Service holds), cluster_ip_clash (an external address:port that is another Service\'s cluster IP and port), node_address (a cluster IP that is a node address)', labelNames: ['reason'], registers: r, collect() {
      const n = ExternalClaims.of(self.compiler)?.withheldFrontends() ?? { external_clash: 0, cluster_ip_clash: 0, node_address: 0 };
      for (const [reason, v] of Object.entries(n)) this.set({ reason }, v);
    } });
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
    // the kernel path (config kernelPath, src/daemon/kernel-path.ts): frames it forwarded never
    // reach the core, so they are in none of the counters above
    const kernelPath = (key: string) => function (this: Counter) {
      this.reset(); if (self.snapshot) this.inc(self.snapshot.global[key] ?? 0);
    };
    new Counter({ name: 'wdp_kernel_path_packets_total', help: 'Packets of established flows forwarded by the kernel path (not in wdp_packets_total)', registers: r, collect: kernelPath('kernel_path_frames') });
    new Counter({ name: 'wdp_kernel_path_bytes_total', help: 'Bytes of the packets the kernel path forwarded', registers: r, collect: kernelPath('kernel_path_bytes') });
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

  /** A programmed change that took `seconds` succeeded: its time set for every family, and — while
   * applies are the syncs — observed for every family. */
  synced(seconds: number): void {
    if (this.fedBy === 'applies') this.observeSync(seconds);
    this.markSynced();
  }

  /** A watcher's sync (full or partial, one that changed nothing too) that took `seconds`:
   * observed for every family (while the watcher feeds the daemon). */
  watcherSynced(seconds: number): void {
    if (this.fedBy === 'watcher') this.observeSync(seconds);
  }

  private observeSync(seconds: number): void {
    for (const ip_family of this.ipFamilies()) this.syncDuration.observe({ ip_family }, seconds);
  }

  /** What a sync is, for kubeproxy_sync_proxy_rules_duration_seconds, and what
   * kubeproxy_sync_proxy_rules_{service,endpoint}_changes_total count: each programmed apply and
   * the objects it changes (`applies`, the API's writers), or — once a Kubernetes watcher feeds
   * the daemon — the watcher's syncs and its informers' events, as kube-proxy's proxier and
   * change trackers count them (watcherSynced, changeEvent). */
  fedBy: 'applies' | 'watcher' = 'applies';

  /** The objects an apply changed (while applies feed the daemon). */
  appliedChanges(services: number, endpointSlices: number): void {
    if (this.fedBy !== 'applies') return;
    this.serviceChanges.inc(services);
    this.endpointChanges.inc(endpointSlices);
  }

  /** `n` informer events (add, update — a no-op one too —, delete), counted as kube-proxy's change
   * trackers count it: a Service's by each family proxier (every family), an EndpointSlice's by
   * the proxier of its address type only (an FQDN slice, or one of a family not run: none). */
  changeEvent(kind: 'Service' | 'EndpointSlice', family?: IpFamilyLabel, n = 1): void {
    if (this.fedBy !== 'watcher') return;
    if (kind === 'Service') this.serviceChanges.inc(n * this.ipFamilies().length);
    else if (family && this.ipFamilies().includes(family)) this.endpointChanges.inc(n);
  }

  /** The rules are in sync now (a sync, also one that changed nothing; a restore). */
  markSynced(): void {
    const now = Date.now() / 1000;
    for (const ip_family of this.ipFamilies()) this.lastSync.set({ ip_family }, now);
  }

  /** A change now (or at `atMs`) waits for a sync: that of `family` (an EndpointSlice's, when
   * kube-proxy runs a proxier of it), else that of every family (a Service, a NodeConfig, an apply). */
  queued(family?: IpFamilyLabel, atMs = Date.now()): void {
    const now = atMs / 1000, families = this.ipFamilies();
    if (family && families.includes(family)) { this.lastQueued.set({ ip_family: family }, now); return; }
    for (const ip_family of families) this.lastQueued.set({ ip_family }, now);
  }

  /** A slice of `family` whose change was triggered at `triggerMs` is programmed now. As
   * kube-proxy's change tracker: a trigger from before this process started is not its latency
   * (a first list's slices carry days-old times), and one ahead of this clock (skew) is observed
   * as it is, in the 0 bucket. */
  programmed(triggerMs: number, family: IpFamilyLabel): void {
    if (triggerMs > this.startedMs) this.programmingDuration.observe({ ip_family: family }, (Date.now() - triggerMs) / 1000);
  }

  async render(snapshot: CounterSnapshot | null): Promise<string> {
    this.snapshot = snapshot;
    try { return await this.registry.metrics(); } finally { this.snapshot = null; }
  }
}
