// End to end, the scenarios of Kubernetes' test/e2e/network/conntrack.go through `wdp start` with
// real clients in network namespaces: a UDP client that keeps its source port (as `nc -u -p
// 12345` in a loop) follows its Service's server pod being replaced, through a ClusterIP and a
// NodePort; it reaches a first endpoint once that one gets ready; internalTrafficPolicy Local
// with the local pod recreated; and "should drop INVALID conntrack entries": an out-of-window
// segment from the server is not delivered un-NATed, so the client never resets the connection;
// and an ICMP error from the pod (RELATED to a flow) reaching the client translated.
// Semantics: docs/core.md "Flows of endpoints that stop serving or go away".
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname } from 'node:path';
import { e2eSuite, api, udpAsk, serviceYaml, sliceYaml, sleep, join, NODE_V4 } from './lib/topology.js';
import { rootReason } from './lib/root-gate.js';

// pod-a and pod-b are on this node (node-a); pod-c claims to be on node-b
const suite = e2eSuite(test, { pods: [{ name: 'pod-a', attach: 'tap' }, { name: 'pod-b', attach: 'afpacket' }, { name: 'pod-c', attach: 'afpacket' }] });
const { serial, apply } = suite;
let topo;
test.before(() => { topo = suite.topo; });

const READY = { ready: true };
const UNREADY = { ready: false, serving: false, terminating: false };
// a deleted pod whose server has exited: what the EndpointSlice controller publishes until the pod is gone
const GOING = { ready: false, serving: false, terminating: true };

function udpService(name, vip, extra = {}, nodePort) {
  return serviceYaml({ name, clusterIP: vip, type: nodePort ? 'NodePort' : 'ClusterIP', extra, ports: [{ name: 'udp', port: 80, targetPort: 5353, protocol: 'UDP', ...(nodePort ? { nodePort } : {}) }] });
}
/** A slice with `conds[i]` for pod i (null: not listed). */
function udpSlice(name, service, conds) {
  return sliceYaml({
    name, service, ports: [{ name: 'udp', port: 5353, protocol: 'UDP' }],
    endpoints: topo.pods.flatMap((p, i) => (conds[i] ? [{ addresses: [p.ip], conditions: conds[i], nodeName: i === 2 ? 'node-b' : 'node-a' }] : [])),
  });
}

/** Datagrams from source port `sport` until one is answered (the pod's name) or `tries` run out
 * (null), like conntrack.go's client loop. */
async function askUntil(ns, host, port, sport, tries = 10) {
  for (let i = 0; i < tries; i++) {
    const r = await udpAsk(topo, ns, host, port, 'hostname', { bindPort: sport, timeoutMs: 1000 });
    if (r.reply) return r.reply.split(':')[0];
    await sleep(200);
  }
  return null;
}

serial('UDP from a fixed source port follows the server pod being replaced, through a ClusterIP and a NodePort (conntrack.go "server pod cycles")', async (t) => {
  for (const [kind, ns, host, port, sport, vip] of [
    ['ClusterIP', () => topo.ns.client, () => '10.96.5.10', 80, 12345, '10.96.5.10'],
    ['NodePort', () => topo.ns.remote, () => NODE_V4, 30053, 12345, '10.96.5.11'],
  ]) {
    const name = `cycle-${kind.toLowerCase()}`;
    await apply([udpService(name, vip, {}, kind === 'NodePort' ? 30053 : undefined), udpSlice(`${name}-1`, name, [READY, null, null])]);
    t.is(await askUntil(ns(), host(), port, sport), 'pod-a', `${kind}: the first server`);
    // a second server pod is ready, the first one is deleted (its server gone, the pod terminating)
    await apply([udpSlice(`${name}-1`, name, [GOING, READY, null])]);
    t.is(await askUntil(ns(), host(), port, sport, 3), 'pod-b', `${kind}: the same source port reaches the new pod while the old one terminates`);
    await apply([udpSlice(`${name}-1`, name, [null, READY, null])]);
    t.is(await askUntil(ns(), host(), port, sport, 3), 'pod-b', `${kind}: and once the old one is gone`);
  }
});

serial('UDP from a fixed source port reaches the first endpoint once it gets ready (conntrack.go "initial unready endpoints get ready")', async (t) => {
  await apply([udpService('unready', '10.96.5.12'), udpSlice('unready-1', 'unready', [UNREADY, null, null])]);
  const refused = await udpAsk(topo, topo.ns.client, '10.96.5.12', 80, 'hostname', { bindPort: 12346, timeoutMs: 1000 });
  t.falsy(refused.reply, `no serving endpoint: nothing answers (${JSON.stringify(refused)})`);
  await apply([udpSlice('unready-1', 'unready', [READY, null, null])]);
  t.is(await askUntil(topo.ns.client, '10.96.5.12', 80, 12346, 3), 'pod-a');
});

serial('internalTrafficPolicy Local: UDP from a fixed source port reaches the local pod recreated after a spell with only a remote one (conntrack.go, issue 126934)', async (t) => {
  await apply([udpService('itp', '10.96.5.13', { internalTrafficPolicy: 'Local' }), udpSlice('itp-1', 'itp', [READY, null, null])]);
  t.is(await askUntil(topo.ns.client, '10.96.5.13', 80, 12347), 'pod-a');
  await apply([udpSlice('itp-1', 'itp', [READY, null, READY])]);
  t.is(await askUntil(topo.ns.client, '10.96.5.13', 80, 12347, 3), 'pod-a', 'the remote endpoint changes nothing for a local client');
  await apply([udpSlice('itp-1', 'itp', [null, null, READY])]);
  const dropped = await udpAsk(topo, topo.ns.client, '10.96.5.13', 80, 'hostname', { bindPort: 12347, timeoutMs: 1000 });
  t.falsy(dropped.reply, `only a remote endpoint: dropped (${JSON.stringify(dropped)})`);
  await apply([udpSlice('itp-1', 'itp', [null, READY, READY])]);
  t.is(await askUntil(topo.ns.client, '10.96.5.13', 80, 12347, 3), 'pod-b', 'the new local pod, no black-holed entry left behind');
});

const noPython = rootReason(['python3']);
(noPython ? (title) => test.skip(`${title} (skipped: ${noPython})`) : serial)('an out-of-window segment from the server reaches the client translated, so the client never resets the connection (conntrack.go "should drop INVALID conntrack entries")', async (t) => {
  const pod = topo.pods[0];
  // a TCP echo server in pod-a (the pod HTTP server closes after one answer)
  const echo = topo.lab.spawn(pod.ns, process.execPath, ['-e', "require('net').createServer((s) => { s.on('error', () => {}); s.pipe(s); }).listen(9000, () => console.log('ready'))"]);
  t.teardown(() => { if (echo.exitCode === null) echo.kill(); });
  await new Promise((resolve) => { echo.stdout.on('data', (d) => { if (String(d).includes('ready')) resolve(); }); setTimeout(resolve, 10000); });
  await apply([
    serviceYaml({ name: 'boom', clusterIP: '10.96.5.14', ports: [{ name: 'tcp', port: 9000, targetPort: 9000, protocol: 'TCP' }] }),
    sliceYaml({ name: 'boom-1', service: 'boom', ports: [{ name: 'tcp', port: 9000, protocol: 'TCP' }], endpoints: [{ addresses: [pod.ip], conditions: READY, nodeName: 'node-a' }] }),
  ]);
  const go = join(mkdtempSync(join(tmpdir(), 'wdp-boom-')), 'go');
  t.teardown(() => rmSync(dirname(go), { recursive: true, force: true }));
  // the client: one connection, an echo, then (after the injection) another echo on it
  const script = `
    const net = require('net'), fs = require('fs');
    const s = net.connect(9000, '10.96.5.14');
    let buf = '', phase = 0;
    const done = (r) => { console.log(JSON.stringify(r)); process.exit(0); };
    s.on('error', (e) => done({ error: e.code || e.message, phase }));
    s.on('close', () => done({ error: 'closed', phase }));
    setTimeout(() => done({ error: 'timeout', phase }), 30000);
    s.on('connect', () => s.write('one\\n'));
    s.on('data', async (d) => {
      buf += d;
      if (phase === 0 && buf.includes('one\\n')) {
        phase = 1;
        console.log('cport ' + s.localPort);
        for (let i = 0; i < 400 && !fs.existsSync(${JSON.stringify(go)}); i++) await new Promise((r) => setTimeout(r, 50));
        await new Promise((r) => setTimeout(r, 500)); // the client's answer to the segment, if any, has gone out
        s.write('two\\n');
      } else if (phase === 1 && buf.includes('two\\n')) done({ ok: true });
    });`;
  const client = topo.lab.spawn(topo.ns.client, process.execPath, ['-e', script]);
  t.teardown(() => { if (client.exitCode === null) client.kill(); });
  let out = '';
  const cport = await new Promise((resolve) => {
    client.stdout.on('data', (d) => { out += d; const m = /cport (\d+)/.exec(out); if (m) resolve(Number(m[1])); });
    client.on('close', () => resolve(null));
  });
  const ended = new Promise((resolve) => { if (client.exitCode !== null) resolve(); else client.on('close', resolve); });
  t.truthy(cport, `the client's first echo: ${out}`);
  const before = (await api(topo, 'GET', '/api/v1/counters')).json.reasons.fwd_reply ?? 0;
  // the server side sends a data segment far outside the client's window (regression 74839: the
  // kernel's conntrack marks it INVALID and, without kube-proxy's drop rule, lets it through
  // un-NATed; the client then answers the unknown pod address with a RST that kills the server's
  // connection)
  const inject = `
import random, socket, struct
def csum(b):
    if len(b) % 2: b += b'\\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
src, dst, sport, dport = '${pod.ip}', '10.0.0.2', 9000, ${cport}
seq, ack = random.getrandbits(32), random.getrandbits(32)
tcp = struct.pack('!HHIIBBHHH', sport, dport, seq, ack, 5 << 4, 0x18, 64240, 0, 0) + b'boom'
pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack('!BBH', 0, 6, len(tcp))
tcp = tcp[:16] + struct.pack('!H', csum(pseudo + tcp)) + tcp[18:]
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 0, 0, 0x4000, 64, 6, 0, socket.inet_aton(src), socket.inet_aton(dst))
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.sendto(ip + tcp, (dst, 0))
print('sent')`;
  const inj = await topo.lab.execAsync(pod.ns, 'python3', ['-c', inject], { timeoutMs: 10000 });
  t.is(inj.stdout.trim(), 'sent', inj.stderr);
  let after = before;
  for (let i = 0; i < 50 && after === before; i++) { await sleep(50); after = (await api(topo, 'GET', '/api/v1/counters')).json.reasons.fwd_reply ?? 0; }
  t.true(after > before, 'the segment went back through the flow (fwd_reply)');
  writeFileSync(go, '');
  await ended;
  const res = JSON.parse(out.trim().split('\n').pop());
  t.deepEqual(res, { ok: true }, `the connection survived the out-of-window segment: ${out}`);
});

/** What a connected UDP socket in `ns` sees after sending to host:port twice: 'ECONNREFUSED'
 * when an ICMP port unreachable matching its socket came back, 'reply' or 'timeout'. */
async function connectedUdp(ns, host, port) {
  const script = `
    const s = require('dgram').createSocket('udp4');
    const t = setTimeout(() => { console.log('timeout'); process.exit(0); }, 3000);
    s.on('error', (e) => { clearTimeout(t); console.log(e.code); process.exit(0); });
    s.on('message', () => { clearTimeout(t); console.log('reply'); process.exit(0); });
    s.connect(${port}, ${JSON.stringify(host)}, () => { s.send('x'); setTimeout(() => s.send('y'), 300); });`;
  return (await topo.lab.execAsync(ns, process.execPath, ['-e', script], { timeoutMs: 10000 })).stdout.trim();
}

// The kernel's conntrack translates an ICMP error quoting a NATed packet (RELATED) back: the
// client's socket, connected to the service address, learns that the pod's port is closed.
serial('an ICMP port unreachable from the pod reaches the client translated (quoted packet and outer header), ClusterIP and masqueraded NodePort', async (t) => {
  await apply([
    serviceYaml({ name: 'closed', type: 'NodePort', clusterIP: '10.96.5.15', ports: [{ name: 'udp', port: 80, targetPort: 5999, nodePort: 30059, protocol: 'UDP' }] }),
    sliceYaml({ name: 'closed-1', service: 'closed', ports: [{ name: 'udp', port: 5999, protocol: 'UDP' }], endpoints: [{ addresses: [topo.pods[0].ip], conditions: READY, nodeName: 'node-a' }] }),
  ]);
  const count = async () => (await api(topo, 'GET', '/api/v1/counters')).json.reasons.fwd_icmp_error ?? 0;
  const before = await count();
  t.is(await connectedUdp(topo.ns.client, '10.96.5.15', 80), 'ECONNREFUSED', 'ClusterIP: nothing listens on the pod port');
  const mid = await count();
  t.true(mid > before, `fwd_icmp_error counted (${before} -> ${mid})`);
  t.is(await connectedUdp(topo.ns.remote, NODE_V4, 30059), 'ECONNREFUSED', 'NodePort (masqueraded): the quoted source translated back too');
  t.true(await count() > mid);
});

// A client that half-closes (shutdown of its sending side: HTTP/1.0-style clients, `nc -N`,
// rsync) and waits for an answer that takes a while: the kernel's conntrack keeps such a
// connection in FIN_WAIT/CLOSE_WAIT (kube-proxy sets CLOSE_WAIT to 1 h, its
// --conntrack-tcp-timeout-close-wait, which Kubernetes' e2e "should set TCP CLOSE_WAIT timeout"
// checks), not in the short timeout of a connection closed both ways.
serial('a half-closed connection outlives the closing timeout: the answer sent 13 s after the client\'s FIN reaches it translated', async (t) => {
  const pod = topo.pods[1];
  // allowHalfOpen: node would otherwise answer the client's FIN with its own at once
  const slow = topo.lab.spawn(pod.ns, process.execPath, ['-e', `require('net').createServer({ allowHalfOpen: true }, (s) => {
    let got = ''; s.on('error', () => {}); s.on('data', (d) => { got += d; });
    s.on('end', () => setTimeout(() => s.end('late answer to ' + got), 13000));
  }).listen(9001, () => console.log('ready'))`]);
  t.teardown(() => { if (slow.exitCode === null) slow.kill(); });
  await new Promise((resolve) => { slow.stdout.on('data', (d) => { if (String(d).includes('ready')) resolve(); }); setTimeout(resolve, 10000); });
  await apply([
    serviceYaml({ name: 'halfclose', clusterIP: '10.96.5.16', ports: [{ name: 'tcp', port: 9001, targetPort: 9001, protocol: 'TCP' }] }),
    sliceYaml({ name: 'halfclose-1', service: 'halfclose', ports: [{ name: 'tcp', port: 9001, protocol: 'TCP' }], endpoints: [{ addresses: [pod.ip], conditions: READY, nodeName: 'node-a' }] }),
  ]);
  const script = `
    const s = require('net').connect(9001, '10.96.5.16');
    let got = '';
    const done = (r) => { console.log(JSON.stringify(r)); process.exit(0); };
    s.on('connect', () => s.end('question'));
    s.on('data', (d) => { got += d; });
    s.on('end', () => done({ got }));
    s.on('error', (e) => done({ error: e.code || e.message, got }));
    setTimeout(() => done({ error: 'timeout', got }), 25000);`;
  const r = await topo.lab.execAsync(topo.ns.client, process.execPath, ['-e', script], { timeoutMs: 35000 });
  t.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop() || '{}'), { got: 'late answer to question' }, r.stderr);
  const flows = (await api(topo, 'GET', '/api/v1/conntrack?proto=TCP')).json?.items ?? [];
  const f = flows.find((x) => x.vip === '10.96.5.16');
  t.truthy(f, 'the flow is still there after the exchange');
});
