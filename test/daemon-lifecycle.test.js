// `wdp start` as a process: refuses bad configs with a clear message, serves the API and the
// `wdp` CLI, stops cleanly on SIGTERM (exit 0, ports closed, TAP devices gone), and restores the
// persisted Services on restart so traffic flows again without re-applying anything.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  canUseNetns, buildTopology, startPods, startDaemon, destroyTopology, api, curl, serviceYaml, sliceYaml, sleep, logged, WDP,
} from './lib/topology.js';
import { CHECKPOINT_FILE } from '../dist/src/daemon/checkpoint.js';

const root = canUseNetns();

test('a bad config is refused before anything starts, listing every problem', (t) => {
  const dir = join(process.env.TMPDIR ?? '/tmp', `wdp-badcfg-${process.pid}.yaml`);
  writeFileSync(dir, 'node: {name: Node_A}\nports:\n  - {name: p, type: pcap, ifname: t0, role: pod, gateways: [10.0.0.300]}\nworkers: 0\n');
  const r = spawnSync(process.execPath, [WDP, 'start', '--config', dir], { encoding: 'utf8', timeout: 20000 });
  t.is(r.status, 2);
  t.regex(r.stderr, /invalid config/);
  t.regex(r.stderr, /node\.name/);
  t.regex(r.stderr, /ports\[0\]\.type/);
  t.regex(r.stderr, /ports\[0\]\.gateways\[0\]/);
  t.regex(r.stderr, /workers/);
});

const serial = root ? test.serial : test.skip;

let topo;
test.before(() => {
  if (!root) return;
  topo = buildTopology({ pods: [{ name: 'pod-a', attach: 'tap' }, { name: 'pod-b', attach: 'afpacket' }] });
});
test.after.always(async () => { await destroyTopology(topo); });

serial('a missing interface is a clear startup error, not a crash', async (t) => {
  const cfg = structuredClone(topo.config);
  cfg.ports[0].ifname = 'nope0';
  const file = join(topo.dir, 'missing-if.yaml');
  writeFileSync(file, JSON.stringify(cfg));
  const r = await topo.lab.execAsync(topo.ns.dp, process.execPath, [WDP, 'start', '--config', file], { timeoutMs: 30000 });
  t.is(r.code, 1);
  t.regex(r.stderr, /interface "nope0" does not exist/);
});

serial('SIGTERM stops cleanly; a restart restores the saved services and forwards again', async (t) => {
  // pod-b (a veth: its MAC is known now) is configured statically; pod-a is listed without a MAC
  // (the daemon must ask for it, as nothing in pod-a talks on its own)
  const [podA, podB] = topo.pods;
  const podBMac = topo.lab.mac(podB.ns, podB.ifname);
  topo.config.ports[2].pods = [{ ip: podA.ip }];
  topo.config.ports[3].pods = [{ ip: podB.ip, mac: podBMac }];
  writeFileSync(topo.configFile, JSON.stringify(topo.config));
  let t1 = Date.now();
  await startDaemon(topo);
  t.log(`first start: API up after ${Date.now() - t1} ms`);
  await startPods(topo);
  t.log(`pods up after ${Date.now() - t1} ms`);
  let nc;
  for (let i = 0; i < 50; i++) {
    nc = (await api(topo, 'GET', '/api/v1/nodeconfig')).json;
    if (nc.spec.neighbours.some((n) => n.address === podA.ip)) break;
    await sleep(100);
  }
  const byAddr = Object.fromEntries(nc.spec.neighbours.map((n) => [n.address, n]));
  t.is(byAddr[podB.ip]?.mac, podBMac, 'static neighbour programmed');
  t.is(byAddr[podB.ip]?.port, 3);
  t.truthy(byAddr[podA.ip], `pod-a resolved by probing before any Service exists: ${JSON.stringify(nc.spec.neighbours)}`);
  t.is(byAddr[podA.ip].mac, topo.lab.mac(podA.ns, podA.ifname));
  t.is(byAddr[podA.ip].port, 2);
  const r = await api(topo, 'POST', '/api/v1/apply', [
    serviceYaml({ name: 'web', clusterIP: '10.96.3.10', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] }),
    sliceYaml({ name: 'web-1', service: 'web', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: topo.pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true } })) }),
  ]);
  t.is(r.status, 200, r.text);
  let ok;
  for (let i = 0; i < 20 && ok?.code !== 0; i++) { ok = await curl(topo, topo.ns.client, 'http://10.96.3.10/', { timeout: 3 }); if (ok.code) await sleep(200); }
  t.is(ok.code, 0, ok.stderr);

  // the wdp CLI talks to the running daemon
  const server = `unix:${topo.config.api.listen}`;
  const status = spawnSync(process.execPath, [WDP, 'status', '--server', server, '-o', 'json'], { encoding: 'utf8', timeout: 20000 });
  t.is(status.status, 0, status.stderr);
  t.is(JSON.parse(status.stdout).services, 1);
  const counters = spawnSync(process.execPath, [WDP, 'get', 'counters', '--server', server, '-o', 'json'], { encoding: 'utf8', timeout: 20000 });
  t.is(counters.status, 0, counters.stderr);
  t.true(JSON.parse(counters.stdout).global.forward > 0);

  // SIGTERM: exit 0; the TAP the daemon created (living in the pod namespace) is persistent and
  // stays for the next start (test/native-tap-restart-e2e.test.js checks its addresses and routes)
  const d = topo.daemon;
  const exited = new Promise((res) => d.once('exit', (code, sig) => res({ code, sig })));
  d.kill('SIGTERM');
  const how = await exited;
  t.deepEqual(how, { code: 0, sig: null }, topo.daemonLog.slice(-2000));
  t.regex(topo.daemonLog, /"msg":"stopped"/);
  t.is(topo.lab.exec(topo.pods[0].ns, 'ip', ['link', 'show', topo.pods[0].ifname]).code, 0, 'the persistent TAP outlives the daemon');
  t.not((await curl(topo, topo.ns.client, 'http://10.96.3.10/', { timeout: 1 })).code, 0, 'nothing forwards once stopped');

  // restart: state comes back from stateDir; the TAP is re-attached (persistent), the veth pod
  // is there as before; both pods' addresses and routes are flushed and added again while the
  // daemon starts (pod-a, without a MAC in the config, must be resolved again: from the
  // checkpoint's learned neighbours the first time, by probing and learning after a crash that
  // left no checkpoint the second time)
  // a state dir someone else made readable (the kubelet's DirectoryOrCreate makes 0755) is set
  // back to 0700 by the daemon that owns it
  chmodSync(topo.config.stateDir, 0o755);
  const t0 = Date.now();
  await restartWithPodsReaddressed(t, t0);
  t.log(`both pods answered after ${Date.now() - t0} ms`);
  t.is(statSync(topo.config.stateDir).mode & 0o777, 0o700, 'the state dir tightened to 0700 at start');
  t.regex(topo.daemonLog, /the state directory set to mode 0700/);

  const t2 = Date.now();
  topo.daemon.kill('SIGKILL');
  await new Promise((r) => topo.daemon.once('exit', r));
  rmSync(join(topo.config.stateDir, CHECKPOINT_FILE), { force: true });
  await restartWithPodsReaddressed(t, t2);
  await logged(topo, /"addr":"10\.244\.1\.11"[^\n]*"learned neighbour"/, 'pod-a learned anew (logged)');
  t.log(`after a crash without checkpoint: both pods answered after ${Date.now() - t2} ms`);
});

/** Starts the daemon again, flushes and re-adds every pod's addresses and routes meanwhile, and
 * expects both pods to answer through the Service. */
async function restartWithPodsReaddressed(t, t0) {
  await startDaemon(topo);
  t.log(`restart: API up after ${Date.now() - t0} ms`);
  await logged(topo, /"from":"store"/, 'the state restored from the store (logged)');
  topo.podProcs.forEach((p) => p.kill('SIGKILL'));
  topo.podProcs = [];
  await sleep(200);
  for (const pod of topo.pods) {
    topo.lab.exec(pod.ns, 'ip', ['addr', 'flush', 'dev', pod.ifname]);
    topo.lab.exec(pod.ns, 'ip', ['route', 'flush', 'table', 'main']);
    topo.lab.exec(pod.ns, 'ip', ['-6', 'route', 'flush', 'table', 'main']);
  }
  await startPods(topo);
  t.log(`pods up after ${Date.now() - t0} ms`);
  const seen = new Set();
  for (let i = 0; i < 40 && seen.size < 2; i++) {
    const c = await curl(topo, topo.ns.client, 'http://10.96.3.10/', { timeout: 3 });
    if (c.code === 0) seen.add(c.body.trim()); else await sleep(200);
  }
  t.deepEqual([...seen].sort(), ['pod-a', 'pod-b'], topo.daemonLog.slice(-3000));
}
