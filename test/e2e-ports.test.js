// End to end, pods that come and go while wdp runs: pods attached by the CNI plugin (bin/wdp-cni.js
// run exactly as a container runtime runs a chained plugin: CNI_* environment, the network config
// with prevResult on stdin, the result on stdout) and detached by its DEL, in a bounded loop,
// while other pods' connections (a long-lived TCP session, a stream of HTTP requests) keep running.
// Also `wdp get ports` / `wdp port add|remove` through the CLI, and the ports API's errors.
import test from 'ava';
import {
  e2eSuite, api, curlOk, serviceYaml, sliceYaml, httpMany, udpAsk, logged, POD_SERVER, WDP, NODE_V6,
} from './lib/topology.js';
import { cniCall, ptpLike as ptpPod, startServer as podServer } from './lib/cni-pods.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const suite = e2eSuite(test, { pods: [{ name: 'pod-a', attach: 'afpacket' }, { name: 'pod-b', attach: 'tap' }] });
const { serial, apply } = suite;
let topo;
test.before(() => { topo = suite.topo; });

const server = () => `unix:${topo.config.api.listen}`;
const cni = (command, opts) => cniCall(topo, command, opts);

async function wdp(args) {
  const r = await topo.lab.execAsync(topo.ns.dp, process.execPath, [WDP, ...args, '--server', server()], { timeoutMs: 30000 });
  return r;
}

const ptpLike = (i) => ptpPod(topo, i);
/** A dual-stack pod (host-local with an IPv4 and an IPv6 range): a /32 and a /128. */
const ptpLikeDual = (i) => ptpPod(topo, i, { ip6: `fd00:244:2::${(0x10 + i).toString(16)}` });
/** An IPv6-only pod: a /128 and an on-link route to the IPv6 gateway, nothing else. */
const ptpLike6 = (i) => ptpPod(topo, i, { ip: null, ip6: `fd00:244:2::${(0x10 + i).toString(16)}` });

const startServer = (ns, name) => podServer(topo, ns, name);

// a long-lived TCP session through a ClusterIP to pod-a: one line every 50 ms, each echoed, for
// `ms` at most or until `stopFile` exists (the churn it runs beside is over: it ran ~20 s fixed,
// some 10 s of it after the churn)
const ECHO = "require('net').createServer((s) => { s.on('data', (d) => s.write(d)); s.on('error', () => {}); }).listen(7000, () => console.log('ready'));";
const session = (ms, stopFile) => `
  const s = require('net').connect(7000, '10.96.7.1');
  let sent = 0, got = '', err = null;
  const iv = setInterval(() => { s.write('x' + (sent++) + '\\n'); }, 50);
  s.on('data', (d) => { got += d; });
  s.on('error', (e) => { err = e.code || e.message; });
  s.on('close', () => { if (!err) err = 'closed'; });
  const end = () => { clearInterval(iv); clearInterval(stop); clearTimeout(bound); setTimeout(() => { console.log(JSON.stringify({ sent, echoed: got.split('\\n').filter(Boolean).length, err })); process.exit(0); }, 1000); };
  const stop = setInterval(() => { if (require('fs').existsSync(${JSON.stringify(stopFile)})) end(); }, 100);
  const bound = setTimeout(end, ${ms});`;

serial('wdp get ports lists the config file\'s ports; the CLI adds and removes a port; bad requests are refused whole', async (t) => {
  const list = await wdp(['get', 'ports']);
  t.is(list.code, 0, list.stderr);
  for (const n of ['client', 'remote', 'pod-a', 'pod-b']) t.regex(list.stdout, new RegExp(`^${n}\\s`, 'm'));
  // the STATE column (up; absent: a config port whose interface is gone) and the MTU column: the
  // egress MTU the core checks (the veths' 1500)
  t.regex(list.stdout, /^NAME\s+INDEX\s+TYPE\s+IFNAME\s+ROLE\s+ORIGIN\s+STATE\s+KIND\s+MAC\s+MTU\s+RX\s+TX/m);
  t.regex(list.stdout, /^client\s.*\sconfig\s+up\s.*\s1500\s+\d+\s+\d+\s*$/m);
  const j = JSON.parse((await wdp(['get', 'ports', '-o', 'json'])).stdout);
  t.deepEqual(j.items.map((p) => p.origin), ['config', 'config', 'config', 'config']);
  t.deepEqual(j.items.map((p) => p.state), ['up', 'up', 'up', 'up']);
  // a TAP created at runtime inside a fresh namespace
  const ns = topo.lab.namespace('tcl');
  const add = await wdp(['port', 'add', '--name', 'pod-cli', '--type', 'tap', '--ifname', 'tapcli', '--netns', ns, '--gateway', '10.244.0.1', '--pod', '10.244.3.1']);
  t.is(add.code, 0, add.stderr);
  t.regex(add.stdout, /port\/pod-cli added \(index 4,/);
  await topo.lab.waitLink(ns, 'tapcli', 10000);
  t.regex((await wdp(['get', 'ports', 'pod-cli'])).stdout, /pod-cli\s+4\s+tap\s+tapcli@/);
  const dup = await wdp(['port', 'add', '--name', 'pod-cli', '--type', 'tap', '--ifname', 'tapcli2', '--netns', ns]);
  t.is(dup.code, 1);
  t.regex(dup.stderr, /exists/);
  const bad = await api(topo, 'POST', '/api/v1/ports', { name: 'Bad Name', type: 'veth', ifname: 'x', role: 'pod' });
  t.is(bad.status, 422);
  t.regex(bad.json.message, /name/);
  t.regex(bad.json.message, /type/);
  t.is((await api(topo, 'POST', '/api/v1/ports', { name: 'nodev', type: 'afpacket', ifname: 'nosuchif0', role: 'pod' })).status, 422);
  // a TAP for a namespace that is not there: refused before anything is created, as the others
  const nons = await api(topo, 'POST', '/api/v1/ports', { name: 'pod-z', type: 'tap', ifname: 'tapz', netns: `${ns}-none`, role: 'pod', gateways: ['10.244.0.1'] });
  t.is(nons.status, 422, JSON.stringify(nons.json));
  t.regex(nons.json.message, /netns: there is no network namespace/);
  t.notRegex((await wdp(['get', 'ports'])).stdout, /pod-z/, 'nothing left of it');
  t.is((await api(topo, 'POST', '/api/v1/ports', '{')).status, 400);
  t.is((await api(topo, 'DELETE', '/api/v1/ports/pod-a')).status, 409, 'config ports stay');
  t.is((await api(topo, 'DELETE', '/api/v1/ports/nope')).status, 404);
  const rm = await wdp(['port', 'remove', 'pod-cli']);
  t.is(rm.code, 0, rm.stderr);
  t.notRegex((await wdp(['get', 'ports'])).stdout, /pod-cli/);
  t.false((await topo.lab.execAsync(ns, 'ip', ['link', 'show', 'tapcli'])).code === 0, 'the TAP went with its port');
});

serial('pods added (CNI ADD) and removed (CNI DEL) in a loop while other pods\' connections keep running', async (t) => {
  const podA = topo.pods[0];
  const echo = topo.lab.spawn(podA.ns, process.execPath, ['-e', ECHO]);
  topo.podProcs.push(echo);
  await new Promise((r) => echo.stdout.once('data', r));
  await apply([
    serviceYaml({ name: 'echo', clusterIP: '10.96.7.1', ports: [{ name: 'tcp', port: 7000, protocol: 'TCP' }] }),
    sliceYaml({ name: 'echo-1', service: 'echo', ports: [{ name: 'tcp', port: 7000, protocol: 'TCP' }], endpoints: [{ addresses: [podA.ip], conditions: { ready: true } }] }),
    serviceYaml({ name: 'stable', clusterIP: '10.96.7.2', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] }),
    sliceYaml({ name: 'stable-1', service: 'stable', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: topo.pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true } })) }),
  ]);
  t.is((await curlOk(topo, topo.ns.client, 'http://10.96.7.2/')).code, 0);
  const ROUNDS = 5;
  // background traffic for the whole loop (bounded: a fixed duration / request count)
  const churnOver = join(topo.dir, 'churn-over');
  const sessionRun = topo.lab.execAsync(topo.ns.client, process.execPath, ['-e', session(ROUNDS * 4000, churnOver)], { timeoutMs: ROUNDS * 4000 + 20000 });
  const requests = httpMany(topo, topo.ns.client, 'http://10.96.7.2/', ROUNDS * 20, { timeoutMs: 3000 });
  const portsBefore = JSON.parse((await wdp(['get', 'ports', '-o', 'json'])).stdout).items.length;
  const started = Date.now();
  for (let i = 0; i < ROUNDS && Date.now() - started < 120000; i++) {
    const pod = ptpLike(i);
    const srv = await startServer(pod.ns, `new-${i}`);
    const add = await cni('ADD', pod);
    t.is(add.code, 0, JSON.stringify(add));
    t.deepEqual(add.out, pod.prevResult, 'the chained result is prevResult');
    t.is((await topo.lab.execAsync(topo.ns.dp, 'ip', ['-o', 'addr', 'show', 'dev', pod.hostIf])).stdout.includes('10.244.0.1'), false, 'the gateway address left the host side');
    const chk = await cni('CHECK', pod);
    t.is(chk.code, 0, JSON.stringify(chk));
    await apply([
      serviceYaml({ name: `new-${i}`, clusterIP: `10.96.8.${i + 1}`, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] }),
      sliceYaml({ name: `new-${i}-1`, service: `new-${i}`, ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: [{ addresses: [pod.ip], conditions: { ready: true } }] }),
    ]);
    const r = await curlOk(topo, topo.ns.client, `http://10.96.8.${i + 1}/`);
    t.is(r.code, 0, `new pod ${i}: ${r.stderr}\n${topo.daemonLog.slice(-2000)}`);
    t.is(r.body.trim(), `new-${i}`);
    t.is(r.headers['x-peer'].replace('::ffff:', ''), '10.0.0.2');
    // the pod goes: endpoint first (as Kubernetes does), then the runtime's DEL, then its veth
    await apply([sliceYaml({ name: `new-${i}-1`, service: `new-${i}`, ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: [] })]);
    const del = await cni('DEL', pod);
    t.deepEqual([del.code, del.out], [0, undefined], del.stderr);
    t.is((await cni('DEL', pod)).code, 0, 'a repeated DEL succeeds');
    t.not((await cni('CHECK', pod)).code, 0, 'CHECK fails once detached');
    srv.kill('SIGKILL');
    await topo.lab.execAsync(topo.ns.dp, 'ip', ['link', 'del', pod.hostIf]);
  }
  writeFileSync(churnOver, '');
  const s = JSON.parse((await sessionRun).stdout.trim().split('\n').pop());
  t.is(s.err, null, `the long-lived session broke: ${JSON.stringify(s)}`);
  t.true(s.sent > 20 && s.echoed === s.sent, `every line echoed: ${JSON.stringify(s)}`);
  const res = await requests;
  const failed = res.filter((x) => x.error);
  t.is(failed.length, 0, `${failed.length}/${res.length} background requests failed: ${JSON.stringify(failed.slice(0, 3))}`);
  t.deepEqual([...new Set(res.map((x) => x.pod))].sort(), ['pod-a', 'pod-b']);
  const after = JSON.parse((await wdp(['get', 'ports', '-o', 'json'])).stdout).items;
  t.is(after.length, portsBefore, `no port left behind: ${after.map((p) => p.name)}`);
});

serial('a dual-stack pod attached by CNI ADD (IPv4 and IPv6 addresses in prevResult) serves a dual-stack Service over both families', async (t) => {
  const pod = ptpLikeDual(6);
  const srv = await startServer(pod.ns, 'dual');
  const add = await cni('ADD', pod);
  t.is(add.code, 0, JSON.stringify(add));
  t.deepEqual(add.out, pod.prevResult, 'the chained result is prevResult, both families');
  const hostSide = (await topo.lab.execAsync(topo.ns.dp, 'ip', ['-o', 'addr', 'show', 'dev', pod.hostIf])).stdout;
  t.false(/10\.244\.0\.1|fd00:244::1/.test(hostSide), `the gateway addresses left the host side: ${hostSide}`);
  const port = (await api(topo, 'GET', `/api/v1/ports/${(await import('../dist/src/cni/plugin.js')).portName(pod.id, 'eth0')}`)).json;
  t.deepEqual(port.pods.map((p) => p.ip).sort(), [pod.ip, pod.ip6].sort(), JSON.stringify(port));
  t.deepEqual([...port.gateways].sort(), ['10.244.0.1', 'fd00:244::1']);
  const chk = await cni('CHECK', pod);
  t.is(chk.code, 0, JSON.stringify(chk));
  await apply([
    serviceYaml({ name: 'dual', clusterIP: '10.96.10.1', extra: { clusterIPs: ['10.96.10.1', 'fd00:96::a:1'], ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack' },
      ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] }),
    sliceYaml({ name: 'dual-4', service: 'dual', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: [{ addresses: [pod.ip], conditions: { ready: true } }] }),
    sliceYaml({ name: 'dual-6', service: 'dual', addressType: 'IPv6', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: [{ addresses: [pod.ip6], conditions: { ready: true } }] }),
  ]);
  for (const [url, peer] of [['http://10.96.10.1/', '10.0.0.2'], ['http://[fd00:96::a:1]/', 'fd00::2']]) {
    const r = await curlOk(topo, topo.ns.client, url);
    t.is(r.code, 0, `${url}: ${r.stderr}\n${topo.daemonLog.slice(-2000)}`);
    t.is(r.body.trim(), 'dual', url);
    t.is(r.headers['x-peer'].replace('::ffff:', ''), peer, `${url}: the client's own address`);
  }
  const many = await httpMany(topo, topo.ns.client, 'http://[fd00:96::a:1]/', 10);
  t.deepEqual(many.filter((x) => x.error), []);
  // the pod as a client over IPv6: its own Service picks itself (hairpin, masqueraded to the node)
  const self = await curlOk(topo, pod.ns, 'http://[fd00:96::a:1]/');
  t.is(self.body?.trim(), 'dual', self.stderr);
  t.is(self.headers['x-peer'], NODE_V6, 'the pod reaching itself is masqueraded to the node address');
  const del = await cni('DEL', pod);
  t.deepEqual([del.code, del.out], [0, undefined], del.stderr);
  t.not((await cni('CHECK', pod)).code, 0, 'CHECK fails once detached');
  srv.kill('SIGKILL');
  await topo.lab.execAsync(topo.ns.dp, 'ip', ['link', 'del', pod.hostIf]);
});

serial('an IPv6-only pod attached by CNI ADD serves its Service over IPv6 (UDP too)', async (t) => {
  const pod = ptpLike6(7);
  const child = topo.lab.spawn(pod.ns, process.execPath, [POD_SERVER, 'only6', '--http', '8080', '--udp', '5353']);
  topo.podProcs.push(child);
  await new Promise((resolve, reject) => { const tm = setTimeout(() => reject(new Error('only6 not ready')), 10000); child.stdout.on('data', (d) => { if (String(d).includes('ready')) { clearTimeout(tm); resolve(); } }); });
  const add = await cni('ADD', pod);
  t.is(add.code, 0, JSON.stringify(add));
  t.deepEqual(add.out, pod.prevResult);
  t.is((await cni('CHECK', pod)).code, 0);
  await apply([
    serviceYaml({ name: 'only6', clusterIP: 'fd00:96::a:2', extra: { ipFamilies: ['IPv6'] }, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }, { name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP' }] }),
    sliceYaml({ name: 'only6-1', service: 'only6', addressType: 'IPv6', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'dns', port: 5353, protocol: 'UDP' }], endpoints: [{ addresses: [pod.ip6], conditions: { ready: true } }] }),
  ]);
  const r = await curlOk(topo, topo.ns.client, 'http://[fd00:96::a:2]/');
  t.is(r.code, 0, `${r.stderr}\n${topo.daemonLog.slice(-2000)}`);
  t.is(r.body.trim(), 'only6');
  let u;
  for (let i = 0; i < 5 && !u?.reply; i++) u = await udpAsk(topo, topo.ns.client, 'fd00:96::a:2', 53, 'q6');
  t.is(u.reply, 'only6:q6', JSON.stringify(u));
  t.is((await cni('DEL', pod)).code, 0);
  child.kill('SIGKILL');
  await topo.lab.execAsync(topo.ns.dp, 'ip', ['link', 'del', pod.hostIf]);
});

serial('CNI 1.1.0: STATUS is ready with the daemon forwarding; a pod whose prevResult lists another host interface after its veth (bandwidth\'s IFB) is attached on its veth', async (t) => {
  t.deepEqual(await cni('STATUS', { cniVersion: '1.1.0' }), { code: 0, out: undefined, stderr: '' });
  const pod = ptpLike(10);
  // what `bandwidth` appends for egress shaping: the IFB device it creates, after the pod's veth
  // (a VXLAN device, another host device of no pod's own, where the ifb module is missing)
  const extra = `bwp${process.pid % 100000}`;
  let made = await topo.lab.execAsync(topo.ns.dp, 'ip', ['link', 'add', extra, 'type', 'ifb']);
  if (made.code !== 0) made = await topo.lab.execAsync(topo.ns.dp, 'ip', ['link', 'add', extra, 'type', 'vxlan', 'id', '42', 'dstport', '4789']);
  t.is(made.code, 0, made.stderr);
  t.teardown(() => topo.lab.execAsync(topo.ns.dp, 'ip', ['link', 'del', extra]));
  pod.prevResult = { ...pod.prevResult, cniVersion: '1.1.0', interfaces: [...pod.prevResult.interfaces, { name: extra, mac: topo.lab.mac(topo.ns.dp, extra) }] };
  const srv = await startServer(pod.ns, 'shaped');
  t.teardown(() => srv.kill('SIGKILL'));
  const add = await cni('ADD', { ...pod, cniVersion: '1.1.0' });
  t.is(add.code, 0, JSON.stringify(add));
  t.deepEqual(add.out, pod.prevResult);
  const { portName } = await import('../dist/src/cni/plugin.js');
  t.is((await api(topo, 'GET', `/api/v1/ports/${portName(pod.id, 'eth0')}`)).json.ifname, pod.hostIf);
  t.is((await cni('CHECK', { ...pod, cniVersion: '1.1.0' })).code, 0);
  await apply([
    serviceYaml({ name: 'shaped', clusterIP: '10.96.7.9', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] }),
    sliceYaml({ name: 'shaped-1', service: 'shaped', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: [{ addresses: [pod.ip], conditions: { ready: true } }] }),
  ]);
  const r = await curlOk(topo, topo.ns.client, 'http://10.96.7.9/');
  t.is(r.body.trim(), 'shaped', `${r.stderr}\n${topo.daemonLog.slice(-2000)}`);
  await apply([sliceYaml({ name: 'shaped-1', service: 'shaped', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: [] })]);
  t.is((await cni('DEL', { ...pod, cniVersion: '1.1.0' })).code, 0);
  await topo.lab.execAsync(topo.ns.dp, 'ip', ['link', 'del', pod.hostIf]);
});

serial('runtime ports survive a daemon restart; those whose interface is gone are dropped', async (t) => {
  const keep = ptpLike(8), gone = ptpLike(9);
  t.is((await cni('ADD', keep)).code, 0);
  t.is((await cni('ADD', gone)).code, 0);
  const { startDaemon } = await import('./lib/topology.js');
  topo.daemon.kill('SIGTERM');
  await new Promise((r) => topo.daemon.once('exit', r));
  const down = await cni('STATUS', { cniVersion: '1.1.0' });
  t.is(down.code, 1);
  t.is(down.out.code, 50, 'STATUS: not available while the daemon is down');
  await topo.lab.execAsync(topo.ns.dp, 'ip', ['link', 'del', gone.hostIf]);
  await startDaemon(topo);
  const names = JSON.parse((await wdp(['get', 'ports', '-o', 'json'])).stdout).items.map((p) => p.name);
  const { portName } = await import('../dist/src/cni/plugin.js');
  t.true(names.includes(portName(keep.id, 'eth0')));
  t.false(names.includes(portName(gone.id, 'eth0')));
  await logged(topo, /saved runtime port not restored/);
  const srv = await startServer(keep.ns, 'kept');
  await apply([
    serviceYaml({ name: 'kept', clusterIP: '10.96.9.1', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] }),
    sliceYaml({ name: 'kept-1', service: 'kept', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: [{ addresses: [keep.ip], conditions: { ready: true } }] }),
  ]);
  const r = await curlOk(topo, topo.ns.client, 'http://10.96.9.1/');
  t.is(r.body.trim(), 'kept', r.stderr);
  srv.kill('SIGKILL');
});

serial('a restart with runtime ports forwards from its table image: they are opened at start under their saved indexes', async (t) => {
  const { startDaemon } = await import('./lib/topology.js');
  const runtime = async () => JSON.parse((await wdp(['get', 'ports', '-o', 'json'])).stdout).items.filter((p) => p.origin === 'api').map((p) => [p.name, p.index]);
  const before = await runtime();
  t.true(before.length >= 1, 'the previous test left a runtime port');
  topo.daemon.kill('SIGTERM');
  await new Promise((r) => topo.daemon.once('exit', r));
  t.regex(topo.daemonLog, /table images written/);
  await startDaemon(topo);
  t.deepEqual(await runtime(), before);
  const st = JSON.parse((await wdp(['status', '-o', 'json'])).stdout);
  t.like(st.restore.images[0], { used: true }, JSON.stringify(st.restore.images));
  // the runtime pod (the previous test's, 10.96.9.1) answers through the restored port
  const srv = await startServer(`${topo.lab.tag}-n8`, 'kept');
  t.teardown(() => srv.kill('SIGKILL'));
  const r = await curlOk(topo, topo.ns.client, 'http://10.96.9.1/');
  t.is(r.body.trim(), 'kept', r.stderr);
});
