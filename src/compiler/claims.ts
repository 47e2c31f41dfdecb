// What two Services may not share: a cluster IP, a node port, an external frontend tuple. One
// enumeration (forEachClaim) gives the claims, their order and how an error names each one.
//
// One key space without a string per claim where it can be helped: a cluster IP is its address
// string as validated, a node port the number protocol·65536 + port, and only an external
// frontend tuple (rare) a made string "fe proto addr port". None can equal another kind's.
import { PROTO_NUMBER } from '../ir/ir.js';
import type { ServicePortSpec, ServiceSpec } from '../model/types.js';

export type Claim = string | number;

/** Called for each claim of a Service, in order. `field` and `what` (the API field and a text an
 * error shows) are '' unless the enumeration was asked to describe. */
export type ClaimVisitor = (claim: Claim, field: string, what: string) => void;

const nodePortClaim = (p: ServicePortSpec): number => PROTO_NUMBER[p.protocol] * 65536 + p.nodePort!;

/** Whether `s` claims external frontend tuples (externalIPs or LoadBalancer ingress addresses). */
export function hasExternalClaims(s: ServiceSpec): boolean { return s.externalIPs.length > 0 || s.lbIngress.length > 0; }

/** The external frontend tuple claim of address `a` on a port: the key forEachClaim gives it. */
export const externalClaim = (proto: string, a: string, port: number): string => `fe ${proto} ${a} ${port}`;

/** Whether `c` is an external frontend tuple claim (the only kind a Service may yield). */
export const isExternalClaim = (c: Claim): c is string => typeof c === 'string' && c.startsWith('fe ');

/** The external frontend tuples of `s` (externalIPs, then LB ingress, per port; one per tuple,
 * none for an address that is also a cluster IP), whether withheld or not, with their field and
 * text when `describe`. */
export function forEachExternalClaim(s: ServiceSpec, visit: ClaimVisitor, describe = false, portIndex = -1): void {
  const ips = s.clusterIPs;
  for (let i = portIndex < 0 ? 0 : portIndex; i < (portIndex < 0 ? s.ports.length : portIndex + 1); i++) {
    const p = s.ports[i];
    const seen = new Set<string>();
    for (const [field, list] of [['externalIPs', s.externalIPs], ['status.loadBalancer.ingress', s.lbIngress]] as const) {
      for (const a of list) {
        const c = externalClaim(p.protocol, a, p.port);
        if (seen.has(c) || ips.includes(a)) continue; // same service, same tuple: one frontend
        seen.add(c);
        visit(c, describe ? `spec.${field}` : '', describe ? `${a}:${p.port}/${p.protocol}` : '');
      }
    }
  }
}

/** The claims of `s`: its cluster IPs, then per port its node port and its external tuples
 * (forEachExternalClaim) minus those it yields to another Service (`s.withheld`: not served, not
 * claimed). With `describe`, each comes with its field and text (the error path; strings are made). */
export function forEachClaim(s: ServiceSpec, visit: ClaimVisitor, describe = false): void {
  const ips = s.clusterIPs;
  for (let i = 0; i < ips.length; i++) visit(ips[i], describe ? `spec.clusterIPs[${i}]` : '', describe ? `clusterIP ${ips[i]}` : '');
  const ext = hasExternalClaims(s), withheld = s.withheld;
  const visitExt: ClaimVisitor = withheld ? (c, f, w) => { if (!withheld.has(c as string)) visit(c, f, w); } : visit;
  for (let i = 0; i < s.ports.length; i++) {
    const p = s.ports[i];
    if (p.nodePort !== undefined) visit(nodePortClaim(p), describe ? `spec.ports[${i}].nodePort` : '', describe ? `nodePort ${p.nodePort}/${p.protocol}` : '');
    if (ext) forEachExternalClaim(s, visitExt, describe, i);
  }
}

/** The claims of `s` in forEachClaim's order, as an array. */
export function claimKeys(s: ServiceSpec): Claim[] {
  const out: Claim[] = [];
  forEachClaim(s, (c) => { out.push(c); });
  return out;
}

/** Claim number `n` of `s` (forEachClaim's order) with its field and text, for an error. */
export function describeClaim(s: ServiceSpec, n: number): { claim: Claim; field: string; what: string } {
  let k = 0, found: { claim: Claim; field: string; what: string } | undefined;
  forEachClaim(s, (claim, field, what) => { if (k++ === n) found = { claim, field, what }; }, true);
  return found!;
}
