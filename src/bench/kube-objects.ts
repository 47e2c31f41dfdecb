// The cluster `wdp bench kube` lists: Service i (ClusterIP 10.96.0.0 + i, port 80/TCP) with one
// EndpointSlice of M ready endpoints (10.64.0.0 + i*M + e, port 8080), as the API server returns
// them, and the API-server double that serves them (in the source tree: test/lib/apiserver-double.js,
// so this suite runs from a checkout, not from an installed package).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface DoubleLike {
  url: string;
  listen(host?: string, port?: number): Promise<string>; listenControl(path: string): Promise<void>; kubeconfig(): string; close(): Promise<void>;
  create(resource: string, obj: unknown): unknown; apply(resource: string, obj: unknown): unknown;
  stats: { listPages: number };
}

export async function loadDouble(): Promise<new (o?: object) => DoubleLike> {
  const url = new URL('../../../test/lib/apiserver-double.js', import.meta.url);
  if (!existsSync(fileURLToPath(url))) throw new Error(`wdp bench kube needs the source tree's API-server double (${fileURLToPath(url)} is missing)`);
  return ((await import(url.href)) as { ApiServerDouble: new (o?: object) => DoubleLike }).ApiServerDouble;
}

export const ip = (base: number, i: number): string => `${base}.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
export const clusterIP = (i: number): string => ip(10, (96 << 16) + i);
export const namespaceOf = (i: number): string => `ns-${i % 50}`;
export const sliceName = (i: number): string => `svc-${i}-abcde`;
export const NODE_NAME = 'bench-node';
export const NODE_ADDRESS = '192.168.77.1';

export function service(i: number): object {
  const cip = clusterIP(i);
  return {
    metadata: { name: `svc-${i}`, namespace: namespaceOf(i) },
    spec: { type: 'ClusterIP', clusterIP: cip, clusterIPs: [cip], ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack', internalTrafficPolicy: 'Cluster', sessionAffinity: 'None', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] },
    status: { loadBalancer: {} },
  };
}

/** Service i's slice; `gen` shifts every address, `first` replaces the first endpoint's. */
export function slice(i: number, m: number, gen = 0, first?: string): object {
  return {
    metadata: { name: sliceName(i), namespace: namespaceOf(i), labels: { 'kubernetes.io/service-name': `svc-${i}`, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' } },
    addressType: 'IPv4',
    endpoints: Array.from({ length: m }, (_, e) => ({ addresses: [e === 0 && first ? first : ip(10, (1 << 22) + i * m + e + gen)], conditions: { ready: true, serving: true, terminating: false }, nodeName: `node-${e % 8}`, targetRef: { kind: 'Pod', name: `p-${i}-${e}`, namespace: namespaceOf(i) } })),
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
}

export function node(): object {
  return {
    metadata: { name: NODE_NAME }, spec: { podCIDRs: ['10.244.1.0/24'] },
    status: { addresses: [{ type: 'InternalIP', address: NODE_ADDRESS }, { type: 'Hostname', address: NODE_NAME }] },
  };
}

/** Seeds `double` with the Node and N Services x M endpoints. */
export function seed(double: DoubleLike, services: number, endpoints: number): void {
  double.create('nodes', node());
  for (let i = 0; i < services; i++) { double.create('services', service(i)); double.create('endpointslices', slice(i, endpoints)); }
}
