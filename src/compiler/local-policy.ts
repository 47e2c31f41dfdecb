// kube-proxy's Local traffic policy with no local endpoint, the one rule both the compiler (a
// frontend's FEF_POLICY_DROP) and the watcher's `kubeproxy_sync_proxy_rules_no_local_endpoints_total`
// gauge (src/kube/no-local-endpoints.ts, over the compiled backends) apply: a second copy of it
// over the raw EndpointSlices disagreed with the compiler where an address is listed twice or a
// slice port does not serve the Service port.
import * as L from '../../assembly/layout.js';
import type { Family } from '../ir/ir.js';

/** One service port's endpoints as the compiler resolved them (deduplicated: of two copies of an
 * address, the one that wins), by column: the compiler's Candidates, or rows built from the
 * compiled backends. */
export interface EndpointStates {
  readonly n: number;
  readonly family: ArrayLike<Family>;
  readonly state: ArrayLike<number>;
  readonly ep: ArrayLike<{ readonly nodeName?: string } | null>;
}

/** Whether a Local traffic policy leaves the port's `family` traffic nothing to go to while the
 * port has endpoints elsewhere — kube-proxy's `hasEndpoints && len(localEndpoints) == 0` of
 * CategorizeEndpoints: some endpoint of the family is usable (ready, or serving and terminating)
 * and none of the usable ones is on node `node` (null: no node config, nothing is local). A port
 * with no usable endpoint at all is not this (kube-proxy rejects its traffic). O(rows). */
export function noLocalEndpoint(rows: EndpointStates, family: Family, node: string | null): boolean {
  const fam = rows.family, state = rows.state, ep = rows.ep;
  let usable = false;
  for (let i = 0; i < rows.n; i++) {
    if (fam[i] !== family) continue;
    const s = state[i];
    if (s !== L.BES_READY && s !== L.BES_TERMINATING_SERVING) continue;
    if (node !== null && ep[i]?.nodeName === node) return false;
    usable = true;
  }
  return usable;
}
