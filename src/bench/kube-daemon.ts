// `wdp bench kube`, the daemon as it runs on a node: a real `wdp start` with a `kubernetes:`
// section (forwarding worker on a TAP port, control API on a unix socket, desired-state store in a
// fresh state dir) in a private network namespace, fed by the API-server double — a child process
// in the same namespace, on its loopback (kube-double.ts), as test/kube-e2e.test.js runs it —
// holding N Services x M endpoints before the daemon starts:
//
//   initial list   spawn → the control API answers (the watcher starts right after: daemon.ts),
//                  then → the daemon's view, GET /api/v1/generation, says N Services and N
//                  EndpointSlices are programmed (the workers have switched to the tables holding
//                  them — the counts are the compiler's, so then until a trace through the
//                  worker's core reaches a backend of the last Service: the first sync is one
//                  apply of everything listed). Its CPU from /proc (all threads).
//   one endpoint   one EndpointSlice with its first endpoint moved, PUT to the double, until the
//                  daemon's generation moves (polled every ms: the figure is an upper bound by
//                  about that much and one API round trip); K of them over the whole set, p50/p99.
//                  The first and the last are checked with a trace through the worker's core.
//                  Also from the daemon's clock: PUT sent → its lastUpdated (after the switch and
//                  the store's commit; whole ms), which the polling does not blur.
//   restart        SIGTERM, then a new process on the same state dir with the double up:
//                  spawn → ready and spawn → forwarding, as `wdp bench control` times them.
//
// minSyncPeriod is 0 unless given (kube-proxy's default is 1 s: a change would wait for it).
import { request } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { spawn, type ChildProcess } from 'node:child_process';
import { ApiClient } from '../cli/client.js';
import { nsArgv, withNamespaces } from './peers/netns.js';
import { schedTotals } from './cpu-account.js';
import { cpuMs, DAEMON_BIN, expectBackend, percentile, restartFigures, startDaemon, stopDaemon, waitGeneration, waitReady, type Daemon, type RestartFigures } from './daemon-process.js';
import { clusterIP, namespaceOf, NODE_ADDRESS, NODE_NAME, slice, sliceName } from './kube-objects.js';
import { round } from './report.js';

const DOUBLE_JS = fileURLToPath(new URL('./kube-double.js', import.meta.url));
const GATEWAY_MAC = '02:77:64:70:00:fe';

export interface KubeDaemonResult extends RestartFigures {
  mode: 'daemon';
  services: number; endpoints_per_service: number; page_size: number; min_sync_period_ms: number;
  /** the double answered the first list in one response (an API server's watch cache), not in pages */
  watch_cache: boolean;
  /** the double's seeding (in its own process, before it listens) */
  seed_ms: number;
  /** spawn → the control API answers (0 Services; the watcher starts right after) */
  start_to_api_ms: number;
  /** spawn → GET /api/v1/generation says N Services and N EndpointSlices programmed */
  start_to_programmed_ms: number;
  /** the API answers → N programmed: the watcher's initial list, its sync and the program */
  list_to_programmed_ms: number;
  /** the daemon's CPU (all threads) over list_to_programmed and from spawn to programmed */
  list_to_programmed_cpu_ms: number | null;
  start_to_programmed_cpu_ms: number | null;
  /** the API answers → the full sync saved too (the control plane's lastUpdated: the store's
   * commit, which may end after the workers switched); the changes start after it */
  list_to_saved_ms: number;
  /** the double's CPU over list_to_programmed: serving the list pages (and the watches) */
  list_to_programmed_double_cpu_ms: number | null;
  list_pages: number;
  frontends: number; backends: number;
  rss_programmed_mb: number | null;
  one_endpoint_p50_ms: number; one_endpoint_p99_ms: number; one_endpoint_max_ms: number; one_endpoint_samples: number;
  /** PUT sent → the daemon's lastUpdated (GET /api/v1/generation; host wall clock, whole ms): set
   * once the workers switched and the store committed — without the polls' granularity */
  one_endpoint_updated_p50_ms: number; one_endpoint_updated_p99_ms: number;
  /** the PUT to the double until it answered (the watch event is written before the answer) */
  one_endpoint_put_p50_ms: number;
  one_endpoint_daemon_cpu_ms: number | null;
  one_endpoint_loadavg_1m: [number, number];
  stop_ms: number;
  rss_restarted_mb: number | null;
}

interface Generation { generation: number; lastUpdated: string; services: number; endpointSlices: number; frontends: number; backends: number }

function rssMb(pid: number | undefined): number | null {
  try { const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8')); return m ? round(Number(m[1]) / 1024, 0) : null; } catch { return null; }
}

/** Polls a trace to Service i through the worker's core until it selects a backend. */
async function waitTraceable(api: ApiClient, d: Daemon, i: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const tr = await api.call('POST', '/api/v1/trace', JSON.stringify({ src: '192.168.200.7', dst: clusterIP(i), proto: 'TCP', sport: 40000, dport: 80 })) as { backend?: { addr?: string } };
    if (tr.backend?.addr) return;
    if (d.child.exitCode !== null || d.child.signalCode !== null) throw new Error(`the daemon exited (${d.child.exitCode ?? d.child.signalCode}): ${d.log().trim().split('\n').slice(-3).join(' | ')}`);
    if (Date.now() > deadline) throw new Error(`no trace to Service ${i} reached a backend within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A request to the double's control socket (its REST paths, and /__double/stats). */
function doubleCall(sock: string, method: string, path: string, body?: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request({ socketPath: sock, method, path, headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {} }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => { if ((res.statusCode ?? 500) >= 300) reject(new Error(`the API-server double: ${method} ${path}: ${res.statusCode} ${text}`)); else resolve(JSON.parse(text)); });
    });
    req.on('error', reject);
    req.end(data);
  });
}

function startDouble(ns: string, o: { services: number; endpoints: number; watchCache?: boolean }, sock: string): Promise<{ child: ChildProcess; url: string; seedMs: number }> {
  const argv = nsArgv(['node', DOUBLE_JS, '--services', String(o.services), '--endpoints', String(o.endpoints), '--control', sock, ...(o.watchCache ? ['--watch-cache'] : [])], ns);
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  // killed with the bench if that exits first (the namespace helper exits on SIGINT/SIGTERM/SIGHUP):
  // a double left running would keep its deleted namespace alive
  const kill = (): void => { try { child.kill('SIGKILL'); } catch { /* gone */ } };
  process.on('exit', kill);
  child.once('exit', () => process.off('exit', kill));
  return new Promise((resolve, reject) => {
    let out = '', err = '';
    const t = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('the API-server double did not start within 10 minutes')); }, 600_000);
    child.stderr!.on('data', (d) => { err = (err + d).slice(-2000); });
    child.stdout!.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) { clearTimeout(t); const r = JSON.parse(out.slice(0, nl)) as { url: string; seedMs: number }; resolve({ child, ...r }); }
    });
    child.once('exit', (c) => { clearTimeout(t); reject(new Error(`the API-server double exited (${c}): ${err.trim()}`)); });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const hard = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => { clearTimeout(hard); resolve(); });
    child.kill('SIGTERM');
  });
}

export async function measureKubeDaemon(o: { services: number; endpoints: number; pageSize: number; changes: number; minSyncPeriodMs: number; watchCache?: boolean; progress?: (s: string) => void }): Promise<KubeDaemonResult> {
  const say = o.progress ?? (() => undefined);
  const dir = mkdtempSync(join(tmpdir(), 'wdp-bench-kube-'));
  // (an interrupted bench exits from the namespace helper's signal handler, past the finally below)
  const removeDir = (): void => rmSync(dir, { recursive: true, force: true });
  process.on('exit', removeDir);
  try {
    return await withNamespaces(['kube'], async ([ns]) => {
      const doubleSock = join(dir, 'double.sock');
      const dbl = await startDouble(ns, o, doubleSock);
      try {
        say(`the API-server double holds ${o.services} services x ${o.endpoints} endpoints (seeded in ${dbl.seedMs} ms)`);
        const kubeconfig = join(dir, 'kubeconfig');
        writeFileSync(kubeconfig, JSON.stringify({
          apiVersion: 'v1', kind: 'Config', 'current-context': 'd',
          clusters: [{ name: 'd', cluster: { server: dbl.url, 'insecure-skip-tls-verify': true } }],
          users: [{ name: 'd', user: {} }], contexts: [{ name: 'd', context: { cluster: 'd', user: 'd' } }],
        }));
        const sock = join(dir, 'api.sock');
        const config = join(dir, 'wdp.json');
        writeFileSync(config, JSON.stringify({
          node: { name: NODE_NAME, addresses: [NODE_ADDRESS] },
          ports: [{ name: 'pods', type: 'tap', ifname: 'wdpk0', role: 'pod' }],
          // every pod address behind one next hop: the backends resolve, as on a node
          routes: [{ prefix: '10.64.0.0/10', port: 'pods', mac: GATEWAY_MAC }, { prefix: '10.255.0.0/16', port: 'pods', mac: GATEWAY_MAC }],
          api: { listen: `unix:${sock}`, healthz: 'off' },
          stateDir: join(dir, 'state'), logLevel: 'warn', conntrack: { flows: 4096 },
          kubernetes: { kubeconfig, minSyncPeriod: o.minSyncPeriodMs, syncPeriod: '1h', listPageSize: o.pageSize },
        }));
        const api = new ApiClient({ server: `unix:${sock}`, timeoutMs: 300_000 });
        const programmed = (g: Generation) => g.services === o.services && g.endpointSlices === o.services;
        const t0 = performance.now();
        let d: Daemon = startDaemon(ns, config, DAEMON_BIN);
        try {
          await waitGeneration<Generation>(api, d, () => true, 120_000, 'answering', 2);
          const tApi = performance.now(), cApi = cpuMs(d.child.pid), dApi = cpuMs(dbl.child.pid), apiAt = Date.now();
          await waitGeneration<Generation>(api, d, programmed, 30 * 60_000, `compiled with ${o.services} services`, 5);
          // the counts are the compiler's, ahead of the workers: the full sync is one apply, so
          // once a trace through the worker's core finds a backend for the last Service, all are
          await waitTraceable(api, d, o.services - 1, 10 * 60_000);
          const tProg = performance.now(), cProg = cpuMs(d.child.pid), dProg = cpuMs(dbl.child.pid);
          const g = await api.call('GET', '/api/v1/generation') as Generation;
          const rssProgrammed = rssMb(d.child.pid);
          say(`programmed ${o.services} services in ${Math.round(tProg - tApi)} ms after the API answered (${Math.round(tProg - t0)} ms after spawn)`);
          const stats = await doubleCall(doubleSock, 'GET', '/__double/stats') as { listPages: number };
          // the changes start once the full sync is saved as well (its lastUpdated, set after the
          // store's commit): its commit's tail is the sync's, not the first changes'
          await waitGeneration<Generation>(api, d, (x) => programmed(x) && Date.parse(x.lastUpdated) > apiAt, 60_000, 'the full sync saved', 1);
          const tSaved = performance.now();

          // one endpoint moved in a different service each time, over the whole set
          const samples: number[] = [], puts: number[] = [], updated: number[] = [];
          const step = Math.max(1, Math.floor(o.services / o.changes));
          const latest = new Map<number, string>();
          let gen = g.generation;
          const loadBefore = loadavg()[0];
          const dc0 = schedTotals(d.child.pid);
          for (let k = 0; k < o.changes; k++) {
            const i = (k * step) % o.services;
            const addr = `10.255.${(k >> 8) & 255}.${(k & 255) || 1}`;
            const s0 = performance.now(), sentAt = Date.now();
            const put = doubleCall(doubleSock, 'PUT', `/apis/discovery.k8s.io/v1/namespaces/${namespaceOf(i)}/endpointslices/${sliceName(i)}`, slice(i, o.endpoints, 0, addr));
            await put;
            puts.push(performance.now() - s0);
            const g2 = await waitGeneration<Generation>(api, d, (x) => x.generation !== gen, 60_000, `programmed with change ${k}`, 1);
            samples.push(performance.now() - s0);
            // lastUpdated is the control plane's, set once the change is saved too, after the
            // workers' switch that moves the generation: a poll between the two reads the previous
            // change's time
            const g3 = Date.parse(g2.lastUpdated) >= sentAt ? g2
              : await waitGeneration<Generation>(api, d, (x) => Date.parse(x.lastUpdated) >= sentAt, 60_000, `saved with change ${k}`, 1);
            updated.push(Date.parse(g3.lastUpdated) - sentAt);
            gen = g2.generation;
            latest.set(i, addr);
          }
          const loadAfter = loadavg()[0];
          const dc1 = schedTotals(d.child.pid);
          for (const i of new Set([0, ((o.changes - 1) * step) % o.services])) {
            const addr = latest.get(i);
            if (addr) await expectBackend(api, { clusterIP: clusterIP(i), proto: 'TCP', port: 80, endpoints: new Array(o.endpoints) }, addr);
          }
          say(`${o.changes} one-endpoint changes: p50 ${percentile([...samples].sort((a, b) => a - b), 50).toFixed(1)} ms`);

          const st0 = performance.now();
          await stopDaemon(d);
          const stop = performance.now() - st0;
          const r0 = performance.now();
          d = startDaemon(ns, config, DAEMON_BIN);
          await waitReady(api, d, o.services, 600_000);
          const restart = await restartFigures(api, d, performance.now() - r0);
          const rssRestarted = rssMb(d.child.pid);
          say(`restarted: ready in ${Math.round(restart.restart_to_ready_ms)} ms`);
          samples.sort((a, b) => a - b);
          puts.sort((a, b) => a - b);
          updated.sort((a, b) => a - b);
          return {
            mode: 'daemon', services: o.services, endpoints_per_service: o.endpoints, page_size: o.pageSize, min_sync_period_ms: o.minSyncPeriodMs, watch_cache: !!o.watchCache,
            seed_ms: dbl.seedMs, start_to_api_ms: round(tApi - t0, 0), start_to_programmed_ms: round(tProg - t0, 0), list_to_programmed_ms: round(tProg - tApi, 0), list_to_saved_ms: round(tSaved - tApi, 0),
            list_to_programmed_cpu_ms: cApi !== null && cProg !== null ? round(cProg - cApi, 0) : null, start_to_programmed_cpu_ms: cProg === null ? null : round(cProg, 0),
            list_to_programmed_double_cpu_ms: dApi !== null && dProg !== null ? round(dProg - dApi, 0) : null,
            list_pages: stats.listPages, frontends: g.frontends, backends: g.backends, rss_programmed_mb: rssProgrammed,
            one_endpoint_p50_ms: round(percentile(samples, 50), 1), one_endpoint_p99_ms: round(percentile(samples, 99), 1), one_endpoint_max_ms: round(samples[samples.length - 1], 1),
            one_endpoint_samples: samples.length, one_endpoint_put_p50_ms: round(percentile(puts, 50), 1),
            one_endpoint_updated_p50_ms: percentile(updated, 50), one_endpoint_updated_p99_ms: percentile(updated, 99),
            one_endpoint_daemon_cpu_ms: dc0 && dc1 ? round((dc1[0] - dc0[0]) / 1e6 / o.changes, 2) : null,
            one_endpoint_loadavg_1m: [loadBefore, loadAfter],
            stop_ms: round(stop, 0), ...restart, restart_to_ready_ms: round(restart.restart_to_ready_ms, 0),
            restart_to_forwarding_ms: restart.restart_to_forwarding_ms === null ? null : round(restart.restart_to_forwarding_ms, 0), rss_restarted_mb: rssRestarted,
          };
        } finally {
          await stopDaemon(d);
        }
      } finally {
        await stopChild(dbl.child);
      }
    });
  } finally {
    process.off('exit', removeDir);
    removeDir();
  }
}
