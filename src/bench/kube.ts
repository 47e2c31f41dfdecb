// `wdp bench kube`: how long the Kubernetes watcher (src/kube/) takes to program a cluster's
// initial state — N Services x M endpoints listed from the API-server test double (on loopback,
// in this process, in pages of --page-size) through the real client library, the per-object
// sync and the control plane into an in-thread core — and then one endpoint change.
// Reported, never asserted: the figure includes serving the list from the same 2 cores.
// The double lives in the source tree (test/lib/apiserver-double.js), so this suite runs from a
// checkout, not from an installed package.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError, type Command } from 'commander';
import { kvTable, round } from './report.js';

export interface KubeBenchResult {
  services: number; endpoints_per_service: number; page_size: number;
  seed_ms: number; list_ms: number; first_sync_ms: number; programmed_ms: number;
  full_sync_apply_ms: number; list_pages: number; frontends: number; backends: number;
  one_endpoint_change_ms: number; rss_mb: number;
}

interface DoubleLike {
  listen(): Promise<string>; kubeconfig(): string; close(): Promise<void>;
  create(resource: string, obj: unknown): unknown; apply(resource: string, obj: unknown): unknown;
  stats: { listPages: number };
}

async function loadDouble(): Promise<new (o?: object) => DoubleLike> {
  const url = new URL('../../../test/lib/apiserver-double.js', import.meta.url);
  if (!existsSync(fileURLToPath(url))) throw new Error(`wdp bench kube needs the source tree's API-server double (${fileURLToPath(url)} is missing)`);
  return ((await import(url.href)) as { ApiServerDouble: new (o?: object) => DoubleLike }).ApiServerDouble;
}

const ip = (base: number, i: number) => `${base}.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

export function service(i: number): object {
  const cip = ip(10, (96 << 16) + i);
  return {
    metadata: { name: `svc-${i}`, namespace: `ns-${i % 50}` },
    spec: { type: 'ClusterIP', clusterIP: cip, clusterIPs: [cip], ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack', internalTrafficPolicy: 'Cluster', sessionAffinity: 'None', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] },
    status: { loadBalancer: {} },
  };
}

export function slice(i: number, m: number, gen = 0): object {
  return {
    metadata: { name: `svc-${i}-abcde`, namespace: `ns-${i % 50}`, labels: { 'kubernetes.io/service-name': `svc-${i}`, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' } },
    addressType: 'IPv4',
    endpoints: Array.from({ length: m }, (_, e) => ({ addresses: [ip(10, (1 << 22) + i * m + e + gen)], conditions: { ready: true, serving: true, terminating: false }, nodeName: `node-${e % 8}`, targetRef: { kind: 'Pod', name: `p-${i}-${e}`, namespace: `ns-${i % 50}` } })),
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
}

export async function runKubeBench(o: { services: number; endpoints: number; pageSize: number; progress?: (s: string) => void }): Promise<KubeBenchResult> {
  const say = o.progress ?? (() => undefined);
  // loaded here: `wdp` itself should not pay for the client library at every start
  const [{ default: pino }, { KubeConfig }, { ControlPlaneCore }, { ControlPlaneMetrics }, { LocalDataplane }, { parseConfig }, { KubeWatcher }] = await Promise.all([
    import('pino'), import('@kubernetes/client-node'), import('../api/controlplane.js'), import('../api/metrics.js'),
    import('../core/dataplane.js'), import('../daemon/config.js'), import('../kube/watcher.js'),
  ]);
  const ApiServerDouble = await loadDouble();
  // without the watch cache: the first list too comes in pages of --page-size, as a server whose
  // cache is off answers it (with the cache, a resourceVersion-0 list is one answer)
  const double = new ApiServerDouble({ watchCache: false });
  await double.listen();
  const s0 = performance.now();
  for (let i = 0; i < o.services; i++) { double.create('services', service(i)); double.create('endpointslices', slice(i, o.endpoints)); }
  const seedMs = performance.now() - s0;
  say(`seeded ${o.services} services x ${o.endpoints} endpoints in ${Math.round(seedMs)} ms`);
  const dp = new LocalDataplane({ flows: 4096 });
  const core = new ControlPlaneCore(dp, null);
  const metrics = new ControlPlaneMetrics(core.compiler, () => dp.generation());
  const kc = new KubeConfig();
  kc.loadFromString(double.kubeconfig());
  const cfg = parseConfig({
    node: { name: 'bench-node' }, ports: [{ name: 'p', type: 'tap', ifname: 't0', role: 'pod' }],
    kubernetes: { minSyncPeriod: 0, syncPeriod: '1h', healthzBindAddress: 'off', metricsBindAddress: 'off', healthCheckBindAddress: 'off', listPageSize: o.pageSize },
  }).kubernetes!;
  let listedAt = 0;
  const t0 = performance.now();
  const watcher = await KubeWatcher.start({ config: cfg, nodeName: 'bench-node', configuredAddresses: [], kubeConfig: kc, control: core, metrics, log: pino({ level: 'warn' }) });
  try {
    const deadline = Date.now() + 10 * 60_000;
    while (core.compiler.serviceCount() < o.services || watcher.sync.stats.full < 1) {
      if (!listedAt && watcher.informers.services.synced && watcher.informers.slices.synced) listedAt = performance.now();
      if (Date.now() > deadline) throw new Error(`not programmed after 10 minutes (${core.compiler.serviceCount()} services)`);
      await new Promise((r) => setTimeout(r, 2));
    }
    const t1 = performance.now();
    const fullApply = watcher.sync.stats.lastSeconds;
    say(`programmed in ${Math.round(t1 - t0)} ms`);
    // one endpoint change: API write to programmed
    const u0 = performance.now();
    double.apply('endpointslices', slice(0, o.endpoints, 7));
    const want = ip(10, (1 << 22) + 7);
    while (core.compiler.getSlice('ns-0', 'svc-0-abcde')?.endpoints[0].addresses[0] !== want) {
      if (performance.now() - u0 > 60_000) throw new Error('the endpoint change was not programmed in 60 s');
      await new Promise((r) => setImmediate(r));
    }
    const u1 = performance.now();
    return {
      services: o.services, endpoints_per_service: o.endpoints, page_size: o.pageSize,
      seed_ms: round(seedMs, 0), list_ms: round((listedAt || t1) - t0, 0), first_sync_ms: round(t1 - (listedAt || t1), 0), programmed_ms: round(t1 - t0, 0),
      full_sync_apply_ms: round(fullApply * 1000, 0), list_pages: double.stats.listPages,
      frontends: core.compiler.ir.frontends.size, backends: core.compiler.ir.backends.size,
      one_endpoint_change_ms: round(u1 - u0, 1), rss_mb: round(process.memoryUsage().rss / 2 ** 20, 0),
    };
  } finally {
    await watcher.stop();
    await double.close();
    await dp.close();
  }
}

function intArg(name: string, min: number, max: number): (v: string) => number {
  return (v) => {
    const n = Number(v.replace(/k$/i, '000').replace(/_/g, ''));
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
    return n;
  };
}

export function registerKubeBench(bench: Command): void {
  bench.command('kube')
    .description('Kubernetes watcher: initial list of N services x M endpoints from the API-server double to programmed, then one endpoint change')
    .option('--services <n>', 'services', intArg('--services', 1, 200_000), 10_000)
    .option('--endpoints <m>', 'endpoints per service (one EndpointSlice each)', intArg('--endpoints', 1, 1000), 10)
    .option('--page-size <n>', 'list page size (client-go\'s reflector: 500)', intArg('--page-size', 1, 100_000), 500)
    .option('--json', 'one JSON object on stdout')
    .option('--quiet', 'no progress on stderr')
    .action(async (o: { services: number; endpoints: number; pageSize: number; json?: boolean; quiet?: boolean }) => {
      try {
        const r = await runKubeBench({ ...o, progress: o.quiet ? undefined : (s) => process.stderr.write(`${s}\n`) });
        if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
        else process.stdout.write(`### wdp bench kube — ${r.services} Services x ${r.endpoints_per_service} endpoints from the API-server double\n\n${kvTable(r as unknown as Record<string, unknown>)}\n`);
        process.exit(0);
      } catch (e) {
        process.stderr.write(`wdp bench: ${(e as Error).message}\n`);
        process.exit(1);
      }
    });
}
