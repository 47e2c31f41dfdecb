// End to end: path MTU discovery through wdp (docs/core.md "Egress MTU"). The pod's link has MTU
// 1280, the client's 1500. A datagram with DF (IP_PMTUDISC_DO) bigger than 1280, to a ClusterIP
// or routed straight to the pod address, comes back to the client as ICMP fragmentation needed /
// ICMPv6 packet too big carrying 1280 and quoting the client's own packet (for the ClusterIP: the
// kernel matches it to the socket connected to the ClusterIP, so the quote names the ClusterIP);
// the client's kernel learns the path MTU (`ip route get` shows it, the socket's IP_MTU is 1280,
// a second big send fails with EMSGSIZE) and a datagram that fits is answered by the pod. pod-a is
// behind a veth (an AF_PACKET port: the daemon reads the interface's MTU), pod-b behind a TAP the
// daemon creates with the port's `mtu`. An MTU changed while the daemon runs is taken: on a veth
// (read by its worker) and on the TAP inside the pod's namespace (read by the main thread).
import test from 'ava';
import { e2eSuite, serviceYaml, sliceYaml, api, logged } from './lib/topology.js';
import { pmtuProbe, EMSGSIZE } from './lib/pmtu-probe.js';

const POD_MTU = 1280;
const suite = e2eSuite(test, {
  pods: [{ name: 'pod-a', attach: 'afpacket' }, { name: 'pod-b', attach: 'tap' }],
  // both ends of the pod's veth: the daemon reads its own end's MTU when it opens the port
  // the pod is a static neighbour (a host route for plain forwarding), the client's subnet routed
  // back out of the client port (its replies to the client)
  configure(config) {
    const { lab, ns, pods } = suite.topo;
    lab.exec(ns.dp, 'ip', ['link', 'set', 'dev', 'v0', 'mtu', String(POD_MTU)]);
    lab.exec(pods[0].ns, 'ip', ['link', 'set', 'dev', 'eth0', 'mtu', String(POD_MTU)]);
    config.ports.find((p) => p.name === 'pod-a').pods = [{ ip: pods[0].ip }, { ip: pods[0].ip6 }];
    config.ports.find((p) => p.name === 'pod-b').mtu = POD_MTU;
    const clientMac = lab.exec(ns.client, 'cat', ['/sys/class/net/eth0/address']).stdout.trim();
    config.routes = [{ prefix: '10.0.0.0/24', port: 'client', mac: clientMac }, { prefix: 'fd00::/64', port: 'client', mac: clientMac }];
  },
});
const { serial, apply } = suite;
const VIP = '10.96.0.30', VIP6 = 'fd00:96::30', VIP_TAP = '10.96.0.31';

const services = (pod, tapPod) => [
  serviceYaml({ name: 'echo-tap', clusterIP: VIP_TAP, ports: [{ name: 'echo', port: 53, targetPort: 5353, protocol: 'UDP' }] }),
  sliceYaml({ name: 'echo-tap-1', service: 'echo-tap', ports: [{ name: 'echo', port: 5353, protocol: 'UDP' }],
    endpoints: [{ addresses: [tapPod.ip], conditions: { ready: true } }] }),
  serviceYaml({ name: 'echo', clusterIP: VIP, ports: [{ name: 'echo', port: 53, targetPort: 5353, protocol: 'UDP' }] }),
  sliceYaml({ name: 'echo-1', service: 'echo', ports: [{ name: 'echo', port: 5353, protocol: 'UDP' }],
    endpoints: [{ addresses: [pod.ip], conditions: { ready: true } }] }),
  serviceYaml({ name: 'echo6', clusterIP: VIP6, extra: { ipFamilies: ['IPv6'] }, ports: [{ name: 'echo', port: 53, targetPort: 5353, protocol: 'UDP' }] }),
  sliceYaml({ name: 'echo6-1', service: 'echo6', addressType: 'IPv6', ports: [{ name: 'echo', port: 5353, protocol: 'UDP' }],
    endpoints: [{ addresses: [pod.ip6], conditions: { ready: true } }] }),
];

const probe = (topo, host, port, opts) => pmtuProbe(topo.lab, topo.ns.client, host, port, opts);


/** A UDP echo ClusterIP `vip` (port 53) on `pod` alone. */
const echoService = (name, vip, pod) => [
  serviceYaml({ name, clusterIP: vip, ports: [{ name: 'echo', port: 53, targetPort: 5353, protocol: 'UDP' }] }),
  sliceYaml({ name: `${name}-1`, service: name, ports: [{ name: 'echo', port: 5353, protocol: 'UDP' }], endpoints: [{ addresses: [pod.ip], conditions: { ready: true } }] }),
];

/** The MTU the ports API shows for `port` once it is `want` (polled up to 15 s), else the last seen. */
async function mtuShown(topo, port, want) {
  let seen;
  for (let i = 0; i < 60 && seen !== want; i++) {
    seen = (await api(topo, 'GET', `/api/v1/ports/${port}`)).json?.mtu;
    if (seen !== want) await new Promise((r) => setTimeout(r, 250));
  }
  return seen;
}

for (const fam of [4, 6]) {
  serial(`IPv${fam} ClusterIP: a DF datagram bigger than the pod link's MTU gets ${fam === 4 ? 'ICMP fragmentation needed' : 'ICMPv6 packet too big'} from the ClusterIP quoting the client's packet; the client learns PMTU ${POD_MTU}; a smaller one is answered`, async (t) => {
    const topo = suite.topo;
    await apply(services(topo.pods[0], topo.pods[1]));
    const vip = fam === 4 ? VIP : VIP6;
    const r = await probe(topo, vip, 53);
    t.log(JSON.stringify(r));
    // SO_EE_ORIGIN_ICMP (2) type 3 code 4 / SO_EE_ORIGIN_ICMP6 (3) type 2; ee_info = the MTU
    t.like(r, fam === 4 ? { origin: 2, type: 3, code: 4, info: POD_MTU, errno: EMSGSIZE } : { origin: 3, type: 2, code: 0, info: POD_MTU, errno: EMSGSIZE },
      `no ICMP error reached the client: ${JSON.stringify(r)}\n${topo.daemonLog.slice(-2000)}`);
    t.is(r.offender, vip, 'the error comes from the ClusterIP');
    t.is(r.pmtu, POD_MTU);
    t.is(r.secondBig, EMSGSIZE, 'the kernel refuses a second big datagram: it knows the path MTU');
    t.is(r.smallReply, 1200 - (fam === 4 ? 28 : 48) + 'pod-a:'.length, 'a datagram that fits is echoed by the pod');
    const route = topo.lab.exec(topo.ns.client, 'ip', [`-${fam}`, 'route', 'get', vip]).stdout;
    t.regex(route, new RegExp(`mtu ${POD_MTU}`), route);
    const c = await api(topo, 'GET', '/api/v1/counters');
    t.true(JSON.stringify(c.json).includes('reject_packet_too_big'));
  });
}

serial('plain routing to the pod address: the DF datagram too big for the pod link is answered, the client learns the path MTU', async (t) => {
  const topo = suite.topo;
  await apply(services(topo.pods[0], topo.pods[1]));
  const pod = topo.pods[0];
  const r = await probe(topo, pod.ip, 5353);
  t.log(JSON.stringify(r));
  t.like(r, { origin: 2, type: 3, code: 4, info: POD_MTU }, `no ICMP error reached the client: ${JSON.stringify(r)}`);
  t.is(r.pmtu, POD_MTU);
  t.is(r.secondBig, EMSGSIZE);
  t.is(typeof r.smallReply, 'number', `the pod answers a datagram that fits: ${r.smallReply}`);
});

serial('a TAP pod port created with mtu: 1280: the ClusterIP client gets fragmentation needed with 1280 and learns it', async (t) => {
  const topo = suite.topo;
  await apply(services(topo.pods[0], topo.pods[1]));
  const dev = topo.lab.exec(topo.pods[1].ns, 'ip', ['-o', 'link', 'show', 'dev', topo.pods[1].ifname]).stdout;
  t.regex(dev, new RegExp(`mtu ${POD_MTU} `), 'the daemon created the TAP with the configured MTU');
  // the ports API shows the MTU each port's core checks
  const ports = await api(topo, 'GET', '/api/v1/ports');
  const mtus = Object.fromEntries(ports.json.items.map((p) => [p.name, p.mtu]));
  t.like(mtus, { 'pod-a': POD_MTU, 'pod-b': POD_MTU, client: 1500 }, ports.text);
  const r = await probe(topo, VIP_TAP, 53);
  t.log(JSON.stringify(r));
  t.like(r, { origin: 2, type: 3, code: 4, info: POD_MTU, offender: VIP_TAP }, `no ICMP error reached the client: ${JSON.stringify(r)}`);
  t.is(r.pmtu, POD_MTU);
  t.is(r.smallReply, 1200 - 28 + 'pod-b:'.length);
});

serial('a port added at runtime (the ports API, as the CNI plugin does) takes its interface MTU', async (t) => {
  const topo = suite.topo;
  const ns = topo.lab.namespace('rt');
  topo.lab.veth(ns, 'eth0', topo.ns.dp, 'v9', { mtu: 1400 });
  const add = await api(topo, 'POST', '/api/v1/ports', { name: 'pod-rt', type: 'afpacket', ifname: 'v9', role: 'pod', gateways: ['10.244.0.1'] });
  t.is(add.status, 201, add.text);
  const one = await api(topo, 'GET', '/api/v1/ports/pod-rt');
  t.is(one.json.mtu, 1400, one.text);
  const del = await api(topo, 'DELETE', '/api/v1/ports/pod-rt');
  t.is(del.status, 200, del.text);
});

serial('an MTU changed on a port\'s interface while the daemon runs reaches the core within seconds', async (t) => {
  const topo = suite.topo;
  const pod = topo.pods[0];
  const vip = '10.96.0.32';   // a destination the client has no path MTU for yet
  await apply(echoService('echo-late', vip, pod));
  topo.lab.exec(topo.ns.dp, 'ip', ['link', 'set', 'dev', 'v0', 'mtu', '1300']);
  topo.lab.exec(pod.ns, 'ip', ['link', 'set', 'dev', 'eth0', 'mtu', '1300']);
  t.is(await mtuShown(topo, 'pod-a', 1300), 1300, 'the ports API shows the new MTU within 15 s');
  const r = await probe(topo, vip, 53);
  t.log(JSON.stringify(r));
  t.like(r, { origin: 2, type: 3, code: 4, info: 1300, offender: vip });
  t.is(r.pmtu, 1300);
});

serial('an MTU changed on a TAP inside its pod\'s namespace while the daemon runs reaches the core within seconds (read by the main thread)', async (t) => {
  const topo = suite.topo;
  const pod = topo.pods[1];
  const vip = '10.96.0.33';   // a destination the client has no path MTU for yet
  await apply(echoService('echo-tap-late', vip, pod));
  topo.lab.exec(pod.ns, 'ip', ['link', 'set', 'dev', pod.ifname, 'mtu', '1320']);
  t.is(await mtuShown(topo, 'pod-b', 1320), 1320, 'the ports API shows the TAP\'s new MTU within 15 s');
  await logged(topo, /"port":"pod-b"[^\n]*"mtu":1320[^\n]*port MTU changed/);
  const r = await probe(topo, vip, 53);
  t.log(JSON.stringify(r));
  t.like(r, { origin: 2, type: 3, code: 4, info: 1320, offender: vip }, `no ICMP error with the new MTU: ${JSON.stringify(r)}`);
  t.is(r.pmtu, 1320);
  t.is(r.smallReply, 1200 - 28 + 'pod-b:'.length, 'a datagram that fits is echoed by the pod');
});
