// End to end, the node's own network stack behind the host port (role: host). The dataplane
// namespace plays the node: wdp runs there, takes its uplink veths (AF_PACKET) and gives the
// node's stack a TAP (wdp-host) carrying the node address 192.168.100.2/24 and routes for the pod
// and service CIDRs. Proves: management traffic (an SSH-like TCP server on the node address)
// from outside, the host's own curl to a ClusterIP and to a NodePort of its own address, a
// hostNetwork backend (a server on the node address) behind a Service reached from a pod and
// from outside, and — after wdp stops — the recipe's restore giving management back.
import test from 'ava';
import { e2eSuite, api, arpAnswered, curlOk, serviceYaml, sliceYaml, sleep, udpAsk, waitFor, NODE_V4, NODE_V6, POD_SERVER } from './lib/topology.js';

const SSH_PORT = 2222;
const HOST_HTTP = 8081;
const HOST_UDP = 5354;
const HAIRPIN_V4 = '169.254.42.1', HAIRPIN_V6 = 'fd00:ff::42';
let topo;

// a line-based TCP service standing in for sshd: banner, then echo
const SSHD = `require('net').createServer((s) => { s.write('SSH-2.0-wdp-test\\r\\n'); s.on('data', (d) => s.write(d)); s.on('error', () => {}); })
  .listen({ port: ${SSH_PORT}, host: '::', ipv6Only: false }, () => console.log('ready'));`;
const sshClient = (host, timeoutMs = 4000) => `
  const s = require('net').connect(${SSH_PORT}, ${JSON.stringify(host)});
  let got = '';
  const t = setTimeout(() => { console.log(JSON.stringify({ error: 'timeout', got })); process.exit(0); }, ${timeoutMs});
  s.on('data', (d) => { got += d; if (got.includes('SSH-2.0') && !got.includes('ping')) s.write('ping\\n'); if (got.includes('ping')) { clearTimeout(t); console.log(JSON.stringify({ got })); s.destroy(); } });
  s.on('error', (e) => { clearTimeout(t); console.log(JSON.stringify({ error: e.code || e.message })); });`;

async function ssh(ns, host) {
  for (let i = 0; i < 10; i++) {
    const r = await topo.lab.execAsync(ns, process.execPath, ['-e', sshClient(host)], { timeoutMs: 10000 });
    let j; try { j = JSON.parse(r.stdout.trim().split('\n').pop()); } catch { j = { error: r.stderr }; }
    if (!j.error) return j;
    if (i === 9) return j;
    await sleep(300);
  }
}

function ready(child, what) {
  return new Promise((resolve, reject) => {
    let out = '', err = '';
    const timer = setTimeout(() => reject(new Error(`${what} not ready: ${err}`)), 10000);
    child.stdout.on('data', (d) => { out += d; if (out.includes('ready')) { clearTimeout(timer); resolve(); } });
    child.stderr.on('data', (d) => { err += d; });
  });
}

const suite = e2eSuite(test, {
  pods: [{ name: 'pod-a', attach: 'afpacket' }, { name: 'pod-b', attach: 'tap' }],
  configure: (config) => (config.announce = { loadBalancerIPs: true }) && config.ports.push({
    name: 'host', type: 'tap', ifname: 'wdp-host', role: 'host', uplink: 'remote', gateways: ['10.244.0.1'],
    hostAddresses: [`${NODE_V4}/24`, `${NODE_V6}/64`],
    hostRoutes: [{ prefix: '10.244.0.0/16', via: '10.244.0.1' }, { prefix: '10.96.0.0/12', via: '10.244.0.1' }, { prefix: 'fd00:96::/64', via: 'fd00:100::1' }],
    // the IPv4 default (169.254.42.1) and an IPv6 one
    hostHairpin: [HAIRPIN_V4, HAIRPIN_V6],
  }),
});
const { serial, apply } = suite;

// the node's own servers, on the node address (in the node = dataplane namespace)
test.before(async () => {
  await suite.ready;
  topo = suite.topo;
  if (!topo) return;
  const sshd = topo.lab.spawn(topo.ns.dp, process.execPath, ['-e', SSHD]);
  topo.podProcs.push(sshd);
  const web = topo.lab.spawn(topo.ns.dp, process.execPath, [POD_SERVER, 'host', '--http', String(HOST_HTTP), '--udp', String(HOST_UDP)]);
  topo.podProcs.push(web);
  await Promise.all([ready(sshd, 'sshd'), ready(web, 'host web server')]);
});

const counters = async () => (await api(topo, 'GET', '/api/v1/counters')).json;

serial('management traffic to the node address reaches the host stack while wdp runs (SSH-like TCP from outside)', async (t) => {
  const r = await ssh(topo.ns.remote, NODE_V4);
  t.falsy(r.error, `${JSON.stringify(r)}\n${topo.daemonLog.slice(-3000)}`);
  t.true(r.got.startsWith('SSH-2.0-wdp-test'));
  t.true(r.got.includes('ping'), 'echo came back');
  const c = await counters();
  t.true((c.global.slowpath_bridged_from_host ?? 0) > 0, 'the host\'s frames to its neighbours left through the uplink');
  t.true((c.global.slowpath_bridged_to_host ?? 0) > 0, 'the neighbours\' ARP replies reached the host');
  // IPv6: neighbour discovery for the node address answered by wdp, the host's own ND bridged
  const r6 = await ssh(topo.ns.remote, NODE_V6);
  t.falsy(r6.error, `IPv6: ${JSON.stringify(r6)}`);
  t.true(r6.got?.includes('ping'));
});

serial('the host stack reaches a ClusterIP and a NodePort of its own address through wdp', async (t) => {
  await apply([
    serviceYaml({ name: 'web', type: 'NodePort', clusterIP: '10.96.5.10', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30085, protocol: 'TCP' }] }),
    sliceYaml({ name: 'web-1', service: 'web', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      endpoints: topo.pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true }, nodeName: 'node-a' })) }),
  ]);
  const c = await curlOk(topo, topo.ns.dp, 'http://10.96.5.10/');
  t.is(c.code, 0, `${c.stderr}\n${topo.daemonLog.slice(-3000)}`);
  t.regex(c.body, /^pod-[ab]/);
  t.is(c.headers['x-peer'].replace('::ffff:', ''), NODE_V4, 'the host is a client like any other: its address, not masqueraded');
  const np = await curlOk(topo, topo.ns.dp, `http://${NODE_V4}:30085/`);
  t.is(np.code, 0, `NodePort from the host itself: ${np.stderr}`);
  t.regex(np.body, /^pod-[ab]/);
  // a NodePort (externalTrafficPolicy Cluster) is masqueraded, as kube-proxy does
  const flows = (await api(topo, 'GET', '/api/v1/conntrack')).json;
  const list = Array.isArray(flows) ? flows : flows.items ?? flows.flows ?? [];
  const npFlow = list.find((f) => String(f.vip ?? f.frontend ?? '').includes(NODE_V4) || f.vport === 30085 || f.frontendPort === 30085);
  t.truthy(npFlow, `a NodePort flow in ${JSON.stringify(list).slice(0, 600)}`);
  t.true(JSON.stringify(npFlow).includes('snat'), JSON.stringify(npFlow));
});

serial('a hostNetwork backend (a server on the node address) behind a Service: reached from a pod and from outside', async (t) => {
  await apply([
    serviceYaml({ name: 'hostsvc', type: 'NodePort', clusterIP: '10.96.5.20', ports: [{ name: 'http', port: 80, targetPort: HOST_HTTP, nodePort: 30086, protocol: 'TCP' }] }),
    sliceYaml({ name: 'hostsvc-1', service: 'hostsvc', ports: [{ name: 'http', port: HOST_HTTP, protocol: 'TCP' }],
      endpoints: [{ addresses: [NODE_V4], conditions: { ready: true }, nodeName: 'node-a' }] }),
  ]);
  const fromPod = await curlOk(topo, topo.pods[0].ns, 'http://10.96.5.20/');
  t.is(fromPod.code, 0, `${fromPod.stderr}\n${topo.daemonLog.slice(-3000)}`);
  t.is(fromPod.body.trim(), 'host');
  t.is(fromPod.headers['x-peer'].replace('::ffff:', ''), topo.pods[0].ip);
  const fromOutside = await curlOk(topo, topo.ns.remote, `http://${NODE_V4}:30086/`);
  t.is(fromOutside.code, 0, fromOutside.stderr);
  t.is(fromOutside.body.trim(), 'host');
  t.is(fromOutside.headers['x-peer'].replace('::ffff:', ''), '192.168.100.10', 'not masqueraded to the node\'s own address (it would answer itself)');
});

serial('the host reaches a Service whose only endpoint is the host itself (hairpin address), TCP and UDP, IPv4 and IPv6', async (t) => {
  await apply([
    serviceYaml({ name: 'self', clusterIP: '10.96.5.40', ports: [{ name: 'http', port: 80, targetPort: HOST_HTTP, protocol: 'TCP' }, { name: 'dns', port: 53, targetPort: HOST_UDP, protocol: 'UDP' }] }),
    sliceYaml({ name: 'self-1', service: 'self', ports: [{ name: 'http', port: HOST_HTTP, protocol: 'TCP' }, { name: 'dns', port: HOST_UDP, protocol: 'UDP' }],
      endpoints: [{ addresses: [NODE_V4], conditions: { ready: true }, nodeName: 'node-a' }] }),
    serviceYaml({ name: 'self6', clusterIP: 'fd00:96::40', extra: { ipFamilies: ['IPv6'] }, ports: [{ name: 'http', port: 80, targetPort: HOST_HTTP, protocol: 'TCP' }, { name: 'dns', port: 53, targetPort: HOST_UDP, protocol: 'UDP' }] }),
    sliceYaml({ name: 'self6-1', service: 'self6', addressType: 'IPv6', ports: [{ name: 'http', port: HOST_HTTP, protocol: 'TCP' }, { name: 'dns', port: HOST_UDP, protocol: 'UDP' }],
      endpoints: [{ addresses: [NODE_V6], conditions: { ready: true }, nodeName: 'node-a' }] }),
  ]);
  const routes = (await topo.lab.execAsync(topo.ns.dp, 'ip', ['route', 'show', `${HAIRPIN_V4}/32`])).stdout;
  t.regex(routes, new RegExp(`via 10\\.244\\.0\\.1 dev wdp-host .*src ${NODE_V4.replace(/\./g, '\\.')}`), `the hairpin address is routed through the host port: ${routes}`);
  for (const [vip, hairpin] of [['10.96.5.40', HAIRPIN_V4], ['[fd00:96::40]', HAIRPIN_V6]]) {
    const c = await curlOk(topo, topo.ns.dp, `http://${vip}/`);
    t.is(c.code, 0, `${vip}: ${c.stderr}\n${topo.daemonLog.slice(-3000)}`);
    t.is(c.body.trim(), 'host', 'answered by the host\'s own server');
    t.is(c.headers['x-peer'].replace('::ffff:', ''), hairpin, 'the host\'s connection came from the hairpin address (its own would have stayed local)');
    let u;
    for (let i = 0; i < 5 && !u?.reply; i++) u = await udpAsk(topo, topo.ns.dp, vip.replace(/[[\]]/g, ''), 53, 'who');
    t.is(u.reply, 'host:who', `UDP through the hairpin: ${JSON.stringify(u)}`);
    t.is(u.from, vip.replace(/[[\]]/g, ''), 'the answer comes from the ClusterIP');
  }
  // the host's own NodePort (policy-routed out of the TAP) to the hostNetwork Service of the
  // earlier test: masqueraded (a NodePort), to the hairpin address as its backend is the host
  const np = await curlOk(topo, topo.ns.dp, `http://${NODE_V4}:30086/`);
  t.is(np.body?.trim(), 'host', np.stderr);
  t.is(np.headers['x-peer'].replace('::ffff:', ''), HAIRPIN_V4);
  const flows = (await api(topo, 'GET', '/api/v1/conntrack')).json;
  const list = Array.isArray(flows) ? flows : flows.items ?? flows.flows ?? [];
  const hp = list.filter((f) => (f.flags ?? []).includes('hairpin'));
  t.true(hp.length >= 2, `hairpin flows in ${JSON.stringify(list).slice(0, 800)}`);
  t.true(hp.every((f) => f.natSource === HAIRPIN_V4 || f.natSource === HAIRPIN_V6));
  // a pod reaching the same Service is not translated (a ClusterIP; kube-proxy does not masquerade it)
  const fromPod = await curlOk(topo, topo.pods[0].ns, 'http://10.96.5.40/');
  t.is(fromPod.headers['x-peer']?.replace('::ffff:', ''), topo.pods[0].ip);
});

// A node with two addresses (an internal and an external IP): a hostNetwork server bound to the
// second one only (HTTP answering with its peer, UDP echo), retrying while the address is still
// tentative (IPv6 duplicate address detection)
const SECOND_V4 = '192.168.100.30', SECOND_V6 = 'fd00:100::30';
const SECOND_HTTP = 8082, SECOND_UDP = 5355;
const SECOND_SERVER = `
  const http = require('http'), dgram = require('dgram');
  let left = 4;
  const done = () => { if (--left === 0) console.log('ready'); };
  for (const a of ${JSON.stringify([SECOND_V4, SECOND_V6])}) {
    const web = () => { const s = http.createServer((q, r) => { r.setHeader('x-peer', q.socket.remoteAddress); r.end('second\\n'); });
      s.once('error', () => setTimeout(web, 200)); s.listen(${SECOND_HTTP}, a, done); };
    const udp = () => { const u = dgram.createSocket(a.includes(':') ? 'udp6' : 'udp4');
      u.on('message', (m, r) => u.send('second:' + m, r.port, r.address));
      u.once('error', () => { u.close(); setTimeout(udp, 200); }); u.bind(${SECOND_UDP}, a, done); };
    web(); udp();
  }`;

serial('a hostNetwork endpoint at the node\'s second address: the host reaches it through its Service with the hairpin address (TCP and UDP, IPv4 and IPv6); a pod and an outside client unmasqueraded', async (t) => {
  const tapAddrs = async () => (await topo.lab.execAsync(topo.ns.dp, 'ip', ['-o', 'addr', 'show', 'dev', 'wdp-host'])).stdout;
  const setAddresses = async (addresses) => {
    const cur = await api(topo, 'GET', '/api/v1/nodeconfig');
    t.is(cur.status, 200, cur.text);
    await apply([{ ...cur.json, spec: { ...cur.json.spec, nodeAddresses: addresses } }]);
  };
  const until = async (what, f) => { for (let i = 0; i < 50; i++) { if (await f()) return true; await sleep(100); } t.fail(`${what}\n${topo.daemonLog.slice(-2000)}`); return false; };
  await setAddresses([NODE_V4, NODE_V6, SECOND_V4, SECOND_V6]);
  await until('both second addresses on the TAP', async () => { const a = await tapAddrs(); return a.includes(`${SECOND_V4}/24`) && a.includes(`${SECOND_V6}/64`); });
  const server = topo.lab.spawn(topo.ns.dp, process.execPath, ['-e', SECOND_SERVER]);
  topo.podProcs.push(server);
  await ready(server, 'server on the second address');
  await apply([
    serviceYaml({ name: 'second', type: 'NodePort', clusterIP: '10.96.5.42', ports: [{ name: 'http', port: 80, targetPort: SECOND_HTTP, nodePort: 30088, protocol: 'TCP' }, { name: 'dns', port: 53, targetPort: SECOND_UDP, nodePort: 30088, protocol: 'UDP' }] }),
    sliceYaml({ name: 'second-1', service: 'second', ports: [{ name: 'http', port: SECOND_HTTP, protocol: 'TCP' }, { name: 'dns', port: SECOND_UDP, protocol: 'UDP' }],
      endpoints: [{ addresses: [SECOND_V4], conditions: { ready: true }, nodeName: 'node-a' }] }),
    serviceYaml({ name: 'second6', clusterIP: 'fd00:96::42', extra: { ipFamilies: ['IPv6'] }, ports: [{ name: 'http', port: 80, targetPort: SECOND_HTTP, protocol: 'TCP' }, { name: 'dns', port: 53, targetPort: SECOND_UDP, protocol: 'UDP' }] }),
    sliceYaml({ name: 'second6-1', service: 'second6', addressType: 'IPv6', ports: [{ name: 'http', port: SECOND_HTTP, protocol: 'TCP' }, { name: 'dns', port: SECOND_UDP, protocol: 'UDP' }],
      endpoints: [{ addresses: [SECOND_V6], conditions: { ready: true }, nodeName: 'node-a' }] }),
  ]);
  for (const [vip, hairpin] of [['10.96.5.42', HAIRPIN_V4], ['[fd00:96::42]', HAIRPIN_V6]]) {
    const c = await curlOk(topo, topo.ns.dp, `http://${vip}/`);
    t.is(c.code, 0, `${vip}: ${c.stderr}\n${topo.daemonLog.slice(-3000)}`);
    t.is(c.body?.trim(), 'second', 'answered by the server on the second address');
    t.is(c.headers?.['x-peer']?.replace('::ffff:', ''), hairpin, 'the host\'s connection came from the hairpin address (a node address would have been a martian)');
    let u;
    for (let i = 0; i < 5 && !u?.reply; i++) u = await udpAsk(topo, topo.ns.dp, vip.replace(/[[\]]/g, ''), 53, 'who');
    t.is(u.reply, 'second:who', `UDP through the hairpin: ${JSON.stringify(u)}`);
    t.is(u.from, vip.replace(/[[\]]/g, ''), 'the answer comes from the ClusterIP');
  }
  const flows = (await api(topo, 'GET', '/api/v1/conntrack')).json;
  const list = Array.isArray(flows) ? flows : flows.items ?? flows.flows ?? [];
  const hp = list.filter((f) => (f.flags ?? []).includes('hairpin') && (f.backend === SECOND_V4 || f.backend === SECOND_V6));
  t.true(hp.length >= 4, `hairpin flows to the second address (TCP and UDP, both families) in ${JSON.stringify(list).slice(0, 1200)}`);
  // a pod: a ClusterIP, not translated
  const fromPod = await curlOk(topo, topo.pods[0].ns, 'http://10.96.5.42/');
  t.is(fromPod.body?.trim(), 'second', fromPod.stderr);
  t.is(fromPod.headers?.['x-peer']?.replace('::ffff:', ''), topo.pods[0].ip);
  // from outside through a NodePort (masqueraded for other endpoints): not masqueraded toward a node
  // address, or it would arrive from the node's own address and stay unanswered
  for (const addr of [NODE_V4, SECOND_V4]) {
    const out = await curlOk(topo, topo.ns.remote, `http://${addr}:30088/`);
    t.is(out.body?.trim(), 'second', `outside via ${addr}:30088: ${out.stderr}`);
    t.is(out.headers?.['x-peer']?.replace('::ffff:', ''), '192.168.100.10');
  }
  let ou;
  for (let i = 0; i < 5 && !ou?.reply; i++) ou = await udpAsk(topo, topo.ns.remote, NODE_V4, 30088, 'out');
  t.is(ou.reply, 'second:out', `UDP from outside via the NodePort: ${JSON.stringify(ou)}`);
  await api(topo, 'DELETE', '/api/v1/namespaces/default/services/second');
  await api(topo, 'DELETE', '/api/v1/namespaces/default/services/second6');
  await setAddresses([NODE_V4, NODE_V6]);
  await until('the second addresses gone from the TAP', async () => { const a = await tapAddrs(); return !a.includes(SECOND_V4) && !a.includes(SECOND_V6); });
});

serial('a pod reaching a Service whose endpoint is the pod itself is masqueraded (pod hairpin), TCP and UDP', async (t) => {
  const pod = topo.pods[1];
  await apply([
    serviceYaml({ name: 'podself', clusterIP: '10.96.5.41', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }, { name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP' }] }),
    sliceYaml({ name: 'podself-1', service: 'podself', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'dns', port: 5353, protocol: 'UDP' }],
      endpoints: [{ addresses: [pod.ip], conditions: { ready: true }, nodeName: 'node-a' }] }),
  ]);
  const c = await curlOk(topo, pod.ns, 'http://10.96.5.41/');
  t.is(c.code, 0, c.stderr);
  t.is(c.body.trim(), pod.name);
  t.is(c.headers['x-peer'].replace('::ffff:', ''), NODE_V4, 'masqueraded to the node address, as kube-proxy does for hairpin traffic');
  let u;
  for (let i = 0; i < 5 && !u?.reply; i++) u = await udpAsk(topo, pod.ns, '10.96.5.41', 53, 'me');
  t.is(u.reply, `${pod.name}:me`, JSON.stringify(u));
});

// a connection to the SSH-like server kept open while the node addresses change: a line every
// 100 ms, each echoed; prints what it saw at the end
const steadySession = (host, ms) => `
  const s = require('net').connect(${SSH_PORT}, ${JSON.stringify(host)});
  let got = '', sent = 0, err = null;
  s.on('data', (d) => { got += d; });
  s.on('error', (e) => { err = e.code || e.message; });
  const iv = setInterval(() => { if (!err) s.write('line' + (sent++) + '\\n'); }, 100);
  setTimeout(() => { clearInterval(iv); setTimeout(() => { console.log(JSON.stringify({ sent, echoed: (got.match(/line\\d+/g) || []).length, err })); s.destroy(); }, 500); }, ${ms});`;

serial('the host port follows node addresses that change (a NodeConfig applied through the API): TAP address, NodePort rules, hairpin source; other connections undisturbed', async (t) => {
  const NEW_V4 = '192.168.100.20';
  const tapAddrs = async () => (await topo.lab.execAsync(topo.ns.dp, 'ip', ['-o', 'addr', 'show', 'dev', 'wdp-host'])).stdout;
  const rules = async () => (await topo.lab.execAsync(topo.ns.dp, 'ip', ['rule', 'show'])).stdout;
  const until = async (what, f) => { for (let i = 0; i < 50; i++) { if (await f()) return true; await sleep(100); } t.fail(`${what}\n${topo.daemonLog.slice(-2000)}`); return false; };
  const setAddresses = async (addresses) => {
    const cur = await api(topo, 'GET', '/api/v1/nodeconfig');
    t.is(cur.status, 200, cur.text);
    await apply([{ ...cur.json, spec: { ...cur.json.spec, nodeAddresses: addresses } }]);
  };
  t.notRegex(await tapAddrs(), /192\.168\.100\.20\//);
  const session = topo.lab.execAsync(topo.ns.remote, process.execPath, ['-e', steadySession(NODE_V4, 6000)], { timeoutMs: 20000 });
  await sleep(500);
  await setAddresses([NODE_V4, NODE_V6, NEW_V4]);
  await until('the new node address on the TAP, with the subnet\'s prefix', async () => /inet 192\.168\.100\.20\/24 /.test(await tapAddrs()));
  t.regex(await rules(), /to 192\.168\.100\.20 iif lo ipproto tcp dport 30000-32767 lookup 4242/, 'its NodePort rule');
  const r = await ssh(topo.ns.remote, NEW_V4);
  t.falsy(r.error, `the new node address reaches the host from outside: ${JSON.stringify(r)}`);
  const np = await curlOk(topo, topo.ns.dp, `http://${NEW_V4}:30085/`);
  t.is(np.code, 0, `the host's own NodePort on the new address: ${np.stderr}`);
  t.regex(np.body, /^pod-[ab]/);
  // the masquerade source moves when the first node address changes: the hairpin route's source follows
  await setAddresses([NEW_V4, NODE_V6, NODE_V4]);
  await until('the hairpin route from the new masquerade address', async () => (await topo.lab.execAsync(topo.ns.dp, 'ip', ['route', 'show', `${HAIRPIN_V4}/32`])).stdout.includes(`src ${NEW_V4}`));
  await setAddresses([NODE_V4, NODE_V6]);
  await until('the old node address gone from the TAP', async () => !/192\.168\.100\.20\//.test(await tapAddrs()));
  t.notRegex(await rules(), /192\.168\.100\.20/, 'its rules gone');
  t.regex(await tapAddrs(), /inet 192\.168\.100\.2\/24 /, 'the remaining node address stays');
  t.true((await topo.lab.execAsync(topo.ns.dp, 'ip', ['route', 'show', `${HAIRPIN_V4}/32`])).stdout.includes(`src ${NODE_V4}`));
  const s = JSON.parse((await session).stdout.trim().split('\n').pop());
  t.falsy(s.err, JSON.stringify(s));
  t.true(s.sent >= 40 && s.echoed === s.sent, `the SSH-like session on ${NODE_V4} went on through the changes: ${JSON.stringify(s)}`);
  // and the host still reaches itself through its Service
  const self = await curlOk(topo, topo.ns.dp, 'http://10.96.5.40/');
  t.is(self.body?.trim(), 'host');
});

serial('the host port\'s NodePort rules are for the NodeConfig\'s nodePortAddresses only: another node address is on the TAP without them, and gains them once it is a NodePort address', async (t) => {
  const OTHER_V4 = '192.168.100.21';
  const tapAddrs = async () => (await topo.lab.execAsync(topo.ns.dp, 'ip', ['-o', 'addr', 'show', 'dev', 'wdp-host'])).stdout;
  const rules = async () => (await topo.lab.execAsync(topo.ns.dp, 'ip', ['rule', 'show'])).stdout;
  const until = async (what, f) => { for (let i = 0; i < 50; i++) { if (await f()) return true; await sleep(100); } t.fail(`${what}\n${await rules()}\n${topo.daemonLog.slice(-2000)}`); return false; };
  const cur = await api(topo, 'GET', '/api/v1/nodeconfig');
  t.is(cur.status, 200, cur.text);
  const set = (spec) => apply([{ ...cur.json, spec: { ...cur.json.spec, ...spec } }]);
  try {
    await set({ nodeAddresses: [NODE_V4, NODE_V6, OTHER_V4], nodePortAddresses: [NODE_V4, NODE_V6] });
    await until('the other node address on the TAP', async () => /inet 192\.168\.100\.21\/24 /.test(await tapAddrs()));
    await sleep(300);
    t.notRegex(await rules(), /to 192\.168\.100\.21 /, 'no NodePort rule for a node address NodePorts are not served on');
    t.deepEqual((await api(topo, 'GET', '/api/v1/nodeconfig')).json.spec.nodePortAddresses, [NODE_V4, NODE_V6], 'the daemon\'s own re-program (the host port\'s neighbour) keeps them');
    t.regex(await rules(), new RegExp(`to ${NODE_V4.replace(/\./g, '\\.')} iif lo ipproto tcp dport 30000-32767 lookup 4242`), 'the NodePort address keeps its rule');
    await set({ nodeAddresses: [NODE_V4, NODE_V6, OTHER_V4], nodePortAddresses: [NODE_V6, OTHER_V4] });
    await until('the rule for the address that became a NodePort address', async () => /to 192\.168\.100\.21 iif lo ipproto tcp dport 30000-32767 lookup 4242/.test(await rules()));
    await until('no rule for the address that stopped being one', async () => !new RegExp(`to ${NODE_V4.replace(/\./g, '\\.')} `).test(await rules()));
  } finally {
    const { nodePortAddresses, ...spec } = cur.json.spec;
    await apply([{ ...cur.json, spec: { ...spec, nodeAddresses: [NODE_V4, NODE_V6] } }]);
  }
  await until('the other node address gone, the node address\'s rule back', async () => !/192\.168\.100\.21\//.test(await tapAddrs()) && new RegExp(`to ${NODE_V4.replace(/\./g, '\\.')} iif lo`).test(await rules()));
});

serial('ARP: the node address and announced LB IPs are answered on the uplink, not on pod ports; ClusterIPs and unannounced IPs nowhere', async (t) => {
  const ask = (ns, dev, ip) => arpAnswered(topo, ns, dev, ip);
  // (each ask waits 1.5 s for an answer: the asks of one state of the daemon go together — other
  // namespaces, or other addresses of one, whose neighbour entries and /32 routes are their own)
  const pod = topo.pods[0];
  const [uplinkNode, podNode, uplinkVip] = await Promise.all([
    ask(topo.ns.remote, 'eth0', NODE_V4), ask(pod.ns, pod.ifname, NODE_V4), ask(topo.ns.client, 'eth0', '10.96.5.10'),
  ]);
  t.true(uplinkNode, 'the uplink answers for the node address');
  t.false(podNode, 'a pod port does not claim the node address');
  t.false(uplinkVip, 'a ClusterIP is not answered on an uplink');
  // announce: { loadBalancerIPs: true } (and externalIPs left off)
  await apply([serviceYaml({
    name: 'lb', type: 'LoadBalancer', clusterIP: '10.96.5.30', lbIngress: ['203.0.113.50'], extra: { externalIPs: ['198.51.100.50'] },
    ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30087, protocol: 'TCP' }],
  })]);
  const [uplinkLb, podLb, uplinkExternal] = await Promise.all([
    ask(topo.ns.remote, 'eth0', '203.0.113.50'), ask(pod.ns, pod.ifname, '203.0.113.50'), ask(topo.ns.remote, 'eth0', '198.51.100.50'),
  ]);
  t.true(uplinkLb, 'an announced LB IP is answered on the uplink');
  t.false(podLb, 'never on a pod port');
  t.false(uplinkExternal, 'external IPs are not announced unless configured');
  await api(topo, 'DELETE', '/api/v1/namespaces/default/services/lb');
  t.false(await ask(topo.ns.remote, 'eth0', '203.0.113.50'), 'no longer answered once the Service is gone');
});

serial('the host port\'s TAP deleted while wdp runs is created again and configured as at start: management traffic and the host\'s own NodePort work again, its rules installed once', async (t) => {
  const rules = async () => (await topo.lab.execAsync(topo.ns.dp, 'ip', ['rule', 'show'])).stdout.split('\n').filter((l) => l.includes('lookup 4242')).length;
  const before = await rules();
  const ifindex = () => { const r = topo.lab.exec(topo.ns.dp, 'ip', ['-o', 'link', 'show', 'dev', 'wdp-host']); return r.code === 0 ? parseInt(r.stdout, 10) : undefined; };
  const had = ifindex();
  const configured = () => (topo.daemonLog.match(/host port configured/g) ?? []).length;
  const configuredBefore = configured();
  topo.lab.exec(topo.ns.dp, 'ip', ['link', 'del', 'wdp-host']);
  await waitFor('the host TAP created again', () => { const i = ifindex(); return i !== undefined && i !== had; }, 20000);
  await waitFor('the host port reopened and configured again', () => /"port":"host"[^\n]*reopened/.test(topo.daemonLog) && configured() > configuredBefore, 20000);
  t.is((await api(topo, 'GET', '/api/v1/ports/host')).json.state, 'up');
  const addrs = topo.lab.exec(topo.ns.dp, 'ip', ['-o', 'addr', 'show', 'dev', 'wdp-host']).stdout;
  t.true(addrs.includes(` ${NODE_V4}/24 `), addrs);
  t.is(await rules(), before, 'the NodePort rules installed once');
  const r = await ssh(topo.ns.remote, NODE_V4);
  t.falsy(r.error, `${JSON.stringify(r)}\n${topo.daemonLog.slice(-3000)}`);
  const np = await curlOk(topo, topo.ns.dp, `http://${NODE_V4}:30085/`);
  t.is(np.code, 0, `the host's own NodePort after the TAP came back: ${np.stderr}`);
});

serial('after a crash (SIGKILL) and a restart the host port works again, its rules installed once', async (t) => {
  const rules = async () => (await topo.lab.execAsync(topo.ns.dp, 'ip', ['rule', 'show'])).stdout.split('\n').filter((l) => l.includes('lookup 4242')).length;
  const before = await rules();
  t.true(before >= 2, `tcp and udp rules for the node address: ${before}`);
  topo.daemon.kill('SIGKILL');
  await new Promise((r) => topo.daemon.once('exit', r));
  t.is(await rules(), before, 'a killed daemon leaves its rules (harmless: their table\'s route went with the TAP)');
  const { startDaemon } = await import('./lib/topology.js');
  await startDaemon(topo);
  t.is(await rules(), before, 'no duplicates after the restart');
  const r = await ssh(topo.ns.remote, NODE_V4);
  t.falsy(r.error, JSON.stringify(r));
  const np = await curlOk(topo, topo.ns.dp, `http://${NODE_V4}:30085/`);
  t.is(np.code, 0, `the host's own NodePort after the restart: ${np.stderr}`);
});

serial('after wdp stops its policy rules are gone; the recipe\'s restore gives management back', async (t) => {
  const rulesBefore = (await topo.lab.execAsync(topo.ns.dp, 'ip', ['rule', 'show'])).stdout;
  t.regex(rulesBefore, /lookup 4242/);
  topo.daemon.kill('SIGTERM');
  await new Promise((r) => { const tm = setTimeout(r, 10000); topo.daemon.once('exit', () => { clearTimeout(tm); r(); }); });
  t.not(topo.daemon.exitCode, null, 'daemon exited');
  const rules = (await topo.lab.execAsync(topo.ns.dp, 'ip', ['rule', 'show'])).stdout;
  t.notRegex(rules, /4242/);
  t.regex(rules, /^0:\s+from all lookup local/m);
  t.false((await topo.lab.execAsync(topo.ns.dp, 'ip', ['link', 'show', 'wdp-host'])).code === 0, 'the TAP went with the daemon');
  t.false((await topo.lab.execAsync(topo.ns.dp, '/usr/sbin/nft', ['list', 'ruleset'])).stdout.includes('device "r0"'), 'the uplink is the kernel\'s again');
  // docs/running.md's ExecStopPost: the node address back on the uplink NIC
  await topo.lab.execAsync(topo.ns.dp, 'ip', ['addr', 'replace', `${NODE_V4}/24`, 'dev', 'r0']);
  const r = await ssh(topo.ns.remote, NODE_V4);
  t.falsy(r.error, JSON.stringify(r));
  t.true(r.got.includes('ping'));
});
