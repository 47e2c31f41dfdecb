// kube-proxy's `kubeproxy_sync_proxy_rules_no_local_endpoints_total{traffic_policy,ip_family}`,
// read from what the compiler made of the Services: per service port and IP family, whether a
// Local traffic policy leaves it no endpoint on this node while it has usable ones elsewhere —
// the compiler's own rule (src/compiler/local-policy.ts, the one behind FEF_POLICY_DROP) over the
// port's compiled backends (deduplicated, matched to the Service port as the compiler did), so the
// gauge counts exactly the service ports whose Local traffic the dataplane drops.
//
// kube-proxy counts in syncProxyRules, per family proxier (a family the Service has a cluster IP
// of), per service port: "internal" when internalTrafficPolicy is Local, "external" when
// externalTrafficPolicy is Local and the Service is reachable from outside (NodePort,
// LoadBalancer, or with externalIPs) — whether or not this node has an address of the family to
// serve its NodePort on. "This node" is the compiled node config's name (the dataplane's notion
// of local; the daemon's is the watcher's node).
import type { Family, IrBackend } from '../ir/ir.js';
import type { ServiceSpec } from '../model/types.js';
import { noLocalEndpoint, type EndpointStates } from '../compiler/local-policy.js';

export type IpFamily = 'IPv4' | 'IPv6';
export interface NoLocalCounts { internal: Record<IpFamily, number>; external: Record<IpFamily, number> }

/** The compiler's read side the gauge needs (the control plane's Compiler). */
export interface CompiledServices {
  getService(namespace: string, name: string): ServiceSpec | undefined;
  eachService(): IterableIterator<ServiceSpec>;
  eachSlice(): IterableIterator<{ readonly raw: Record<string, unknown> }>;
  backendIdsOf(serviceKey: string): number[];
  getNode(): { readonly name: string } | null;
  readonly ir: { readonly backends: { get(id: number): IrBackend | undefined } };
}

export const noLocalCounts = (): NoLocalCounts => ({ internal: { IPv4: 0, IPv6: 0 }, external: { IPv4: 0, IPv6: 0 } });

const FAMILY_NAME: Record<Family, IpFamily> = { 4: 'IPv4', 6: 'IPv6' };

/** Whether kube-proxy treats the Service's externalTrafficPolicy at all (ExternallyAccessible). */
function externallyAccessible(svc: ServiceSpec): boolean {
  return svc.type === 'NodePort' || svc.type === 'LoadBalancer' || svc.externalIPs.length > 0;
}

/** Adds the compiled Service `namespace/name`'s service ports without a local endpoint to `into`.
 * Nothing for a Service the compiler does not hold (refused, or not synced yet), nor for one it
 * programs nothing for (headless, ExternalName, another proxy's: no backends). O(its backends). */
export function addNoLocalEndpointPorts(compiled: CompiledServices, namespace: string, name: string, into: NoLocalCounts): void {
  const svc = compiled.getService(namespace, name);
  if (!svc) return;
  const internal = svc.internalLocal, external = svc.externalLocal && externallyAccessible(svc);
  if (!internal && !external) return;
  // the backends by service port: columns as the compiler's candidates
  const byPort = new Map<string, { n: number; family: Family[]; state: number[]; ep: Array<{ nodeName?: string }> }>();
  for (const id of compiled.backendIdsOf(svc.key)) {
    const b = compiled.ir.backends.get(id);
    if (!b) continue;
    let rows = byPort.get(b.portName);
    if (!rows) byPort.set(b.portName, rows = { n: 0, family: [], state: [], ep: [] });
    rows.family.push(b.family); rows.state.push(b.state); rows.ep.push({ nodeName: b.nodeName });
    rows.n++;
  }
  const node = compiled.getNode()?.name ?? null;
  for (const family of svc.families) {
    const f = FAMILY_NAME[family];
    for (const sp of svc.ports) {
      const rows: EndpointStates | undefined = byPort.get(sp.name);
      if (!rows || !noLocalEndpoint(rows, family, node)) continue;
      if (internal) into.internal[f]++;
      if (external) into.external[f]++;
    }
  }
}
