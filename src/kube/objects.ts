// API objects as the model takes them. The API server's objects carry much the dataplane never
// reads (managedFields, targetRefs, hints, status conditions); the copy kept is what the model
// validates, what the control API shows and what the state file stores — a fraction of the size.
//
// List items come without apiVersion/kind (the list has them); both are set here. Fields the API
// server always fills with their defaults are dropped when dropping them means the same thing to
// the model, because the model's fast validation path only takes the plain shapes: a Service
// from the API server has ipFamilies, internalTrafficPolicy: Cluster and an empty status, and
// without this every one of 10k Services took the ~30 µs full validation.
import { isIP } from 'node:net';
import type { KubeObject } from './client.js';
import { canon, HEADLESS_LABEL, SERVICE_PROXY_NAME_LABEL, specialAddressProblem } from '../model/schema.js';
import { isIP as sloppyIsIP } from '../model/sloppy-ip.js';
import { servedByProxy } from '../model/types.js';

export const SERVICES_PATH = '/api/v1/services';
export const ENDPOINTSLICES_PATH = '/apis/discovery.k8s.io/v1/endpointslices';
export const NODES_PATH = '/api/v1/nodes';
/** kube-proxy's selector: Services and slices another proxy claims, and headless ones, are not ours. */
export const PROXY_LABEL_SELECTOR = '!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless';

/** The selector the watcher lists with. With a configured proxy name (node.serviceProxyName) the
 * objects labelled with it are ours too, and a label selector cannot say "absent or equal to X":
 * then only headless ones are left out here and the compiler drops the other proxies' Services
 * (compiler.ts `serves`), as it does for `wdp apply`. */
export function proxyLabelSelector(serviceProxyName?: string): string {
  return serviceProxyName ? '!service.kubernetes.io/headless' : PROXY_LABEL_SELECTOR;
}

type Raw = Record<string, unknown>;
const isObj = (x: unknown): x is Raw => typeof x === 'object' && x !== null && !Array.isArray(x);

function metadataOf(o: KubeObject, created = false): Raw {
  const m = o.metadata ?? {};
  const out: Raw = { name: m.name, namespace: m.namespace };
  if (m.resourceVersion !== undefined) out.resourceVersion = m.resourceVersion;
  // a Service's age decides which of two Services serves an external tuple both claim
  // (src/compiler/external-claims.ts)
  if (created && m.creationTimestamp !== undefined) out.creationTimestamp = m.creationTimestamp;
  if (m.labels && Object.keys(m.labels).length) out.labels = m.labels;
  if (m.annotations && Object.keys(m.annotations).length) {
    // kubectl's last-applied copy can be as large as the object: not kept
    const { 'kubectl.kubernetes.io/last-applied-configuration': _, ...rest } = m.annotations;
    if (Object.keys(rest).length) out.annotations = rest;
  }
  return out;
}

function familyOf(ip: unknown): string | null {
  return typeof ip !== 'string' ? null : ip.includes(':') ? 'IPv6' : 'IPv4';
}

/** A Service from the API as the model's input. `unserved`, when given, receives the external and
 * load-balancer ingress IPs left out (unownedAddress). */
export function serviceForModel(o: KubeObject, unserved?: string[]): Raw {
  const spec: Raw = isObj(o.spec) ? { ...o.spec } : {};
  // the API server's defaults, equal in meaning to leaving them out:
  if (spec.internalTrafficPolicy === 'Cluster') delete spec.internalTrafficPolicy;
  if (spec.sessionAffinity === 'None') { delete spec.sessionAffinity; delete spec.sessionAffinityConfig; }
  if (spec.externalTrafficPolicy === 'Cluster') delete spec.externalTrafficPolicy;
  const ips = Array.isArray(spec.clusterIPs) ? spec.clusterIPs : typeof spec.clusterIP === 'string' && spec.clusterIP ? [spec.clusterIP] : [];
  if (Array.isArray(spec.ipFamilies) && ips.length === spec.ipFamilies.length && ips.every((ip, i) => familyOf(ip) === (spec.ipFamilies as unknown[])[i])) delete spec.ipFamilies;
  if (Array.isArray(spec.externalIPs)) {
    const kept = servedExternalIPs(spec.externalIPs, unserved);
    if (kept.length) spec.externalIPs = kept;
    else {
      const had = spec.externalIPs.length > 0;
      delete spec.externalIPs;
      // (what applied to those addresses alone, on a type without node ports, has nothing left to apply to)
      if (had && spec.type !== 'NodePort' && spec.type !== 'LoadBalancer') { delete spec.externalTrafficPolicy; delete spec.loadBalancerSourceRanges; }
    }
  }
  if (Array.isArray(spec.loadBalancerSourceRanges) && !spec.loadBalancerSourceRanges.length) delete spec.loadBalancerSourceRanges;
  const out: Raw = { apiVersion: 'v1', kind: 'Service', metadata: metadataOf(o, true), spec };
  const ingress = (isObj(o.status) && isObj(o.status.loadBalancer) ? o.status.loadBalancer.ingress : undefined);
  const kept = Array.isArray(ingress) ? servedIngress(ingress, unserved) : [];
  if (kept.length) out.status = { loadBalancer: { ingress: kept.map((i: unknown) => (!isObj(i) ? i : { ...(i.ip ? { ip: i.ip } : {}), ...(i.hostname ? { hostname: i.hostname } : {}), ...(i.ipMode ? { ipMode: i.ipMode } : {}) })) } };
  return out;
}

/** The external IPs the model is given: each address once (distinctAddresses), without those no
 * single host owns (unownedAddress, pushed to `unserved`). */
export function servedExternalIPs(list: unknown[], unserved?: string[]): unknown[] {
  return distinctAddresses(list).filter((a) => !unownedAddress(a, unserved));
}

/** The load-balancer ingress entries the model is given: without those whose IP no single host
 * owns (unownedAddress, pushed to `unserved`). */
export function servedIngress(list: unknown[], unserved?: string[]): unknown[] {
  return list.filter((i) => !isObj(i) || !unownedAddress(i.ip, unserved));
}

/** Whether `a` is an address the API server accepts as an external or load-balancer ingress IP
 * but the model refuses as a service address (docs/api.md, Address rules: multicast, broadcast,
 * reserved, 0.0.0.0/8, IPv4-mapped — ValidateNonSpecialIP refuses only unspecified, loopback and
 * link-local ones, and ingress IPs are not checked for those at all). kube-proxy programs such an
 * address; refused, the whole Service — its cluster IP and node ports too — would not be served,
 * so it is left out here instead (pushed to `unserved`) and the rest of the Service is served. */
function unownedAddress(a: unknown, unserved?: string[]): boolean {
  if (typeof a !== 'string' || sloppyIsIP(a) === 0 || specialAddressProblem(a) === null) return false;
  unserved?.push(a);
  return true;
}

/** What the watcher's cache keeps of an EndpointSlice: each endpoint's targetRef (the Pod behind
 * it: an object and three strings, a tenth of a slice's objects) is never read (sliceForModel,
 * localReadyEndpoints), so it goes as the slice arrives (informer.ts `trim`) instead of living as
 * long as the slice: ~3 % less of the daemon's CPU on a 10k-Service initial list
 * (docs/performance.md, "Full sync through the watcher"). */
export function trimSlice(o: KubeObject): void {
  const eps = (o as { endpoints?: unknown }).endpoints;
  if (!Array.isArray(eps)) return;
  for (const e of eps) if (isObj(e) && e.targetRef !== undefined) delete e.targetRef;
}

/** An EndpointSlice from the API as the model's input: per endpoint what the dataplane reads. */
export function sliceForModel(o: KubeObject): Raw {
  const eps = Array.isArray(o.endpoints) ? o.endpoints : [];
  const out: Raw = {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: metadataOf(o),
    addressType: o.addressType,
    endpoints: eps.map((e: unknown) => {
      if (!isObj(e)) return e; // (the model reports it)
      const ep: Raw = { addresses: e.addresses };
      if (e.conditions !== undefined && e.conditions !== null) ep.conditions = e.conditions;
      if (e.nodeName) ep.nodeName = e.nodeName;
      if (e.zone) ep.zone = e.zone;
      // topology hints: zones (topology-aware routing) and nodes (PreferSameNode)
      if (isObj(e.hints)) {
        const h: Raw = {};
        if (Array.isArray(e.hints.forZones) && e.hints.forZones.length) h.forZones = e.hints.forZones;
        if (Array.isArray(e.hints.forNodes) && e.hints.forNodes.length) h.forNodes = e.hints.forNodes;
        if (h.forZones || h.forNodes) ep.hints = h;
      }
      return ep;
    }),
  };
  if (o.ports !== undefined && o.ports !== null) out.ports = Array.isArray(o.ports) ? o.ports.filter(servablePort) : o.ports;
  return out;
}

/** `list` without the repeats of an address (the same address in canonical form: "10.0.0.1" and
 * "10.0.0.01" are one, as ParseIPSloppy reads them); the same array when there are none (the
 * common case). The API server does not refuse an external IP listed twice (ValidateService has no
 * duplicate check for it) and kube-proxy programs it once; the model refuses the repeat, which
 * would leave the whole Service out. Entries that are no address are kept: the model says what is
 * wrong with them. */
export function distinctAddresses(list: unknown[]): unknown[] {
  const seen = new Set<string>();
  let out: unknown[] | null = null;
  for (let i = 0; i < list.length; i++) {
    const a = list[i];
    const key = typeof a === 'string' && sloppyIsIP(a) !== 0 ? canon(a) : null;
    if (key !== null && seen.has(key)) { out ??= list.slice(0, i); continue; }
    if (key !== null) seen.add(key);
    out?.push(a);
  }
  return out ?? list;
}

/** Whether kube-proxy serves an EndpointSlice port entry: its EndpointSliceCache ignores one whose
 * port is unset or 0 ("Ignoring invalid endpoint port") and serves the slice's other ports. The API
 * server does not range-check EndpointSlice ports, so a manually managed slice can carry 0 (or a
 * number no port has): such an entry is left out here — refused by the model, it would leave the
 * whole slice out. An entry without a port is kept (the model takes it and forwards nothing to it);
 * one of another shape too (the model says what is wrong with it). */
function servablePort(p: unknown): boolean {
  if (!isObj(p) || typeof p.port !== 'number') return true;
  return Number.isInteger(p.port) && p.port >= 1 && p.port <= 65535;
}

/** The Service's healthCheckNodePort, when kube-proxy would serve one for it: a LoadBalancer
 * with externalTrafficPolicy Local (the API server allocates the port only then). */
export function healthCheckNodePort(o: KubeObject): number | null {
  const s = isObj(o.spec) ? o.spec : {};
  const p = s.healthCheckNodePort;
  return s.type === 'LoadBalancer' && s.externalTrafficPolicy === 'Local' && typeof p === 'number' && Number.isInteger(p) && p > 0 && p < 65536 ? p : null;
}

/** The IP families of a Service's cluster IPs (the family proxiers of kube-proxy that know it). */
export function clusterIPFamilies(o: KubeObject): Array<4 | 6> {
  const s = isObj(o.spec) ? o.spec : {};
  const ips = Array.isArray(s.clusterIPs) ? s.clusterIPs : typeof s.clusterIP === 'string' ? [s.clusterIP] : [];
  const out: Array<4 | 6> = [];
  for (const ip of ips) { const f = typeof ip === 'string' ? isIP(ip) : 0; if ((f === 4 || f === 6) && !out.includes(f)) out.push(f); }
  return out;
}

/** Whether a Service or slice is one kube-proxy's informer takes (not headless, not another
 * proxy's). */
function servedObject(s: KubeObject, serviceProxyName?: string): boolean {
  const labels = s.metadata?.labels ?? {};
  return servedByProxy({ proxyName: labels[SERVICE_PROXY_NAME_LABEL], headlessLabel: labels[HEADLESS_LABEL] !== undefined || undefined }, serviceProxyName);
}

/** Ready endpoints of `slices` on node `nodeName`, per IP family — kube-proxy's local endpoint
 * count for the health check (EndpointsMap.LocalReadyEndpoints of each family's proxier):
 * distinct addresses ("squash the data by IP"), so a pod serving two ports counts once, and one
 * listed in two slices once; a dual-stack pod is one endpoint of each family. An endpoint counts
 * when its slice is of address type IPv4 or IPv6 and has a port with a number (kube-proxy's
 * endpointslicecache skips the others). A
 * slice labelled headless, or for a service proxy other than `serviceProxyName`, adds nothing:
 * kube-proxy's informer never sees it, and the compiler forwards to none of its endpoints
 * (Compiler.serves). */
export function localReadyEndpoints(slices: readonly KubeObject[], nodeName: string, serviceProxyName?: string): Record<'IPv4' | 'IPv6', number> {
  const seen = { IPv4: new Set<string>(), IPv6: new Set<string>() };
  for (const s of slices) {
    // (kube-proxy takes IPv4 and IPv6 slices only; an FQDN slice's endpoints are not forwarded to)
    if ((s.addressType !== 'IPv4' && s.addressType !== 'IPv6') || !servedObject(s, serviceProxyName)) continue;
    const ports = (Array.isArray(s.ports) ? s.ports : []) as Raw[];
    if (!ports.some((p) => isObj(p) && typeof p.port === 'number' && p.port > 0)) continue;
    for (const e of (Array.isArray(s.endpoints) ? s.endpoints : []) as Raw[]) {
      if (!isObj(e) || e.nodeName !== nodeName) continue;
      const c = isObj(e.conditions) ? e.conditions : {};
      if (c.ready === false) continue;
      const a = Array.isArray(e.addresses) ? e.addresses[0] : undefined;
      if (typeof a === 'string') seen[s.addressType].add(a);
    }
  }
  return { IPv4: seen.IPv4.size, IPv6: seen.IPv6.size };
}

export function objectKey(o: KubeObject): string {
  return `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
}

export function serviceNameOf(slice: KubeObject): string | null {
  const n = slice.metadata?.labels?.['kubernetes.io/service-name'];
  return n ? `${slice.metadata?.namespace ?? ''}/${n}` : null;
}
