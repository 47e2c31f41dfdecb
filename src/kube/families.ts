// What kube-proxy's proxiers see of the API's objects when they run for fewer than both IP
// families (node.ts proxierFamilies: a host without IPv6 runs one proxier, of the node's primary
// family). Each family's proxier (pkg/proxy ServiceChangeTracker, EndpointSliceCache) keeps of a
// Service only what is of its family — its cluster IP of that family (no such cluster IP: the
// Service is not its at all), the external IPs, load-balancer ingress IPs and source ranges of
// that family — and of the EndpointSlices only those of its address type. The watcher programs
// the model with the objects cut down the same way, so the dataplane forwards exactly the
// families a kube-proxy on this node would. With both families nothing is cut.
// (addresses as the model and kube-proxy's ParseIPSloppy read them: IPv4 parts with leading zeros)
import { isIP } from '../model/sloppy-ip.js';
import type { IpFamilyName } from './healthz.js';
import { servedExternalIPs, servedIngress } from './objects.js';

type Raw = Record<string, unknown>;
const isObj = (x: unknown): x is Raw => typeof x === 'object' && x !== null && !Array.isArray(x);

const familyOfIp = (ip: unknown): IpFamilyName | null => {
  const f = typeof ip === 'string' ? isIP(ip) : 0;
  return f === 4 ? 'IPv4' : f === 6 ? 'IPv6' : null;
};
const familyOfCidr = (c: unknown): IpFamilyName | null => (typeof c === 'string' ? familyOfIp(c.trim().split('/')[0]) : null);

/** Whether `families` leaves anything out (fewer than both families). */
export function cutsFamilies(families: readonly IpFamilyName[]): boolean {
  return !(families.includes('IPv4') && families.includes('IPv6'));
}

/** `list` without the entries of a family not in `families` (an entry of no family — not an
 * address — is kept: the model says what is wrong with it). */
function keepFamilies<T>(list: readonly T[], families: readonly IpFamilyName[], familyOf: (x: T) => IpFamilyName | null): T[] {
  return list.filter((x) => { const f = familyOf(x); return f === null || families.includes(f); });
}

const clusterIPsOf = (spec: Raw): unknown[] =>
  Array.isArray(spec.clusterIPs) ? spec.clusterIPs : typeof spec.clusterIP === 'string' && spec.clusterIP ? [spec.clusterIP] : [];

/** Whether the proxiers of `families` take a Service (of the API, or as the model takes it): one
 * with a cluster IP of those families, or with no cluster IP address at all (left to the model). */
export function serviceInFamiliesAtAll(o: Readonly<Raw>, families: readonly IpFamilyName[]): boolean {
  if (!cutsFamilies(families) || !isObj(o.spec)) return true;
  const fams = clusterIPsOf(o.spec).map(familyOfIp).filter((f) => f !== null);
  return !fams.length || fams.some((f) => families.includes(f));
}

/** Whether what the proxiers keep of a Service can depend on the families at all: it has more
 * than one cluster IP, or external IPs, source ranges or ingress entries. A Service with one
 * cluster IP and none of those is kept whole or not at all (serviceInFamiliesAtAll). */
export function familiesCanCut(o: Readonly<Raw>): boolean {
  const spec = isObj(o.spec) ? o.spec : {};
  const lb = isObj(o.status) && isObj(o.status.loadBalancer) ? o.status.loadBalancer : {};
  const some = (x: unknown) => Array.isArray(x) && x.length > 0;
  return (Array.isArray(spec.clusterIPs) && spec.clusterIPs.length > 1) || some(spec.externalIPs) || some(spec.loadBalancerSourceRanges) || some(lb.ingress);
}

/** The families of the cluster IPs, external IPs, source ranges and ingress entries of a Service
 * the proxiers of `families` keep (null: every family), in order. The full sync compares the
 * model's copy (as it was cut when programmed), taken whole, with the API's object cut to the
 * families in force: a copy cut for other families differs and is programmed again. (The
 * families, not just how many: a dual-stack Service cut to IPv6 keeps as many entries as cut to
 * IPv4, and a node whose primary IP changes family must not keep the other family's copy.) */
export function familyShape(o: Readonly<Raw>, families: readonly IpFamilyName[] | null): string {
  const spec = isObj(o.spec) ? o.spec : {};
  const fams = families && cutsFamilies(families) ? families : null;
  const n = (list: unknown, familyOf: (x: unknown) => IpFamilyName | null) =>
    !Array.isArray(list) ? '' : (fams ? keepFamilies(list, fams, familyOf) : list).map((x) => { const f = familyOf(x); return f === 'IPv4' ? '4' : f === 'IPv6' ? '6' : '?'; }).join('');
  const lb = isObj(o.status) && isObj(o.status.loadBalancer) ? o.status.loadBalancer : {};
  // (external and ingress IPs as the model is given them: objects.ts serviceForModel)
  const externalIPs = Array.isArray(spec.externalIPs) ? servedExternalIPs(spec.externalIPs) : spec.externalIPs;
  const ingress = Array.isArray(lb.ingress) ? servedIngress(lb.ingress) : lb.ingress;
  return `${n(clusterIPsOf(spec), familyOfIp)}/${n(externalIPs, familyOfIp)}/${n(spec.loadBalancerSourceRanges, familyOfCidr)}/${n(ingress, (i) => (isObj(i) ? familyOfIp(i.ip) : null))}`;
}

/** A Service (as the model takes it: objects.ts serviceForModel) as the proxiers of `families`
 * see it; null when none of them does (it has cluster IPs, none of those families). A Service
 * with no cluster IP (headless, ExternalName) is left as it is: the model skips it anyway. */
export function serviceInFamilies(raw: Raw, families: readonly IpFamilyName[]): Raw | null {
  if (!cutsFamilies(families) || !isObj(raw.spec)) return raw;
  const spec = raw.spec;
  const addresses = clusterIPsOf(spec).filter((ip) => familyOfIp(ip) !== null);
  if (!addresses.length) return raw;
  const kept = addresses.filter((ip) => families.includes(familyOfIp(ip)!));
  if (!kept.length) return null;
  const out: Raw = { ...spec, clusterIP: kept[0], clusterIPs: kept };
  if (Array.isArray(spec.ipFamilies)) out.ipFamilies = kept.map(familyOfIp);
  // a dual-stack Service is single-stack to each family's proxier
  if (kept.length === 1 && spec.ipFamilyPolicy !== undefined) out.ipFamilyPolicy = 'SingleStack';
  // (a list left empty goes, as serviceForModel leaves an empty one out)
  for (const [key, familyOf] of [['externalIPs', familyOfIp], ['loadBalancerSourceRanges', familyOfCidr]] as const) {
    if (!Array.isArray(spec[key])) continue;
    const left = keepFamilies(spec[key] as unknown[], families, familyOf);
    if (left.length) out[key] = left; else delete out[key];
  }
  // what applied to the external IPs alone, on a type without node ports, has nothing left to
  // apply to once none of them is of these families (as serviceForModel drops it when none is
  // served): kept, the model refuses the whole Service (externalTrafficPolicy needs an external
  // address), and an update to that shape left the previous version forwarding
  if (Array.isArray(spec.externalIPs) && spec.externalIPs.length && !out.externalIPs && spec.type !== 'NodePort' && spec.type !== 'LoadBalancer') {
    delete out.externalTrafficPolicy; delete out.loadBalancerSourceRanges;
  }
  const res: Raw = { ...raw, spec: out };
  const lb = isObj(raw.status) && isObj(raw.status.loadBalancer) ? raw.status.loadBalancer : undefined;
  if (lb && Array.isArray(lb.ingress)) {
    const ingress = keepFamilies(lb.ingress, families, (i) => (isObj(i) ? familyOfIp(i.ip) : null));
    if (ingress.length) res.status = { ...(raw.status as Raw), loadBalancer: { ...lb, ingress } };
    else delete res.status;
  }
  return res;
}

/** Whether the proxiers of `families` take an EndpointSlice: one of address type IPv4 or IPv6
 * only when that family is among them (an FQDN slice is left to the model, which ignores it). */
export function sliceInFamilies(slice: Readonly<Raw>, families: readonly IpFamilyName[]): boolean {
  const t = slice.addressType;
  return !(t === 'IPv4' || t === 'IPv6') || families.includes(t);
}

/** The CIDRs (or addresses) of `list` whose family is among `families`. */
export function cidrsInFamilies(list: readonly string[], families: readonly IpFamilyName[]): string[] {
  return cutsFamilies(families) ? keepFamilies(list, families, familyOfCidr) : [...list];
}
