// End to end, kube-proxy's UDP conntrack cleanup (pkg/proxy/conntrack/cleanup.go
// CleanStaleEntries) where a Service port serves nothing, through `wdp start` with real clients in
// network namespaces. Current kube-proxy deletes a UDP entry toward an endpoint that is not a
// serving endpoint of its service port also when the port has none left (kubernetes#139629), and
// the entries of a deleted Service's ports (kubernetes#141371); the client's next datagram is a
// new connection, refused (ICMP port unreachable: ECONNREFUSED on a connected socket) while the
// port has no endpoints, and no longer reaches the old pod once its Service is gone — even though
// the pod still runs and would answer. A UDP client that keeps its source port (a connected
// socket, as statsd or `nc -u -p`) sees that.
// Semantics: docs/core.md "Flows of endpoints that stop serving or go away".
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { e2eSuite, api, serviceYaml, sliceYaml, sleep, NODE_V4 } from './lib/topology.js';
import { within } from './lib/bounded-wait.js';

const suite = e2eSuite(test, { pods: [{ name: 'pod-a', attach: 'tap' }, { name: 'pod-b', attach: 'afpacket' }] });
const { serial, apply } = suite;
let topo;
test.before(() => { topo = suite.topo; });

const READY = { ready: true };
// the pod runs and its server answers, but its readiness probe fails: not ready, not serving
const UNREADY = { ready: false, serving: false, terminating: false };

function udpService(name, vip, nodePort) {
  return serviceYaml({ name, clusterIP: vip, type: nodePort ? 'NodePort' : 'ClusterIP', ports: [{ name: 'udp', port: 80, targetPort: 5353, protocol: 'UDP', ...(nodePort ? { nodePort } : {}) }] });
}
function udpSlice(name, service, conds) {
  return sliceYaml({
    name, service, ports: [{ name: 'udp', port: 5353, protocol: 'UDP' }],
    endpoints: topo.pods.flatMap((p, i) => (conds[i] ? [{ addresses: [p.ip], conditions: conds[i], nodeName: 'node-a' }] : [])),
  });
}

/** One datagram from a socket bound to `sport` and connected to host:port (the same 5-tuple every
 * call): { reply } (the answering pod's name), { error } (ECONNREFUSED: an ICMP port unreachable
 * came back) or { timeout }. */
async function ask(ns, host, port, sport, timeoutMs = 1500) {
  const script = `
    const s = require('dgram').createSocket('udp4');
    const t = setTimeout(() => { console.log(JSON.stringify({ timeout: true })); process.exit(0); }, ${timeoutMs});
    s.on('message', (m) => { clearTimeout(t); console.log(JSON.stringify({ reply: m.toString().split(':')[0] })); process.exit(0); });
    s.on('error', (e) => { clearTimeout(t); console.log(JSON.stringify({ error: e.code || e.message })); process.exit(0); });
    s.bind(${sport}, () => s.connect(${port}, ${JSON.stringify(host)}, () => s.send('hostname')));`;
  const r = await topo.lab.execAsync(ns, process.execPath, ['-e', script], { timeoutMs: timeoutMs + 5000 });
  try { return JSON.parse(r.stdout.trim().split('\n').pop()); } catch { return { error: `no output (${r.code}): ${r.stderr}` }; }
}
/** ask() until the answer is `want`'s kind (a reply from that pod, or that error), `tries` at most. */
async function askUntil(ns, host, port, sport, want, tries = 6) {
  let r;
  for (let i = 0; i < tries; i++) {
    r = await ask(ns, host, port, sport);
    if (r.reply === want || r.error === want) return r;
    await sleep(200);
  }
  return r;
}
/** A client in the client namespace whose socket, bound to `sport` and connected to vip:80, sends
 * one datagram and prints each datagram it gets (with its own address) and its socket's error;
 * returns once the first answer ("first") came: its address (`me`) and `finish(ms)`, which waits
 * up to ms for it to end, stops it and gives all it printed. */
async function connectedClient(t, sport, vip) {
  const client = topo.lab.spawn(topo.ns.client, process.execPath, ['-e', `
    const s = require('dgram').createSocket('udp4');
    s.on('message', (m) => console.log(String(m) + ' ' + s.address().address));
    s.on('error', (e) => { console.log('error ' + (e.code || e.message)); process.exit(0); });
    setTimeout(() => { console.log('timeout'); process.exit(0); }, 20000);
    s.bind(${sport}, () => s.connect(80, ${JSON.stringify(vip)}, () => s.send('hi')));`]);
  let out = '';
  const first = new Promise((resolve) => { client.stdout.on('data', (d) => { out += d; if (out.includes('first')) resolve(true); }); client.on('close', () => resolve(false)); });
  const ended = new Promise((resolve) => { client.on('close', resolve); });
  t.true(await first, `the first answer (${out})`);
  const finish = async (ms) => {
    await within(ended, ms);
    if (client.exitCode === null) client.kill();
    return out;
  };
  return { me: out.match(/first (\S+)/)?.[1], finish };
}
async function reasons() { return (await api(topo, 'GET', '/api/v1/counters')).json.reasons; }

serial('a UDP flow whose only endpoint stops serving is refused on its next datagram, not kept on the pod, through a ClusterIP and a NodePort; served again once it is ready', async (t) => {
  for (const [kind, ns, host, port, sport, vip] of [
    ['ClusterIP', () => topo.ns.client, () => '10.96.7.10', 80, 12360, '10.96.7.10'],
    ['NodePort', () => topo.ns.remote, () => NODE_V4, 30060, 12361, '10.96.7.11'],
  ]) {
    const name = `zero-${kind.toLowerCase()}`;
    await apply([udpService(name, vip, kind === 'NodePort' ? 30060 : undefined), udpSlice(`${name}-1`, name, [READY, null])]);
    t.is((await askUntil(ns(), host(), port, sport, 'pod-a')).reply, 'pod-a', `${kind}: the flow reaches pod-a`);
    const before = (await reasons()).reject_no_endpoints ?? 0;
    // pod-a's readiness fails: the port has no serving endpoint; its server still answers
    await apply([udpSlice(`${name}-1`, name, [UNREADY, null])]);
    const refused = await ask(ns(), host(), port, sport);
    t.deepEqual(refused, { error: 'ECONNREFUSED' }, `${kind}: the same 5-tuple is refused as a new connection to a Service without endpoints, not answered by the unready pod`);
    t.true(((await reasons()).reject_no_endpoints ?? 0) > before, `${kind}: counted reject_no_endpoints`);
    await apply([udpSlice(`${name}-1`, name, [READY, null])]);
    t.is((await askUntil(ns(), host(), port, sport, 'pod-a')).reply, 'pod-a', `${kind}: ready again, the same source port is served`);
  }
});

serial('a UDP flow of a deleted Service no longer reaches its pod; the same 5-tuple reaches the Service created again', async (t) => {
  const vip = '10.96.7.12', sport = 12362;
  await apply([udpService('gone', vip), udpSlice('gone-1', 'gone', [READY, null])]);
  t.is((await askUntil(topo.ns.client, vip, 80, sport, 'pod-a')).reply, 'pod-a');
  t.is((await api(topo, 'DELETE', '/api/v1/namespaces/default/services/gone')).status, 200);
  const after = await ask(topo.ns.client, vip, 80, sport);
  t.falsy(after.reply, `the deleted Service's address answers nothing, the old pod is not reached (${JSON.stringify(after)})`);
  // created again on pod-b: the same 5-tuple reaches it
  await apply([udpService('gone', vip), udpSlice('gone-1', 'gone', [null, READY])]);
  t.is((await askUntil(topo.ns.client, vip, 80, sport, 'pod-b')).reply, 'pod-b');
});

serial('a UDP port removed from a live Service: its flow is refused as an undefined port of the ClusterIP', async (t) => {
  const vip = '10.96.7.13', sport = 12363;
  const two = serviceYaml({ name: 'ports', clusterIP: vip, ports: [{ name: 'udp', port: 80, targetPort: 5353, protocol: 'UDP' }, { name: 'other', port: 81, targetPort: 5353, protocol: 'UDP' }] });
  const slice = sliceYaml({ name: 'ports-1', service: 'ports', ports: [{ name: 'udp', port: 5353, protocol: 'UDP' }, { name: 'other', port: 5353, protocol: 'UDP' }], endpoints: [{ addresses: [topo.pods[0].ip], conditions: READY, nodeName: 'node-a' }] });
  await apply([two, slice]);
  t.is((await askUntil(topo.ns.client, vip, 80, sport, 'pod-a')).reply, 'pod-a');
  const before = (await reasons()).reject_invalid_port ?? 0;
  await apply([serviceYaml({ name: 'ports', clusterIP: vip, ports: [{ name: 'other', port: 81, targetPort: 5353, protocol: 'UDP' }] })]);
  t.deepEqual(await ask(topo.ns.client, vip, 80, sport), { error: 'ECONNREFUSED' }, 'port 80 is no port of the ClusterIP any more: refused, the pod not reached');
  t.true(((await reasons()).reject_invalid_port ?? 0) > before, 'counted reject_invalid_port');
});

serial('a datagram the pod sends after it stopped serving is no answer of the Service: a connected client does not get it (served, it does)', async (t) => {
  const vip = '10.96.7.14', pod = topo.pods[1];
  await apply([
    serviceYaml({ name: 'push', clusterIP: vip, ports: [{ name: 'udp', port: 80, targetPort: 6000, protocol: 'UDP' }] }),
    sliceYaml({ name: 'push-1', service: 'push', ports: [{ name: 'udp', port: 6000, protocol: 'UDP' }], endpoints: [{ addresses: [pod.ip], conditions: READY, nodeName: 'node-a' }] }),
  ]);
  const dir = mkdtempSync(join(tmpdir(), 'wdp-push-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // the pod's server answers a datagram at once, and sends a second one to its sender once told to
  const server = topo.lab.spawn(pod.ns, process.execPath, ['-e', `
    const fs = require('fs'), s = require('dgram').createSocket('udp4');
    s.on('message', (m, r) => {
      s.send('first', r.port, r.address);
      const go = ${JSON.stringify(dir)} + '/go-' + r.port;
      const iv = setInterval(() => { if (fs.existsSync(go)) { clearInterval(iv); s.send('second', r.port, r.address); } }, 50);
    });
    s.bind(6000, () => console.log('ready'));`]);
  t.teardown(() => { if (server.exitCode === null) server.kill(); });
  await within(new Promise((resolve) => { server.stdout.on('data', (d) => { if (String(d).includes('ready')) resolve(); }); }), 10000);
  /** A connected client on `sport`: its first answer, then (after `between` ran and the server was
   * told) whether a second datagram reaches it within 2 s. */
  const round = async (sport, between) => {
    const client = await connectedClient(t, sport, vip);
    await between();
    writeFileSync(join(dir, `go-${sport}`), '');
    return (await client.finish(2000)).includes('second');
  };
  t.true(await round(12364, async () => {}), 'served: the pod\'s later datagram reaches the client from the Service address');
  t.false(await round(12365, () => apply([sliceYaml({ name: 'push-1', service: 'push', ports: [{ name: 'udp', port: 6000, protocol: 'UDP' }], endpoints: [{ addresses: [pod.ip], conditions: UNREADY, nodeName: 'node-a' }] })])),
    'unready: its later datagram is no answer of the Service (untranslated, the connected socket ignores it)');
});

// An ICMP error sent in the pod's name, quoting a datagram of the client's flow (a raw socket in
// the pod's namespace: the pod's kernel picks the outer source, its own address).
const ICMP_FROM_POD = `
import socket, struct, sys
def csum(b):
    if len(b) % 2: b += b'\\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b)); s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
cli, sport, pod, dport = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
udp = struct.pack('!HHHH', sport, dport, 10, 0) + b'hi'
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0, 0x4000, 63, 17, 0, socket.inet_aton(cli), socket.inet_aton(pod))
ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
icmp = struct.pack('!BBHI', 3, 3, 0, 0) + ip + udp
icmp = icmp[:2] + struct.pack('!H', csum(icmp)) + icmp[4:]
socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).sendto(icmp, (cli, 0))
`;

// With kube-proxy's cleanup done the kernel has no entry for the pod's error: conntrack finds no
// flow for its quote and forwards it as the pod sent it (no NAT), and the client's socket,
// connected to the Service address, does not match a quote addressed to the pod.
serial('an ICMP error the pod sends about a UDP flow after it stopped serving is not translated: the connected client gets no error (served, it does)', async (t) => {
  const vip = '10.96.7.15', pod = topo.pods[0];
  const sliceOf = (conditions) => sliceYaml({ name: 'icmp-1', service: 'icmp', ports: [{ name: 'udp', port: 6001, protocol: 'UDP' }], endpoints: [{ addresses: [pod.ip], conditions, nodeName: 'node-a' }] });
  await apply([serviceYaml({ name: 'icmp', clusterIP: vip, ports: [{ name: 'udp', port: 80, targetPort: 6001, protocol: 'UDP' }] }), sliceOf(READY)]);
  const server = topo.lab.spawn(pod.ns, process.execPath, ['-e', `
    const s = require('dgram').createSocket('udp4');
    s.on('message', (m, r) => s.send('first', r.port, r.address));
    s.bind(6001, () => console.log('ready'));`]);
  t.teardown(() => { if (server.exitCode === null) server.kill(); });
  await within(new Promise((resolve) => { server.stdout.on('data', (d) => { if (String(d).includes('ready')) resolve(); }); }), 10000);
  /** A connected client on `sport`: its first answer; then (after `between` ran) an ICMP port
   * unreachable from the pod about its flow; whether its socket reports ECONNREFUSED within 2 s. */
  const round = async (sport, between) => {
    const client = await connectedClient(t, sport, vip);
    await between();
    const sent = await topo.lab.execAsync(pod.ns, 'python3', ['-c', ICMP_FROM_POD, client.me, String(sport), pod.ip, '6001'], { timeoutMs: 10000 });
    t.is(sent.code, 0, `the pod's ICMP error sent (${sent.stderr})`);
    return (await client.finish(2000)).includes('ECONNREFUSED');
  };
  t.true(await round(12366, async () => {}), 'served: the pod\'s error reaches the client translated (ECONNREFUSED)');
  t.false(await round(12367, () => apply([sliceOf(UNREADY)])), 'unready: the error passes untranslated, the connected socket does not take it');
});

// kube-proxy's cleanup matches entries by a current service address or node port: once an
// external IP is removed from a port that lives on, its entries are never looked at again and the
// kernel keeps translating them to their pod, also after the pod left the endpoints (it still
// runs and answers). A new client of the removed address is not served.
serial('a UDP flow to an external IP removed from a live port keeps its pod, also once the pod left the endpoints', async (t) => {
  const vip = '10.96.7.16', ext = '203.0.113.16', sport = 12368;
  const svc = (externalIPs) => serviceYaml({ name: 'extgone', clusterIP: vip, ports: [{ name: 'udp', port: 80, targetPort: 5353, protocol: 'UDP' }], extra: { externalIPs } });
  await apply([svc([ext]), udpSlice('extgone-1', 'extgone', [READY, null])]);
  t.is((await askUntil(topo.ns.client, ext, 80, sport, 'pod-a')).reply, 'pod-a', 'the flow reaches pod-a through the external IP');
  await apply([svc([])]);
  t.is((await ask(topo.ns.client, ext, 80, sport)).reply, 'pod-a', 'the address removed: the flow keeps its pod');
  await apply([udpSlice('extgone-1', 'extgone', [null, READY])]);
  t.is((await ask(topo.ns.client, ext, 80, sport)).reply, 'pod-a', 'pod-a left the endpoints (still running): the flow keeps it, as the kernel\'s entry');
  t.falsy((await ask(topo.ns.client, ext, 80, sport + 100)).reply, 'a new client of the removed address is not served');
  t.is((await askUntil(topo.ns.client, vip, 80, sport, 'pod-b')).reply, 'pod-b', 'the ClusterIP serves pod-b');
});
