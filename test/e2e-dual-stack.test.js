// End to end: dual-stack and IPv6 Services through `wdp start` in namespaces, checked against
// kube-proxy, which runs one proxier per IP family (the metaproxier) and so decides everything —
// endpoints, rejects, the local-traffic detector, masquerade, NodePorts, affinity — per family.
// The node's detector here is IPv4 only (clusterCIDRs 10.244.0.0/16, as a cluster whose
// --cluster-cidr names no IPv6 range): kube-proxy's IPv6 proxier then has the no-op detector and
// masquerades nothing to an IPv6 ClusterIP, while its IPv4 proxier masquerades off-cluster clients.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { e2eSuite, api, curl, curlOk, httpMany, serviceYaml, sliceYaml, waitFor, NODE_V4, NODE_V6 } from './lib/topology.js';
import { childDone } from './lib/child-done.js';

const suite = e2eSuite(test, {
  kind: 'ds',
  pods: [{ name: 'pod-a', attach: 'afpacket' }, { name: 'pod-b', attach: 'tap' }],
  node: { clusterCIDRs: ['10.244.0.0/16'], serviceCIDRs: ['10.96.0.0/16', 'fd00:96::/64'] },
});
const { serial, apply } = suite;
const hasTcpdump = spawnSync('sh', ['-c', 'command -v tcpdump'], { stdio: 'ignore' }).status === 0;
let topo;
test.before(() => { topo = suite.topo; });

const http = [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }];
const dns = [{ name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP' }];
const slicePorts = (ports) => ports.map((p) => ({ name: p.name, port: p.targetPort, protocol: p.protocol }));
const eps = (pods, family) => pods.map((p) => ({ addresses: [family === 6 ? p.ip6 : p.ip], conditions: { ready: true }, nodeName: 'node-a' }));
/** One slice per family of `pods` (a family's list may be empty: the slice has no endpoints). */
const slices = (name, ports, v4pods, v6pods) => [
  sliceYaml({ name: `${name}-v4`, service: name, ports: slicePorts(ports), endpoints: eps(v4pods, 4) }),
  sliceYaml({ name: `${name}-v6`, service: name, addressType: 'IPv6', ports: slicePorts(ports), endpoints: eps(v6pods, 6) }),
];
const dual = (ips, policy = ips.length === 2 ? 'RequireDualStack' : 'SingleStack') => ({ clusterIPs: ips, ipFamilies: ips.map((ip) => (ip.includes(':') ? 'IPv6' : 'IPv4')), ipFamilyPolicy: policy });
const url = (ip, port = 80) => (ip.includes(':') ? `http://[${ip}]:${port}/` : `http://${ip}:${port}/`);

/** Python: `ask(u, vip, label)` sends 'q' from UDP socket `u` to vip:53 until an answer comes
 * (at most 5 tries of 2 s: the first may race the backend's neighbour) and prints "label answer". */
const PY_ASK = `
def ask(u, vip, label):
    u.settimeout(2)
    for i in range(5):
        u.sendto(b'q', (vip, 53))
        try:
            print(label + ' ' + u.recv(100).decode())
            return
        except socket.timeout:
            pass
`;

/** A UDP datagram from a connected socket; 'refused' when an ICMP(v6) port unreachable came back. */
async function udpConnected(ns, host, port) {
  const py = `
import socket, sys
s = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect((sys.argv[1], int(sys.argv[2])))
try:
    s.send(b'q')
    print('reply ' + s.recv(100).decode())
except ConnectionRefusedError:
    print('refused')
except socket.timeout:
    print('timeout')
`;
  const r = await topo.lab.execAsync(ns, 'python3', ['-c', py, host, String(port)], { timeoutMs: 10000 });
  return r.stdout.trim() || `error ${r.stderr.trim()}`;
}

/** A TCP connect from `ns`: 'connected', 'refused' (an ICMP port unreachable, or a RST, came back) or 'timeout'. */
async function tcpConnect(ns, host, port) {
  const py = `
import socket, sys
s = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(3)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print('connected')
except ConnectionRefusedError:
    print('refused')
except socket.timeout:
    print('timeout')
except OSError as e:
    print('error ' + str(e))
`;
  const r = await topo.lab.execAsync(ns, 'python3', ['-c', py, host, String(port)], { timeoutMs: 10000 });
  return r.stdout.trim() || `error ${r.stderr.trim()}`;
}

/** An ICMPv6 echo request from `ns` to `host`; the first ICMPv6 answer that quotes or echoes it:
 * { type, code, from } or { timeout: true }. */
async function ping6(ns, host) {
  const py = `
import socket, sys, struct, time, json
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.settimeout(0.5)
ident = 0x5d5d
s.sendto(struct.pack('!BBHHH', 128, 0, 0, ident, 1) + b'wdp-dual-stack', (sys.argv[1], 0))
end = time.time() + 3
while time.time() < end:
    try:
        data, addr = s.recvfrom(2000)
    except socket.timeout:
        continue
    t, c = data[0], data[1]
    if (t == 129 and struct.unpack('!H', data[4:6])[0] == ident) or (t in (1, 2, 3, 4) and len(data) >= 8 + 40 + 6 and data[8 + 40] == 128 and struct.unpack('!H', data[8 + 44:8 + 46])[0] == ident):
        print(json.dumps({'type': t, 'code': c, 'from': addr[0]}))
        sys.exit(0)
print(json.dumps({'timeout': True}))
`;
  const r = await topo.lab.execAsync(ns, 'python3', ['-c', py, host], { timeoutMs: 10000 });
  try { return JSON.parse(r.stdout.trim()); } catch { return { error: `${r.code}: ${r.stderr}` }; }
}

serial('dual-stack ClusterIPs in either primary family: each answers with its own family\'s endpoints, TCP and UDP', async (t) => {
  const [a, b] = topo.pods;
  await apply([
    serviceYaml({ name: 'ds46', clusterIP: '10.96.20.1', ports: [...http, ...dns], extra: dual(['10.96.20.1', 'fd00:96::14:1'], 'PreferDualStack') }),
    ...slices('ds46', [...http, ...dns], [a], [b]),
    serviceYaml({ name: 'ds64', clusterIP: 'fd00:96::14:2', ports: http, extra: dual(['fd00:96::14:2', '10.96.20.2']) }),
    ...slices('ds64', http, [b], [a]),
  ]);
  for (const [ip, pod] of [['10.96.20.1', 'pod-a'], ['fd00:96::14:1', 'pod-b'], ['fd00:96::14:2', 'pod-a'], ['10.96.20.2', 'pod-b']]) {
    const r = await curlOk(topo, topo.ns.client, url(ip));
    t.is(r.code, 0, `${ip}: ${r.stderr}`);
    t.is(r.body.trim(), pod, `${ip} goes to the endpoint of its own family`);
  }
  t.is(await udpConnected(topo.ns.client, 'fd00:96::14:1', 53), 'reply pod-b:q');
  t.is(await udpConnected(topo.ns.client, '10.96.20.1', 53), 'reply pod-a:q');
});

serial('an IPv6 ClusterIP refuses ports its Service does not define; an unallocated address of the IPv6 service CIDR is dropped', async (t) => {
  // (ds46 from the first test: TCP 80 and UDP 53 on 10.96.20.1 and fd00:96::14:1)
  t.is(await tcpConnect(topo.ns.client, 'fd00:96::14:1', 80), 'connected');
  t.is(await tcpConnect(topo.ns.client, 'fd00:96::14:1', 81), 'refused', 'another TCP port: an ICMPv6 port unreachable');
  t.is(await tcpConnect(topo.ns.client, 'fd00:96::14:1', 53), 'refused', 'the UDP port\'s number over TCP: an ICMPv6 port unreachable');
  t.is(await udpConnected(topo.ns.client, 'fd00:96::14:1', 54), 'refused', 'another UDP port: ICMPv6 port unreachable');
  t.is(await tcpConnect(topo.ns.client, 'fd00:96::99', 80), 'timeout', 'no Service owns it: dropped, not refused');
});

serial('a dual-stack Service whose IPv6 slice is empty: the IPv6 ClusterIP refuses TCP and UDP (ICMPv6 port unreachable), IPv4 answers', async (t) => {
  const [a] = topo.pods;
  await apply([
    serviceYaml({ name: 'half', clusterIP: '10.96.20.3', ports: [...http, ...dns], extra: dual(['10.96.20.3', 'fd00:96::14:3']) }),
    ...slices('half', [...http, ...dns], [a], []),
  ]);
  t.is((await curlOk(topo, topo.ns.client, url('10.96.20.3'))).body.trim(), 'pod-a');
  t.is(await tcpConnect(topo.ns.client, 'fd00:96::14:3', 80), 'refused', 'refused at once (ICMPv6 port unreachable), not a timeout');
  t.is(await tcpConnect(topo.ns.client, '10.96.20.3', 80), 'connected');
  t.is(await udpConnected(topo.ns.client, 'fd00:96::14:3', 53), 'refused');
  t.is(await udpConnected(topo.ns.client, '10.96.20.3', 53), 'reply pod-a:q');
});

serial('ICMPv6 echo to an IPv6 ClusterIP is answered with a port unreachable (kube-proxy\'s cluster-ips check)', async (t) => {
  await apply([
    serviceYaml({ name: 'echo6', clusterIP: 'fd00:96::14:4', ports: http, extra: dual(['fd00:96::14:4']) }),
    ...slices('echo6', http, [], topo.pods.slice(0, 1)),
  ]);
  const r = await ping6(topo.ns.client, 'fd00:96::14:4');
  // from the client port's gateway address: the ClusterIP is not the node's, so icmp6_send's
  // route back to the client picks the source (docs/core.md "Reject")
  t.deepEqual(r, { type: 1, code: 4, from: 'fd00::1' });
});

serial('single stack -> dual stack -> single stack in place: the second ClusterIP is served, then no longer', async (t) => {
  const [a, b] = topo.pods;
  const single = serviceYaml({ name: 'grow', clusterIP: '10.96.20.5', ports: http, extra: { ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack' } });
  const both = serviceYaml({ name: 'grow', clusterIP: '10.96.20.5', ports: http, extra: dual(['10.96.20.5', 'fd00:96::14:5'], 'PreferDualStack') });
  await apply([single, ...slices('grow', http, [a], [b])]);
  t.is((await curlOk(topo, topo.ns.client, url('10.96.20.5'))).body.trim(), 'pod-a');
  t.not((await curl(topo, topo.ns.client, url('fd00:96::14:5'), { timeout: 2 })).code, 0, 'no IPv6 ClusterIP yet');
  await apply([both]);
  t.is((await curlOk(topo, topo.ns.client, url('fd00:96::14:5'))).body.trim(), 'pod-b');
  t.is((await curlOk(topo, topo.ns.client, url('10.96.20.5'))).body.trim(), 'pod-a');
  await apply([single]);
  const gone = await curl(topo, topo.ns.client, url('fd00:96::14:5'), { timeout: 2 });
  t.not(gone.code, 0, 'the removed IPv6 ClusterIP is not served');
  t.is((await curlOk(topo, topo.ns.client, url('10.96.20.5'))).body.trim(), 'pod-a');
  const fronts = await api(topo, 'GET', '/api/v1/frontends?service=default/grow');
  t.is(fronts.status, 200);
  t.false(fronts.text.includes('fd00:96::14:5'), 'no frontend names the removed address');
  t.true(fronts.text.includes('10.96.20.5'));
});

serial('a TCP connection open to the IPv6 ClusterIP lives on after the Service drops to single stack (kube-proxy leaves its conntrack entry); new ones are not served', async (t) => {
  const [, b] = topo.pods;
  const echo = [{ name: 'echo', port: 7000, targetPort: 7000, protocol: 'TCP' }];
  const server = topo.lab.spawn(b.ns, 'python3', ['-c', `
import socket, threading
srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('::', 7000))
srv.listen(8)
print('ready', flush=True)
def serve(c):
    while True:
        d = c.recv(100)
        if not d:
            break
        c.sendall(d)
while True:
    threading.Thread(target=serve, args=(srv.accept()[0],), daemon=True).start()
`]);
  topo.podProcs.push(server);
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('echo server not ready')), 10000);
      server.stdout.on('data', (d) => { if (String(d).includes('ready')) { clearTimeout(timer); resolve(); } });
    });
    const svc = (ips) => serviceYaml({ name: 'shrink', clusterIP: ips[0], ports: echo, extra: dual(ips) });
    await apply([svc(['10.96.20.8', 'fd00:96::14:c']), ...slices('shrink', echo, [b], [b])]);
    const go = join(topo.dir, 'shrink-go');
    // one connection: an echo, then (once the test has applied the single-stack Service) another
    const client = topo.lab.execAsync(topo.ns.client, 'python3', ['-c', `
import socket, os, sys, time
s = None
for i in range(20):
    try:
        s = socket.create_connection(('fd00:96::14:c', 7000), timeout=2)
        break
    except OSError:
        time.sleep(0.2)
s.sendall(b'one')
print(s.recv(100).decode(), flush=True)
end = time.time() + 20
while not os.path.exists(sys.argv[1]) and time.time() < end:
    time.sleep(0.05)
s.settimeout(5)
s.sendall(b'two')
try:
    print(s.recv(100).decode() or 'closed')
except OSError as e:
    print('error ' + type(e).__name__)
`, go], { timeoutMs: 40000 });
    // wait for the first echo: the flow exists before the downgrade
    let flows = [];
    for (let i = 0; i < 50 && !flows.length; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const ct = await api(topo, 'GET', '/api/v1/conntrack');
      flows = JSON.stringify(ct.json ?? '').includes('fd00:96::14:c') ? [1] : [];
    }
    t.true(flows.length > 0, 'the connection is a flow before the downgrade');
    await apply([serviceYaml({ name: 'shrink', clusterIP: '10.96.20.8', ports: echo, extra: { ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack' } })]);
    writeFileSync(go, '');
    const r = await client;
    t.is(r.stdout.trim(), 'one\ntwo', r.stderr);
    t.not(await tcpConnect(topo.ns.client, 'fd00:96::14:c', 7000), 'connected', 'a new connection to the released address is not served');
  } finally {
    server.kill();
  }
});

serial('an IPv6 pod to an IPv6 ClusterIP is not masqueraded when the local-traffic detector has no IPv6 range (kube-proxy: the IPv6 proxier\'s no-op detector)', async (t) => {
  const [a, b] = topo.pods;
  await apply([
    serviceYaml({ name: 'masq', clusterIP: '10.96.20.6', ports: http, extra: dual(['10.96.20.6', 'fd00:96::14:6']) }),
    ...slices('masq', http, [b], [b]),
  ]);
  // IPv4: the detector knows the pods; a pod keeps its address, the off-cluster client is masqueraded
  const p4 = await curlOk(topo, a.ns, url('10.96.20.6'));
  t.is(p4.headers['x-peer']?.replace('::ffff:', ''), a.ip);
  const c4 = await curlOk(topo, topo.ns.client, url('10.96.20.6'));
  t.is(c4.headers['x-peer']?.replace('::ffff:', ''), NODE_V4);
  // IPv6: no detector, no masquerade rule (IfNotLocal is not implemented): every source kept
  const p6 = await curlOk(topo, a.ns, url('fd00:96::14:6'));
  t.is(p6.body.trim(), 'pod-b');
  t.is(p6.headers['x-peer'], a.ip6, 'the pod\'s own IPv6 address reaches the endpoint');
  const c6 = await curlOk(topo, topo.ns.client, url('fd00:96::14:6'));
  t.is(c6.headers['x-peer'], 'fd00::2');
});

serial('NodePort on the node\'s IPv6 address: masqueraded under externalTrafficPolicy Cluster, the client\'s address kept under Local', async (t) => {
  const [a] = topo.pods;
  const svc = (policy) => serviceYaml({
    name: 'np6', type: 'NodePort', clusterIP: '10.96.20.7', ports: [{ ...http[0], nodePort: 30620 }],
    extra: { ...dual(['10.96.20.7', 'fd00:96::14:7']), externalTrafficPolicy: policy },
  });
  await apply([svc('Cluster'), ...slices('np6', http, [a], [a])]);
  const c = await curlOk(topo, topo.ns.remote, url(NODE_V6, 30620));
  t.is(c.body.trim(), 'pod-a');
  t.is(c.headers['x-peer'], NODE_V6, 'masqueraded to the node\'s IPv6 address');
  await apply([svc('Local')]);
  const l = await curlOk(topo, topo.ns.remote, url(NODE_V6, 30620));
  t.is(l.body.trim(), 'pod-a');
  t.is(l.headers['x-peer'], 'fd00:100::10', 'the remote client\'s IPv6 address reaches the endpoint');
  const l4 = await curlOk(topo, topo.ns.remote, url(NODE_V4, 30620));
  t.is(l4.headers['x-peer']?.replace('::ffff:', ''), '192.168.100.10');
});

serial('sessionAffinity ClientIP on an IPv6 ClusterIP: one client sticks to one endpoint', async (t) => {
  await apply([
    serviceYaml({ name: 'aff6', clusterIP: 'fd00:96::14:8', ports: http, extra: { ...dual(['fd00:96::14:8']), sessionAffinity: 'ClientIP' } }),
    ...slices('aff6', http, [], topo.pods),
  ]);
  t.is((await curlOk(topo, topo.ns.client, url('fd00:96::14:8'))).code, 0);
  const res = await httpMany(topo, topo.ns.client, url('fd00:96::14:8'), 12);
  t.deepEqual(res.filter((r) => r.error), []);
  t.is(new Set(res.map((r) => r.pod)).size, 1, 'all connections of the client on one pod');
});

/** From the client namespace: a UDP flow to `vip`:53 (answered by the pod), then, as a router on
 * the client's side would, an ICMPv6 Packet Too Big of `mtu` to the ClusterIP quoting the pod's
 * translated reply (VIP:53 -> client:40053) with `frag` = a fragment header (offset 0, M set)
 * between the IPv6 and the UDP header, as the first fragment of a fragmented answer has it.
 * Returns the script's output ("reply pod-x:q\nsent"). */
async function packetTooBigAboutReply(vip, { mtu, frag }) {
  const py = `
import socket, struct, sys
vip, client, cport, mtu, frag = sys.argv[1], 'fd00::2', 40053, int(sys.argv[2]), sys.argv[3] == '1'
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u.bind(('::', cport))
${PY_ASK}
ask(u, vip, 'reply')
payload = b'x' * 1400
udp = struct.pack('!HHHH', 53, cport, 8 + len(payload), 0) + payload
ext = struct.pack('!BBHI', 17, 0, 1, 0x5151) if frag else b''  # next UDP, offset 0, M, ID
ip6 = struct.pack('!IHBB', 0x60000000, len(ext) + len(udp), 44 if frag else 17, 63) + socket.inet_pton(socket.AF_INET6, vip) + socket.inet_pton(socket.AF_INET6, client)
quote = (ip6 + ext + udp)[:1280 - 48]
r = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
r.sendto(struct.pack('!BBHI', 2, 0, 0, mtu) + quote, (vip, 0))
print('sent')
`;
  const r = await topo.lab.execAsync(topo.ns.client, 'python3', ['-c', py, vip, String(mtu), frag ? '1' : '0'], { timeoutMs: 20000 });
  return `${r.stdout}${r.stderr}`;
}

/** The path MTU `pod`'s kernel holds for its route to the client fd00::2 (undefined: none learnt). */
async function podPathMtu(pod) {
  return /\bmtu (\d+)/.exec((await topo.lab.execAsync(pod.ns, 'ip', ['-6', 'route', 'get', 'fd00::2'])).stdout)?.[1];
}

/** Polls podPathMtu for up to 3 s (the error crosses the daemon and the pod's kernel). */
async function awaitPathMtu(pod) {
  let mtu;
  for (let i = 0; i < 30 && mtu === undefined; i++) { await new Promise((r) => setTimeout(r, 100)); mtu = await podPathMtu(pod); }
  return mtu;
}

/** A UDP Service `name` at `vip` on `pod` alone; the client's Packet Too Big (`mtu`, quoting the
 * pod's reply, or its first fragment with `frag`) must reach the pod translated: it learns the MTU. */
async function packetTooBigReachesPod(t, pod, name, vip, { mtu, frag }, what) {
  await apply([
    serviceYaml({ name, clusterIP: vip, ports: dns, extra: dual([vip]) }),
    ...slices(name, dns, [], [pod]),
  ]);
  t.is(await podPathMtu(pod), undefined, 'no path MTU learnt yet');
  t.regex(await packetTooBigAboutReply(vip, { mtu, frag }), new RegExp(`reply ${pod.name}:q\\nsent`));
  t.is(await awaitPathMtu(pod), String(mtu), `the pod's route to the client carries the path MTU of the Packet Too Big${what}`);
}

serial('an ICMPv6 Packet Too Big about a reply of a translated UDP flow reaches the backend translated: the pod learns the path MTU to its client', async (t) => {
  await packetTooBigReachesPod(t, topo.pods[0], 'ptb6', 'fd00:96::14:9', { mtu: 1280, frag: false }, '');
});

serial('an ICMPv6 Packet Too Big quoting the first fragment (fragment header, offset 0, M set) of a translated UDP reply reaches the backend translated: the pod learns the path MTU', async (t) => {
  // pod-b: pod-a's route to the client may already hold a path MTU (the test above)
  await packetTooBigReachesPod(t, topo.pods[1], 'ptb6f', 'fd00:96::14:1c', { mtu: 1300, frag: true }, ' about its fragment');
});

serial('IPv6 extension headers on service traffic: TCP with a hop-by-hop header and UDP with a destination options header reach the pod and come back', async (t) => {
  const [a] = topo.pods;
  await apply([
    serviceYaml({ name: 'ext6', clusterIP: 'fd00:96::14:a', ports: [...http, ...dns], extra: dual(['fd00:96::14:a']) }),
    ...slices('ext6', [...http, ...dns], [], [a]),
  ]);
  t.is((await curlOk(topo, topo.ns.client, url('fd00:96::14:a'))).body.trim(), 'pod-a');
  // PadN options: an 8-byte header that changes nothing but its presence
  const py = `
import socket, sys
vip = sys.argv[1]
pad = bytes([0, 0, 1, 4, 0, 0, 0, 0])
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, 54, pad)  # IPV6_HOPOPTS: every segment carries it
s.settimeout(3)
s.connect((vip, 80))
s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')
data = b''
while True:
    d = s.recv(4096)
    if not d:
        break
    data += d
print('tcp ' + data.split(b'\\r\\n\\r\\n', 1)[1].decode().strip())
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u.setsockopt(socket.IPPROTO_IPV6, 59, pad)  # IPV6_DSTOPTS
${PY_ASK}
ask(u, vip, 'udp')
`;
  // the pod's side sees the headers (the packets the test means to send, translated): captured
  // with tcpdump where it is installed
  const cap = hasTcpdump ? topo.lab.spawn(a.ns, 'tcpdump', ['-i', a.ifname, '-n', '-l', '-c', '50', 'ip6[6] == 0 or ip6[6] == 60']) : null;
  let seen = '', capErr = '';
  cap?.stdout.on('data', (d) => { seen += d; });
  const capDone = cap && childDone(cap);
  // tcpdump says "listening on" once its capture and filter are in place (its start is slow on a
  // loaded machine: a fixed second did not always cover it)
  cap?.stderr.on('data', (d) => { capErr += d; });
  if (cap) await waitFor('tcpdump listening', () => /listening on/.test(capErr) || cap.exitCode !== null, 20000);
  const r = await topo.lab.execAsync(topo.ns.client, 'python3', ['-c', py, 'fd00:96::14:a'], { timeoutMs: 20000 });
  t.is(r.stdout.trim(), 'tcp pod-a\nudp pod-a:q', r.stderr);
  if (cap) {
    await new Promise((res) => setTimeout(res, 500));
    if (cap.exitCode === null) cap.kill();
    await capDone;
    t.regex(seen, /IP6 fd00::2 > fd00:244::11: HBH .* > 8080: Flags \[S\]/, `a SYN with its hop-by-hop header reached the pod: ${seen}`);
    t.regex(seen, /IP6 fd00::2 > fd00:244::11: DSTOPT \d+ > 5353: /, `the datagram with its destination options reached the pod: ${seen}`);
  } else t.log('tcpdump not installed: the extension headers on the wire are not checked');
});

serial('external IPs and LoadBalancer ingress IPs of each family, and only of a family the Service has a ClusterIP of', async (t) => {
  const [a] = topo.pods;
  const ports = [{ ...http[0], nodePort: 30621 }];
  await apply([
    serviceYaml({
      name: 'lb46', type: 'LoadBalancer', clusterIP: '10.96.20.11', ports, lbIngress: ['203.0.113.11', 'fd00:200::11'],
      extra: { ...dual(['10.96.20.11', 'fd00:96::14:b']), externalIPs: ['203.0.113.12', 'fd00:200::12'] },
    }),
    ...slices('lb46', http, [a], [a]),
    // IPv4 only: its IPv6 external and LB IPs belong to no proxier of kube-proxy's
    serviceYaml({
      name: 'lb4', type: 'LoadBalancer', clusterIP: '10.96.20.12', ports: [{ ...http[0], nodePort: 30622 }], lbIngress: ['203.0.113.13', 'fd00:200::13'],
      extra: { ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack', externalIPs: ['fd00:200::14'] },
    }),
    ...slices('lb4', http, [a], [a]),
  ]);
  for (const ip of ['203.0.113.11', 'fd00:200::11', '203.0.113.12', 'fd00:200::12', '203.0.113.13']) {
    const r = await curlOk(topo, topo.ns.remote, url(ip));
    t.is(r.body.trim(), 'pod-a', `${ip}: ${r.stderr}`);
  }
  for (const ip of ['fd00:200::13', 'fd00:200::14']) {
    t.not((await curl(topo, topo.ns.remote, url(ip), { timeout: 2 })).code, 0, `${ip} is not served`);
  }
});
