// End to end, a Service changed in place, as Kubernetes' test/e2e/network/service.go changes
// them: its type ClusterIP → NodePort → LoadBalancer → ClusterIP (what the old type served stops
// being served), its node port and service port renumbered, TCP and UDP on one port number and
// one node port, a LoadBalancer without node ports (allocateLoadBalancerNodePorts false), and
// sessionAffinity switched on and off. `wdp start` runs in its own namespace; real clients.
import test from 'ava';
import { e2eSuite, api, curl, curlOk, httpMany, udpAsk, serviceYaml, sliceYaml, NODE_V4 } from './lib/topology.js';

const suite = e2eSuite(test, { pods: [{ name: 'pod-a', attach: 'tap' }, { name: 'pod-b', attach: 'afpacket' }, { name: 'pod-c', attach: 'afpacket' }] });
const { serial, apply } = suite;
let topo;
test.before(() => { topo = suite.topo; });

const LB_IP = '203.0.113.40';

function slice(name, service, ports = [{ name: 'http', port: 8080, protocol: 'TCP' }]) {
  return sliceYaml({ name, service, ports, endpoints: topo.pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true }, nodeName: 'node-a' })) });
}
/** Whether a pod answers `url` from `ns` (one curl, short timeout: "not served" is a refusal or a timeout). */
async function served(ns, url) {
  const r = await curl(topo, ns, url, { timeout: 2 });
  return r.code === 0 && /^pod-/.test(r.body.trim());
}

serial('type ClusterIP → NodePort → LoadBalancer → ClusterIP: each type serves its addresses, and what the old type served stops', async (t) => {
  const port = (extra = {}) => [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', ...extra }];
  const cluster = 'http://10.96.6.10/', nodePort = `http://${NODE_V4}:30090/`, lb = `http://${LB_IP}/`;
  await apply([serviceYaml({ name: 'types', clusterIP: '10.96.6.10', ports: port() }), slice('types-1', 'types')]);
  t.is((await curlOk(topo, topo.ns.client, cluster)).code, 0);
  t.false(await served(topo.ns.remote, nodePort), 'ClusterIP: no node port');

  await apply([serviceYaml({ name: 'types', type: 'NodePort', clusterIP: '10.96.6.10', ports: port({ nodePort: 30090 }) })]);
  t.is((await curlOk(topo, topo.ns.remote, nodePort)).code, 0, 'NodePort: the node port');
  t.true(await served(topo.ns.client, cluster));

  await apply([serviceYaml({ name: 'types', type: 'LoadBalancer', clusterIP: '10.96.6.10', lbIngress: [LB_IP], ports: port({ nodePort: 30091 }) })]);
  t.is((await curlOk(topo, topo.ns.remote, lb)).code, 0, 'LoadBalancer: the ingress IP');
  t.true(await served(topo.ns.remote, `http://${NODE_V4}:30091/`), 'the new node port');
  t.false(await served(topo.ns.remote, nodePort), 'the old node port is no longer served');

  await apply([serviceYaml({ name: 'types', clusterIP: '10.96.6.10', ports: port() })]);
  t.true(await served(topo.ns.client, cluster));
  t.false(await served(topo.ns.remote, lb), 'back to ClusterIP: the ingress IP is no longer served');
  t.false(await served(topo.ns.remote, `http://${NODE_V4}:30091/`), 'nor the node port');
});

serial('a service port renumbered: the old port is refused, the new one served', async (t) => {
  await apply([serviceYaml({ name: 'renum', clusterIP: '10.96.6.11', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] }), slice('renum-1', 'renum')]);
  t.is((await curlOk(topo, topo.ns.client, 'http://10.96.6.11/')).code, 0);
  await apply([serviceYaml({ name: 'renum', clusterIP: '10.96.6.11', ports: [{ name: 'http', port: 8000, targetPort: 8080, protocol: 'TCP' }] })]);
  t.is((await curlOk(topo, topo.ns.client, 'http://10.96.6.11:8000/')).code, 0);
  t.is((await curl(topo, topo.ns.client, 'http://10.96.6.11/', { timeout: 3 })).code, 7, 'the old port: connection refused (reject_invalid_port)');
});

serial('TCP and UDP on the same port number, and on the same node port (service.go "same port number but different protocols")', async (t) => {
  await apply([
    serviceYaml({
      name: 'both', type: 'NodePort', clusterIP: '10.96.6.12', ports: [
        { name: 'tcp', port: 80, targetPort: 8080, nodePort: 30093, protocol: 'TCP' },
        { name: 'udp', port: 80, targetPort: 5353, nodePort: 30093, protocol: 'UDP' },
      ],
    }),
    slice('both-1', 'both', [{ name: 'tcp', port: 8080, protocol: 'TCP' }, { name: 'udp', port: 5353, protocol: 'UDP' }]),
  ]);
  t.is((await curlOk(topo, topo.ns.client, 'http://10.96.6.12/')).code, 0);
  t.regex((await udpAsk(topo, topo.ns.client, '10.96.6.12', 80, 'hi')).reply ?? '', /^pod-.:hi$/);
  t.is((await curlOk(topo, topo.ns.remote, `http://${NODE_V4}:30093/`)).code, 0);
  t.regex((await udpAsk(topo, topo.ns.remote, NODE_V4, 30093, 'hi')).reply ?? '', /^pod-.:hi$/);
});

serial('a LoadBalancer with allocateLoadBalancerNodePorts false: the ingress IP is served, no node port', async (t) => {
  await apply([
    serviceYaml({ name: 'nonp', type: 'LoadBalancer', clusterIP: '10.96.6.13', lbIngress: ['203.0.113.41'], extra: { allocateLoadBalancerNodePorts: false }, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] }),
    slice('nonp-1', 'nonp'),
  ]);
  t.is((await curlOk(topo, topo.ns.remote, 'http://203.0.113.41/')).code, 0);
  const fronts = (await api(topo, 'GET', '/api/v1/frontends')).json;
  const kinds = (fronts.items ?? fronts).filter((f) => f.service === 'default/nonp').map((f) => f.kind).sort();
  t.deepEqual(kinds, ['ClusterIP', 'LoadBalancer']);
});

serial('sessionAffinity switched None → ClientIP → None → ClientIP (service.go "should be able to switch session affinity")', async (t) => {
  const url = 'http://10.96.6.14/';
  const spec = (affinity) => serviceYaml({ name: 'switch', clusterIP: '10.96.6.14', extra: { sessionAffinity: affinity }, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] });
  const pods = async () => {
    const res = await httpMany(topo, topo.ns.client, url, 15);
    t.deepEqual(res.filter((r) => r.error), []);
    return new Set(res.map((r) => r.pod)).size;
  };
  await apply([spec('None'), slice('switch-1', 'switch')]);
  t.is((await curlOk(topo, topo.ns.client, url)).code, 0);
  t.true(await pods() > 1, 'None: spread');
  await apply([spec('ClientIP')]);
  t.is(await pods(), 1, 'ClientIP: one pod');
  await apply([spec('None')]);
  t.true(await pods() > 1, 'None again: spread');
  await apply([spec('ClientIP')]);
  t.is(await pods(), 1, 'ClientIP again: one pod');
});

// kube-proxy keeps sessionAffinity per service port, whichever of its IPs a client uses
serial('sessionAffinity ClientIP: a client pinned through the ClusterIP stays on its pod through the NodePort', async (t) => {
  await apply([
    serviceYaml({ name: 'pin', type: 'NodePort', clusterIP: '10.96.6.15', extra: { sessionAffinity: 'ClientIP' }, ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30095, protocol: 'TCP' }] }),
    slice('pin-1', 'pin'),
  ]);
  t.is((await curlOk(topo, topo.ns.client, 'http://10.96.6.15/')).code, 0);
  const seen = async (url) => {
    const res = await httpMany(topo, topo.ns.client, url, 8);
    t.deepEqual(res.filter((r) => r.error), []);
    return [...new Set(res.map((r) => r.pod))];
  };
  const viaCluster = await seen('http://10.96.6.15/');
  t.is(viaCluster.length, 1);
  t.deepEqual(await seen(`http://${NODE_V4}:30095/`), viaCluster, 'the same pod through the NodePort');
});
