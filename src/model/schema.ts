// zod schemas for the accepted input objects, and the raw → normalised conversion.
//
// Structure and types are checked by zod; rules that span fields (duplicate ports, address type vs
// address family, clusterIP vs clusterIPs) run in superRefine so that ONE pass reports every
// problem of an object with its field path. Unknown fields are pruned, as the API server prunes
// fields its schema does not know: the object stored and returned is zod's output (z.object strips
// unknown keys), and the fast path takes only objects without unknown keys (anything else goes
// through zod). Nesting depth and size were bounded before (src/model/limits.ts).
import { z } from 'zod';
import { isIP, unsloppy } from './sloppy-ip.js';
import { cidrNetwork, formatAddr, ipv4Value, parseAddr, parseCidr, parseMac } from '../util/addr.js';
import { MAGLEV_SIZES } from '../ir/maglev-size.js';
import { notOneHostProblem } from './host-address.js';
import { DNS1123_LABEL, DNS1123_LABEL_MSG, DNS1123_SUBDOMAIN, DNS1123_SUBDOMAIN_MSG } from './dns-names.js';
import type { Family, Proto } from '../ir/ir.js';
import {
  fieldError, ValidationError, type FieldError, type ModelObject, type NodeSpec, type ServiceSpec,
  type SliceSpec, type EndpointSpec, type RouteSpec, type NeighbourSpec, type ServicePortSpec, type SlicePortSpec,
  type ProxyLabels,
} from './types.js';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
export const MAGLEV_SIZE_ANNOTATION = 'wdp.io/maglev-table-size';
/** kube-proxy's labels for Services another proxy serves (or none does): see compiler.ts serves(). */
export const SERVICE_PROXY_NAME_LABEL = 'service.kubernetes.io/service-proxy-name';
export const HEADLESS_LABEL = 'service.kubernetes.io/headless';
export const TRIGGER_TIME_ANNOTATION = 'endpoints.kubernetes.io/last-change-trigger-time';
export const NODE_CONFIG_API_VERSION = 'wdp.io/v1alpha1';
export const DEFAULT_AFFINITY_TIMEOUT_S = 10800;
const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'] as const;
/** How many service CIDRs a NodeConfig holds (each is a route of the core's). */
export const MAX_SERVICE_CIDRS = 16;

// Kubernetes object names: DNS subdomain (<= 253, lowercase alphanumerics, '-' and '.').
const DNS_SUBDOMAIN = DNS1123_SUBDOMAIN;
const DNS_LABEL = DNS1123_LABEL;
// IANA_SVC_NAME: <= 15 chars, lowercase alphanumerics and '-', at least one letter, no '--'.
const SVC_PORT_NAME = /^(?=.*[a-z])[a-z0-9]([a-z0-9]|-(?!-))*[a-z0-9]$|^[a-z]$/;

type Ctx = z.core.$RefinementCtx;
// Cross-field checks also run when the structure had errors (zod skips them by default), so one
// response lists every problem of an object. They may then see wrongly-typed values: an exception
// there only means "already reported by the structural check".
const ALWAYS = { when: () => true };
function tolerant<T>(fn: (v: T, ctx: Ctx) => void): (v: T, ctx: Ctx) => void {
  return (v, ctx) => { try { fn(v, ctx); } catch { /* structural issue already reported */ } };
}
function issue(ctx: Ctx, path: (string | number)[], reason: string, message: string, input?: unknown): void {
  ctx.addIssue({ code: 'custom', path, message, input, params: { reason } });
}

const portNumber = z.number().int().min(1, 'must be between 1 and 65535, inclusive').max(65535, 'must be between 1 and 65535, inclusive');
const protocol = z.enum(['TCP', 'UDP', 'SCTP']);
const str = z.string();
const strMap = z.record(z.string(), z.string());

/** Kubernetes' limit on the total size of an object's annotations (keys and values). */
export const MAX_ANNOTATION_BYTES = 256 * 1024;
function annotationBytes(a: Record<string, unknown> | null | undefined): number {
  let n = 0;
  if (a) for (const k in a) { const v = a[k]; n += k.length + (typeof v === 'string' ? v.length : 0); }
  return n;
}

const metadata = z.object({
  name: str.max(253, 'must be no more than 253 characters').regex(DNS_SUBDOMAIN, DNS1123_SUBDOMAIN_MSG),
  namespace: str.max(63, 'must be no more than 63 characters').regex(DNS_LABEL, DNS1123_LABEL_MSG).nullish(),
  labels: strMap.nullish(),
  annotations: strMap.nullish().refine((a) => annotationBytes(a) <= MAX_ANNOTATION_BYTES,
    { message: `Too long: may not be more than ${MAX_ANNOTATION_BYTES} bytes`, params: { reason: 'FieldValueTooLong' } }),
  // kept as given (the API server's bookkeeping, useful to whoever mirrors it); everything else of
  // ObjectMeta (managedFields, ownerReferences, ...) is pruned
  uid: str.max(128).nullish(),
  resourceVersion: str.max(128).nullish(),
  generation: z.number().int().nullish(),
  creationTimestamp: str.max(64).nullish(),
});
/** The metadata keys kept; the fast path hands objects with any other key to zod (which prunes). */
const METADATA_KEYS = new Set(['name', 'namespace', 'labels', 'annotations', 'uid', 'resourceVersion', 'generation', 'creationTimestamp']);

/** An IP address as Kubernetes writes one: no IPv6 zone ("fe80::1%eth0" names an interface of
 * some host; node's isIP accepts it, and the zone would be silently dropped). */
export function isPlainIP(s: string): number { return ipv4Value(s) >= 0 ? 4 : s.includes('%') ? 0 : isIP(s); }
const IP_MESSAGE = 'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)';
const ipAddress = str.refine((s) => isPlainIP(s) !== 0, { message: IP_MESSAGE, params: { reason: 'FieldValueInvalid' } });
/** Why `s` (an address of either family, no zone) may not be a service address, or null: traffic
 * to it would be taken from the node itself, every host, or a link. */
export function specialAddressProblem(given: string): string | null {
  // (a canonical dotted quad, most addresses, is its own canonical form: no unsloppy pass)
  let v4 = ipv4Value(given);
  const s = v4 >= 0 ? given : unsloppy(given);
  if (v4 < 0) v4 = ipv4Value(s);
  const a = v4 >= 0 ? null : parseAddr(s);
  if (v4 >= 0 || a?.family === 4) {
    const v = v4 >= 0 ? v4 : ((a!.bytes[0] << 24) | (a!.bytes[1] << 16) | (a!.bytes[2] << 8) | a!.bytes[3]) >>> 0;
    const top = v >>> 24;
    if (v === 0) return 'may not be unspecified (0.0.0.0)';
    if (v === 0xffffffff) return 'may not be the broadcast address (255.255.255.255)';
    if (top === 127) return 'may not be in the loopback range (127.0.0.0/8)';
    if (top >= 224 && top <= 239) return 'may not be a multicast address (224.0.0.0/4)';
    if (top >= 240) return 'may not be in the reserved range (240.0.0.0/4)';
    if ((v >>> 16) === 0xa9fe) return 'may not be in the link-local range (169.254.0.0/16)';
    if (top === 0) return 'may not be in 0.0.0.0/8 ("this network")';
    return null;
  }
  const b = a!.bytes;
  if (b.every((x) => x === 0)) return 'may not be unspecified (::)';
  if (b.subarray(0, 15).every((x) => x === 0) && b[15] === 1) return 'may not be the loopback address (::1)';
  if (b[0] === 0xff) return 'may not be a multicast address (ff00::/8)';
  if (b[0] === 0xfe && (b[1] & 0xc0) === 0x80) return 'may not be in the link-local range (fe80::/10)';
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return 'may not be an IPv4-mapped address (::ffff:0:0/96)';
  return null;
}
const serviceAddress = ipAddress.superRefine((s, ctx) => {
  const why = isPlainIP(s) ? specialAddressProblem(s) : null;
  if (why) ctx.addIssue({ code: 'custom', message: `Invalid value: ${JSON.stringify(s)}: ${why}`, input: s, params: { reason: 'FieldValueInvalid' } });
});
/** The CIDR's problem, or null: a valid prefix without host bits set ("10.0.0.1/8" is refused:
 * was 10.0.0.0/8 meant, or the host 10.0.0.1/32?). */
function cidrProblem(s: string): string | null {
  let c;
  try { c = parseCidr(unsloppy(s)); } catch { return 'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)'; }
  if (!s.includes('/') || s.includes('%')) return 'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)';
  const clean = canonCidr(s);
  if (clean !== `${canon(s.slice(0, s.indexOf('/')))}/${c.plen}`) return `must not have host bits set: did you mean ${clean}?`;
  return null;
}
const cidr = str.superRefine((s, ctx) => {
  const why = cidrProblem(s);
  if (why) ctx.addIssue({ code: 'custom', message: why, input: s, params: { reason: 'FieldValueInvalid' } });
});
/** A Service's loadBalancerSourceRanges entry as the API server takes it, and kube-proxy reads it
 * (serviceport.go: TrimSpace, then ParseCIDRSloppy): padded with spaces (a historical accident the
 * API server still accepts) and with host bits set ("10.1.2.3/8" is 10.0.0.0/8). Refusing either
 * would leave the whole Service unprogrammed where kube-proxy serves it. canonSourceRange reads it. */
const sourceRange = str.superRefine((s, ctx) => {
  const t = s.trim();
  let ok = t.includes('/') && !t.includes('%');
  if (ok) { try { parseCidr(unsloppy(t)); } catch { ok = false; } }
  if (!ok) ctx.addIssue({ code: 'custom', message: 'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)', input: s, params: { reason: 'FieldValueInvalid' } });
});
const canonSourceRange = (s: string): string => canonCidr(s.trim());
const mac = str.refine((s) => { try { parseMac(s); return true; } catch { return false; } },
  { message: 'must be a MAC address like 02:00:00:00:00:01', params: { reason: 'FieldValueInvalid' } });

const servicePort = z.object({
  name: str.nullish(),
  protocol: protocol.nullish(),
  port: portNumber,
  targetPort: z.union([z.number(), z.string()]).nullish(),
  nodePort: portNumber.nullish(),
});

const serviceSchema = z.object({
  apiVersion: z.literal('v1'),
  kind: z.literal('Service'),
  metadata,
  spec: z.object({
    type: z.enum(SERVICE_TYPES).nullish(),
    clusterIP: str.nullish(),
    clusterIPs: z.array(str).max(2, 'must have at most two entries (one per family)').nullish(),
    ipFamilies: z.array(z.enum(['IPv4', 'IPv6'])).max(2, 'must have at most two entries').nullish(),
    ipFamilyPolicy: z.enum(['SingleStack', 'PreferDualStack', 'RequireDualStack']).nullish(),
    ports: z.array(servicePort).nullish(),
    sessionAffinity: z.enum(['None', 'ClientIP']).nullish(),
    sessionAffinityConfig: z.object({
      clientIP: z.object({
        timeoutSeconds: z.number().int().min(1, 'must be greater than 0 and less than 86400').max(86400, 'must be greater than 0 and less than 86400').nullish(),
      }).nullish(),
    }).nullish(),
    externalIPs: z.array(serviceAddress).nullish(),
    loadBalancerSourceRanges: z.array(sourceRange).nullish(),
    externalTrafficPolicy: z.enum(['Cluster', 'Local']).nullish(),
    internalTrafficPolicy: z.enum(['Cluster', 'Local']).nullish(),
    externalName: str.nullish(),
    // (0 is "not set", as the API server's int32 field reads it)
    healthCheckNodePort: z.union([z.literal(0), portNumber]).nullish(),
  }),
  status: z.object({
    loadBalancer: z.object({
      ingress: z.array(z.object({ ip: serviceAddress.nullish(), hostname: str.nullish(), ipMode: z.enum(['VIP', 'Proxy']).nullish() })).nullish(),
    }).nullish(),
  }).nullish(),
}).superRefine(tolerant((svc, ctx) => {
  const s = svc.spec;
  const type = s.type ?? 'ClusterIP';
  // (a type of another kind is refused by the schema; the checks below that depend on it are skipped)
  const typeKnown = (SERVICE_TYPES as readonly unknown[]).includes(type);
  const ports = s.ports ?? [];
  const headless = s.clusterIP === 'None' || (s.clusterIPs?.[0] === 'None');
  if (type === 'ExternalName') {
    if (!s.externalName) issue(ctx, ['spec', 'externalName'], 'FieldValueRequired', 'Required value');
  } else {
    // cluster IPs: wdp does not allocate them (it is not an API server), so they must be given
    const ips = s.clusterIPs ?? (s.clusterIP ? [s.clusterIP] : []);
    if (headless) {
      if (type !== 'ClusterIP') issue(ctx, ['spec', 'type'], 'FieldValueInvalid', `Invalid value: ${JSON.stringify(type)}: may not be set when clusterIP is None`);
    } else {
      if (!ips.length) issue(ctx, ['spec', 'clusterIP'], 'FieldValueRequired', 'Required value: wdp does not allocate cluster IPs; set spec.clusterIP (or clusterIPs)');
      ips.forEach((ip, i) => {
        const why = isPlainIP(ip) === 0 ? IP_MESSAGE : specialAddressProblem(ip);
        if (why) issue(ctx, ['spec', s.clusterIPs ? 'clusterIPs' : 'clusterIP', ...(s.clusterIPs ? [i] : [])], 'FieldValueInvalid', `Invalid value: ${JSON.stringify(ip)}: ${why}`);
      });
      if (s.clusterIP && s.clusterIPs?.length && s.clusterIP !== s.clusterIPs[0]) issue(ctx, ['spec', 'clusterIPs'], 'FieldValueInvalid', `Invalid value: ${JSON.stringify(s.clusterIPs)}: element [0] must match clusterIP`);
      if (ips.length === 2 && isIP(ips[0]) !== 0 && isIP(ips[0]) === isIP(ips[1])) issue(ctx, ['spec', 'clusterIPs', 1], 'FieldValueInvalid', `Invalid value: ${JSON.stringify(ips[1])}: may specify no more than one IP for each IP family`);
      if (s.ipFamilies) {
        s.ipFamilies.forEach((f, i) => {
          const ip = ips[i];
          if (ip && isIP(ip) !== 0 && `IPv${isIP(ip)}` !== f) issue(ctx, ['spec', 'ipFamilies', i], 'FieldValueInvalid', `Invalid value: ${JSON.stringify(f)}: does not match the family of clusterIPs[${i}] (${ip})`);
        });
        if (s.ipFamilies.length === 2 && s.ipFamilies[0] === s.ipFamilies[1]) issue(ctx, ['spec', 'ipFamilies', 1], 'FieldValueDuplicate', `Duplicate value: ${JSON.stringify(s.ipFamilies[1])}`);
      }
      const policyProblem = ipFamilyPolicyProblem(s.ipFamilyPolicy, ips.length)
        // (the API server's allocator refuses two ipFamilies under SingleStack as it refuses two clusterIPs)
        || (s.ipFamilyPolicy === 'SingleStack' && (s.ipFamilies?.length ?? 0) > 1 ? 'must be RequireDualStack or PreferDualStack when multiple \'ipFamilies\' are specified' : '');
      if (policyProblem) issue(ctx, ['spec', 'ipFamilyPolicy'], 'FieldValueInvalid', `Invalid value: ${JSON.stringify(s.ipFamilyPolicy)}: ${policyProblem}`);
    }
    if (!ports.length && !headless) issue(ctx, ['spec', 'ports'], 'FieldValueRequired', 'Required value');
  }
  const names = new Map<string, number>();
  const portProto = new Map<string, number>();
  const nodePorts = new Map<string, number>();
  ports.forEach((p, i) => {
    if (typeof p !== 'object' || p === null) return; // (refused by the schema on its own)
    const name = p.name ?? '';
    if (ports.length > 1 && !name) issue(ctx, ['spec', 'ports', i, 'name'], 'FieldValueRequired', 'Required value: name is required when a service has more than one port');
    if (name && !(name.length <= 63 && DNS_LABEL.test(name))) issue(ctx, ['spec', 'ports', i, 'name'], 'FieldValueInvalid', `Invalid value: ${JSON.stringify(name)}: must be a lowercase RFC 1123 label`);
    if (name) {
      if (names.has(name)) issue(ctx, ['spec', 'ports', i, 'name'], 'FieldValueDuplicate', `Duplicate value: ${JSON.stringify(name)}`);
      names.set(name, i);
    }
    const pp = `${p.port}/${p.protocol ?? 'TCP'}`;
    if (typeof p.port === 'number') {
      if (portProto.has(pp)) issue(ctx, ['spec', 'ports', i], 'FieldValueDuplicate', `Duplicate value: {"port":${p.port},"protocol":${shown(p.protocol ?? 'TCP')}}`);
      portProto.set(pp, i);
    }
    const tp = p.targetPort;
    if (typeof tp === 'number') {
      if (!Number.isInteger(tp) || tp < 1 || tp > 65535) issue(ctx, ['spec', 'ports', i, 'targetPort'], 'FieldValueInvalid', `Invalid value: ${shown(tp)}: must be between 1 and 65535, inclusive`);
    } else if (typeof tp === 'string') {
      if (!(tp.length <= 15 && SVC_PORT_NAME.test(tp))) issue(ctx, ['spec', 'ports', i, 'targetPort'], 'FieldValueInvalid', `Invalid value: ${JSON.stringify(tp)}: must be a port number or an IANA_SVC_NAME (at most 15 lowercase alphanumerics or '-', with at least one letter)`);
    }
    if (p.nodePort != null) {
      if (typeKnown && type !== 'NodePort' && type !== 'LoadBalancer') issue(ctx, ['spec', 'ports', i, 'nodePort'], 'FieldValueForbidden', `Forbidden: may not be used when \`type\` is '${type}'`);
      const np = `${p.nodePort}/${p.protocol ?? 'TCP'}`;
      if (typeof p.nodePort === 'number') {
        if (nodePorts.has(np)) issue(ctx, ['spec', 'ports', i, 'nodePort'], 'FieldValueDuplicate', `Duplicate value: ${p.nodePort}`);
        nodePorts.set(np, i);
      }
    } else if (type === 'NodePort') {
      issue(ctx, ['spec', 'ports', i, 'nodePort'], 'FieldValueRequired', 'Required value: wdp does not allocate node ports; set spec.ports[].nodePort');
    }
  });
  const seenExt = new Set<string>();
  (s.externalIPs ?? []).forEach((ip, i) => {
    if (seenExt.has(ip)) issue(ctx, ['spec', 'externalIPs', i], 'FieldValueDuplicate', `Duplicate value: ${JSON.stringify(ip)}`);
    seenExt.add(ip);
  });
  if (s.loadBalancerSourceRanges?.length && type !== 'LoadBalancer' && !(s.externalIPs?.length))
    issue(ctx, ['spec', 'loadBalancerSourceRanges'], 'FieldValueForbidden', 'Forbidden: may only be used when `type` is \'LoadBalancer\' or externalIPs are set');
  if (s.externalTrafficPolicy && type !== 'NodePort' && type !== 'LoadBalancer' && !(s.externalIPs?.length))
    issue(ctx, ['spec', 'externalTrafficPolicy'], 'FieldValueInvalid', `Invalid value: ${JSON.stringify(s.externalTrafficPolicy)}: may only be set for externally-accessible services`);
  // (the API server allocates one for every such Service; wdp allocates nothing, so it is not required)
  if (s.healthCheckNodePort && !(type === 'LoadBalancer' && s.externalTrafficPolicy === 'Local'))
    issue(ctx, ['spec', 'healthCheckNodePort'], 'FieldValueInvalid', `Invalid value: ${shown(s.healthCheckNodePort)}: may only be set when \`type\` is 'LoadBalancer' and \`externalTrafficPolicy\` is 'Local'`);
  const ann = svc.metadata.annotations?.[MAGLEV_SIZE_ANNOTATION];
  if (ann !== undefined && !MAGLEV_SIZES.includes(Number(ann)))
    issue(ctx, ['metadata', 'annotations', MAGLEV_SIZE_ANNOTATION], 'FieldValueNotSupported', `Unsupported value: ${JSON.stringify(ann)}: supported values: ${MAGLEV_SIZES.map((m) => `"${m}"`).join(', ')}`);
}), ALWAYS);

const endpointSliceSchema = z.object({
  apiVersion: z.literal('discovery.k8s.io/v1'),
  kind: z.literal('EndpointSlice'),
  metadata,
  addressType: z.enum(['IPv4', 'IPv6', 'FQDN']),
  endpoints: z.array(z.object({
    addresses: z.array(str).min(1, 'must contain at least one address').max(100, 'must have at most 100 items'),
    conditions: z.object({ ready: z.boolean().nullish(), serving: z.boolean().nullish(), terminating: z.boolean().nullish() }).nullish(),
    hostname: str.max(63, 'must be no more than 63 characters').regex(DNS_LABEL, 'must be a lowercase RFC 1123 label').nullish(),
    nodeName: str.nullish(),
    zone: str.nullish(),
    // topology-aware routing's hints: zones, and nodes (trafficDistribution PreferSameNode). A
    // zone name is a label value, which may be empty (the API server's validateHints:
    // IsValidLabelValue): an endpoint hinted "" has zone hints and matches no node's zone
    // (NodeConfig zones are never empty); node names may not be
    hints: z.object({
      forZones: z.array(z.object({ name: str })).max(8, 'must have at most 8 items').nullish(),
      forNodes: z.array(z.object({ name: str.min(1, 'Required value') })).max(8, 'must have at most 8 items').nullish(),
    }).nullish(),
  })).max(1000, 'must have at most 1000 items').nullish(),
  ports: z.array(z.object({ name: str.nullish(), port: portNumber.nullish(), protocol: protocol.nullish() })).max(100, 'must have at most 100 items').nullish(),
}).superRefine(tolerant((es, ctx) => {
  const want = es.addressType === 'IPv4' ? 4 : es.addressType === 'IPv6' ? 6 : 0;
  (es.endpoints ?? []).forEach((ep, i) => ep.addresses.forEach((a, j) => {
    if (want && isPlainIP(a) !== want) issue(ctx, ['endpoints', i, 'addresses', j], 'FieldValueInvalid', `Invalid value: ${JSON.stringify(a)}: must be a valid ${es.addressType} address${a.includes('%') ? ' (without a zone)' : ''}`);
  }));
  const names = new Set<string>();
  (es.ports ?? []).forEach((p, i) => {
    const n = p.name ?? '';
    if (n && !(n.length <= 63 && DNS_LABEL.test(n))) issue(ctx, ['ports', i, 'name'], 'FieldValueInvalid', `Invalid value: ${JSON.stringify(n)}: must be a lowercase RFC 1123 label`);
    if (names.has(n)) issue(ctx, ['ports', i, 'name'], 'FieldValueDuplicate', `Duplicate value: ${JSON.stringify(n)}`);
    names.add(n);
  });
  const trig = es.metadata.annotations?.[TRIGGER_TIME_ANNOTATION];
  if (trig !== undefined && Number.isNaN(Date.parse(trig)))
    issue(ctx, ['metadata', 'annotations', TRIGGER_TIME_ANNOTATION], 'FieldValueInvalid', `Invalid value: ${JSON.stringify(trig)}: must be an RFC 3339 timestamp`);
}), ALWAYS);

const nodeConfigSchema = z.object({
  apiVersion: z.literal(NODE_CONFIG_API_VERSION),
  kind: z.literal('NodeConfig'),
  // (annotations: a daemon's records the names NodeConfigs were applied to it as, applied-as.ts)
  metadata: z.object({ name: str.regex(DNS_SUBDOMAIN, 'must be a lowercase RFC 1123 subdomain'), annotations: metadata.shape.annotations }),
  spec: z.object({
    nodeName: str.min(1).nullish(),
    nodeAddresses: z.array(ipAddress).nullish(),
    // the node addresses NodePorts are served on (kube-proxy's --nodeport-addresses as applied to
    // this node); each one of nodeAddresses. Unset: all of them. The node addresses it leaves out
    // are still the node's (answered for, on the host port, never a Service's)
    nodePortAddresses: z.array(ipAddress).nullish(),
    // kube-proxy's node IP per family (the Node's primary IPs, or --bind-address): a
    // loadBalancerSourceRange holding it admits the LB IPs as sources too. Default: the first
    // node address of each family
    nodeIPs: z.array(ipAddress).max(2, 'must have at most 2 items').nullish(),
    masquerade: z.object({ ipv4: ipAddress.nullish(), ipv6: ipAddress.nullish() }).nullish(),
    // the source address the node's own connections get when a Service sends them back to the
    // node itself (a backend at the masquerade address): routed to the host port, never local
    hairpin: z.object({ ipv4: ipAddress.nullish(), ipv6: ipAddress.nullish() }).nullish(),
    neighbours: z.array(z.object({ address: ipAddress, port: z.number().int().min(0).max(65534), mac, localMac: mac })).nullish(),
    // nextHopMac absent: the next hop is not resolved yet (the daemon's routes `via` an address
    // before ARP/ND has answered): the prefix drops (drop_no_route), backends behind it have no next hop
    routes: z.array(z.object({ prefix: cidr, port: z.number().int().min(0).max(65534), nextHopMac: mac.nullish(), localMac: mac })).nullish(),
    // local-traffic detection (kube-proxy's detectLocalMode): the node's pod CIDRs (from its Node
    // object) and the cluster's; sources in them (and the node's own addresses) are not subject to
    // externalTrafficPolicy Local (src/compiler/next-hops.ts localSources)
    podCIDRs: z.array(cidr).nullish(),
    clusterCIDRs: z.array(cidr).nullish(),
    detectLocalMode: z.enum(['ClusterCIDR', 'NodeCIDR', 'PodPort']).nullish(),
    // the dataplane ports pods are attached to (role pod; the daemon fills it): detectLocalMode
    // PodPort takes what arrives on them for pod traffic, like kube-proxy's interface-based modes
    podPorts: z.array(z.number().int().min(0).max(65534)).max(4096, 'must have at most 4096 items').nullish(),
    // the value of the service.kubernetes.io/service-proxy-name label this node serves (kube-proxy
    // serves only unlabelled services; unset here means the same)
    serviceProxyName: str.min(1).max(63).nullish(),
    // the node's zone (its topology.kubernetes.io/zone label): endpoints hinted for it are
    // preferred when every ready endpoint has zone hints (topology-aware routing)
    zone: str.min(1).max(63).nullish(),
    // the cluster's service CIDRs (kube-apiserver --service-cluster-ip-range): traffic to an
    // address in them that no Service owns is dropped instead of leaking to the default route
    serviceCIDRs: z.array(cidr).max(MAX_SERVICE_CIDRS, `must have at most ${MAX_SERVICE_CIDRS} items`).nullish(),
    // kube-proxy's --masquerade-all: every new flow to a ClusterIP is masqueraded (pods' too)
    masqueradeAll: z.boolean().nullish(),
  }),
}).superRefine(tolerant((n, ctx) => {
  const m = n.spec.masquerade;
  if (m?.ipv4 && isIP(m.ipv4) !== 4) issue(ctx, ['spec', 'masquerade', 'ipv4'], 'FieldValueInvalid', `Invalid value: ${JSON.stringify(m.ipv4)}: must be an IPv4 address`);
  if (m?.ipv6 && isIP(m.ipv6) !== 6) issue(ctx, ['spec', 'masquerade', 'ipv6'], 'FieldValueInvalid', `Invalid value: ${JSON.stringify(m.ipv6)}: must be an IPv6 address`);
  // the source masqueraded flows leave with: 0.0.0.0 or a multicast source is dropped by every peer
  for (const k of ['ipv4', 'ipv6'] as const) {
    const why = m?.[k] ? notOneHostProblem(m[k]!) : null;
    if (why) issue(ctx, ['spec', 'masquerade', k], 'FieldValueInvalid', `Invalid value: ${JSON.stringify(m![k])}: ${why}`);
  }
  const h = n.spec.hairpin;
  for (const [k, fam] of [['ipv4', 4], ['ipv6', 6]] as const) {
    const a = h?.[k];
    if (!a) continue;
    if (isIP(a) !== fam) { issue(ctx, ['spec', 'hairpin', k], 'FieldValueInvalid', `Invalid value: ${JSON.stringify(a)}: must be an IPv${fam} address`); continue; }
    // the node answering itself is exactly what the hairpin address avoids
    const own = [...(n.spec.nodeAddresses ?? []), m?.[k] ?? ''].filter((x) => x && isIP(x) === fam).map(canon);
    if (own.includes(canon(a))) issue(ctx, ['spec', 'hairpin', k], 'FieldValueInvalid', `Invalid value: ${JSON.stringify(a)}: must not be a node or masquerade address`);
  }
  const nodeAddrs = new Set((n.spec.nodeAddresses ?? []).filter((x) => isIP(x) !== 0).map(canon));
  (n.spec.nodePortAddresses ?? []).forEach((a, i) => {
    if (isIP(a) !== 0 && !nodeAddrs.has(canon(a))) issue(ctx, ['spec', 'nodePortAddresses', i], 'FieldValueInvalid', `Invalid value: ${JSON.stringify(a)}: must be one of spec.nodeAddresses`);
  });
  const ipFamilies = new Set<number>();
  (n.spec.nodeIPs ?? []).forEach((a, i) => {
    const fam = isIP(a);
    if (fam !== 0 && ipFamilies.has(fam)) issue(ctx, ['spec', 'nodeIPs', i], 'FieldValueInvalid', `Invalid value: ${JSON.stringify(a)}: may have at most one IP of each family`);
    ipFamilies.add(fam);
  });
  const seen = new Set<string>();
  (n.spec.neighbours ?? []).forEach((nb, i) => {
    if (isIP(nb.address) === 0) return;
    const k = canon(nb.address);
    if (seen.has(k)) issue(ctx, ['spec', 'neighbours', i, 'address'], 'FieldValueDuplicate', `Duplicate value: ${JSON.stringify(nb.address)}`);
    seen.add(k);
  });
  const seenR = new Set<string>();
  (n.spec.routes ?? []).forEach((r, i) => {
    let k: string; try { k = canonCidr(r.prefix); } catch { return; }
    if (seenR.has(k)) issue(ctx, ['spec', 'routes', i, 'prefix'], 'FieldValueDuplicate', `Duplicate value: ${JSON.stringify(r.prefix)}`);
    seenR.add(k);
  });
}), ALWAYS);

export function canon(ip: string): string {
  if (ipv4Value(ip) >= 0) return ip; // a canonical dotted quad (most addresses): one pass, no regex
  // IPv4 (validated already): only leading zeros can differ from the canonical form
  // (Number("011") is 11: decimal, as Kubernetes' ParseIPSloppy reads it — see sloppy-ip.ts)
  if (!ip.includes(':')) return /(^|\.)0\d/.test(ip) ? ip.split('.').map(Number).join('.') : ip;
  const a = parseAddr(ip);
  return formatAddr(a.bytes, a.family);
}

/** The addresses in canonical form: the same array when they already are (the common case: the
 * model then shares it with the object it came from, and never changes either), else a copy.
 * A new array per endpoint was ~4 MB of a 100k-endpoint sync, kept for the model's lifetime. */
export function canonList(ips: string[]): string[] {
  for (let i = 0; i < ips.length; i++) if (canon(ips[i]) !== ips[i]) return packed(ips, canon);
  return ips;
}

/** xs.map(f) by a loop of pushes: always a PACKED array. Array.prototype.map's result is PACKED
 * while its caller runs unoptimised and HOLEY once TurboFan inlined it (from ~service 3,900 of a
 * 10k sync): the compiler's optimised code then meets the model's arrays in a second shape and
 * deoptimises (docs/performance.md, "Full sync"). */
function packed<T, U>(xs: readonly T[], f: (x: T) => U): U[] {
  // one or two items (most of the model's lists: a Service's cluster IPs, families and ports, a
  // slice's ports) as a literal of exactly that length: pushes grow an empty array's store to 17
  // slots, ~130 bytes unused per short list, ~5 MB of a 10k sync's model that every GC copies
  const n = xs.length;
  if (n === 1) return [f(xs[0])];
  if (n === 2) return [f(xs[0]), f(xs[1])];
  const out: U[] = [];
  for (let i = 0; i < n; i++) out.push(f(xs[i]));
  return out;
}

/** Canonical CIDR text with host bits cleared, e.g. "10.0.1.7/24" -> "10.0.1.0/24". */
export function canonCidr(s: string): string {
  return cidrNetwork(parseCidr(unsloppy(s)));
}

function familyOf(ip: string): Family { return ipv4Value(ip) < 0 && isIP(ip) === 6 ? 6 : 4; }
function isObject(x: unknown): x is Record<string, unknown> { return typeof x === 'object' && x !== null && !Array.isArray(x); }

function pathText(path: PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (typeof p === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(p)) out += (out ? '.' : '') + p;
    else out += `[${JSON.stringify(String(p))}]`;
  }
  return out;
}

function shown(v: unknown): string {
  // (JSON writes Infinity and NaN, which YAML's .inf and .nan give, as null)
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? s.slice(0, 77) + '...' : s;
}

function issueToError(kind: string, ns: string | undefined, name: string | undefined, is: z.core.$ZodIssue): FieldError {
  const field = pathText(is.path);
  const reasonParam = (is as { params?: { reason?: string } }).params?.reason;
  const input = (is as { input?: unknown }).input;
  if (is.code === 'custom' && reasonParam) {
    // our own checks write the full "Invalid value: x: why" text; refine() checks write only the why
    const own = /^(Invalid value|Required value|Duplicate value|Unsupported value|Forbidden)/.test(is.message);
    return fieldError(kind, ns, name, field, reasonParam, own ? is.message : `Invalid value: ${shown(input)}: ${is.message}`);
  }
  if (is.code === 'invalid_type' && input === undefined) return fieldError(kind, ns, name, field, 'FieldValueRequired', 'Required value');
  if (is.code === 'invalid_value') {
    const vals = ((is as { values?: unknown[] }).values ?? []).map((v) => JSON.stringify(v)).join(', ');
    if (input === undefined) return fieldError(kind, ns, name, field, 'FieldValueRequired', `Required value: supported values: ${vals}`);
    return fieldError(kind, ns, name, field, 'FieldValueNotSupported', `Unsupported value: ${shown(input)}: supported values: ${vals}`);
  }
  if (is.code === 'invalid_type') return fieldError(kind, ns, name, field, 'FieldValueTypeInvalid', `Invalid value: ${shown(input)}: ${is.message.replace(/^Invalid input: /, '')}`);
  return fieldError(kind, ns, name, field, 'FieldValueInvalid', `Invalid value: ${shown(input)}: ${is.message}`);
}

/** Identity of a raw object as far as it can be read, for error messages. */
export function identify(raw: unknown): { kind: string; namespace?: string; name?: string } {
  if (!isObject(raw)) return { kind: '<not an object>' };
  const md = isObject(raw.metadata) ? raw.metadata : {};
  const kind = typeof raw.kind === 'string' ? raw.kind : '<no kind>';
  const name = typeof md.name === 'string' ? md.name : undefined;
  const namespace = kind === 'NodeConfig' ? undefined : (typeof md.namespace === 'string' && md.namespace ? md.namespace : 'default');
  return { kind, namespace, name };
}

export const SUPPORTED_KINDS = ['Service', 'EndpointSlice', 'NodeConfig'];

/** validateObject's verdict on one object. */
export type Validated = { ok: true; obj: ModelObject } | { ok: false; errors: FieldError[] };

/** Validates one raw object; returns the normalised model object or every error found in it. */
export function validateObject(raw: unknown, fastPath = true): Validated {
  keysRead = 0;
  // the common well-formed shapes skip zod (a zod parse per object was ~30 µs: most of a 20k-object
  // apply); anything the fast check is not sure about — including every invalid object — goes
  // through zod, so error messages come from one place
  if (fastPath && isObject(raw)) {
    if (raw.kind === 'Service') {
      const fast = fastService(raw);
      if (fast) return { ok: true, obj: normService(fast as z.infer<typeof serviceSchema>, fast) };
    } else if (raw.kind === 'EndpointSlice') {
      const endpoints: EndpointSpec[] = []; // (the model's endpoints, made as fastSlice checks them)
      const fast = fastSlice(raw, endpoints);
      if (fast) return { ok: true, obj: normSlice(fast as z.infer<typeof endpointSliceSchema>, fast, endpoints) };
    }
  }
  const id = identify(raw);
  if (!isObject(raw)) return { ok: false, errors: [fieldError(id.kind, undefined, undefined, '', 'FieldValueTypeInvalid', `Invalid value: ${shown(raw)}: an object is expected`)] };
  const schema = id.kind === 'Service' ? serviceSchema : id.kind === 'EndpointSlice' ? endpointSliceSchema : id.kind === 'NodeConfig' ? nodeConfigSchema : null;
  if (!schema) {
    const supported = `supported values: ${SUPPORTED_KINDS.map((k) => JSON.stringify(k)).join(', ')}`;
    return { ok: false, errors: [raw.kind === undefined
      ? fieldError(id.kind, id.namespace, id.name, 'kind', 'FieldValueRequired', `Required value: ${supported}`)
      : fieldError(id.kind, id.namespace, id.name, 'kind', 'FieldValueNotSupported', `Unsupported value: ${shown(raw.kind)}: ${supported}`)] };
  }
  const r = schema.safeParse(raw, { reportInput: true });
  if (!r.success) return { ok: false, errors: r.error.issues.map((is) => issueToError(id.kind, id.namespace, id.name, is)) };
  // zod's output is the object without the fields the schema does not know: what is stored and shown
  const pruned = r.data as Record<string, unknown>;
  if (id.kind === 'Service') return { ok: true, obj: normService(r.data as z.infer<typeof serviceSchema>, pruned) };
  if (id.kind === 'EndpointSlice') return { ok: true, obj: normSlice(r.data as z.infer<typeof endpointSliceSchema>, pruned) };
  return { ok: true, obj: normNode(r.data as z.infer<typeof nodeConfigSchema>, pruned) };
}

// ---- fast path ----------------------------------------------------------------------------------
// Each check returns the raw object itself (normService/normSlice read only schema fields, and
// treat null like absent exactly as they treat zod's output) when it is CERTAIN that the zod schema
// and its superRefine would accept it; otherwise null. It covers ClusterIP services with plain
// ports — or NodePort and LoadBalancer ones, with node ports, traffic policies, a
// healthCheckNodePort and a load balancer status — and IPv4/IPv6 slices; every other feature
// (external IPs, source ranges, affinity, ipFamilies, headless, FQDN, ...) and every doubt falls
// back to zod.

const absent = (v: unknown): boolean => v === undefined || v === null;
const optString = (v: unknown): boolean => v === undefined || v === null || typeof v === 'string';
const optBool = (v: unknown): boolean => v === undefined || v === null || typeof v === 'boolean';
const isPort = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535;
const isProto = (v: unknown): boolean => v === 'TCP' || v === 'UDP' || v === 'SCTP';

function shortString(v: unknown, max: number): boolean { return absent(v) || (typeof v === 'string' && v.length <= max); }

/** Keys the fast path has read in the object being validated (validateObject resets it): each
 * check below that reads an object's keys counts them. An object the fast path accepts as it is
 * has had every key of every object in it read once, by exactly one of them (fastPathKeys). */
let keysRead = 0;

/** How many keys the last validateObject's fast path read: when it accepted that object as it is
 * (its `raw` is the object given), every key of every object in it, nested ones included —
 * which a JSON text that gave a key twice has fewer of than its text gives (field-validation.ts).
 * Otherwise meaningless. */
export function fastPathKeys(): number { return keysRead; }

function stringMap(v: unknown): boolean {
  if (absent(v)) return true;
  if (!isObject(v)) return false;
  for (const k in v) { keysRead++; if (typeof v[k] !== 'string') return false; }
  return true;
}

function onlyKeys(o: Record<string, unknown>, known: Set<string>): boolean {
  for (const k in o) { keysRead++; if (!known.has(k)) return false; }
  return true;
}
/** `o` itself when all its keys are `known` (the common case: no copy), else a copy of those: the
 * fast path's pruning, the same as zod's strip (a test compares them). */
function pick(o: Record<string, unknown>, known: Set<string>): Record<string, unknown> {
  if (onlyKeys(o, known)) return o;
  const out: Record<string, unknown> = {};
  for (const k in o) if (known.has(k)) out[k] = o[k];
  return out;
}
/** `parent` with `list` (its array at `key`) replaced by the pruned items, when any item changed. */
function withPrunedList(parent: Record<string, unknown>, key: string, prune: (x: Record<string, unknown>) => Record<string, unknown>): Record<string, unknown> {
  const list = parent[key];
  if (!Array.isArray(list)) return parent;
  let out: unknown[] | null = null;
  for (let i = 0; i < list.length; i++) {
    const p = prune(list[i] as Record<string, unknown>);
    if (p !== list[i]) { out ??= list.slice(); out[i] = p; }
  }
  return out ? { ...parent, [key]: out } : parent;
}
/** A fast-path object without the fields the schema does not know (`raw` itself when it has none). */
function pruned(raw: Record<string, unknown>, top: Set<string>, rest: (x: Record<string, unknown>) => Record<string, unknown>): Record<string, unknown> {
  let out = pick(raw, top);
  const md = pick(raw.metadata as Record<string, unknown>, METADATA_KEYS);
  if (md !== raw.metadata) out = { ...out, metadata: md };
  return rest(out);
}
const pruneServicePorts = (sp: Record<string, unknown>) => withPrunedList(pick(sp, SERVICE_SPEC_KEYS), 'ports', (p) => pick(p, SERVICE_PORT_KEYS));
function prunedService(raw: Record<string, unknown>): Record<string, unknown> {
  return pruned(raw, SERVICE_KEYS, (o) => {
    const sp = pruneServicePorts(o.spec as Record<string, unknown>);
    return sp === o.spec ? o : { ...o, spec: sp };
  });
}
const pruneEndpoint = (ep: Record<string, unknown>) => {
  const e = pick(ep, ENDPOINT_KEYS);
  const c = isObject(e.conditions) ? pick(e.conditions, CONDITION_KEYS) : e.conditions;
  return c === e.conditions ? e : { ...e, conditions: c };
};
function prunedSlice(raw: Record<string, unknown>): Record<string, unknown> {
  return pruned(raw, SLICE_KEYS, (o) => withPrunedList(withPrunedList(o, 'endpoints', pruneEndpoint), 'ports', (p) => pick(p, SLICE_PORT_KEYS)));
}
const SERVICE_KEYS = new Set(['apiVersion', 'kind', 'metadata', 'spec', 'status']);
const SERVICE_SPEC_KEYS = new Set(['type', 'clusterIP', 'clusterIPs', 'ipFamilies', 'ipFamilyPolicy', 'ports', 'sessionAffinity', 'sessionAffinityConfig', 'externalIPs', 'loadBalancerSourceRanges', 'externalTrafficPolicy', 'internalTrafficPolicy', 'externalName', 'healthCheckNodePort']);
const SERVICE_PORT_KEYS = new Set(['name', 'protocol', 'port', 'targetPort', 'nodePort']);
const SLICE_KEYS = new Set(['apiVersion', 'kind', 'metadata', 'addressType', 'endpoints', 'ports']);
const ENDPOINT_KEYS = new Set(['addresses', 'conditions', 'hostname', 'nodeName', 'zone', 'hints']);
const CONDITION_KEYS = new Set(['ready', 'serving', 'terminating']);
const SLICE_PORT_KEYS = new Set(['name', 'port', 'protocol']);

/** Whether `h` is exactly `{forZones?: [{name}, ...], forNodes?: [{name}, ...]}` with string
 * names, the nodes' non-empty (anything else: zod, which drops unknown keys and reports bad values). */
function plainHints(h: unknown): boolean {
  if (!isObject(h)) return false;
  for (const k in h) { keysRead++; if (k !== 'forZones' && k !== 'forNodes') return false; }
  return plainHintList(h.forZones, true) && plainHintList(h.forNodes, false);
}
function plainHintList(z: unknown, emptyName: boolean): boolean {
  if (absent(z)) return true;
  if (!Array.isArray(z) || z.length > 8) return false;
  for (const e of z) {
    if (!isObject(e) || typeof e.name !== 'string' || (e.name === '' && !emptyName)) return false;
    for (const k in e) { keysRead++; if (k !== 'name') return false; }
  }
  return true;
}

function fastMetadata(md: unknown): md is Record<string, unknown> {
  if (!isObject(md)) return false;
  if (!shortString(md.uid, 128) || !shortString(md.resourceVersion, 128) || !shortString(md.creationTimestamp, 64) || !(absent(md.generation) || Number.isInteger(md.generation))) return false;
  const name = md.name, ns = md.namespace;
  if (typeof name !== 'string' || name.length > 253 || !DNS_SUBDOMAIN.test(name)) return false;
  if (!absent(ns) && !(typeof ns === 'string' && ns.length <= 63 && DNS_LABEL.test(ns))) return false;
  return stringMap(md.labels) && stringMap(md.annotations) && annotationBytes(md.annotations as Record<string, unknown> | null | undefined) <= MAX_ANNOTATION_BYTES;
}

const IP_FAMILY_POLICIES = new Set<unknown>(['SingleStack', 'PreferDualStack', 'RequireDualStack']);
const SERVICE_SPEC_UNHANDLED = ['ipFamilies', 'sessionAffinityConfig', 'externalIPs', 'loadBalancerSourceRanges', 'externalName'];
const FAST_SERVICE_TYPES = new Set<unknown>(['ClusterIP', 'NodePort', 'LoadBalancer']);
const TRAFFIC_POLICIES = new Set<unknown>(['Cluster', 'Local']);
const STATUS_KEYS = new Set(['loadBalancer']);
const LB_STATUS_KEYS = new Set(['ingress']);
const INGRESS_KEYS = new Set(['ip', 'hostname', 'ipMode']);

/** Whether a Service's status is one the schema accepts as it is: absent, or `loadBalancer.ingress`
 * entries of a valid service address (or none), a hostname, an ipMode — and no field the schema
 * does not know (pruning a status: zod). */
function fastServiceStatus(st: unknown): boolean {
  if (absent(st)) return true;
  if (!isObject(st) || !onlyKeys(st, STATUS_KEYS)) return false;
  const lb = st.loadBalancer;
  if (absent(lb)) return true;
  if (!isObject(lb) || !onlyKeys(lb, LB_STATUS_KEYS)) return false;
  const ing = lb.ingress;
  if (absent(ing)) return true;
  if (!Array.isArray(ing)) return false;
  for (const i of ing) {
    if (!isObject(i) || !onlyKeys(i, INGRESS_KEYS) || !optString(i.hostname)) return false;
    if (!absent(i.ipMode) && i.ipMode !== 'VIP' && i.ipMode !== 'Proxy') return false;
    const ip = i.ip;
    if (!absent(ip) && !(typeof ip === 'string' && isPlainIP(ip) !== 0 && !specialAddressProblem(ip))) return false;
  }
  return true;
}

function fastService(raw: Record<string, unknown>): Record<string, unknown> | null {
  if (raw.apiVersion !== 'v1' || raw.kind !== 'Service' || !fastMetadata(raw.metadata) || !fastServiceStatus(raw.status)) return null;
  const ann = (raw.metadata as { annotations?: Record<string, string> | null }).annotations?.[MAGLEV_SIZE_ANNOTATION];
  if (ann !== undefined && !MAGLEV_SIZES.includes(Number(ann))) return null;
  const sp = raw.spec;
  if (!isObject(sp)) return null;
  const type = absent(sp.type) ? 'ClusterIP' : sp.type;
  if (!FAST_SERVICE_TYPES.has(type)) return null;
  const external = type !== 'ClusterIP'; // (NodePort, LoadBalancer: node ports, externalTrafficPolicy)
  if (!absent(sp.sessionAffinity) && sp.sessionAffinity !== 'None') return null;
  for (const k of SERVICE_SPEC_UNHANDLED) if (!absent(sp[k])) return null;
  // traffic policies; externalTrafficPolicy only on an externally-accessible type (no externalIPs here)
  const etp = sp.externalTrafficPolicy;
  if (!absent(etp) && !(external && TRAFFIC_POLICIES.has(etp))) return null;
  if (!absent(sp.internalTrafficPolicy) && !TRAFFIC_POLICIES.has(sp.internalTrafficPolicy)) return null;
  // healthCheckNodePort: 0 is unset; a port only on a LoadBalancer with externalTrafficPolicy Local
  const hc = sp.healthCheckNodePort;
  if (!absent(hc) && hc !== 0 && !(isPort(hc) && type === 'LoadBalancer' && etp === 'Local')) return null;
  // cluster IPs: one or two, valid, of different families, clusterIP = clusterIPs[0]; not headless
  const cip = sp.clusterIP, cips = sp.clusterIPs;
  if (!optString(cip) || cip === 'None') return null;
  let ips: unknown[];
  if (absent(cips)) ips = typeof cip === 'string' && cip ? [cip] : [];
  else {
    if (!Array.isArray(cips) || cips.length > 2) return null;
    if (typeof cip === 'string' && cip && cips.length && cip !== cips[0]) return null;
    ips = cips;
  }
  if (!ips.length) return null;
  let fam0 = 0;
  for (let i = 0; i < ips.length; i++) {
    const ip = ips[i];
    if (typeof ip !== 'string' || ip === 'None') return null;
    const f = isPlainIP(ip);
    if (f === 0 || f === fam0 || specialAddressProblem(ip)) return null;
    fam0 = f;
  }
  const policy = sp.ipFamilyPolicy;
  if (!absent(policy) && (!IP_FAMILY_POLICIES.has(policy as string) || ipFamilyPolicyProblem(policy, ips.length))) return null;
  // ports: named when more than one, names/targetPorts well-formed, no duplicates; node ports on
  // NodePort (each port's required: wdp allocates none) and LoadBalancer only, not duplicated
  const ports = sp.ports;
  if (!Array.isArray(ports) || !ports.length) return null;
  if (ports.length > 16) return null; // duplicates are found by scanning the earlier ports (no Set per object)
  // no field the schema does not know, anywhere (the common case): the object is its own pruned form
  let clean = onlyKeys(raw, SERVICE_KEYS) && onlyKeys(raw.metadata as Record<string, unknown>, METADATA_KEYS) && onlyKeys(sp, SERVICE_SPEC_KEYS);
  for (let i = 0; i < ports.length; i++) {
    const p = ports[i];
    if (!isObject(p)) return null;
    if (clean && !onlyKeys(p, SERVICE_PORT_KEYS)) clean = false;
    const name = p.name, proto = p.protocol, tp = p.targetPort;
    const np = p.nodePort;
    if (!optString(name) || !(absent(proto) || isProto(proto)) || !isPort(p.port)) return null;
    if (absent(np) ? type === 'NodePort' : !(external && isPort(np))) return null;
    if (name) {
      if (!((name as string).length <= 63 && DNS_LABEL.test(name as string))) return null;
    } else if (ports.length > 1) return null;
    const pr = (proto as string | null | undefined) ?? 'TCP';
    for (let j = 0; j < i; j++) { // (earlier ports passed the checks above: objects)
      const q = ports[j] as Record<string, unknown>;
      const samePr = ((q.protocol as string | null | undefined) ?? 'TCP') === pr;
      if ((name && q.name === name) || (samePr && (q.port === p.port || (!absent(np) && q.nodePort === np)))) return null;
    }
    if (typeof tp === 'number') { if (!isPort(tp)) return null; }
    else if (typeof tp === 'string') { if (!(tp.length <= 15 && SVC_PORT_NAME.test(tp))) return null; }
    else if (!absent(tp)) return null;
  }
  return clean ? raw : prunedService(raw);
}

/** The slice's pruned form when the fast check accepts it, else null; `endpoints` (when given)
 * gets the model's endpoints, built while they are checked: one pass over them instead of two
 * (valid only when the answer is not null). */
function fastSlice(raw: Record<string, unknown>, endpoints: EndpointSpec[] | null): Record<string, unknown> | null {
  if (raw.apiVersion !== 'discovery.k8s.io/v1' || raw.kind !== 'EndpointSlice' || !fastMetadata(raw.metadata)) return null;
  const trig = (raw.metadata as { annotations?: Record<string, string> | null }).annotations?.[TRIGGER_TIME_ANNOTATION];
  if (trig !== undefined && Number.isNaN(Date.parse(trig))) return null;
  const want = raw.addressType === 'IPv4' ? 4 : raw.addressType === 'IPv6' ? 6 : 0;
  if (!want) return null; // FQDN and invalid types: zod
  const eps = raw.endpoints;
  // no field the schema does not know, anywhere (the common case): the object is its own pruned form
  let clean = onlyKeys(raw, SLICE_KEYS) && onlyKeys(raw.metadata as Record<string, unknown>, METADATA_KEYS);
  if (!absent(eps)) {
    if (!Array.isArray(eps) || eps.length > 1000) return null;
    for (let e = 0; e < eps.length; e++) {
      const ep = eps[e];
      if (!isObject(ep)) return null;
      if (clean && !onlyKeys(ep, ENDPOINT_KEYS)) clean = false;
      const addrs = ep.addresses, cond = ep.conditions;
      if (!Array.isArray(addrs) || addrs.length < 1 || addrs.length > 100) return null;
      let v0 = -1;
      for (let j = 0; j < addrs.length; j++) {
        const a = addrs[j];
        if (typeof a !== 'string') return null;
        if (want === 4) {
          const v = ipv4Value(a);
          if (v < 0 && isIP(a) !== 4) return null;
          if (j === 0) v0 = v;
        } else if (isPlainIP(a) !== 6) return null;
      }
      if (!absent(cond)) {
        if (!isObject(cond) || !optBool(cond.ready) || !optBool(cond.serving) || !optBool(cond.terminating)) return null;
        if (clean && !onlyKeys(cond, CONDITION_KEYS)) clean = false;
      }
      if (!optString(ep.nodeName) || !optString(ep.zone)) return null;
      if (!absent(ep.hints) && !plainHints(ep.hints)) return null;
      if (!absent(ep.hostname) && !(typeof ep.hostname === 'string' && ep.hostname.length <= 63 && DNS_LABEL.test(ep.hostname))) return null;
      // (checked: the model's endpoint, from what was just read; pruning leaves what it reads)
      if (endpoints !== null) endpoints.push(modelEndpoint(ep as RawEndpoint, want === 4 ? 'IPv4' : 'IPv6', v0));
    }
  }
  const ports = raw.ports;
  if (!absent(ports)) {
    if (!Array.isArray(ports) || ports.length > 16) return null; // (more: zod) duplicates by a scan, no Set per object
    for (let i = 0; i < ports.length; i++) {
      const p = ports[i];
      if (!isObject(p)) return null;
      if (clean && !onlyKeys(p, SLICE_PORT_KEYS)) clean = false;
      const n = p.name;
      if (!optString(n) || !(absent(p.port) || isPort(p.port)) || !(absent(p.protocol) || isProto(p.protocol))) return null;
      const nn = (n as string | null | undefined) ?? '';
      if (nn && !(nn.length <= 63 && DNS_LABEL.test(nn))) return null;
      for (let j = 0; j < i; j++) if (((ports[j] as Record<string, unknown>).name ?? '') === nn) return null;
    }
  }
  return clean ? raw : prunedSlice(raw);
}

/** The fast path's verdict alone (tests compare it with zod's): the object it would normalise, or null. */
export function fastPathData(raw: unknown): Record<string, unknown> | null {
  if (!isObject(raw)) return null;
  return raw.kind === 'Service' ? fastService(raw) : raw.kind === 'EndpointSlice' ? fastSlice(raw, null) : null;
}

/** validateObject without the fast path: zod only (tests compare the two). */
export function validateObjectZod(raw: unknown): ReturnType<typeof validateObject> {
  return validateObject(raw, false);
}

/** Why `policy` (spec.ipFamilyPolicy) cannot go with `ips` cluster IPs of a Service that has
 * cluster IPs, or '' when it can. The API server allocates a RequireDualStack Service's second
 * cluster IP and refuses two with SingleStack (its clusterIPs/ipFamilies/ipFamilyPolicy checks);
 * wdp allocates nothing, so RequireDualStack needs both given — else the Service would be
 * programmed single-stack without a word. */
function ipFamilyPolicyProblem(policy: unknown, ips: number): string {
  if (policy === 'SingleStack' && ips > 1) return 'a SingleStack Service has one cluster IP (release the secondary one from clusterIPs, or ask for PreferDualStack / RequireDualStack)';
  if (policy === 'RequireDualStack' && ips < 2) return 'needs a cluster IP of each family in clusterIPs (wdp does not allocate cluster IPs)';
  return '';
}

/** "namespace/name", as one flat string. A template literal of 13 or more characters is a V8
 * cons string (a pair of pointers to its parts), and comparing two of them walks both parts on
 * every compare: the compiler sorts and merges 10k service keys and slices' service names on a
 * full compile, ~10x slower on cons strings. charCodeAt flattens one in place (~50 ns). */
function objectKey(namespace: string, name: string): string {
  const key = `${namespace}/${name}`;
  key.charCodeAt(0);
  return key;
}

function normService(s: z.infer<typeof serviceSchema>, raw: Record<string, unknown>): ServiceSpec {
  const namespace = s.metadata.namespace || 'default';
  const name = s.metadata.name;
  const sp = s.spec;
  const type = sp.type ?? 'ClusterIP';
  const headless = sp.clusterIP === 'None' || sp.clusterIPs?.[0] === 'None';
  // (canonical cluster IPs, the common case, are the object's own list: canonList)
  const clusterIPs = type === 'ExternalName' || headless ? [] : canonList(sp.clusterIPs ?? (sp.clusterIP ? [sp.clusterIP] : []));
  // the families of the cluster IPs, not ipFamilies (validated against them): kube-proxy's proxier
  // of a family skips a Service without a cluster IP of it, and an ipFamilies entry past the
  // cluster IPs names one wdp does not allocate
  const families: Family[] = packed(clusterIPs, familyOf);
  // optional fields are added, not spread in: an object literal with a spread is built by the
  // generic copy path (~0.4 KB of garbage per service), and empty lists skip their Set
  const ports: ServicePortSpec[] = packed(sp.ports ?? [], (p) => {
    const out: ServicePortSpec = { name: p.name ?? '', protocol: (p.protocol ?? 'TCP') as Proto, port: p.port, targetPort: p.targetPort ?? p.port };
    if (p.nodePort != null && (type === 'NodePort' || type === 'LoadBalancer')) out.nodePort = p.nodePort;
    return out;
  });
  const affinity = sp.sessionAffinity === 'ClientIP';
  const ann = s.metadata.annotations?.[MAGLEV_SIZE_ANNOTATION];
  const ingress = type === 'LoadBalancer' ? s.status?.loadBalancer?.ingress ?? [] : [];
  const ranges = sp.loadBalancerSourceRanges ?? [];
  const out: ServiceSpec = {
    kind: 'Service', key: objectKey(namespace, name), namespace, name, type, headless, clusterIPs, families, ports,
    affinityTimeoutMs: affinity ? (sp.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? DEFAULT_AFFINITY_TIMEOUT_S) * 1000 : 0,
    externalIPs: type === 'ExternalName' || headless || !sp.externalIPs?.length ? [] : packed(sp.externalIPs, canon),
    // ipMode Proxy (KEP-1860): the load balancer proxies, so its address is not the node's to
    // capture — kube-proxy programs only ingress IPs with ipMode unset or VIP
    lbIngress: ingress.length ? [...new Set(ingress.filter((i) => i.ip && (i.ipMode ?? 'VIP') === 'VIP').map((i) => canon(i.ip!)))] : [],
    sourceRanges: ranges.length ? [...new Set(ranges.map(canonSourceRange))] : [],
    externalLocal: sp.externalTrafficPolicy === 'Local',
    internalLocal: sp.internalTrafficPolicy === 'Local',
    raw,
  };
  if (ann !== undefined) out.maglevSize = Number(ann);
  if (sp.healthCheckNodePort && type === 'LoadBalancer' && out.externalLocal) out.healthCheckNodePort = sp.healthCheckNodePort;
  const labels = s.metadata.labels;
  if (labels) proxyLabels(labels, out);
  return out;
}

/** The labels kube-proxy's informers select on (`!service-proxy-name,!headless`), for Services
 * and EndpointSlices alike; the compiler decides (`serves`), where the node's proxy name is known. */
function proxyLabels(labels: Record<string, string>, out: ProxyLabels): void {
  const proxyName = labels[SERVICE_PROXY_NAME_LABEL];
  if (proxyName !== undefined) out.proxyName = proxyName;
  if (labels[HEADLESS_LABEL] !== undefined) out.headlessLabel = true;
}

function normSlice(s: z.infer<typeof endpointSliceSchema>, raw: Record<string, unknown>, built: EndpointSpec[] | null = null): SliceSpec {
  const namespace = s.metadata.namespace || 'default';
  const svcName = s.metadata.labels?.[SERVICE_NAME_LABEL];
  const trig = s.metadata.annotations?.[TRIGGER_TIME_ANNOTATION];
  // the endpoints (`built`: those fastSlice made as it checked them; else by a loop, no closure
  // per slice) before the literal, so that the address range goes in with it (a field written
  // after the literal turns from constant to mutable, which deoptimised the code that had read it)
  const eps = s.endpoints ?? [];
  const endpoints: EndpointSpec[] = built ?? [];
  if (!built) for (let i = 0; i < eps.length; i++) endpoints.push(modelEndpoint(eps[i], s.addressType));
  let v4Low = -1, v4High = -1;
  if (s.addressType === 'IPv4') {
    for (let i = 0; i < endpoints.length; i++) {
      const ep = endpoints[i], as = ep.addresses;
      for (let j = 0; j < as.length; j++) {
        const v = j === 0 ? ep.v4 : ipv4Value(as[j]);
        if (v4Low < 0 || v < v4Low) v4Low = v;
        if (v > v4High) v4High = v;
      }
    }
  }
  const out: SliceSpec = {
    kind: 'EndpointSlice', key: objectKey(namespace, s.metadata.name), namespace, name: s.metadata.name,
    service: svcName ? objectKey(namespace, svcName) : null,
    addressType: s.addressType,
    endpoints,
    v4Low, v4High,
    ports: packed(s.ports ?? [], slicePort),
    raw,
  };
  if (trig !== undefined) out.triggerTimeMs = Date.parse(trig);
  // (an added field, like triggerTimeMs: a labelled slice is rare, and a field in the literal costs every slice)
  const labels = s.metadata.labels;
  if (labels && (labels[SERVICE_PROXY_NAME_LABEL] !== undefined || labels[HEADLESS_LABEL] !== undefined)) proxyLabels(labels, out);
  return out;
}

type RawEndpoint = NonNullable<z.infer<typeof endpointSliceSchema>['endpoints']>[number];

/** One endpoint of a slice in the model; its `v4` is its first address's value (IPv4 slices),
 * `first` when the caller has it already. */
function modelEndpoint(e: RawEndpoint, addressType: 'IPv4' | 'IPv6' | 'FQDN', first?: number): EndpointSpec {
  let addresses = e.addresses, v4 = -1;
  if (addressType === 'IPv4') {
    // one canonical address (the common endpoint): its value says it is canonical
    v4 = first ?? ipv4Value(addresses[0]);
    if (v4 < 0 || addresses.length > 1) { addresses = canonList(addresses); if (v4 < 0) v4 = ipv4Value(addresses[0]); }
  } else if (addressType !== 'FQDN') addresses = canonList(addresses);
  const c = e.conditions;
  // every field in the literal, absent ones undefined: a spread of a temporary object per
  // optional field took the generic object-copy path (~1 KB of garbage per 10-endpoint slice),
  // and a field added afterwards needs a property array of its own (~40 bytes an endpoint,
  // kept with the model: 4 MB at 100k endpoints)
  return {
    addresses,
    v4,
    ready: c?.ready ?? true,
    // unset serving is true, not "as ready": kube-proxy's endpointslicecache reads
    // `Serving == nil || *Serving`, so {ready: false, terminating: true} is serving-terminating
    serving: c?.serving ?? true,
    terminating: c?.terminating ?? false,
    nodeName: e.nodeName || undefined,
    zone: e.zone || undefined,
    zoneHints: e.hints?.forZones?.length ? packed(e.hints.forZones, hintName) : undefined,
    nodeHints: e.hints?.forNodes?.length ? packed(e.hints.forNodes, hintName) : undefined,
  };
}
const hintName = (h: { name: string }): string => h.name;
function slicePort(p: { name?: string | null; port?: number | null; protocol?: string | null }): SlicePortSpec {
  const port: SlicePortSpec = { name: p.name ?? '', protocol: (p.protocol ?? 'TCP') as Proto };
  if (p.port != null) port.port = p.port;
  return port;
}

function normNode(n: z.infer<typeof nodeConfigSchema>, raw: Record<string, unknown>): NodeSpec {
  const addresses = (n.spec.nodeAddresses ?? []).map(canon);
  const nodePortAddresses = n.spec.nodePortAddresses ? [...new Set(n.spec.nodePortAddresses.map(canon))] : addresses;
  const routes: RouteSpec[] = (n.spec.routes ?? []).map((r) => {
    const c = parseCidr(unsloppy(r.prefix));
    return { prefix: canonCidr(r.prefix), family: c.family, plen: c.plen, port: r.port, ...(r.nextHopMac ? { nextHopMac: r.nextHopMac.toLowerCase().replace(/-/g, ':') } : {}), localMac: r.localMac.toLowerCase().replace(/-/g, ':') };
  });
  routes.sort((a, b) => b.plen - a.plen || (a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0));
  const neighbours: NeighbourSpec[] = (n.spec.neighbours ?? []).map((nb) => ({
    address: canon(nb.address), family: familyOf(nb.address), port: nb.port,
    mac: nb.mac.toLowerCase().replace(/-/g, ':'), localMac: nb.localMac.toLowerCase().replace(/-/g, ':'),
  }));
  const m = n.spec.masquerade;
  const snatV4 = m?.ipv4 ? canon(m.ipv4) : addresses.find((a) => familyOf(a) === 4);
  const snatV6 = m?.ipv6 ? canon(m.ipv6) : addresses.find((a) => familyOf(a) === 6);
  const nodeIPs = (n.spec.nodeIPs ?? []).map(canon);
  const nodeIPOf = (fam: 4 | 6): string => nodeIPs.find((a) => familyOf(a) === fam) ?? addresses.find((a) => familyOf(a) === fam) ?? (fam === 4 ? '127.0.0.1' : '::1');
  const hairpinV4 = n.spec.hairpin?.ipv4 ? canon(n.spec.hairpin.ipv4) : undefined;
  const hairpinV6 = n.spec.hairpin?.ipv6 ? canon(n.spec.hairpin.ipv6) : undefined;
  return {
    kind: 'NodeConfig', name: n.spec.nodeName ?? n.metadata.name, addresses, nodePortAddresses, nodeIPv4: nodeIPOf(4), nodeIPv6: nodeIPOf(6),
    ...(snatV4 ? { snatV4 } : {}), ...(snatV6 ? { snatV6 } : {}),
    ...(hairpinV4 ? { hairpinV4 } : {}), ...(hairpinV6 ? { hairpinV6 } : {}),
    neighbours, routes,
    podCIDRs: (n.spec.podCIDRs ?? []).map(canonCidr), clusterCIDRs: (n.spec.clusterCIDRs ?? []).map(canonCidr),
    detectLocalMode: n.spec.detectLocalMode ?? 'ClusterCIDR',
    podPorts: [...new Set(n.spec.podPorts ?? [])].sort((a, b) => a - b),
    serviceCIDRs: (n.spec.serviceCIDRs ?? []).map(canonCidr),
    ...(n.spec.serviceProxyName ? { serviceProxyName: n.spec.serviceProxyName } : {}),
    ...(n.spec.zone ? { zone: n.spec.zone } : {}),
    ...(n.spec.masqueradeAll ? { masqueradeAll: true as const } : {}),
    raw,
  };
}

/** Validates many raw objects; throws ValidationError with every error of every object. */
export function validateAll(raws: unknown[]): ModelObject[] {
  const out: ModelObject[] = [];
  const errors: FieldError[] = [];
  for (const raw of raws) collect(validateObject(raw), out, errors);
  if (errors.length) throw new ValidationError(errors);
  return out;
}

/** validateAll's answer from each object's verdict (validateObject), validated before. */
export function validatedAll(verdicts: readonly Validated[]): ModelObject[] {
  const out: ModelObject[] = [];
  const errors: FieldError[] = [];
  for (const r of verdicts) collect(r, out, errors);
  if (errors.length) throw new ValidationError(errors);
  return out;
}

function collect(r: Validated, out: ModelObject[], errors: FieldError[]): void {
  if (r.ok) out.push(r.obj); else for (const e of r.errors) errors.push(e);
}
