// The service CIDRs whose unallocated addresses the dataplane drops (drop_no_service_ip), in a
// cluster: the CIDRs of the cluster's ServiceCIDR objects (networking.k8s.io/v1, cluster-scoped;
// the API server creates one, "kubernetes", from --service-cluster-ip-range, and more can be
// added at runtime), as kube-proxy's nftables proxier takes them (OnServiceCIDRsChanged: every
// object's spec.cidrs, both families, an object being deleted too — its finalizer holds it while
// addresses from it are still allocated). The daemon config's node.serviceCIDRs are kept beside
// them: kube-proxy has no such setting, so nothing it does is contradicted, and a CIDR the
// operator listed stays dropped whatever the API serves (it is the only source when the API
// server does not serve ServiceCIDRs).
import { canonCidr, MAX_SERVICE_CIDRS } from '../model/schema.js';
import { parseCidr, cidrContains, type Cidr } from '../util/addr.js';
import type { KubeObject } from './client.js';

export const SERVICECIDRS_PATH = '/apis/networking.k8s.io/v1/servicecidrs';

/** Every CIDR of the ServiceCIDR objects, canonical, each once, by object name, and the
 * entries that are not a CIDR (the API server validates them: not expected). */
export function serviceCIDRsOf(objects: readonly KubeObject[]): { cidrs: string[]; invalid: string[] } {
  const cidrs: string[] = [], invalid: string[] = [];
  const sorted = [...objects].sort((a, b) => ((a.metadata?.name ?? '') < (b.metadata?.name ?? '') ? -1 : (a.metadata?.name ?? '') > (b.metadata?.name ?? '') ? 1 : 0));
  for (const o of sorted) {
    const list = (o.spec as { cidrs?: unknown } | undefined)?.cidrs;
    for (const c of Array.isArray(list) ? list : []) {
      let canon: string | null = null;
      if (typeof c === 'string' && c.includes('/')) { try { canon = canonCidr(c); } catch { canon = null; } }
      if (canon === null) { invalid.push(`${o.metadata?.name ?? ''}: ${JSON.stringify(c)}`); continue; }
      if (!cidrs.includes(canon)) cidrs.push(canon);
    }
  }
  return { cidrs, invalid };
}

/** The node config's serviceCIDRs: `configured` (node.serviceCIDRs) and then `cluster`'s, without
 * a CIDR that another one holds (it drops nothing more), at most MAX_SERVICE_CIDRS; `left` are
 * those that did not fit (their unallocated addresses are routed, not dropped). */
export function combineServiceCIDRs(configured: readonly string[], cluster: readonly string[]): { cidrs: string[]; left: string[] } {
  const all: Array<{ text: string; c: Cidr }> = [];
  for (const text of [...configured.map(canonCidr), ...cluster]) if (!all.some((x) => x.text === text)) all.push({ text, c: parseCidr(text) });
  const holds = (a: Cidr, b: Cidr) => a.family === b.family && a.plen <= b.plen && cidrContains(a, { family: b.family, bytes: b.bytes });
  const kept = all.filter((x, i) => !all.some((y, j) => j !== i && holds(y.c, x.c) && (y.c.plen < x.c.plen || j < i))).map((x) => x.text);
  return { cidrs: kept.slice(0, MAX_SERVICE_CIDRS), left: kept.slice(MAX_SERVICE_CIDRS) };
}
