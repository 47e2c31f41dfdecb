// `wdp start` with `kubernetes:` — the daemon fed by the API server, as kube-proxy is: informers
// on Services, EndpointSlices, this node's Node and the cluster's ServiceCIDRs; the
// level-triggered sync (sync.ts) into the control plane; kube-proxy's healthz
// (healthzBindAddress), metrics (metricsBindAddress) and per-service health checks
// (healthCheckNodePort). The daemon keeps owning the node config (ports, neighbours, routes); the
// Node object only feeds it addresses and pod CIDRs (onNode), the ServiceCIDRs its service CIDRs
// (onServiceCIDRs).
import type { Logger } from 'pino';
import type { KubeConfig } from '@kubernetes/client-node';
import type { ControlPlaneMetrics } from '../api/metrics.js';
import type { CounterSnapshot } from '../core/dataplane-types.js';
import { getJson, KubeApiError, loadKubeConfig, type KubeObject } from './client.js';
import { combineServiceCIDRs, serviceCIDRsOf, SERVICECIDRS_PATH } from './service-cidrs.js';
import { ResilientInformer } from './informer.js';
import { KubeSync, type SyncTarget } from './sync.js';
import { KubeMetrics, serveMetrics } from './metrics.js';
import { ProxyHealth, serveProxyHealth, type IpFamilyName } from './healthz.js';
import { boundHealthCheckAddresses, healthCheckAddresses, ServiceHealthServers, type HealthCheckAddress, type HealthCheckWant } from './service-health.js';
import { addNoLocalEndpointPorts, noLocalCounts, type CompiledServices } from './no-local-endpoints.js';
import type { HttpListener } from './listen.js';
import { nodeInfo, proxierFamilies, type NodeInfo } from './node.js';
import { cidrsInFamilies } from './families.js';
import { existsSync } from 'node:fs';
import { nodeAddressList, nodePortAddresses, nodePortFilter, selectNodeAddresses } from './nodeport-addresses.js';
import {
  ENDPOINTSLICES_PATH, NODES_PATH, proxyLabelSelector, SERVICES_PATH, localReadyEndpoints, serviceNameOf, trimSlice,
} from './objects.js';

export { loadKubeConfig, nodeAddressList, nodePortAddresses };

/** What the daemon's NodeConfig takes from the Node: NodePort addresses, pod CIDRs, zone, and
 * kube-proxy's node IP per family (`primary`: first InternalIP, else ExternalIP). */
/** addresses: the node addresses; nodePortAddresses: those NodePorts are served on (selectNodeAddresses). */
export interface NodeUpdate { addresses: string[]; nodePortAddresses: string[]; podCIDRs: string[]; zone: string; primary: string[] }

/** What the watcher reads of the daemon config's `kubernetes` section (src/daemon/config.ts,
 * validated and with its defaults there): durations in ms, bind addresses or "off". */
export interface WatcherSettings {
  minSyncPeriod: number;
  syncPeriod: number;
  listPageSize: number;
  nodePortAddresses: readonly string[];
  healthzBindAddress: string;
  metricsBindAddress: string;
  healthCheckBindAddress?: string;
}

export interface KubeWatcherOptions {
  config: WatcherSettings;
  nodeName: string;
  /** node.addresses of the daemon config: the node addresses instead of the Node's (and the
   * NodePort addresses too when nodePortAddresses is empty). */
  configuredAddresses: string[];
  /** node.serviceProxyName of the daemon config: Services labelled with it are served too. */
  serviceProxyName?: string;
  kubeConfig: KubeConfig;
  /** The control plane: what the sync programs into, and the compiled state the
   * no-local-endpoints gauge reads. */
  control: SyncTarget & { readonly compiler: CompiledServices; readonly serviceChanges?: number };
  metrics: ControlPlaneMetrics;
  counters?: () => Promise<CounterSnapshot>;
  /** The Node's facts changed (its addresses, primary IPs, pod CIDRs, zone) or the node and
   * NodePort addresses selected from them: the daemon re-programs its node config and saves the
   * facts (nodeState()). */
  onNode?(u: NodeUpdate): void;
  /** node.serviceCIDRs of the daemon config: kept among the service CIDRs (service-cidrs.ts). */
  configuredServiceCIDRs?: string[];
  /** The node config's serviceCIDRs: node.serviceCIDRs and the cluster's ServiceCIDRs' CIDRs,
   * once they are listed (or known not to be served), then whenever they change; `cluster`: the
   * ServiceCIDRs' CIDRs alone (saved for a restart that cannot list them). */
  onServiceCIDRs?(cidrs: string[], cluster: string[]): void;
  isForwarding?: () => boolean;
  log: Logger;
  /** Whether the host has IPv6 (kube-proxy: /proc/net/if_inet6 exists; read once at start when
   * not given): both families' proxiers then, else one (proxierFamilies). */
  hostIPv6?: boolean;
  /** The host's interface addresses as the daemon last read them (daemon/host-addresses.ts): a
   * nodePortAddresses list of CIDRs selects the health-check listen addresses among them too, as
   * kube-proxy's health-check server does (hostAddressesChanged() when they change). */
  hostAddresses?: () => readonly string[];
  /** Test knobs: informer backoff and watch timeouts. */
  informer?: { backoffInitialMs?: number; backoffMaxMs?: number; watchTimeoutSeconds?: [number, number]; watchIdleSeconds?: number; listTimeoutSeconds?: number };
}

/** One GET of the Node object `name`. */
const getNode = async (kc: KubeConfig, name: string, timeoutMs: number): Promise<NodeInfo> =>
  nodeInfo(await getJson(kc, `${NODES_PATH}/${encodeURIComponent(name)}`, timeoutMs) as KubeObject);

/** GET this node's Node object once (startup: the workers need the node addresses before they
 * start). Retries for `waitSeconds`; null when it cannot be read (logged). */
export async function fetchNode(kc: KubeConfig, name: string, waitSeconds: number, log: Logger): Promise<NodeInfo | null> {
  const deadline = Date.now() + waitSeconds * 1000;
  for (let delay = 500; ; delay = Math.min(delay * 2, 5000)) {
    try {
      return await getNode(kc, name, 10_000);
    } catch (e) {
      const left = deadline - Date.now();
      const msg = e instanceof KubeApiError && e.statusCode === 404 ? `node ${name} does not exist (is hostnameOverride right?)` : (e as Error).message;
      if (left <= 0) { log.warn({ error: msg }, 'cannot read the Node object: starting with the configured node addresses'); return null; }
      log.info({ error: msg }, 'waiting for the Node object');
      await new Promise((r) => setTimeout(r, Math.min(delay, left)));
    }
  }
}

/** One GET of this node's Node object, no retries (a start that does not wait for it: the
 * watcher reads it anyway); null, logged at debug, when it cannot be read. */
export async function readNodeOnce(kc: KubeConfig, name: string, log: Logger): Promise<NodeInfo | null> {
  try { return await getNode(kc, name, 5_000); } catch (e) {
    log.debug({ error: (e as Error).message }, 'the Node could not be read at start: the watcher reads it');
    return null;
  }
}

export class KubeWatcher {
  readonly sync: KubeSync;
  readonly health: ProxyHealth;
  readonly kubeMetrics: KubeMetrics;
  readonly informers: { services: ResilientInformer; slices: ResilientInformer; node: ResilientInformer; serviceCIDRs: ResilientInformer };
  readonly serviceHealth: ServiceHealthServers | null;
  private listeners: HttpListener[] = [];
  private node: NodeInfo | null = null;
  private lastNodeUpdate = '';
  /** The service CIDRs last given to onServiceCIDRs (null: none yet), whether the API server was
   * last seen not to serve ServiceCIDRs (logged once per such spell), a recompute pending. */
  private lastServiceCIDRs: string | null = null;
  private lastClusterCIDRs: string | null = null;
  private serviceCIDRsUnserved: string | null = null;
  private serviceCIDRsPending = false;
  /** The cluster's ServiceCIDRs' CIDRs last read, all families (null: none read yet): cut again to
   * the proxier families when those change. */
  private clusterServiceCIDRs: string[] | null = null;
  private stopped = false;
  private readonly loggedOnce = new Set<string>();
  private readonly hostIPv6: boolean;
  healthzUrl: string | null = null;
  metricsUrl: string | null = null;

  private constructor(private readonly o: KubeWatcherOptions) {
    const c = o.config;
    const log = o.log;
    this.hostIPv6 = o.hostIPv6 ?? existsSync('/proc/net/if_inet6');
    this.kubeMetrics = new KubeMetrics(o.metrics.registry);
    // every kube-proxy metric labelled by the same families (proxierFamilies)
    o.metrics.ipFamilies = () => this.ipFamilies();
    // the change counters count this watcher's informer events, as kube-proxy's (not the applies)
    o.metrics.fedBy = 'watcher';
    // kube-proxy: healthz turns unhealthy when changes wait longer than 2 x syncPeriod
    this.health = new ProxyHealth(2 * c.syncPeriod, Date.now, o.isForwarding ?? (() => true), () => this.ipFamilies());
    this.serviceHealth = c.healthCheckBindAddress === 'off' ? null : new ServiceHealthServers(this.healthCheckAddresses(), () => this.health.healthy(), log);
    const informers = { services: null as unknown as ResilientInformer, slices: null as unknown as ResilientInformer };
    this.sync = new KubeSync(o.control, {
      services: () => informers.services.list(),
      slices: () => informers.slices.list(),
    }, {
      minSyncPeriodMs: c.minSyncPeriod, syncPeriodMs: c.syncPeriod, log, metrics: this.kubeMetrics, health: this.health, families: () => this.ipFamilies(),
      timestamps: o.metrics,
      afterSync: () => this.afterSync(),
    });
    // a watch event dropped for its shape: logged once per kind of problem, not per event
    const ignoredSeen = new Set<string>();
    const common = {
      pageSize: c.listPageSize,
      onIgnoredEvent: (what: string) => {
        if (ignoredSeen.has(what) || ignoredSeen.size > 100) return;
        ignoredSeen.add(what);
        log.warn({ event: what }, 'a watch event was ignored (it carries nothing to apply); the watch goes on');
      },
      ...(o.informer ?? {}),
    };
    // a list's items reach the sync in one synchronous loop: its per-event metrics are summed (KubeSync.hold)
    const onDelivery = (delivering: boolean) => { if (delivering) this.sync.hold(); else this.sync.release(); };
    const onListed = (resource: string) => () => {
      this.kubeMetrics.lists.inc({ resource });
      if (this.informers.services.synced && this.informers.slices.synced) this.sync.start();
    };
    // a refusal says what to fix; the informers are independent, so the others read on (the
    // first sync waits for Services and EndpointSlices both, as kube-proxy's isInitialized)
    const onError = (resource: string, group = '') => (err: unknown, retryInMs: number) => {
      this.kubeMetrics.watchErrors.inc({ resource });
      const code = err instanceof KubeApiError ? err.statusCode : 0;
      const hint = code === 403 ? `forbidden: grant list and watch on ${resource} (${group || 'core'}) to wdp's service account (deploy/base/clusterrole.yaml)`
        : code === 401 ? 'the API server refused the credentials (a token expired or revoked, a client certificate it does not trust)' : undefined;
      log.warn({ resource, error: (err as Error)?.message ?? String(err), retryInMs, ...(hint ? { hint } : {}) }, 'list/watch failed; restarting');
    };
    const onHandlerError = (resource: string) => (err: unknown, obj: KubeObject) => {
      log.error({ resource, object: `${obj?.metadata?.namespace ?? ''}/${obj?.metadata?.name ?? ''}`, error: (err as Error)?.stack ?? String(err) }, 'handling a watch event failed; the next full sync reconciles the object');
    };
    informers.services = new ResilientInformer(o.kubeConfig, {
      ...common, path: SERVICES_PATH, labelSelector: proxyLabelSelector(o.serviceProxyName),
      onAdd: (x) => this.sync.queue('Service', x), onUpdate: (x) => this.sync.queue('Service', x), onDelete: (x) => this.sync.queue('Service', x, true),
      onListed: onListed('services'), onDelivery, onError: onError('services'), onHandlerError: onHandlerError('services'),
    });
    informers.slices = new ResilientInformer(o.kubeConfig, {
      ...common, path: ENDPOINTSLICES_PATH, labelSelector: proxyLabelSelector(o.serviceProxyName),
      trim: trimSlice,
      onAdd: (x) => this.sync.queue('EndpointSlice', x), onUpdate: (x) => this.sync.queue('EndpointSlice', x), onDelete: (x) => this.sync.queue('EndpointSlice', x, true),
      onListed: onListed('endpointslices'), onDelivery, onError: onError('endpointslices', 'discovery.k8s.io'), onHandlerError: onHandlerError('endpointslices'),
    });
    const node = new ResilientInformer(o.kubeConfig, {
      ...common, path: NODES_PATH, fieldSelector: `metadata.name=${o.nodeName}`,
      onAdd: (x) => this.nodeChanged(x), onUpdate: (x) => this.nodeChanged(x),
      // kube-proxy's NodeEligibleHandler.OnNodeDelete syncs the deleted Node's last state: a Node
      // deleted outright (no finalizer: no deletionTimestamp in it, no ToBeDeleted taint) stays
      // eligible, so load balancers keep sending until the node is really gone
      onDelete: (x) => {
        const eligible = nodeInfo(x).eligible;
        if (this.health.nodeEligible !== eligible) log.info({ eligible }, 'node eligibility changed');
        this.health.nodeEligible = eligible;
        log.warn({ node: o.nodeName, eligible }, 'the Node object was deleted');
      },
      onListed: () => this.kubeMetrics.lists.inc({ resource: 'nodes' }), onError: onError('nodes'), onHandlerError: onHandlerError('nodes'),
    });
    // ServiceCIDRs: their CIDRs are read whole after each change (a burst of events, a re-list,
    // coalesced into one read); an API server that does not serve them (404: older than 1.33
    // without the beta API, or the resource turned off) or does not let wdp read them (403: the
    // ClusterRole of an older deploy/) leaves the service CIDRs to node.serviceCIDRs, logged once,
    // while the informer keeps retrying with its backoff (an upgraded server is picked up). Once
    // they have been listed, such a refusal keeps the CIDRs of the informer's cache (the ones last
    // listed), as client-go's reflector keeps its store across failed lists in kube-proxy: one API
    // server of several not serving them yet (an upgrade under way) drops nothing
    const serviceCIDRs = new ResilientInformer(o.kubeConfig, {
      ...common, path: SERVICECIDRS_PATH,
      onAdd: () => this.serviceCIDRsChanged(), onUpdate: () => this.serviceCIDRsChanged(), onDelete: () => this.serviceCIDRsChanged(),
      onListed: () => { this.kubeMetrics.lists.inc({ resource: 'servicecidrs' }); this.serviceCIDRsUnserved = null; this.serviceCIDRsChanged(); },
      onError: (err, retryInMs) => {
        const code = err instanceof KubeApiError ? err.statusCode : 0;
        if (code !== 404 && code !== 403) { onError('servicecidrs', 'networking.k8s.io')(err, retryInMs); return; }
        if (code === 403) this.kubeMetrics.watchErrors.inc({ resource: 'servicecidrs' });
        const why = code === 404 ? 'not served' : 'forbidden';
        if (this.informers.serviceCIDRs.synced) {
          if (this.serviceCIDRsUnserved !== why) {
            this.serviceCIDRsUnserved = why;
            log.warn({ resource: 'servicecidrs', error: (err as Error).message, retryInMs }, `listing ServiceCIDRs (networking.k8s.io/v1) is ${code === 404 ? 'not served' : 'forbidden'} now: the service CIDRs stay those last listed until a list succeeds`);
          }
          return;
        }
        if (this.serviceCIDRsUnserved !== why) {
          this.serviceCIDRsUnserved = why;
          const msg = code === 404
            ? 'the API server does not serve ServiceCIDRs (networking.k8s.io/v1): the service CIDRs are node.serviceCIDRs alone'
            : 'reading ServiceCIDRs (networking.k8s.io/v1) is forbidden (grant list/watch on servicecidrs: deploy/base/clusterrole.yaml): the service CIDRs are node.serviceCIDRs alone';
          log[code === 404 ? 'info' : 'warn']({ resource: 'servicecidrs', error: (err as Error).message, retryInMs }, msg);
        }
        this.setServiceCIDRs([]);
      },
      onHandlerError: onHandlerError('servicecidrs'),
    });
    this.informers = { services: informers.services, slices: informers.slices, node, serviceCIDRs };
  }

  static async start(o: KubeWatcherOptions, initialNode: NodeInfo | null = null): Promise<KubeWatcher> {
    const w = new KubeWatcher(o);
    if (initialNode) {
      w.node = initialNode; w.health.nodeEligible = initialNode.eligible; w.lastNodeUpdate = JSON.stringify([w.nodeUpdate(), initialNode.addresses]);
      void w.serviceHealth?.setAddresses(w.healthCheckAddresses());
    }
    try {
      if (o.config.healthzBindAddress !== 'off') {
        const l = await serveProxyHealth(bindOf(o.config.healthzBindAddress), w.health, { healthz: w.kubeMetrics.healthz, livez: w.kubeMetrics.livez });
        w.listeners.push(l); w.healthzUrl = l.url;
      }
      if (o.config.metricsBindAddress !== 'off') {
        const l = await serveMetrics(bindOf(o.config.metricsBindAddress), async () => {
          let snap: CounterSnapshot | null = null;
          try { snap = o.counters ? await o.counters() : null; } catch { /* counters unavailable: the rest still renders */ }
          return o.metrics.render(snap);
        });
        w.listeners.push(l); w.metricsUrl = l.url;
      }
      // the restored model (the daemon restores the saved state before it starts the watcher) is
      // what the dataplane forwards by until the first sync: its health checks answer from it at
      // once, so a restart with the API server away does not drain the node at the load balancers
      await w.afterSync();
    } catch (e) {
      await w.stop();
      throw e;
    }
    w.informers.node.start();
    w.informers.services.start();
    w.informers.slices.start();
    w.informers.serviceCIDRs.start();
    o.log.info({ healthz: w.healthzUrl, metrics: w.metricsUrl, proxierFamilies: w.ipFamilies() }, 'watching the Kubernetes API');
    return w;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const i of Object.values(this.informers)) i.stop();
    await this.sync.stop();
    await this.serviceHealth?.close();
    await Promise.all(this.listeners.map((l) => l.close()));
    this.listeners = [];
  }

  /** The node information last seen (tests, logs). */
  nodeState(): NodeInfo | null { return this.node; }

  /** The service CIDRs last given to the daemon (null before the ServiceCIDRs were listed). */
  serviceCIDRs(): string[] | null { return this.lastServiceCIDRs === null ? null : JSON.parse(this.lastServiceCIDRs) as string[]; }

  private serviceCIDRsChanged(): void {
    if (this.serviceCIDRsPending) return;
    this.serviceCIDRsPending = true;
    setImmediate(() => {
      this.serviceCIDRsPending = false;
      if (this.stopped) return;
      const inf = this.informers.serviceCIDRs;
      if (!inf.synced) return; // (a first list's events: read once it is delivered)
      const { cidrs, invalid } = serviceCIDRsOf(inf.list());
      for (const bad of invalid) this.logOnce(`invalid ${bad}`, 'warn', { entry: bad }, 'a ServiceCIDR entry that is not a CIDR is ignored');
      this.setServiceCIDRs(cidrs);
    });
  }

  /** `all`: the ServiceCIDRs' CIDRs, of which the proxiers of this node's families take their
   * own (kube-proxy's proxier of a family programs the service CIDRs of that family). */
  private setServiceCIDRs(all: string[]): void {
    if (this.stopped) return;
    this.clusterServiceCIDRs = all;
    const cluster = cidrsInFamilies(all, this.ipFamilies());
    // the config file's CIDRs too: a family the proxiers do not run is left alone, as kube-proxy leaves it
    const configured = cidrsInFamilies(this.o.configuredServiceCIDRs ?? [], this.ipFamilies());
    const { cidrs, left } = combineServiceCIDRs(configured, cluster);
    const text = JSON.stringify(cidrs), clusterText = JSON.stringify(cluster);
    if (text === this.lastServiceCIDRs && clusterText === this.lastClusterCIDRs) return;
    this.lastServiceCIDRs = text; this.lastClusterCIDRs = clusterText;
    if (left.length) this.logOnce(`left ${JSON.stringify(left)}`, 'warn', { left }, `more service CIDRs than a node config holds (${cidrs.length}): traffic to unallocated addresses of these is routed, not dropped`);
    this.o.log.info({ serviceCIDRs: cidrs, fromServiceCIDRs: cluster }, 'service CIDRs');
    this.o.onServiceCIDRs?.(cidrs, cluster);
  }

  private logOnce(key: string, level: 'warn' | 'info', fields: Record<string, unknown>, msg: string): void {
    if (this.loggedOnce.has(key)) return;
    this.loggedOnce.add(key);
    this.o.log[level](fields, msg);
  }

  /** NodePorts are served on the NodePort addresses of the proxier families only. */
  private nodeUpdate(): NodeUpdate {
    const sel = selectNodeAddresses(this.node, this.o.configuredAddresses, this.o.config.nodePortAddresses);
    return { ...sel, nodePortAddresses: cidrsInFamilies(sel.nodePortAddresses, this.ipFamilies()), podCIDRs: this.node?.podCIDRs ?? [], zone: this.node?.zone ?? '', primary: this.node?.primary ?? [] };
  }

  private nodeChanged(obj: KubeObject): void {
    if (obj.metadata?.name !== this.o.nodeName) return;
    const families = this.ipFamilies().join();
    this.node = nodeInfo(obj);
    if (this.ipFamilies().join() !== families) {
      // (a host without IPv6 runs the proxier of the primary IP's family, known from the Node)
      this.o.log.info({ proxierFamilies: this.ipFamilies(), was: families.split(',') }, 'proxier families changed: every object is programmed again for them');
      this.sync.requestFull();
      if (this.clusterServiceCIDRs) this.setServiceCIDRs(this.clusterServiceCIDRs);
    }
    if (this.health.nodeEligible !== this.node.eligible) this.o.log.info({ eligible: this.node.eligible }, 'node eligibility changed');
    this.health.nodeEligible = this.node.eligible;
    const u = this.nodeUpdate();
    // (the Node's own addresses too: the daemon saves them for a restart whose config may select others)
    const text = JSON.stringify([u, this.node.addresses]);
    if (text === this.lastNodeUpdate) return;
    this.lastNodeUpdate = text;
    this.o.log.info({ addresses: u.addresses, nodePortAddresses: u.nodePortAddresses, podCIDRs: u.podCIDRs, zone: u.zone }, 'node addresses from the Node object');
    this.o.onNode?.(u);
    void this.serviceHealth?.setAddresses(this.healthCheckAddresses());
  }

  /** The IP families kube-proxy would run a proxier for (node.ts proxierFamilies): both on a
   * host with IPv6, else the primary IP's. wdp's one sync serves every family; these label its
   * metrics and healthz status as kube-proxy's family proxiers would. */
  private ipFamilies(): IpFamilyName[] { return proxierFamilies(this.node?.primary ?? [], this.hostIPv6); }

  /** Where the healthCheckNodePort servers listen: healthCheckBindAddress when set, else
   * kube-proxy's per-family rule over the NodePort addresses and the list that selected them
   * (service-health.ts, nodePortFilter). */
  private healthCheckAddresses(): HealthCheckAddress[] {
    const c = this.o.config;
    if (c.healthCheckBindAddress !== undefined && c.healthCheckBindAddress !== 'off') return boundHealthCheckAddresses(c.healthCheckBindAddress);
    const filter = nodePortFilter(c.nodePortAddresses, this.o.configuredAddresses);
    return healthCheckAddresses(nodePortAddresses(this.node, this.o.configuredAddresses, c.nodePortAddresses, this.o.hostAddresses?.() ?? []), filter, this.node?.primary ?? []);
  }

  /** The host's addresses changed (hostAddresses): the health-check listeners follow. */
  hostAddressesChanged(): void {
    if (!this.stopped) void this.serviceHealth?.setAddresses(this.healthCheckAddresses());
  }

  /** The Services with a Local traffic policy, as [namespace, name] in the compiler's order, found
   * by a pass over every Service only when a Service changed since the last pass
   * (ControlPlaneCore.serviceChanges counts every change that upserts or removes one, whoever
   * applied it; whether a Service is Local is its own spec's, externalLocal / internalLocal): a
   * sync of EndpointSlices alone — a one-endpoint change — made that pass over all 10k Services at
   * 10k × 10, after every change. Each listed Service is read again from the model at every use.
   * Without the count (a test's control plane), every time. */
  private localPolicyServices(): ReadonlyArray<readonly [string, string]> {
    const changes = this.o.control.serviceChanges;
    if (this.localServices && changes !== undefined && changes === this.localServicesAt) return this.localServices;
    const out: Array<[string, string]> = [];
    for (const svc of this.o.control.compiler.eachService()) if (svc.externalLocal || svc.internalLocal) out.push([svc.namespace, svc.name]);
    this.localServices = out;
    this.localServicesAt = changes;
    return out;
  }

  private localServices: Array<[string, string]> | null = null;
  private localServicesAt: number | undefined;

  /** Service health checks and the no-local-endpoints gauge, both from what the syncs programmed
   * (the model's Services and slices: what the dataplane forwards by), only for Services with a
   * Local policy; at start, from the model the daemon restored. A healthCheckNodePort opens with the sync that programs its Service's Local
   * policy and closes with the one that removes it, as kube-proxy's proxier syncs its health
   * servers from the service map it has just written; the local endpoint counts likewise: a slice
   * that arrived while this sync ran is counted once the next one has programmed it. */
  private async afterSync(): Promise<void> {
    const compiled = this.o.control.compiler;
    const none = noLocalCounts();
    const ports = new Map<string, { port: number; families: Array<4 | 6> }>();
    for (const [namespace, name] of this.localPolicyServices()) {
      const svc = compiled.getService(namespace, name);
      if (!svc || (!svc.externalLocal && !svc.internalLocal)) continue;
      addNoLocalEndpointPorts(compiled, svc.namespace, svc.name, none);
      // (the model keeps a healthCheckNodePort only for a LoadBalancer with externalTrafficPolicy Local)
      if (svc.healthCheckNodePort !== undefined) ports.set(svc.key, { port: svc.healthCheckNodePort, families: svc.families });
    }
    // one series per proxier family, as each of kube-proxy's proxiers sets its own
    this.kubeMetrics.noLocalEndpoints.reset();
    for (const f of this.ipFamilies()) {
      this.kubeMetrics.noLocalEndpoints.set({ traffic_policy: 'internal', ip_family: f }, none.internal[f]);
      this.kubeMetrics.noLocalEndpoints.set({ traffic_policy: 'external', ip_family: f }, none.external[f]);
    }
    if (!this.serviceHealth) return;
    const hc = new Map<string, HealthCheckWant>();
    if (ports.size) {
      const slicesBy = new Map<string, KubeObject[]>();
      for (const { raw } of compiled.eachSlice()) {
        const sl = raw as KubeObject; // (validated: its metadata is there)
        const svc = serviceNameOf(sl);
        if (svc && ports.has(svc)) { const l = slicesBy.get(svc); if (l) l.push(sl); else slicesBy.set(svc, [sl]); }
      }
      for (const [k, { port, families }] of ports) hc.set(k, { port, families, localEndpoints: localReadyEndpoints(slicesBy.get(k) ?? [], this.o.nodeName, this.o.serviceProxyName) });
    }
    await this.serviceHealth.sync(hc);
  }
}

/** ":10256" binds every address, as kube-proxy's bind addresses. */
function bindOf(s: string): string { return s.startsWith(':') ? `0.0.0.0${s}` : s; }
