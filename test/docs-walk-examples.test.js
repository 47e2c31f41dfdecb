// The examples/ manifests as a user applies them (`wdp apply -f examples/X.yaml` through the CLI,
// README "Using it"), checked with real clients against what the Kubernetes docs say each
// Service does. The daemon runs in its own namespace; three pod namespaces carry the examples'
// endpoint addresses (several each) and answer on the examples' target ports; the pod server
// names the address a connection reached (x-local-address), so each endpoint is identified.
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { statSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  buildTopology, startDaemon, startPods, destroyTopology, curl, udpMany, rootGate, ROOT, WDP, NODE_V4,
} from './lib/topology.js';
import { childDone } from './lib/child-done.js';

const gate = rootGate(test);
const serial = gate.serial;
let topo;

// the examples' endpoint addresses, spread over the three pod namespaces
const EXTRA = [
  ['10.244.1.10', '10.244.1.21', '10.244.1.31', '10.244.1.41', '10.244.1.61', 'fd00:244:1::41'],
  ['10.244.2.11', '10.244.2.22', '10.244.2.32', '10.244.2.42', '10.244.1.62', 'fd00:244:2::42'],
  ['10.244.3.23', '10.244.1.24', '10.244.2.63'],
];
const LB_CLIENT = '203.0.113.5'; // inside examples/loadbalancer.yaml's loadBalancerSourceRanges

test.before(async () => {
  if (!gate.ok) return;
  topo = buildTopology({ pods: [{ name: 'pod-a', attach: 'afpacket' }, { name: 'pod-b', attach: 'tap' }, { name: 'pod-c', attach: 'afpacket' }] });
  try {
    await startDaemon(topo);
    await startPods(topo, { http: [53, 6379, 8080, 8443, 9090, 9153], udp: [5353] });
    topo.pods.forEach((pod, i) => {
      // an extra IPv6 address deprecated: a UDP server bound to :: answers from the pod's own
      // address, which the flow was translated to (the source address selection would otherwise
      // pick the extra one, whose prefix matches a node address as long: an answer no flow knows)
      for (const a of EXTRA[i]) topo.lab.addr(pod.ns, pod.ifname, a.includes(':') ? `${a}/128` : `${a}/32`, { deprecated: true });
    });
    topo.lab.addr(topo.ns.remote, 'eth0', `${LB_CLIENT}/32`);
  } catch (e) {
    await destroyTopology(topo);
    topo = undefined;
    throw e;
  }
});
test.after.always(async () => { await destroyTopology(topo); });

/** `wdp ARGS --server unix:SOCK`: { code, stdout, stderr } */
function wdp(args) {
  return new Promise((resolve) => {
    execFile(process.execPath, [WDP, ...args, '--server', `unix:${topo.config.api.listen}`], { cwd: ROOT, timeout: 30000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }));
  });
}

/** Applies `objs` with `wdp apply -f -` (stdin). */
async function applyStdin(t, objs) {
  const child = execFile(process.execPath, [WDP, 'apply', '-f', '-', '--server', `unix:${topo.config.api.listen}`], { cwd: ROOT });
  let stderr = ''; child.stderr.on('data', (d) => { stderr += d; });
  const applied = childDone(child);
  child.stdin.end(JSON.stringify(objs));
  t.is((await applied).code, 0, stderr);
}

/** Two datagrams from a connected UDP socket: the error the second send reports ('ECONNREFUSED'
 * once an ICMP port unreachable came back), or 'timeout'. */
async function udpConnectedError(ns, host, port) {
  const script = `const s=require('dgram').createSocket('${host.includes(':') ? 'udp6' : 'udp4'}');
    const t=setTimeout(()=>{console.log('timeout');process.exit(0)},3000);
    s.on('error',(e)=>{clearTimeout(t);console.log(e.code);process.exit(0)});
    s.connect(${port},'${host}',()=>{s.send('x');setTimeout(()=>s.send('y'),300)});`;
  return (await topo.lab.execAsync(ns, process.execPath, ['-e', script], { timeoutMs: 10000 })).stdout.trim();
}

async function applyExample(t, file) {
  const r = await wdp(['apply', '-f', `examples/${file}`]);
  t.is(r.code, 0, `wdp apply -f examples/${file}: ${r.stderr}${r.stdout}`);
  return r;
}

/** Which endpoint addresses (and client addresses as the pods saw them) answered `n` curl requests. */
async function addressesOf(t, ns, url, n = 16, extra = []) {
  const seen = new Set(); const peers = new Set();
  for (let i = 0; i < n; i++) {
    const r = await curl(topo, ns, url, { timeout: 3, extra });
    t.is(r.code, 0, `${url} request ${i}: ${r.stderr}`);
    if (r.code !== 0) break;
    seen.add(r.headers['x-local-address']); peers.add(r.headers['x-peer'].replace('::ffff:', ''));
  }
  return { addrs: [...seen].sort(), peers: [...peers].sort() };
}

/** A UDP echo bound to one address (answers `addr:payload`), until the topology goes. */
async function udpEchoOn(ns, addr, port) {
  const script = `const s=require('dgram').createSocket('udp4');
    s.on('message',(m,r)=>s.send(Buffer.concat([Buffer.from('${addr}:'),m]),r.port,r.address));
    s.bind(${port},'${addr}',()=>console.log('ready'));`;
  const child = topo.lab.spawn(ns, process.execPath, ['-e', script]);
  topo.podProcs.push(child);
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`udp echo on ${addr} not ready`)), 10000);
    child.stdout.on('data', (d) => { if (String(d).includes('ready')) { clearTimeout(timer); resolve(); } });
  });
}

serial('examples/clusterip-dns.yaml: UDP and TCP port 53 and TCP 9153 on the ClusterIP reach the DNS endpoints; an undefined port is refused', async (t) => {
  await applyExample(t, 'clusterip-dns.yaml');
  // a DNS server answers from the address it was asked at; the pod server's wildcard UDP socket
  // would answer from the pod's first address, which no conntrack (kube-proxy's either) matches
  for (const [i, addr] of [[0, '10.244.1.10'], [1, '10.244.2.11']]) await udpEchoOn(topo.pods[i].ns, addr, 53);
  const tcp = await addressesOf(t, topo.ns.client, 'http://10.96.0.10:53/', 12);
  t.true(tcp.addrs.length >= 1 && tcp.addrs.every((a) => ['10.244.1.10', '10.244.2.11'].includes(a)), JSON.stringify(tcp));
  const metrics = await addressesOf(t, topo.ns.client, 'http://10.96.0.10:9153/', 4);
  t.true(metrics.addrs.every((a) => ['10.244.1.10', '10.244.2.11'].includes(a)), JSON.stringify(metrics));
  const udp = await udpMany(topo, topo.ns.client, '10.96.0.10', 53, Array.from({ length: 8 }, (_, i) => ({ payload: `q${i}` })));
  for (const r of udp) {
    t.regex(r.reply ?? '', /^10\.244\.(1\.10|2\.11):q\d$/, JSON.stringify(r));
    t.is(r.from, '10.96.0.10', 'the reply comes back from the ClusterIP');
  }
  // a port the Service does not define: kube-proxy rejects (ICMP port unreachable -> connection refused)
  const refused = await curl(topo, topo.ns.client, 'http://10.96.0.10:80/', { timeout: 3 });
  t.is(refused.code, 7, `curl to an undefined ClusterIP port must be refused quickly: ${refused.stderr}`);
});

serial('examples/nodeport.yaml: the node port from outside the node is masqueraded and reaches only the ready endpoints; ClusterIP too', async (t) => {
  await applyExample(t, 'nodeport.yaml');
  const np = await addressesOf(t, topo.ns.remote, `http://${NODE_V4}:30080/`, 20);
  t.deepEqual(np.addrs, ['10.244.1.21', '10.244.2.22'], 'ready endpoints only (not the terminating or the not-ready one)');
  t.deepEqual(np.peers, [NODE_V4], 'externalTrafficPolicy Cluster: masqueraded to the node address');
  const cip = await addressesOf(t, topo.ns.client, 'http://10.96.12.34/', 12);
  t.true(cip.addrs.every((a) => ['10.244.1.21', '10.244.2.22'].includes(a)), JSON.stringify(cip));
});

serial('docs/observe.md: a capture of a client\'s connection, the state exported as the recipe says (appended -o yaml outputs), replayed: the SYN is forwarded as the daemon did', async (t) => {
  const cap = join(topo.dir, 'client.pcap');
  const capture = wdp(['capture', '--port', 'client', '--direction', 'in', '--proto', 'TCP', '--dport', '80', '-c', '10', '--duration', '5s', '-w', cap]);
  const started = () => { try { return statSync(cap).size >= 24; } catch { return false; } };
  for (let i = 0; i < 100 && !started(); i++) await new Promise((r) => setTimeout(r, 100));
  const c = await curl(topo, topo.ns.client, 'http://10.96.12.34/', { timeout: 3 });
  t.is(c.code, 0, c.stderr);
  t.is((await capture).code, 0);
  const sh = `set -e; wdp() { ${JSON.stringify(process.execPath)} ${JSON.stringify(WDP)} "$@"; }; cd ${JSON.stringify(topo.dir)}
    wdp get services -o yaml > state.yaml
    wdp get endpointslices -o yaml >> state.yaml
    wdp get nodeconfig -o yaml >> state.yaml
    wdp get ports -o yaml > ports.yaml
    wdp replay client.pcap -f state.yaml --in-port client --ports ports.yaml -w translated.pcap -o json > replay.ndjson`;
  const r = await new Promise((resolve) => {
    const child = spawn('bash', ['-c', sh], { cwd: ROOT, env: { ...process.env, WDP_SERVER: `unix:${topo.config.api.listen}` }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = ''; child.stderr.on('data', (d) => { stderr += d; });
    void childDone(child).then(({ code }) => resolve({ code, stderr }));
  });
  t.is(r.code, 0, r.stderr);
  const events = readFileSync(join(topo.dir, 'replay.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const syn = events.find((e) => e.verdict === 'forward' && JSON.stringify(e).includes('shop/web'));
  t.truthy(syn, `the replayed connection must match shop/web: ${JSON.stringify(events[0])}`);
});

serial('docs/observe.md: wdp capture -w - | a reader that stops early: wdp ends quietly with status 0', async (t) => {
  const sh = `${JSON.stringify(process.execPath)} ${JSON.stringify(WDP)} capture --port client -w - --duration 8s | head -c 100 > /dev/null; echo "status \${PIPESTATUS[0]}"`;
  const child = spawn('bash', ['-c', sh], { cwd: ROOT, env: { ...process.env, WDP_SERVER: `unix:${topo.config.api.listen}` } });
  let out = '', err = '';
  child.stdout.on('data', (d) => { out += d; }); child.stderr.on('data', (d) => { err += d; });
  const done = childDone(child);
  await new Promise((r) => setTimeout(r, 1500));
  for (let i = 0; i < 3; i++) await curl(topo, topo.ns.client, 'http://10.96.12.34/', { timeout: 2 });
  await done;
  t.is(out.trim(), 'status 0', err);
  t.notRegex(err, /cannot reach|EPIPE|\n\s+at /, err);
});

serial('examples/loadbalancer.yaml: the LB IP only from the source ranges, externalTrafficPolicy Local keeps the client address and the local endpoint', async (t) => {
  await applyExample(t, 'loadbalancer.yaml');
  const inRange = await addressesOf(t, topo.ns.remote, 'http://192.0.2.50:443/', 8, ['--interface', LB_CLIENT]);
  t.deepEqual(inRange.addrs, ['10.244.1.31'], 'node-local endpoint only');
  t.deepEqual(inRange.peers, [LB_CLIENT], 'client address preserved');
  const outOfRange = await curl(topo, topo.ns.remote, 'http://192.0.2.50:443/', { timeout: 2 });
  t.not(outOfRange.code, 0, 'a client outside loadBalancerSourceRanges must not be served');
  // loadBalancerSourceRanges filter the load-balancer IP only, not the node port
  const np = await addressesOf(t, topo.ns.remote, `http://${NODE_V4}:31443/`, 6);
  t.deepEqual(np.addrs, ['10.244.1.31']);
  t.deepEqual(np.peers, ['192.168.100.10']);
  // the ClusterIP is not subject to externalTrafficPolicy
  const cip = await addressesOf(t, topo.ns.client, 'http://10.96.40.1:443/', 20);
  t.deepEqual(cip.addrs, ['10.244.1.31', '10.244.2.32']);
});

serial('examples/dual-stack.yaml: both cluster IPs and the external IP reach the endpoints of their family', async (t) => {
  await applyExample(t, 'dual-stack.yaml');
  const v6 = await addressesOf(t, topo.ns.client, 'http://[fd00:96::a]:9090/', 12);
  t.true(v6.addrs.length > 0 && v6.addrs.every((a) => ['fd00:244:1::41', 'fd00:244:2::42'].includes(a)), JSON.stringify(v6));
  const v4 = await addressesOf(t, topo.ns.client, 'http://10.96.50.5:9090/', 12);
  t.true(v4.addrs.length > 0 && v4.addrs.every((a) => ['10.244.1.41', '10.244.2.42'].includes(a)), JSON.stringify(v4));
  const ext = await addressesOf(t, topo.ns.remote, 'http://198.51.100.200:9090/', 8);
  t.true(ext.addrs.length > 0 && ext.addrs.every((a) => ['10.244.1.41', '10.244.2.42'].includes(a)), JSON.stringify(ext));
  t.deepEqual(ext.peers, [NODE_V4], 'external IP, externalTrafficPolicy Cluster: masqueraded');
});

serial('examples/affinity.yaml: ClientIP affinity keeps one endpoint; internalTrafficPolicy Local uses node-local endpoints only', async (t) => {
  await applyExample(t, 'affinity.yaml');
  const a = await addressesOf(t, topo.ns.client, 'http://10.96.60.6:6379/', 12);
  t.is(a.addrs.length, 1, `one endpoint for one client: ${JSON.stringify(a)}`);
  t.true(['10.244.1.61', '10.244.1.62'].includes(a.addrs[0]), 'a node-local endpoint');
});

serial('examples/headless-and-externalname.yaml: stored, nothing programmed', async (t) => {
  await applyExample(t, 'headless-and-externalname.yaml');
  const svcs = await wdp(['get', 'services', '-n', 'shop', '-o', 'json']);
  t.is(svcs.code, 0, svcs.stderr);
  const names = JSON.parse(svcs.stdout).items?.map((s) => s.metadata.name) ?? JSON.parse(svcs.stdout).map?.((s) => s.metadata.name);
  t.true(names.includes('db') && names.includes('payments-provider'), svcs.stdout.slice(0, 500));
  const fe = await wdp(['get', 'frontends', '--service', 'shop/db', '-o', 'json']);
  t.is(fe.code, 0, fe.stderr);
  t.false(fe.stdout.includes('5432'), `a headless service has no frontend: ${fe.stdout.slice(0, 500)}`);
});

serial('a Service without endpoints: TCP and UDP answered with ICMP port unreachable (TCP: connection refused)', async (t) => {
  const empty = ({
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'empty', namespace: 'default' },
    spec: { clusterIP: '10.96.70.7', ports: [{ name: 'tcp', port: 80, protocol: 'TCP' }, { name: 'udp', port: 53, protocol: 'UDP' }] },
  });
  await applyStdin(t, empty);
  const c = await curl(topo, topo.ns.client, 'http://10.96.70.7/', { timeout: 3 });
  t.is(c.code, 7, `connection refused expected: ${c.stderr}`);
  t.is(await udpConnectedError(topo.ns.client, '10.96.70.7', 53), 'ECONNREFUSED', 'a connected UDP socket sees the ICMP port unreachable');
});

serial('no endpoints from outside: a NodePort and an LB IP reject (ICMP port unreachable); externalTrafficPolicy Local with endpoints only on other nodes drops', async (t) => {
  const ports = [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30099 }, { name: 'udp', port: 53, targetPort: 5353, protocol: 'UDP', nodePort: 30099 }];
  await applyStdin(t, [
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'lb-empty', namespace: 'default' }, spec: { type: 'LoadBalancer', clusterIP: '10.96.93.1', ports }, status: { loadBalancer: { ingress: [{ ip: '192.0.2.93' }] } } },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'etp-remote', namespace: 'default' }, spec: { type: 'NodePort', clusterIP: '10.96.93.2', externalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30098 }] } },
    { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'etp-remote-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'etp-remote' } }, addressType: 'IPv4',
      endpoints: [{ addresses: [topo.pods[0].ip], conditions: { ready: true }, nodeName: 'node-b' }], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] },
  ]);
  for (const url of [`http://${NODE_V4}:30099/`, 'http://192.0.2.93/']) {
    const r = await curl(topo, topo.ns.remote, url, { timeout: 3 });
    t.is(r.code, 7, `${url}: connection refused expected: ${r.stderr}`);
  }
  t.is(await udpConnectedError(topo.ns.remote, NODE_V4, 30099), 'ECONNREFUSED');
  const dropped = await curl(topo, topo.ns.remote, `http://${NODE_V4}:30098/`, { timeout: 2 });
  t.is(dropped.code, 28, `no local endpoint but endpoints elsewhere: dropped (timeout), not refused: ${dropped.stderr}`);
  // the ClusterIP is not subject to externalTrafficPolicy
  const cip = await curl(topo, topo.ns.client, 'http://10.96.93.2/', { timeout: 3 });
  t.is(cip.code, 0, cip.stderr);
});

serial('LoadBalancer with allocateLoadBalancerNodePorts: false (no nodePort): the ingress IP serves, no node port is opened', async (t) => {
  await applyStdin(t, [
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'lb-nonp', namespace: 'default' },
      spec: { type: 'LoadBalancer', allocateLoadBalancerNodePorts: false, clusterIP: '10.96.94.1', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] },
      status: { loadBalancer: { ingress: [{ ip: '192.0.2.94' }] } } },
    { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'lb-nonp-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'lb-nonp' } }, addressType: 'IPv4',
      endpoints: topo.pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true }, nodeName: 'node-a' })), ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] },
  ]);
  const r = await addressesOf(t, topo.ns.remote, 'http://192.0.2.94/', 4);
  t.true(r.addrs.length > 0 && r.addrs.every((a) => topo.pods.some((p) => p.ip === a)), JSON.stringify(r));
  const fe = JSON.parse((await wdp(['get', 'frontends', '--service', 'default/lb-nonp', '-o', 'json'])).stdout);
  t.deepEqual(fe.items.map((f) => f.kind).sort(), ['ClusterIP', 'LoadBalancer']);
});

serial('UDP with sessionAffinity ClientIP, and one nodePort number for TCP and UDP (Kubernetes e2e "session affinity: udp", "same port, different protocols")', async (t) => {
  const ports = [
    { name: 'dns-udp', protocol: 'UDP', port: 53, targetPort: 5353, nodePort: 30053 },
    { name: 'dns-tcp', protocol: 'TCP', port: 53, targetPort: 8080, nodePort: 30053 },
  ];
  const body = ([
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'udp-aff', namespace: 'default' }, spec: { type: 'NodePort', clusterIP: '10.96.90.9', sessionAffinity: 'ClientIP', ports } },
    { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'udp-aff-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'udp-aff' } }, addressType: 'IPv4',
      endpoints: topo.pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true }, nodeName: 'node-a' })),
      ports: [{ name: 'dns-udp', protocol: 'UDP', port: 5353 }, { name: 'dns-tcp', protocol: 'TCP', port: 8080 }] },
  ]);
  await applyStdin(t, body);
  const pods = (rs) => [...new Set(rs.map((r) => (r.reply ?? `none ${JSON.stringify(r)}`).split(':')[0]))];
  const asks = Array.from({ length: 10 }, (_, i) => ({ payload: `a${i}` }));
  const cip = await udpMany(topo, topo.ns.client, '10.96.90.9', 53, asks);
  t.is(pods(cip).length, 1, `every datagram of one client (fresh source ports) to one pod: ${JSON.stringify(cip)}`);
  const np = await udpMany(topo, topo.ns.remote, NODE_V4, 30053, asks);
  t.is(pods(np).length, 1, `the node port too: ${JSON.stringify(np)}`);
  t.true(np.every((r) => r.from === NODE_V4), 'answers come from the node address');
  const tcp = await curl(topo, topo.ns.remote, `http://${NODE_V4}:30053/`, { timeout: 3 });
  t.is(tcp.code, 0, `the TCP port with the same nodePort number: ${tcp.stderr}`);
});

serial('dual-stack NodePort: IPv6 from outside at the node\'s IPv6 address, masqueraded to it; IPv6 without endpoints refused (ICMPv6 port unreachable); a ping to a ClusterIP is answered port unreachable', async (t) => {
  const svc = (name, clusterIPs, nodePort) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' },
    spec: { type: nodePort ? 'NodePort' : 'ClusterIP', ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv4', 'IPv6'], clusterIP: clusterIPs[0], clusterIPs,
      ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', ...(nodePort ? { nodePort } : {}) }, { name: 'udp', port: 53, targetPort: 5353, protocol: 'UDP', ...(nodePort ? { nodePort } : {}) }] } });
  const slice = (family, key) => ({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `ds-${family.toLowerCase()}`, namespace: 'default', labels: { 'kubernetes.io/service-name': 'ds' } },
    addressType: family, endpoints: topo.pods.map((p) => ({ addresses: [p[key]], conditions: { ready: true }, nodeName: 'node-a' })),
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'udp', port: 5353, protocol: 'UDP' }] });
  await applyStdin(t, [svc('ds', ['10.96.91.1', 'fd00:96::91'], 30091), slice('IPv6', 'ip6'), slice('IPv4', 'ip'), svc('ds-empty', ['10.96.92.1', 'fd00:96::92'])]);
  const NODE_V6 = 'fd00:100::2';
  // every backend resolved to a port (its neighbour learned or probed), as `wdp get backends` shows
  for (let i = 0; i < 50; i++) {
    const b = JSON.parse((await wdp(['get', 'backends', '--service', 'default/ds', '-o', 'json'])).stdout);
    // (3 pods x 2 families x 2 target ports: 12 backends)
    if (b.items.length === 12 && b.items.every((x) => x.outPort !== null)) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const v6 = await addressesOf(t, topo.ns.remote, `http://[${NODE_V6}]:30091/`, 6);
  t.true(v6.addrs.length > 0 && v6.addrs.every((a) => topo.pods.some((p) => p.ip6 === a)), JSON.stringify(v6));
  t.deepEqual(v6.peers, [NODE_V6], 'externalTrafficPolicy Cluster: masqueraded to the node\'s IPv6 address');
  // a backend's IPv6 neighbour may still be being probed for (a UDP datagram to an unresolved
  // backend is dropped, drop_no_route): a client retries, as DNS clients do
  let u6;
  for (let i = 0; i < 5 && !u6?.[0]?.reply; i++) u6 = await udpMany(topo, topo.ns.remote, NODE_V6, 30091, [{ payload: 'x' }], { timeoutMs: 1000 });
  if (!u6[0].reply) {
    const dbg = await wdp(['get', 'backends', '--service', 'default/ds']);
    const fe = await wdp(['get', 'frontends', '--service', 'default/ds']);
    const ct = await wdp(['get', 'conntrack', '--service', 'default/ds']);
    const cn = await wdp(['get', 'counters']);
    t.log(dbg.stdout, fe.stdout, ct.stdout, cn.stdout);
  }
  t.truthy(u6[0].reply, JSON.stringify(u6));
  // then every pod answers (fresh source ports spread the datagrams over the three)
  const all6 = await udpMany(topo, topo.ns.remote, NODE_V6, 30091, Array.from({ length: 9 }, (_, i) => ({ payload: `y${i}` })), { timeoutMs: 2000 });
  t.deepEqual(all6.filter((r) => !r.reply), [], JSON.stringify(all6));
  const refused = await curl(topo, topo.ns.client, 'http://[fd00:96::92]/', { timeout: 3 });
  t.is(refused.code, 7, `IPv6 Service without endpoints: connection refused: ${refused.stderr}`);
  t.is(await udpConnectedError(topo.ns.client, 'fd00:96::92', 53), 'ECONNREFUSED', 'ICMPv6 port unreachable for UDP');
  // ICMP echo to a ClusterIP: kube-proxy (nftables) rejects what no service port matches
  const ping = `import socket,struct,sys
s=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_ICMP); s.settimeout(3)
def csum(b):
    b+=b'\\0'*(len(b)%2); x=sum(struct.unpack('!%dH'%(len(b)//2),b)); x=(x>>16)+(x&0xffff); x+=x>>16; return ~x&0xffff
h=struct.pack('!BBHHH',8,0,0,0x77,1)+b'walk'; h=h[:2]+struct.pack('!H',csum(h))+h[4:]
s.sendto(h,('10.96.91.1',0))
try:
    while True:
        d,a=s.recvfrom(2048); ihl=(d[0]&15)*4; print(a[0],d[ihl],d[ihl+1]); break
except socket.timeout: print('timeout')`;
  const p = await topo.lab.execAsync(topo.ns.client, 'python3', ['-c', ping], { timeoutMs: 10000 });
  // from the client port's gateway address: the ClusterIP is not the node's, so __icmp_send's route
  // back to the client picks the source (docs/core.md "Reject")
  t.is(p.stdout.trim(), '10.0.0.1 3 3', `ICMP port unreachable from the client port's gateway: ${p.stdout}${p.stderr}`);
});

serial('running.md "Pods that come and go": wdp port add with the documented flags attaches a pod that then serves its Service; wdp port remove detaches it', async (t) => {
  const { lab } = topo;
  const ns = lab.namespace('px');
  lab.veth(ns, 'eth0', topo.ns.dp, 'vx');
  lab.up(ns, 'eth0');
  lab.addr(ns, 'eth0', '10.244.1.20/32');
  lab.route(ns, '10.244.0.1', undefined, 'eth0');
  lab.route(ns, 'default', '10.244.0.1', 'eth0');
  const server = lab.spawn(ns, process.execPath, [new URL('../dist/src/demo/pod-server.js', import.meta.url).pathname, 'pod-x', '--http', '8080']);
  topo.podProcs.push(server);
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('pod-x server not ready')), 10000);
    server.stdout.on('data', (d) => { if (String(d).includes('ready')) { clearTimeout(timer); resolve(); } });
  });
  const add = await wdp(['port', 'add', '--name', 'pod-x', '--type', 'afpacket', '--ifname', 'vx', '--gateway', '10.244.0.1', '--pod', '10.244.1.20']);
  t.is(add.code, 0, add.stderr);
  const ports = await wdp(['get', 'ports', '-o', 'json']);
  const px = JSON.parse(ports.stdout).items.find((p) => p.name === 'pod-x');
  t.is(px?.origin, 'api');
  const svc = ([
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'px', namespace: 'default' }, spec: { clusterIP: '10.96.80.8', ports: [{ name: 'http', port: 80, targetPort: 8080 }] } },
    { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'px-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'px' } }, addressType: 'IPv4', endpoints: [{ addresses: ['10.244.1.20'] }], ports: [{ name: 'http', port: 8080 }] },
  ]);
  await applyStdin(t, svc);
  const ok = await addressesOf(t, topo.ns.client, 'http://10.96.80.8/', 3);
  t.deepEqual(ok.addrs, ['10.244.1.20']);
  const rm = await wdp(['port', 'remove', 'pod-x']);
  t.is(rm.code, 0, rm.stderr);
  const gone = await curl(topo, topo.ns.client, 'http://10.96.80.8/', { timeout: 2 });
  t.not(gone.code, 0, 'the pod is no longer reachable through wdp');
});

serial('wdp apply -f examples/ (docs/api.md "Objects"): every example applies, NodeConfig included; the daemon keeps its own neighbours and routes (its pods stay reachable), adopts the node addresses, and says so', async (t) => {
  const diff = await wdp(['diff', '-f', 'examples/']);
  t.true(diff.code === 0 || diff.code === 1, `diff exits 0 or 1: ${diff.code} ${diff.stderr}`);
  const before = JSON.parse((await wdp(['get', 'nodeconfig', '-o', 'json'])).stdout).spec;
  const r = await applyExample(t, '');
  t.regex(r.stdout, /nodeconfig\/node-a configured/);
  t.regex(r.stderr, /^Warning: this daemon builds its NodeConfig from its config file and the neighbours it learns: it keeps the nodeAddresses and nodePortAddresses applied \(until that NodeConfig is deleted\) and nothing else of it: its neighbours, routes and config-file fields stay its own$/m);
  // (the apply programmed the daemon's own NodeConfig with those addresses: no later re-program to wait for)
  const spec = JSON.parse((await wdp(['get', 'nodeconfig', '-o', 'json'])).stdout).spec;
  t.deepEqual(spec.nodeAddresses, ['192.168.10.11', 'fd00:10::11'], 'the applied node addresses are adopted');
  t.deepEqual(spec.routes, before.routes, 'the daemon\'s routes, not examples/node.yaml\'s');
  t.false(spec.neighbours.some((n) => n.mac === '02:42:0a:f4:01:0a'), 'examples/node.yaml\'s made-up neighbour is gone again');
  // examples/nodeport.yaml's ready endpoints are topology pods: still reached through the ClusterIP
  const cip = await addressesOf(t, topo.ns.client, 'http://10.96.12.34/', 6);
  t.true(cip.addrs.length >= 1 && cip.addrs.every((a) => ['10.244.1.21', '10.244.2.22'].includes(a)), JSON.stringify(cip));
});
