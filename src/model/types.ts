// The validated, normalised Kubernetes model the compiler reads. Every address here is in
// canonical text form (formatAddr(parseAddr(x))) so that "fd00::0001" and "fd00::1" are one key.
// `raw` is the object exactly as applied: it is what GET returns and what the state file stores,
// so a restart re-validates the same input instead of trusting a derived form.
import type { Family, Proto } from '../ir/ir.js';

export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';

export interface ServicePortSpec {
  name: string;               // '' when unnamed (only allowed for single-port services)
  protocol: Proto;
  port: number;
  targetPort: number | string; // number, or a named container port
  nodePort?: number;
}

export interface ServiceSpec {
  kind: 'Service';
  key: string;                // "namespace/name"
  namespace: string;
  name: string;
  type: ServiceType;
  headless: boolean;          // clusterIP: None — no dataplane entries
  clusterIPs: string[];       // empty for headless and ExternalName
  families: Family[];         // the cluster IPs' (ipFamilies only validated against them)
  ports: ServicePortSpec[];
  affinityTimeoutMs: number;  // 0: no session affinity
  externalIPs: string[];
  lbIngress: string[];        // status.loadBalancer.ingress[].ip (LoadBalancer only)
  sourceRanges: string[];     // loadBalancerSourceRanges, canonical CIDRs
  externalLocal: boolean;     // externalTrafficPolicy: Local
  internalLocal: boolean;     // internalTrafficPolicy: Local
  maglevSize?: number;        // wdp.io/maglev-table-size annotation
  proxyName?: string;         // label service.kubernetes.io/service-proxy-name (absent: undefined)
  headlessLabel?: true;       // label service.kubernetes.io/headless present: not programmed
  /** spec.healthCheckNodePort of a LoadBalancer with externalTrafficPolicy Local (the only
   * Services that may have one): where its health check answers (src/kube/service-health.ts).
   * Not a dataplane field: the compiler never reads it. */
  healthCheckNodePort?: number;
  /** External frontend tuples (src/compiler/claims.ts externalClaim) this Service yields to another
   * Service that claims them too: neither claimed nor served. Set by the control plane for the
   * Kubernetes watcher's objects (src/compiler/external-claims.ts), never from `raw`. */
  withheld?: ReadonlySet<string>;
  raw: Record<string, unknown>;
}

export interface EndpointSpec {
  addresses: string[];
  v4: number;                 // addresses[0] as a u32 in an IPv4 slice, else -1 (the compiler's key)
  ready: boolean;             // conditions.ready, unset = true
  serving: boolean;           // conditions.serving, unset = true (kube-proxy)
  terminating: boolean;       // conditions.terminating, unset = false
  nodeName?: string;
  zone?: string;
  zoneHints?: string[];       // hints.forZones[*].name (topology-aware routing); absent when none
  nodeHints?: string[];       // hints.forNodes[*].name (trafficDistribution PreferSameNode); absent when none
}

export interface SlicePortSpec { name: string; port?: number; protocol: Proto }

export interface SliceSpec {
  kind: 'EndpointSlice';
  key: string;                // "namespace/name"
  namespace: string;
  name: string;
  service: string | null;     // "namespace/<kubernetes.io/service-name>"; null: not attached to a service
  addressType: 'IPv4' | 'IPv6' | 'FQDN';
  endpoints: EndpointSpec[];
  /** The least and greatest endpoint address of an IPv4 slice as u32 (-1 for other slices and
   * none): a conflict check skips a slice whose range holds no cluster IP (src/model/conflicts.ts)
   * instead of looking up each of its addresses. */
  v4Low: number;
  v4High: number;
  ports: SlicePortSpec[];
  triggerTimeMs?: number;     // endpoints.kubernetes.io/last-change-trigger-time, for the programming-latency metric
  proxyName?: string;         // label service.kubernetes.io/service-proxy-name (absent: undefined)
  headlessLabel?: true;       // label service.kubernetes.io/headless present: its endpoints are not used
  raw: Record<string, unknown>;
}

export interface NeighbourSpec { address: string; family: Family; port: number; mac: string; localMac: string }
/** nextHopMac absent: not resolved yet (no next hop: the prefix drops). */
export interface RouteSpec { prefix: string; family: Family; plen: number; port: number; nextHopMac?: string; localMac: string }

export interface NodeSpec {
  kind: 'NodeConfig';
  name: string;               // node name: endpoints with this nodeName are local
  addresses: string[];        // the node's own: answered for, on the host port, SNAT/nodeIP defaults
  nodePortAddresses: string[]; // NodePort frontends are created on each (a subset of addresses)
  /** kube-proxy's node IP per family (its per-family proxier's nodeIP): the NodeConfig's nodeIPs,
   * else the first node address of the family, else 127.0.0.1 / ::1 as kube-proxy's fallback.
   * A loadBalancerSourceRange holding it also admits the service's LB IPs as sources. */
  nodeIPv4: string;
  nodeIPv6: string;
  snatV4?: string;            // masquerade source; defaults to the first IPv4 node address
  snatV6?: string;
  hairpinV4?: string;         // source of the node's own flows to a backend at a node address (itself); none by default
  hairpinV6?: string;
  neighbours: NeighbourSpec[];
  routes: RouteSpec[];        // sorted longest prefix first
  podCIDRs: string[];         // the Node's spec.podCIDRs, canonical (detectLocalMode NodeCIDR)
  clusterCIDRs: string[];     // canonical (detectLocalMode ClusterCIDR)
  detectLocalMode: 'ClusterCIDR' | 'NodeCIDR' | 'PodPort';
  podPorts: number[];         // dataplane ports of role pod (detectLocalMode PodPort), ascending
  serviceProxyName?: string;
  zone?: string;              // the node's topology.kubernetes.io/zone: picks hinted endpoints
  masqueradeAll?: true;       // kube-proxy's --masquerade-all: every new flow to a ClusterIP is masqueraded
  serviceCIDRs: string[];     // canonical; addresses in them that no service owns are dropped  // services labelled service-proxy-name with another value are not programmed
  raw: Record<string, unknown>;
}

export type ModelObject = ServiceSpec | SliceSpec | NodeSpec;

/** One rejection, shaped like a Kubernetes StatusCause plus the object it belongs to. */
export interface FieldError {
  kind: string;
  namespace?: string;
  name?: string;
  field: string;              // "spec.ports[0].port"; '' for whole-object / document errors
  reason: string;             // FieldValueInvalid | FieldValueRequired | FieldValueDuplicate | FieldValueNotSupported | ...
  message: string;            // full human line: `Service default/web: spec.ports[0].port: Invalid value: 70000: must be ...`
}

export class ValidationError extends Error {
  constructor(readonly errors: FieldError[]) {
    super(errors.length === 1 ? errors[0].message : `${errors.length} errors:\n` + errors.map((e) => '  ' + e.message).join('\n'));
    this.name = 'ValidationError';
  }
}

export function objectLabel(kind: string, namespace?: string, name?: string): string {
  if (kind === 'NodeConfig') return `NodeConfig ${name ?? '<unnamed>'}`;
  return `${kind} ${namespace ?? 'default'}/${name ?? '<unnamed>'}`;
}

export function fieldError(kind: string, namespace: string | undefined, name: string | undefined, field: string, reason: string, detail: string): FieldError {
  const where = field ? `${field}: ` : '';
  return { kind, namespace, name, field, reason, message: `${objectLabel(kind, namespace, name)}: ${where}${detail}` };
}

/** What a Service or EndpointSlice says of the labels kube-proxy's informers select on. */
export interface ProxyLabels { proxyName?: string; headlessLabel?: true }

/** Whether a proxy named `served` (the node config's serviceProxyName; none by default) takes an
 * object so labelled: kube-proxy's informers select `!service-proxy-name,!headless`, so not one
 * labelled headless, nor one naming another service proxy. The compiler (Services, slices) and
 * the healthCheckNodePort's endpoint count (src/kube/objects.ts) both decide by it. */
export function servedByProxy(o: ProxyLabels, served: string | undefined): boolean {
  return !o.headlessLabel && (o.proxyName === undefined || o.proxyName === served);
}
