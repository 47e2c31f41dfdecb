// `wdp demo` (what `npm start` runs).
//
// As root: builds a small cluster in network namespaces (a client, three pods each running an
// HTTP server that answers with its name), runs the real daemon (`wdp start`) in its own
// namespace, applies a Service + EndpointSlice through the control API, sends real HTTP requests
// through the dataplane and shows how they spread and what the counters say. Interactive: runs
// until Ctrl-C. Under CI / without a TTY: a fixed number of rounds (or --duration), then exits.
// Everything it created is removed, also on Ctrl-C or failure.
//
// Not root: runs the same Wasm core in this process on synthetic packets and prints the rate.
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { canUseNetns, sweepStale } from '../netns.js';
import { nativeAvailable } from '../ports/native.js';
import {
  buildTopology, startPods, startDaemon, destroyTopology, api, sleep, WDP_BIN, type Topology,
} from './topology.js';

export interface DemoOptions { durationS?: number; rounds?: number; mode: 'auto' | 'netns' | 'synthetic' }

const VIP = '10.96.0.10';
const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s: string) => (process.stdout.isTTY ? `\x1b[2m${s}\x1b[0m` : s);
const say = (s = '') => process.stdout.write(s + '\n');

function interactive(): boolean {
  return !!process.stdin.isTTY && !process.env.CI;
}

export async function runDemo(o: DemoOptions): Promise<number> {
  if (o.durationS !== undefined && !(o.durationS > 0)) { process.stderr.write('wdp demo: --duration must be a positive number of seconds\n'); return 2; }
  if (o.rounds !== undefined && !(Number.isInteger(o.rounds) && o.rounds > 0)) { process.stderr.write('wdp demo: --rounds must be a positive integer\n'); return 2; }
  const missing = netnsMissing();
  if (o.mode === 'netns' && missing) { process.stderr.write(`wdp demo: --mode netns needs ${missing}\n`); return 2; }
  if (o.mode === 'synthetic' || missing) {
    if (missing) say(`${bold('wdp demo')}: ${missing === ROOT ? 'not running as root, so no network namespaces' : `no network namespaces (they need ${missing})`} — running the same forwarding core on synthetic in-process traffic instead.\n`);
    const { runSynthetic } = await import('./synthetic.js');
    // --rounds counts one-second measuring rounds here (the HTTP rounds' stand-in); neither
    // bound given: a short run
    const durationS = o.durationS ?? (o.rounds !== undefined ? undefined : interactive() ? 5 : 2);
    return runSynthetic({ ...(durationS !== undefined ? { durationS } : {}), ...(o.rounds !== undefined ? { rounds: o.rounds } : {}) });
  }
  if (!nativeAvailable().ok) say(dim('(no native port addon: the daemon\'s ports are python3 relays, ~100x slower — npm run build:native with a Rust toolchain, https://rustup.rs, builds it)\n'));
  return runNetnsDemo(o);
}

const ROOT = 'root (sudo node bin/wdp.js demo)';

const onPath = (cmd: string): boolean => (process.env.PATH ?? '').split(':').some((d) => {
  try { accessSync(join(d || '.', cmd), constants.X_OK); return true; } catch { return false; }
});

/** What the namespace demo lacks here (root, the tools its topology and daemon run), with how to
 * get it; undefined: nothing. */
function netnsMissing(): string | undefined {
  if (!canUseNetns()) {
    if (process.platform !== 'linux') return 'Linux';
    if (typeof process.getuid === 'function' && process.getuid() !== 0) return ROOT;
    return 'iproute2\'s `ip` command on the PATH (apt-get install iproute2, dnf install iproute, apk add iproute2)';
  }
  if (!onPath('sysctl')) return '`sysctl` on the PATH (apt-get install procps, dnf install procps-ng, apk add procps)';
  // the daemon's ports: the native addon, else a python3 relay per port
  if (!nativeAvailable().ok && !onPath('python3')) {
    return 'the native port addon (npm run build:native, with a Rust toolchain: https://rustup.rs) or python3 on the PATH for the slower relay ports';
  }
  return undefined;
}

function bar(n: number, max: number, width = 30): string {
  const w = max ? Math.round((n / max) * width) : 0;
  return '█'.repeat(w) + ' '.repeat(width - w);
}

/** `count` sequential HTTP requests from the client namespace; returns how many each pod answered. */
async function requestRound(topo: Topology, count: number): Promise<{ byPod: Record<string, number>; failed: number; ms: number }> {
  const script = `
    const http = require('http');
    const out = { byPod: {}, failed: 0 };
    const t0 = Date.now();
    (async () => {
      for (let i = 0; i < ${count}; i++) {
        await new Promise((resolve) => {
          const req = http.get({ host: '${VIP}', port: 80, path: '/', agent: false, timeout: 2000 }, (res) => {
            let body = ''; res.on('data', (d) => body += d);
            res.on('end', () => { const p = body.trim(); out.byPod[p] = (out.byPod[p] || 0) + 1; resolve(); });
          });
          req.on('timeout', () => req.destroy(new Error('timeout')));
          req.on('error', () => { out.failed++; resolve(); });
        });
      }
      out.ms = Date.now() - t0;
      console.log(JSON.stringify(out));
    })();`;
  const r = await topo.lab.execAsync(topo.ns.client, process.execPath, ['-e', script], { timeoutMs: 10000 + count * 2500 });
  try { return JSON.parse(r.stdout.trim().split('\n').pop() ?? ''); } catch {
    return { byPod: {}, failed: count, ms: 0 };
  }
}

async function runNetnsDemo(o: DemoOptions): Promise<number> {
  const live = interactive();
  // --duration alone: rounds until it is up
  const rounds = o.rounds ?? (live || o.durationS !== undefined ? Infinity : 3);
  // --duration is the rounds' time, counted from the first round (as the synthetic run counts its
  // measuring time), not from before the namespaces and the daemon are set up: a short one would
  // otherwise be used up before a request was sent
  let deadline = Infinity;
  let stop = false;
  const onSignal = () => { if (stop) return; stop = true; say(`\n${dim('(stopping — cleaning up)')}`); };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let topo: Topology | undefined;
  let code = 0;
  try {
    say(bold('wdp demo — a Kubernetes Service forwarded by a WebAssembly dataplane, in network namespaces'));
    say();
    const stale = sweepStale();
    if (stale.length) say(dim(`      (removed ${stale.length} namespaces left behind by an earlier run that was killed)`));
    say(`${bold('[1/6]')} Building a tiny cluster out of network namespaces: one for the dataplane, a client, three pods.`);
    topo = buildTopology({ kind: 'd', pods: [{ name: 'pod-a', attach: 'tap' }, { name: 'pod-b', attach: 'afpacket' }, { name: 'pod-c', attach: 'tap' }], logLevel: 'warn' });
    for (const p of topo.pods) say(dim(`      ${p.name}  ${p.ip.padEnd(12)} attached by ${p.attach === 'tap' ? 'a TAP device the daemon creates in the pod namespace' : 'a veth pair, dataplane side read with AF_PACKET'}`));
    say(dim(`      client ${'10.0.0.2'.padEnd(12)} its default gateway 10.0.0.1 is the dataplane`));
    if (stop) return 130;

    say(`${bold('[2/6]')} Starting the daemon (\`wdp start\`) inside ${topo.ns.dp}: forwarding worker, ports, control API.`);
    await startDaemon(topo);
    if (stop) return 130;

    say(`${bold('[3/6]')} Starting an HTTP server in every pod; each answers with its own name.`);
    await startPods(topo, { http: [8080], udp: [] });
    if (stop) return 130;

    say(`${bold('[4/6]')} Applying Service default/hello (ClusterIP ${VIP}:80 → pods:8080) and its EndpointSlice via the API.`);
    const applied = await api(topo, 'POST', '/api/v1/apply', [
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'hello', namespace: 'default' }, spec: { clusterIP: VIP, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] } },
      {
        apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'hello-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'hello' } },
        addressType: 'IPv4', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
        endpoints: topo.pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true }, nodeName: 'node-a' })),
      },
    ]);
    if (applied.status !== 200) throw new Error(`apply failed (${applied.status}): ${applied.text}`);
    say(dim(`      dataplane generation ${applied.json.generation}: ${applied.json.diff.frontendsUpsert.length} frontend, ${applied.json.diff.backendsUpsert.length} backends programmed`));

    say(`${bold('[5/6]')} Sending HTTP requests from the client to http://${VIP}/ — the dataplane picks a pod (Maglev), rewrites`);
    say(`      the destination (DNAT), and un-NATs the replies so they come back from ${VIP}.${live && rounds === Infinity ? ' Ctrl-C to stop.' : ''}`);
    // the CLI as a fresh checkout runs it (README "Using it"): no `wdp` on the PATH there
    say(dim(`      (the same numbers meanwhile: \`node ${WDP_BIN} get counters --server unix:${topo.config.api.listen}\`)`));
    let prev = (await api(topo, 'GET', '/api/v1/counters')).json;
    let prevT = Date.now();
    if (o.durationS !== undefined) deadline = Date.now() + o.durationS * 1000;
    for (let round = 1; round <= rounds && !stop && Date.now() < deadline; round++) {
      const r = await requestRound(topo, 30);
      const now = (await api(topo, 'GET', '/api/v1/counters')).json;
      const dt = (Date.now() - prevT) / 1000;
      prevT = Date.now();
      const max = Math.max(0, ...Object.values(r.byPod));
      say(`      round ${round}: 30 requests in ${r.ms} ms${r.failed ? `, ${r.failed} FAILED` : ''}`);
      for (const p of topo.pods) say(`        ${p.name} ${bar(r.byPod[p.name] ?? 0, max)} ${r.byPod[p.name] ?? 0}`);
      const g = now.global, pg = prev.global;
      const drops = Object.values(now.drops as Record<string, number>).reduce((a, b) => a + b, 0);
      say(dim(`        dataplane: ${g.rx_packets} packets in (${Math.round((g.rx_packets - pg.rx_packets) / dt)}/s), ${g.forward} forwarded, ${g.ct_active} flows tracked, ${g.to_host} to the slow path (ARP, unroutable), ${drops} dropped`));
      prev = now;
      if (r.failed) code = 1;
      if (round < rounds && !stop && Date.now() < deadline) await sleep(live ? 2000 : 300);
    }
  } catch (e) {
    process.stderr.write(`wdp demo failed: ${(e as Error).message}\n`);
    if (topo?.daemonLog) process.stderr.write(dim(topo.daemonLog.split('\n').slice(-15).join('\n')) + '\n');
    code = 1;
  } finally {
    say(`${bold('[6/6]')} Cleaning up: stopping the daemon (SIGTERM) and deleting every namespace it created.`);
    await destroyTopology(topo).catch((e) => { process.stderr.write(`cleanup: ${(e as Error).message}\n`); code = 1; });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return stop ? (code || 0) : code;
}
