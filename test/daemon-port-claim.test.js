// Two daemons with different state directories (the state lock does not see them) must not share an
// interface or an API address: a second `wdp start` naming a running daemon's interface
// (src/daemon/interface-claim.ts) or its API address (src/daemon/listen-check.ts) is refused before
// it changes anything — no drop chain, no IPv6 or link change (watched with `nft monitor` and
// `ip monitor` for the whole refused start), the running daemon forwarding on. Before, the second
// one put its drop chains, sockets and IPv6 changes over the first's ports (and on a unix socket
// took the first's API over); now it exits 1 naming the interfaces and the running daemon's pid.
// A claim whose holder was killed blocks nobody; a runtime port on another daemon's interface is
// refused (409); a daemon starting in the same namespace leaves the other's drop chains alone. The daemons
// share one run directory (WDP_RUN_DIR, as the daemons of a node share /run/wdp): the lab's, under its
// directory, removed with it (src/demo/topology.ts daemonEnv). The demo topology (client, remote, a pod on an AF_PACKET veth) in network
// namespaces this test makes; the daemons run in its dataplane namespace.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildTopology, startDaemon, startPods, destroyTopology, api, curlOk, serviceYaml, sliceYaml, readyEndpoints, rootGate, ROOT, WDP, sleep } from './lib/topology.js';
import { systemTool } from '../dist/src/util/system-tool.js';
import { daemonEnv } from '../dist/src/demo/topology.js';
import { within } from './lib/bounded-wait.js';

const NFT = systemTool('nft');
const gate = rootGate(test);
const serial = gate.ok && NFT ? test.serial : test.skip;
const CLUSTER_IP = '10.96.7.10';

let topo;
test.before(async () => {
  if (!gate.ok || !NFT) return;
  topo = buildTopology({ pods: [{ name: 'pod-a', attach: 'afpacket' }], kind: 'pc' });
  try {
    await startDaemon(topo);
    await startPods(topo);
    const r = await api(topo, 'POST', '/api/v1/apply', [
      serviceYaml({ name: 'web', clusterIP: CLUSTER_IP, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] }),
      sliceYaml({ name: 'web-1', service: 'web', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: readyEndpoints(topo.pods) }),
    ]);
    if (r.status !== 200) throw new Error(`apply: ${r.status} ${r.text}`);
  } catch (e) { await destroyTopology(topo); topo = undefined; throw e; }
});
test.after.always(async () => { await destroyTopology(topo); });

/** The running daemon (A) forwards: a request from the client to the Service reaches the pod. */
async function forwards(t, what) {
  const r = await curlOk(topo, topo.ns.client, `http://${CLUSTER_IP}/`);
  t.is(r?.code, 0, `${what}: ${r?.stderr}`);
  t.regex(r?.body ?? '', /pod-a/, what);
}

/** Every change of the ruleset and of the links, addresses, routes and IPv6 settings of the
 * dataplane namespace while `fn` runs. */
async function watched(fn) {
  const watch = (cmd, args) => {
    const c = topo.lab.spawn(topo.ns.dp, cmd, args);
    let out = '';
    c.stdout.on('data', (x) => { out += x; });
    return { stop: () => c.kill('SIGKILL'), out: () => out };
  };
  const nft = watch(NFT, ['monitor']), ip = watch('ip', ['monitor', 'link', 'address', 'route', 'netconf']);
  await sleep(500);   // (the monitors subscribed)
  try {
    const r = await fn();
    await sleep(500);
    return { r, nft: nft.out(), ip: ip.out() };
  } finally { nft.stop(); ip.stop(); }
}

/** `wdp start` with `config` in the dataplane namespace, which must fail: its exit and output. */
function failingStart(config, name) {
  const file = join(topo.dir, name);
  writeFileSync(file, JSON.stringify(config));
  return topo.lab.execAsync(topo.ns.dp, 'env', [`WDP_RUN_DIR=${topo.runDir}`, process.execPath, WDP, 'start', '--config', file], { timeoutMs: 90_000 });
}

/** `wdp start` with `config` in the dataplane namespace, which must come up: the child, its output
 * so far (out(): stdout and stderr together) and its exit code to come; killed at the test's end. */
async function runningStart(t, config, name) {
  const file = join(topo.dir, name);
  writeFileSync(file, JSON.stringify(config));
  const child = topo.lab.spawn(topo.ns.dp, process.execPath, [WDP, 'start', '--config', file], { cwd: ROOT, env: daemonEnv(topo) });
  let text = '';
  child.stdout.on('data', (x) => { text += x; });
  child.stderr.on('data', (x) => { text += x; });
  const exited = new Promise((res) => child.once('exit', (code) => res(code)));
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  for (let i = 0; i < 900 && !/control API listening/.test(text) && child.exitCode === null; i++) await sleep(100);
  t.regex(text, /control API listening/, text.slice(-3000));
  return { child, out: () => text, exited };
}

const dropChains = () => topo.lab.exec(topo.ns.dp, NFT, ['list', 'table', 'netdev', 'wdp']).stdout;

serial('a second daemon (another state directory) on the running one\'s interfaces is refused before it touches them', async (t) => {
  await forwards(t, 'before');
  const chainsBefore = dropChains();
  const b = { ...topo.config, stateDir: join(topo.dir, 'state-b'), api: { listen: join(topo.dir, 'b.sock'), healthz: 'off' } };
  const { r, nft, ip } = await watched(() => failingStart(b, 'b.json'));
  t.is(r.code, 1, r.stderr);
  const pid = topo.daemon.pid;
  for (const [port, ifname] of [['client', 'c0'], ['remote', 'r0'], ['pod-a', 'v0']]) {
    t.regex(r.stderr, new RegExp(`port "${port}": interface "${ifname}" is a port of another running wdp \\(pid ${pid} in its PID namespace, state directory ${topo.config.stateDir}, its port "${port}"\\)`), r.stderr);
  }
  t.notRegex(r.stdout, /handed back/, 'nothing to hand back');
  t.is(nft.trim(), '', 'no change to the ruleset during the refused start');
  t.is(ip.trim(), '', 'no change to links, addresses, routes during the refused start');
  t.is(dropChains(), chainsBefore, 'the running daemon\'s drop chains as they were');
  t.is(topo.daemon.exitCode, null, 'the running daemon runs on');
  await forwards(t, 'after the refused start');
});

serial('a second daemon on the running one\'s API socket (other interfaces) is refused before it takes its own', async (t) => {
  topo.lab.veth(topo.ns.dp, 'x0', topo.ns.remote, 'x0p');
  const before = topo.lab.exec(topo.ns.dp, 'ip', ['-d', 'addr', 'show', 'dev', 'x0']).stdout;
  const c = {
    ...topo.config, stateDir: join(topo.dir, 'state-c'),
    ports: [{ name: 'up', type: 'afpacket', ifname: 'x0', role: 'uplink', gateways: ['10.99.0.1'] }],
  };
  const { r, nft, ip } = await watched(() => failingStart(c, 'c.json'));
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, new RegExp(`^wdp start: cannot start: .*api\\.listen ${topo.config.api.listen}: another process listens on that socket`, 'm'));
  t.is(nft.trim(), '', 'no change to the ruleset during the refused start');
  t.is(ip.trim(), '', 'no change to links, addresses, routes during the refused start');
  t.is(topo.lab.exec(topo.ns.dp, 'ip', ['-d', 'addr', 'show', 'dev', 'x0']).stdout, before, 'x0 untouched');
  t.is((await api(topo, 'GET', '/healthz')).status, 200, 'the running daemon keeps its API');
  await forwards(t, 'after the refused start');
});

serial('a daemon on other interfaces of the namespace leaves the running one\'s drop chains; a runtime port on its interface is refused (409) and leaves it alone', async (t) => {
  topo.lab.veth(topo.ns.dp, 'x1', topo.ns.remote, 'x1p');
  const d = {
    ...topo.config, stateDir: join(topo.dir, 'state-d'), api: { listen: join(topo.dir, 'd.sock'), healthz: 'off' },
    ports: [{ name: 'up', type: 'afpacket', ifname: 'x1', role: 'uplink', gateways: ['10.99.1.1'] }],
  };
  const { child, out, exited } = await runningStart(t, d, 'd.json');
  // its start removes the drop chains no port of its own accounts for — not the running daemon's
  for (const chain of ['in_c0', 'in_r0', 'in_v0']) t.regex(dropChains(), new RegExp(`chain ${chain} `), `${chain} stays`);
  t.regex(out(), /a drop chain of another running wdp's port: left alone/);
  writeFileSync(join(topo.dir, 'port.json'), JSON.stringify({ name: 'steal', type: 'afpacket', ifname: 'v0', role: 'pod', gateways: ['10.244.0.1'] }));
  const { r, nft } = await watched(async () => ({
    cli: spawnSync(process.execPath, [WDP, '--server', `unix:${d.api.listen}`, 'port', 'add', '-f', join(topo.dir, 'port.json')], { encoding: 'utf8', cwd: ROOT, timeout: 60_000 }),
    http: await api({ config: d }, 'POST', '/api/v1/ports', { name: 'steal', type: 'afpacket', ifname: 'v0', role: 'pod', gateways: ['10.244.0.1'] }),
  }));
  t.not(r.cli.status, 0);
  t.regex(r.cli.stderr, new RegExp(`interface "v0" is a port of another running wdp \\(pid ${topo.daemon.pid} `), r.cli.stderr);
  t.is(r.http.status, 409, r.http.text);
  t.is(nft.trim(), '', 'no change to the ruleset');
  await forwards(t, 'after the refused add');
  child.kill('SIGTERM');
  t.is(await within(exited, 60_000, () => 'timeout'), 0, out().slice(-3000));
});

serial('a claim whose holder was killed blocks nobody: another daemon takes the interfaces', async (t) => {
  topo.daemon.kill('SIGKILL');
  await new Promise((r) => { if (topo.daemon.exitCode !== null || topo.daemon.signalCode !== null) r(); else topo.daemon.once('exit', r); });
  const e = { ...topo.config, stateDir: join(topo.dir, 'state-e'), api: { listen: join(topo.dir, 'e.sock'), healthz: 'off' } };
  const { child, out, exited } = await runningStart(t, e, 'e.json');
  // what the killed one had saved of them is the interfaces' (beside their claims), found by this one
  t.regex(out(), /an interface a wdp did not hand back \(killed\): what it had before that wdp took it is what it gets back/);
  child.kill('SIGTERM');
  t.is(await within(exited, 60_000, () => 'timeout'), 0, out().slice(-3000));
  t.deepEqual(readdirSync(join(topo.runDir, 'interfaces')), [], 'no claim or hand-back record left in the shared run directory');
});
