// The sources a LoadBalancer frontend's loadBalancerSourceRanges admit, as the nftables proxier's
// firewall chain builds them (pkg/proxy/nftables/proxier.go, syncProxyRules, "allowFromNode"):
// when one of the ranges holds the node IP of the frontend's family, the service's LB IPs of that
// family are admitted too — a VIP the node holds as a local address makes the node's own requests
// to it loop back with the VIP as their source. Only for services with ranges (rare): a CIDR parse
// per range and LB IP, per LB frontend.
import { cidrContains, parseAddr, parseCidr } from '../util/addr.js';
import type { Family } from '../ir/ir.js';

/** `ranges` (canonical CIDRs, all of `family`) plus each of `vips` of `family` that none of them
 * holds (as a /32 or /128), when one of them holds `nodeIP`; else `ranges` itself. */
export function firewallSources(ranges: string[], family: Family, nodeIP: string, vips: readonly string[]): string[] {
  const cidrs = ranges.map(parseCidr);
  const node = parseAddr(nodeIP);
  if (!cidrs.some((c) => cidrContains(c, node))) return ranges;
  let out: string[] | null = null;
  for (let i = 0; i < vips.length; i++) {
    const v = vips[i];
    if ((v.includes(':') ? 6 : 4) !== family) continue;
    const a = parseAddr(v);
    if (cidrs.some((c) => cidrContains(c, a))) continue; // admitted already: the same set, one entry fewer
    (out ??= ranges.slice()).push(`${v}/${family === 6 ? 128 : 32}`);
  }
  return out ?? ranges;
}
