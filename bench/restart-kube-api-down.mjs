#!/usr/bin/env node
// Restart to forwarding with the Kubernetes API server away, per daemon build (A/B): a `wdp start`
// in kube mode (node addresses from the Node, not configured) in a private network namespace,
// watching the API-server double (test/lib/apiserver-double.js, a child in the same namespace)
// seeded with N Services x M endpoints. Each run, per build:
//   1. start with the API answering (the first run syncs the cluster; later ones restore), wait
//      until every Service is programmed and the Node's address is the node's, SIGTERM (the stop
//      writes the table images);
//   2. point the kubeconfig where nothing listens (connection refused: the API server's host is up,
//      the server is not — a blackholed one adds the start's one Node read, up to 5 s), start,
//      and time spawn → forwarding: spawn → ready (the API answers with every Service programmed
//      and forwarding resumed) less what the restore summary says lay between forwarding and
//      ready (as `wdp bench control` does); with the images, the process's CPU time until it forwarded
//      from them (all threads); also whether the table images were used and the node
//      addresses it answers NodePorts on (the Node's, as last seen); SIGTERM.
// Builds alternate ABBA (drift in a shared machine's load hits each alike); prints every run, each
// build's medians and their ratio to the first build's. Needs root (namespaces, a TAP port).
//
//   node bench/restart-kube-api-down.mjs ROUNDS NAME=PATH/bin/wdp.js [NAME=...] [--services N] [--endpoints M]
//   e.g. node bench/restart-kube-api-down.mjs 3 base=/tmp/base/bin/wdp.js new=$PWD/bin/wdp.js
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiClient } from '../dist/src/cli/client.js';
import { createNs, deleteNs, nsArgv } from '../dist/src/bench/peers/netns.js';
import { service, slice } from '../dist/src/bench/kube.js';
import { median } from '../dist/src/bench/report.js';

const NODE = 'bench-node', NODE_IP = '192.168.77.1';
const argv = process.argv.slice(2);
const opt = (name, dflt) => { const i = argv.indexOf(`--${name}`); return i < 0 ? dflt : Number(argv[i + 1]); };
const services = opt('services', 10000), endpoints = opt('endpoints', 10);

if (argv[0] === '--double') {
  // the double's process (in the namespace): seeded in memory, then listening on loopback
  const { ApiServerDouble } = await import('../test/lib/apiserver-double.js');
  const d = new ApiServerDouble({ bookmarkIntervalMs: 60000 });
  d.create('nodes', { metadata: { name: NODE }, spec: { podCIDRs: ['10.244.1.0/24'] }, status: { addresses: [{ type: 'InternalIP', address: NODE_IP }] } });
  for (let i = 0; i < services; i++) { d.create('services', service(i)); d.create('endpointslices', slice(i, endpoints)); }
  await d.listen('127.0.0.1', 0);
  console.log(JSON.stringify({ url: d.url }));
  process.on('SIGTERM', () => d.close().then(() => process.exit(0)));
} else await main();

async function main() {
  const positional = argv.filter((a, i) => !a.startsWith('--') && !argv[i - 1]?.startsWith('--'));
  const [rounds, ...specs] = positional;
  if (!(Number(rounds) > 0) || !specs.length) { console.error('usage: restart-kube-api-down.mjs ROUNDS NAME=BIN [NAME=BIN ...] [--services N] [--endpoints M]'); process.exit(2); }
  const builds = specs.map((s) => ({ name: s.slice(0, s.indexOf('=')), bin: s.slice(s.indexOf('=') + 1), runs: [] }));
  const dir = mkdtempSync(join(tmpdir(), 'wdp-bench-apidown-'));
  const ns = await createNs('apidown');
  const children = new Set();
  // (a signal ends this process through the namespace helper's hook, without the finally below)
  process.on('exit', () => { for (const c of children) c.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }); });
  const child = (args) => {
    const argv2 = nsArgv(args, ns);
    const c = spawn(argv2[0], argv2.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(c); c.once('exit', () => children.delete(c));
    let log = '';
    const keep = (b) => { log = (log + b).slice(-4000); };
    c.stdout.on('data', keep); c.stderr.on('data', keep);
    c.log = () => log;
    return c;
  };
  try {
    const double = child([process.execPath, fileURLToPath(import.meta.url), '--double', '--services', String(services), '--endpoints', String(endpoints)]);
    const url = await new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error(`the double did not start: ${double.log()}`)), 300_000);
      double.stdout.on('data', () => { const m = /"url":"([^"]+)"/.exec(double.log()); if (m) { clearTimeout(t); res(m[1]); } });
      double.once('exit', (c) => rej(new Error(`the double exited ${c}: ${double.log()}`)));
    });
    const kubeconfig = (server, name) => {
      const f = join(dir, name);
      writeFileSync(f, JSON.stringify({
        apiVersion: 'v1', kind: 'Config', 'current-context': 'd', clusters: [{ name: 'd', cluster: { server, 'insecure-skip-tls-verify': true } }], // (plain HTTP needs it)
        users: [{ name: 'd', user: {} }], contexts: [{ name: 'd', context: { cluster: 'd', user: 'd' } }],
      }));
      return f;
    };
    const up = kubeconfig(url, 'kubeconfig'), away = kubeconfig('http://127.0.0.1:9', 'kubeconfig-away');
    const sock = join(dir, 'api.sock'), config = join(dir, 'wdp.json');
    const writeConfig = (kc) => writeFileSync(config, JSON.stringify({
      node: { name: NODE },
      ports: [{ name: 'pods', type: 'tap', ifname: 'wdpb0', role: 'pod' }],
      routes: [{ prefix: '10.0.0.0/8', port: 'pods', mac: '02:77:64:70:00:fe' }],
      api: { listen: `unix:${sock}`, healthz: 'off' },
      stateDir: join(dir, 'state'), logLevel: 'warn', conntrack: { flows: 4096 },
      kubernetes: { kubeconfig: kc, minSyncPeriod: '100ms', healthzBindAddress: 'off', metricsBindAddress: 'off', nodeWaitSeconds: 60 },
    }));
    const api = new ApiClient({ server: `unix:${sock}`, timeoutMs: 300_000 });
    const ready = async (d, timeoutMs, also = async () => true) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (d.exitCode !== null || d.signalCode !== null) throw new Error(`the daemon exited: ${d.log()}`);
        try {
          const g = await api.call('GET', '/api/v1/generation');
          if (g.services === services && (g.restore === undefined || (g.restore.durationMs ?? 0) > 0) && await also()) return g;
        } catch { /* not listening yet */ }
        if (Date.now() > deadline) throw new Error(`not ready within ${timeoutMs} ms: ${d.log()}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    const stop = (d) => new Promise((res) => {
      if (d.exitCode !== null || d.signalCode !== null) return res();
      const hard = setTimeout(() => d.kill('SIGKILL'), 30_000);
      d.once('exit', () => { clearTimeout(hard); res(); });
      d.kill('SIGTERM');
    });
    const nodeRead = async () => (await api.call('GET', '/api/v1/nodeconfig')).spec?.nodeAddresses?.[0] === NODE_IP;
    const run = async (b) => {
      writeConfig(up);
      let d = child([process.execPath, b.bin, 'start', '--config', config]);
      await ready(d, 600_000, nodeRead);
      await stop(d);
      writeConfig(away);
      const load = loadavg()[0];
      const t0 = performance.now();
      d = child([process.execPath, b.bin, 'start', '--config', config]);
      const g = await ready(d, 300_000);
      const toReady = performance.now() - t0;
      const r = g.restore ?? {};
      const toForwarding = toReady - Math.max(0, (r.readyAfterMs ?? 0) - (r.forwardingAfterMs ?? r.readyAfterMs ?? 0));
      const used = (r.images ?? []).filter((x) => x.used).length;
      // the NodePort addresses the restart answers on while the Node cannot be read
      const addrs = (await api.call('GET', '/api/v1/nodeconfig')).spec?.nodeAddresses ?? [];
      await stop(d);
      const x = { load, toForwarding, toReady, images: `${used}/${(r.images ?? []).length}`, problem: r.images?.find((i) => !i.used)?.problem, addrs,
        cpuToForwarding: Math.min(...(r.images ?? []).filter((i) => i.used && i.cpuMs !== undefined).map((i) => i.cpuMs)) };
      b.runs.push(x);
      console.log(`${new Date().toISOString().slice(11, 19)} ${b.name.padEnd(8)} load ${load.toFixed(1)} restart_to_forwarding_ms=${Math.round(toForwarding)} restart_to_ready_ms=${Math.round(toReady)}${Number.isFinite(x.cpuToForwarding) ? ` cpu_to_forwarding_ms=${x.cpuToForwarding}` : ''} images_used=${x.images}${x.problem ? ` (${x.problem})` : ''} node_addresses=${JSON.stringify(addrs)}`);
    };
    for (let i = 0; i < Number(rounds); i++) for (const b of i % 2 ? [...builds].reverse() : builds) await run(b);
    const med = (b, f) => median(b.runs.map((x) => x[f]));
    for (const b of builds) console.log(`MEDIAN ${b.name.padEnd(8)} n=${b.runs.length} load ${Math.min(...b.runs.map((x) => x.load)).toFixed(1)}–${Math.max(...b.runs.map((x) => x.load)).toFixed(1)} restart_to_forwarding_ms=${Math.round(med(b, 'toForwarding'))} restart_to_ready_ms=${Math.round(med(b, 'toReady'))}`);
    for (const b of builds.slice(1)) console.log(`RATIO  ${b.name}/${builds[0].name} restart_to_forwarding=${(med(b, 'toForwarding') / med(builds[0], 'toForwarding')).toFixed(2)} restart_to_ready=${(med(b, 'toReady') / med(builds[0], 'toReady')).toFixed(2)}`);
  } finally {
    for (const c of children) c.kill('SIGKILL');
    await deleteNs(ns);
    rmSync(dir, { recursive: true, force: true });
  }
}
