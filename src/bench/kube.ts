// `wdp bench kube`: the Kubernetes watcher (src/kube/) programming a cluster's initial state —
// N Services x M endpoints listed from the API-server double in pages of --page-size — then
// one-endpoint changes. By default the daemon as it runs on a node (kube-daemon.ts: `wdp start`
// with a kubernetes: section, a state dir and a TAP port, in a network namespace; restart too).
// --in-process: the watcher alone, in this process, over an in-thread core and no state dir,
// the double on this process's loopback — what the watcher and the compiler cost without the
// daemon's workers, store and API (runKubeBench below).
// Reported, never asserted: the figures include serving the list from the same 2 cores.
import { loadavg } from 'node:os';
import { InvalidArgumentError, type Command } from 'commander';
import { kvTable, round } from './report.js';
import { durationArg } from '../util/duration.js';
import { ip, loadDouble, seed, slice } from './kube-objects.js';
import { measureKubeDaemon } from './kube-daemon.js';
import { daemonUnavailable } from './daemon-process.js';

export interface KubeBenchResult {
  mode: 'in-process';
  services: number; endpoints_per_service: number; page_size: number;
  seed_ms: number; list_ms: number; first_sync_ms: number; programmed_ms: number;
  full_sync_apply_ms: number; list_pages: number; frontends: number; backends: number;
  one_endpoint_change_ms: number; rss_mb: number;
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
  seed(double, o.services, o.endpoints);
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
      mode: 'in-process', services: o.services, endpoints_per_service: o.endpoints, page_size: o.pageSize,
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

export function registerKubeBench(bench: Command, hostInfo: () => object): void {
  bench.command('kube')
    .description('Kubernetes watcher: `wdp start` with a kubernetes: section in a network namespace lists N services x M endpoints from the API-server double until programmed, then one-endpoint changes and a restart')
    .option('--services <n>', 'services', intArg('--services', 1, 200_000), 10_000)
    .option('--endpoints <m>', 'endpoints per service (one EndpointSlice each)', intArg('--endpoints', 1, 1000), 10)
    .option('--page-size <n>', 'list page size (client-go\'s reflector: 500)', intArg('--page-size', 1, 10_000), 500)
    .option('--changes <k>', 'one-endpoint changes, each in another Service (daemon mode)', intArg('--changes', 1, 100_000), 200)
    .option('--min-sync-period <duration>', 'kubernetes.minSyncPeriod of the daemon: 1s, 500ms, or a bare number of milliseconds (kube-proxy\'s default is 1s)', durationArg({ flag: '--min-sync-period', unit: 'ms', min: 0, max: 60_000, integer: true }), 0)
    .option('--watch-cache', 'the double answers the first list in one response, as an API server with its watch cache (its default) does; without it, in pages of --page-size (daemon mode)')
    .option('--in-process', 'the watcher alone in this process over an in-thread core (no daemon, no root needed)')
    .option('--json', 'one JSON object on stdout')
    .option('--quiet', 'no progress on stderr')
    .action(async (o: { services: number; endpoints: number; pageSize: number; changes: number; minSyncPeriod: number; inProcess?: boolean; watchCache?: boolean; json?: boolean; quiet?: boolean }) => {
      try {
        const progress = o.quiet ? undefined : (s: string) => process.stderr.write(`${s}\n`);
        const loadStart = round(loadavg()[0], 2);
        let r: object;
        if (o.inProcess) r = await runKubeBench({ ...o, progress });
        else {
          const why = daemonUnavailable();
          if (why) throw new Error(`${why} (--in-process measures the watcher without the daemon)`);
          r = await measureKubeDaemon({ ...o, minSyncPeriodMs: o.minSyncPeriod, progress });
        }
        const out = { ...r, loadavg_1m_start: loadStart, host: hostInfo() };
        const rr = r as { services: number; endpoints_per_service: number };
        if (o.json) process.stdout.write(JSON.stringify(out) + '\n');
        else process.stdout.write(`### wdp bench kube${o.inProcess ? ' --in-process' : ''} — ${rr.services} Services x ${rr.endpoints_per_service} endpoints from the API-server double\n\n${kvTable(out as unknown as Record<string, unknown>)}\n`);
        process.exit(0);
      } catch (e) {
        process.stderr.write(`wdp bench: ${(e as Error).message}\n`);
        process.exit(1);
      }
    });
}
