// End to end, with real clients in network namespaces and `wdp start` running inside its own
// namespace: ClusterIP over TCP and UDP (numeric and named targetPort), replies from the VIP,
// load spread, no-endpoint rejects, IPv6, and `wdp trace` agreeing with what happened.
// Pods are attached both by TAP (created by the daemon, moved into the pod namespace) and by
// AF_PACKET on a veth.
import test from 'ava';
import {
  curlOk, e2eSuite, api, curl, udpAsk, udpMany, httpMany, serviceYaml, sliceYaml, sleep, WDP,
} from './lib/topology.js';

const suite = e2eSuite(test, { pods: [{ name: 'pod-a', attach: 'tap' }, { name: 'pod-b', attach: 'afpacket' }, { name: 'pod-c', attach: 'tap' }] });
const { serial, apply } = suite;
let topo;
test.before(() => { topo = suite.topo; });
const VIP = '10.96.0.10';
const VIP6 = 'fd00:96::10';

const webService = () => [
  serviceYaml({
    name: 'web', clusterIP: VIP,
    ports: [
      { name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' },
      { name: 'alt', port: 81, targetPort: 'alt-http', protocol: 'TCP' },
      { name: 'echo', port: 53, targetPort: 5353, protocol: 'UDP' },
    ],
  }),
  sliceYaml({
    name: 'web-1', service: 'web',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'alt', port: 9090, protocol: 'TCP' }, { name: 'echo', port: 5353, protocol: 'UDP' }],
    endpoints: topo.pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true }, nodeName: 'node-a' })),
  }),
];

serial('ClusterIP TCP: real curl through the VIP, numeric targetPort, no SNAT, load spreads over all pods', async (t) => {
  await apply(webService());
  const first = await curlOk(topo, topo.ns.client, `http://${VIP}/`);
  t.is(first.code, 0, `curl failed: ${first.stderr}\n${topo.daemonLog.slice(-3000)}`);
  // a few real curls: the answer comes from a pod's port 8080 and the pod sees the real client
  for (let i = 0; i < 5; i++) {
    const r = await curl(topo, topo.ns.client, `http://${VIP}:80/`);
    t.is(r.code, 0, r.stderr);
    t.regex(r.body, /^pod-[abc]\n$/);
    t.is(r.headers['x-local-port'], '8080');
    t.is(r.headers['x-peer'].replace('::ffff:', ''), '10.0.0.2');   // client address preserved
  }
  // and many connections (new source ports) spread over every pod
  const many = await httpMany(topo, topo.ns.client, `http://${VIP}/`, 30);
  t.deepEqual(many.filter((x) => x.error), []);
  const seen = new Map();
  for (const x of many) seen.set(x.pod, (seen.get(x.pod) ?? 0) + 1);
  t.deepEqual([...seen.keys()].sort(), ['pod-a', 'pod-b', 'pod-c'], `spread: ${JSON.stringify([...seen])}`);
});

serial('ClusterIP TCP: named targetPort resolves through the EndpointSlice port name', async (t) => {
  await apply(webService());
  const r = await curlOk(topo, topo.ns.client, `http://${VIP}:81/`);
  t.is(r.code, 0, r.stderr);
  t.is(r.headers['x-local-port'], '9090');
});

serial('ClusterIP UDP: echo answered from the VIP and service port', async (t) => {
  await apply(webService());
  const pods = new Set();
  const replies = await udpMany(topo, topo.ns.client, VIP, 53, Array.from({ length: 12 }, (_, i) => ({ payload: `ping-${i}` })));
  for (const [i, r] of replies.entries()) {
    t.falsy(r.timeout, 'UDP reply timed out');
    t.is(r.from, VIP);
    t.is(r.port, 53);
    t.regex(r.reply, new RegExp(`^pod-[abc]:ping-${i}$`));
    pods.add(r.reply.split(':')[0]);
  }
  t.true(pods.size >= 2, `UDP flows went to ${[...pods]}`);
});

serial('no endpoints: TCP and UDP get an ICMP port unreachable (kube-proxy\'s bare reject): the TCP connect is refused at once (ECONNREFUSED), IPv4 and IPv6', async (t) => {
  await apply([
    serviceYaml({ name: 'empty', clusterIP: '10.96.0.20', ports: [{ name: 'http', port: 80, protocol: 'TCP' }, { name: 'dns', port: 53, protocol: 'UDP' }] }),
    serviceYaml({ name: 'empty6', clusterIP: 'fd00:96::20', extra: { ipFamilies: ['IPv6'] }, ports: [{ name: 'http', port: 80, protocol: 'TCP' }] }),
  ]);
  // curl's "couldn't connect" (7), not a timeout (28): Linux's TCP takes the port unreachable
  // answering its SYN as a hard error (tcp_v4_err / tcp_v6_err: ECONNREFUSED)
  for (const url of ['http://10.96.0.20/', 'http://[fd00:96::20]/']) {
    const r = await curl(topo, topo.ns.client, url, { timeout: 4 });
    t.is(r.code, 7, `${url}: curl should fail to connect (7), not time out (28); got ${r.code}: ${r.stderr}`);
  }
  for (const host of ['10.96.0.20', 'fd00:96::20']) {
    const tcp = `
      const s = require('net').connect(80, ${JSON.stringify(host)});
      const t = setTimeout(() => { console.log('timeout'); process.exit(0); }, 3000);
      s.on('connect', () => { console.log('connected'); process.exit(0); });
      s.on('error', (e) => { clearTimeout(t); console.log(e.code); process.exit(0); });`;
    t.is((await topo.lab.execAsync(topo.ns.client, process.execPath, ['-e', tcp], { timeoutMs: 10000 })).stdout.trim(), 'ECONNREFUSED', `a Node socket to ${host}`);
  }
  // A connected UDP socket surfaces ICMP port unreachable as ECONNREFUSED.
  const script = `
    const s = require('dgram').createSocket('udp4');
    const t = setTimeout(() => { console.log('timeout'); process.exit(0); }, 3000);
    s.on('error', (e) => { clearTimeout(t); console.log(e.code); process.exit(0); });
    s.on('message', () => { clearTimeout(t); console.log('reply'); process.exit(0); });
    s.connect(53, '10.96.0.20', () => { s.send('x'); setTimeout(() => s.send('y'), 300); });`;
  const u = await topo.lab.execAsync(topo.ns.client, process.execPath, ['-e', script], { timeoutMs: 10000 });
  t.is(u.stdout.trim(), 'ECONNREFUSED');
  const c = await api(topo, 'GET', '/api/v1/counters');
  t.is(c.status, 200);
  t.true(JSON.stringify(c.json).includes('reject_no_endpoints'));
  // the worker reports where its busy loop time went (what `wdp bench e2e` prints as the time split)
  for (const stage of ['rx', 'core', 'tx']) t.true(c.json.global[`slowpath_time_${stage}_ns`] > 0, `time_${stage}_ns counted`);
});

serial('IPv6 ClusterIP: TCP and UDP to a v6 VIP reach v6 pod addresses', async (t) => {
  await apply([
    serviceYaml({ name: 'web6', clusterIP: VIP6, extra: { ipFamilies: ['IPv6'] }, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }, { name: 'echo', port: 53, targetPort: 5353, protocol: 'UDP' }] }),
    sliceYaml({
      name: 'web6-1', service: 'web6', addressType: 'IPv6',
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'echo', port: 5353, protocol: 'UDP' }],
      endpoints: topo.pods.map((p) => ({ addresses: [p.ip6], conditions: { ready: true } })),
    }),
  ]);
  const r = await curlOk(topo, topo.ns.client, `http://[${VIP6}]/`);
  t.is(r.code, 0, `${r.stderr}\n${topo.daemonLog.slice(-2000)}`);
  t.regex(r.body, /^pod-[abc]\n$/);
  t.is(r.headers['x-peer'], 'fd00::2');
  const many = await httpMany(topo, topo.ns.client, `http://[${VIP6}]/`, 24);
  t.deepEqual([...new Set(many.map((x) => x.pod))].sort(), ['pod-a', 'pod-b', 'pod-c']);
  t.deepEqual([...new Set(many.map((x) => x.peer))], ['fd00::2']);
  const u = await udpAsk(topo, topo.ns.client, VIP6, 53, 'six');
  t.is(u.from, VIP6);
  t.regex(u.reply ?? '', /^pod-[abc]:six$/);
});

serial('wdp trace agrees with what the dataplane did for a real connection', async (t) => {
  await apply(webService());
  const r = await curlOk(topo, topo.ns.client, `http://${VIP}/`);
  t.is(r.code, 0);
  const ct = await api(topo, 'GET', `/api/v1/conntrack?client=10.0.0.2`);
  t.is(ct.status, 200, ct.text);
  // the connection just made is the most recently seen one (earlier tests left older, possibly
  // already expired entries: expiry is lazy, so they can still be listed)
  const flows = ct.json.items.filter((f) => f.vip === VIP && f.vipPort === 80).sort((a, b) => a.idleMs - b.idleMs);
  t.true(flows.length > 0, `no conntrack entry: ${ct.text.slice(0, 500)}`);
  const flow = flows[0];
  const tr = await api(topo, 'POST', '/api/v1/trace', { src: '10.0.0.2', dst: VIP, proto: 'TCP', sport: flow.clientPort, dport: 80, tcpFlags: 'A', inPort: 0 });
  t.is(tr.status, 200, tr.text);
  const res = tr.json.result ?? tr.json;
  t.is(res.verdict, 'forward');
  t.is(res.conntrack, 'hit_orig');
  t.is(res.backend.addr, flow.backend);
  // the `wdp trace` command says the same
  const cli = await topo.lab.execAsync(topo.ns.client, process.execPath, [WDP, 'trace', '--server', `unix:${topo.config.api.listen}`,
    '--src', '10.0.0.2', '--dst', VIP, '--sport', String(flow.clientPort), '--dport', '80', '--flags', 'A', '-o', 'json'], { timeoutMs: 30000 });
  t.is(cli.code, 0, cli.stderr);
  const viaCli = JSON.parse(cli.stdout);
  t.is(viaCli.verdict, 'forward');
  t.is(viaCli.conntrack, 'hit_orig');
  t.is(viaCli.backend.addr, flow.backend);
  t.is(viaCli.output.dst, flow.backend);
  // a fresh SYN from an unused port is NATed to a ready backend on port 8080
  const tr2 = await api(topo, 'POST', '/api/v1/trace', { src: '10.0.0.2', dst: VIP, proto: 'TCP', sport: 1234, dport: 80, inPort: 0 });
  const res2 = tr2.json.result ?? tr2.json;
  t.is(res2.verdict, 'forward');
  t.is(res2.output.dport, 8080);
  t.true(topo.pods.some((p) => p.ip === res2.output.dst));
  // and the no-endpoint service is a reject
  const tr3 = await api(topo, 'POST', '/api/v1/trace', { src: '10.0.0.2', dst: '10.96.0.20', proto: 'TCP', sport: 1234, dport: 80, inPort: 0 });
  const res3 = tr3.json.result ?? tr3.json;
  t.is(res3.verdict, 'reject');
  t.is(res3.reason, 'reject_no_endpoints');
});
