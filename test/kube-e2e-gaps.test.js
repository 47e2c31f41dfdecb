// Kubernetes e2e scenarios a node proxy answers for that kube-e2e-services does not run:
// loadbalancer.go's rolling update under continuous traffic, networking.go's "should update
// nodePort" (the node's own client, TCP and UDP), "should be able to handle large requests:
// http", no_snat.go's pod-to-pod traffic, kube_proxy.go's CLOSE_WAIT connection (server FIN first). `wdp start` in its network
// namespace, fed by the API-server double (test/lib/apiserver-double-ns.js); real clients in the
// client, remote and pod namespaces and on the node (the dataplane namespace, behind wdp's host
// port). pod-a and pod-b are on this node (node-a), pod-c and pod-d are said to be on node-b.
// Tests run in order on one daemon and each deletes what it created. The map from upstream test
// names to wdp tests is docs/e2e-coverage.md.
import test from 'ava';
import { existsSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { READY, STARTING, TERMINATING, SVC, EPS, service, cluster, slice, kit, kubeNode } from './lib/kube-e2e-kit.js';
import {
  rootGate, buildTopology, startDaemon, startPods, destroyTopology, api, curl, httpMany, udpAsk, sleep, spawnNode, waitFor, NODE_V4,
} from './lib/topology.js';

const { ok: root, serial } = rootGate(test, { tools: ['curl'] });

const REMOTE = '192.168.100.10'; // node-b's address in the tests that need another node's host
let topo;
let double;

const { put, del, who, until, pods, hostServer } = kit(() => topo, () => double);

test.before(async () => {
  if (!root) return;
  ({ topo, double } = await kubeNode('kg', {
    // node-b's address is the remote namespace's: a hostNetwork endpoint there is reached out of
    // the uplink, as backends on other nodes are (the config's routes)
    async configure(topo) {
      const mac = (await topo.lab.execAsync(topo.ns.remote, 'cat', ['/sys/class/net/eth0/address'])).stdout.trim();
      topo.config.routes = [{ prefix: `${REMOTE}/32`, port: 'remote', mac }];
    },
  }));
});
test.after.always(async () => { await destroyTopology(topo); });

// ---- loadbalancer.go "should not have connectivity disruption during rolling update" -------------

/** A client outside that GETs `url` back to back, a new connection each (DisableKeepAlives, 5 s
 * timeout, as upstream), until its stdin closes or 4000 requests (bounded); prints the answering
 * pods' counts and the errors as JSON. */
function startLoop(ns, url) {
  const script = `
    const http = require('http');
    const u = new URL(process.argv[1]);
    const out = { total: 0, failed: 0, errors: [], by: {} };
    let stop = false;
    process.stdin.on('data', () => {}); process.stdin.on('end', () => { stop = true; });
    const one = () => new Promise((resolve) => {
      const req = http.get({ host: u.hostname, port: u.port || 80, path: u.pathname, agent: false, timeout: 5000 }, (res) => {
        let body = ''; res.on('data', (d) => { body += d; });
        res.on('end', () => resolve(res.statusCode === 200 && body.trim() ? body.trim() : 'status ' + res.statusCode));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e) => resolve('error ' + (e.code || e.message)));
    });
    (async () => {
      const end = Date.now() + 60000;
      while (!stop && out.total < 30000 && Date.now() < end) {
        const r = await one();
        out.total++;
        if (!r.startsWith('error') && !r.startsWith('status')) out.by[r] = (out.by[r] || 0) + 1;
        else if (++out.failed <= 20) out.errors.push(r);
      }
      process.stdout.write(JSON.stringify(out) + '\\n', () => process.exit(0));
    })();`;
  return spawnNode(topo, ns, script, [url]);
}
async function stopLoop(child) {
  child.stdin.end();
  try {
    await waitFor('the client loop to report', () => child.exitCode !== null && child.out.includes('}'), 20000);
  } catch (e) {
    throw new Error(`${e.message} (exit code ${child.exitCode}): ${child.out.slice(-2000)}`);
  }
  return JSON.parse(child.out.trim().split('\n').pop());
}

for (const etp of ['Cluster', 'Local']) {
  serial(`loadbalancer.go "should not have connectivity disruption during rolling update with externalTrafficPolicy=${etp}": every request through the LB IP answered while the DaemonSet's pods are replaced, twice`, async (t) => {
    const [a, b, c, d] = topo.pods;
    const name = `lb-rolling-${etp.toLowerCase()}`;
    const lbIP = etp === 'Local' ? '203.0.113.81' : '203.0.113.80';
    const vip = etp === 'Local' ? '10.96.58.81' : '10.96.58.80';
    const port = [{ name: 'http', port: 8080 }];
    const eps = (list) => put(EPS, slice(`${name}-1`, name, port, list));
    await put(SVC, service(name, { ...cluster(vip, [{ name: 'http', port: 80, targetPort: 8080, nodePort: etp === 'Local' ? 30881 : 30880 }], { type: 'LoadBalancer', externalTrafficPolicy: etp, ...(etp === 'Local' ? { healthCheckNodePort: 32881 } : {}) }), lbIP }));
    // one DaemonSet pod per node: pod-a here, pod-c on node-b
    await eps([[a, READY], [c, READY, 'node-b']]);
    const url = `http://${lbIP}/`;
    t.deepEqual(await until(etp === 'Local' ? ['pod-a'] : ['pod-a', 'pod-c'], () => pods(topo.ns.remote, url, 8)), etp === 'Local' ? ['pod-a'] : ['pod-a', 'pod-c'], 'reachable before the update');

    const loop = startLoop(topo.ns.remote, url);
    t.teardown(() => { if (loop.exitCode === null) loop.kill(); });
    try {
      await waitFor('the client loop to start', () => loop.pid, 5000);
      await sleep(500);
      // the DaemonSet's rolling update, as the controllers write it: the old pod deleted (terminating,
      // serving through its delay-shutdown), the new pod created, then ready, then the old one gone
      const roll = async ([oldHere, oldThere], [newHere, newThere]) => {
        const steps = [
          [[oldHere, TERMINATING], [oldThere, TERMINATING, 'node-b']],
          [[oldHere, TERMINATING], [oldThere, TERMINATING, 'node-b'], [newHere, STARTING], [newThere, STARTING, 'node-b']],
          [[oldHere, TERMINATING], [oldThere, TERMINATING, 'node-b'], [newHere, READY], [newThere, READY, 'node-b']],
          [[newHere, READY], [newThere, READY, 'node-b']],
        ];
        for (const s of steps) { await eps(s); await sleep(700); }
      };
      await roll([a, c], [b, d]);
      await roll([b, d], [a, c]);
      await sleep(500);
    } finally {
      const r = await stopLoop(loop);
      t.log(`${r.total} requests: ${JSON.stringify(r.by)}, ${r.failed} failed`);
      t.true(r.total > 0, 'the client ran');
      t.deepEqual([r.failed, r.errors], [0, []], 'no request failed during the rolling updates (every step keeps a serving endpoint)');
      if (etp === 'Local') {
        t.deepEqual(Object.keys(r.by).sort(), ['pod-a', 'pod-b'], 'externalTrafficPolicy Local: only this node\'s pods, the terminating one while it is the only local one');
      } else {
        t.deepEqual(Object.keys(r.by).sort(), ['pod-a', 'pod-b', 'pod-c', 'pod-d'], 'Cluster: both nodes\' pods');
      }
    }
    t.deepEqual(await until(etp === 'Local' ? ['pod-a'] : ['pod-a', 'pod-c'], () => pods(topo.ns.remote, url, 8)), etp === 'Local' ? ['pod-a'] : ['pod-a', 'pod-c'], 'reachable after the updates');
    await del(EPS, `${name}-1`);
    await del(SVC, name);
  });
}

// ---- networking.go "should update nodePort: http / udp" ---------------------------------------

// networking.go's NewNetworkingTestConfig(UseHostNetwork): the endpoints are hostNetwork pods, one
// per node (the node's own address, and node-b's — the remote namespace's address here), and the
// node dials its own NodePort.
serial('networking.go "should support basic nodePort: udp functionality", "should update nodePort: http" and "... udp": the node reaches its NodePort\'s hostNetwork endpoints (itself and another node), then the Service is deleted and its node port answers neither', async (t) => {
  const np = 30890, hostPort = 10190;
  await hostServer(t, topo.ns.dp, 'node-a', hostPort);
  await hostServer(t, topo.ns.remote, 'node-b', hostPort);
  await put(SVC, service('node-port-service', cluster('10.96.58.90', [
    { name: 'http', port: 80, targetPort: hostPort, nodePort: np },
    { name: 'udp', port: 90, targetPort: hostPort, protocol: 'UDP', nodePort: np },
  ], { type: 'NodePort', externalTrafficPolicy: 'Cluster' })));
  await put(EPS, slice('node-port-service-1', 'node-port-service', [{ name: 'http', port: hostPort }, { name: 'udp', port: hostPort, protocol: 'UDP' }],
    [[{ ip: NODE_V4, name: 'node-a' }, READY], [{ ip: REMOTE, name: 'node-b' }, READY, 'node-b']]));
  const node = topo.ns.dp;
  /** the endpoints that answer UDP datagrams from the node (fresh sockets, as upstream's nc) */
  const udpReached = async (tries) => {
    const seen = new Set();
    for (let i = 0; i < tries && seen.size < 2; i++) { const r = await udpAsk(topo, node, NODE_V4, np, 'hostname', { timeoutMs: 1000 }); if (r.reply) seen.add(r.reply.split(':')[0]); }
    return [...seen].sort();
  };
  t.deepEqual(await until(['node-a', 'node-b'], () => pods(node, `http://${NODE_V4}:${np}/`)), ['node-a', 'node-b'], 'http: the node reaches every host endpoint');
  t.deepEqual(await until(['node-a', 'node-b'], () => udpReached(16), 10), ['node-a', 'node-b'], 'udp: the node reaches every host endpoint');

  await del(SVC, 'node-port-service');
  await del(EPS, 'node-port-service-1');
  t.is(await until(null, async () => (await curl(topo, node, `http://${NODE_V4}:${np}/`, { timeout: 2 })).body.trim() || null), null, 'http: the deleted Service\'s node port no longer serves');
  t.deepEqual(await until([], () => udpReached(4), 10), [], 'udp: nothing answers on the deleted node port');
  t.deepEqual(await udpReached(6), [], 'udp: still nothing (upstream polls 10 times)');
});

// ---- networking.go "should be able to handle large requests: http" ------------------------------

serial('networking.go "should be able to handle large requests: http": a 2000-byte request line and a 4 MiB upload through the ClusterIP from a pod and through the NodePort from outside', async (t) => {
  const [a, b, , d] = topo.pods;
  const vip = '10.96.58.100', np = 30900;
  await put(SVC, service('large', cluster(vip, [{ name: 'http', port: 80, targetPort: 8080, nodePort: np }], { type: 'NodePort', externalTrafficPolicy: 'Cluster' })));
  await put(EPS, slice('large-1', 'large', [{ name: 'http', port: 8080 }], [[a, READY], [b, READY]]));
  const msg = '42'.repeat(1000); // upstream's message: strings.Repeat("42", 1000)
  t.truthy(await until(true, async () => /^pod-[ab]$/.test(await who(d.ns, `http://${vip}/echo?msg=${msg}`) ?? '')), 'the 2000-byte GET through the ClusterIP');
  const body = Buffer.alloc(4 << 20);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 11)) & 0xff;
  const sha = createHash('sha256').update(body).digest('hex');
  const file = `${topo.dir}/large-body`;
  writeFileSync(file, body);
  for (const [label, ns, url] of [['ClusterIP from a pod', d.ns, `http://${vip}/sink`], ['NodePort from outside', topo.ns.remote, `http://${NODE_V4}:${np}/sink`]]) {
    const r = await curl(topo, ns, url, { timeout: 30, extra: ['--data-binary', `@${file}`, '-H', 'content-type: application/octet-stream', '-H', 'Expect:'] });
    t.is(r.code, 0, `${label}: curl ${r.stderr}`);
    t.is(r.body.trim(), `${body.length} ${sha}`, `${label}: the endpoint got every byte in order`);
  }
  await del(EPS, 'large-1');
  await del(SVC, 'large');
});

// ---- no_snat.go "Should be able to send traffic between Pods without SNAT" ------------------------

serial('no_snat.go "Should be able to send traffic between Pods without SNAT": pod to pod (this node\'s and node-b\'s) keeps the source pod address while wdp proxies Services', async (t) => {
  const [a, b, c, d] = topo.pods;
  // a Service over the same pods, so the pod addresses are endpoints wdp knows
  await put(SVC, service('nosnat', cluster('10.96.58.110', [{ name: 'http', port: 80, targetPort: 8080 }])));
  await put(EPS, slice('nosnat-1', 'nosnat', [{ name: 'http', port: 8080 }], [[a, READY], [c, READY, 'node-b']]));
  t.deepEqual(await until(['pod-a', 'pod-c'], () => pods(b.ns, 'http://10.96.58.110/')), ['pod-a', 'pod-c']);
  for (const [from, to] of [[d, a], [b, a], [a, c], [d, b]]) {
    const r = await httpMany(topo, from.ns, `http://${to.ip}:8080/`, 1, { timeoutMs: 3000 });
    t.is(r[0].pod, to.name, `${from.name} → ${to.name} answered`);
    t.is(r[0].peer, from.ip, `${from.name} → ${to.name}: the server sees ${from.name}'s own address`);
  }
  await del(EPS, 'nosnat-1');
  await del(SVC, 'nosnat');
});

// ---- kube_proxy.go "should set TCP CLOSE_WAIT timeout" --------------------------------------------

// Upstream's server closes its side first and the client leaks its end, so the connection sits in
// CLOSE_WAIT; the test reads conntrack's timeout for it: kube-proxy's
// --conntrack-tcp-timeout-close-wait, 1 h. wdp's flow for it is half-closed from the reply side
// (docs/core.md "TCP states"): the client may go on sending long after the closing timeout (10 s).
serial('kube_proxy.go "should set TCP CLOSE_WAIT timeout": the server sends its FIN first; the client, in CLOSE_WAIT, still reaches it after the closing timeout through the ClusterIP (pod) and the masqueraded NodePort (outside)', async (t) => {
  const [a, , , d] = topo.pods;
  // the server answers at once and half-closes (allowHalfOpen), then prints what still arrives
  const server = spawnNode(topo, a.ns, `require('net').createServer({ allowHalfOpen: true }, (s) => {
      let got = ''; s.on('error', (e) => console.log('error ' + e.code)); s.on('data', (x) => { got += x; });
      s.on('end', () => console.log('received ' + got)); s.end('bye');
    }).listen(9002, () => console.log('ready'))`, []);
  t.teardown(() => { if (server.exitCode === null) server.kill(); });
  await waitFor('the CLOSE_WAIT server', () => server.out.includes('ready'), 10000);
  await put(SVC, service('closewait', cluster('10.96.58.120', [{ name: 'tcp', port: 9002, targetPort: 9002, nodePort: 30920 }], { type: 'NodePort', externalTrafficPolicy: 'Cluster' })));
  await put(EPS, slice('closewait-1', 'closewait', [{ name: 'tcp', port: 9002 }], [[a, READY]]));
  const mark = (tag) => `${topo.dir}/closewait-${tag}`;
  /** connects, reads the server's answer and FIN (then touches its marker file), keeps its own side
   * open until the test's go file exists, then sends and closes */
  const client = (ns, host, port, tag) => topo.lab.execAsync(ns, process.execPath, ['-e', `
    const fs = require('fs');
    const s = require('net').connect({ port: ${port}, host: ${JSON.stringify(host)}, allowHalfOpen: true });
    let got = '';
    const done = (r) => { console.log(JSON.stringify(r)); process.exit(0); };
    s.on('data', (x) => { got += x; });
    s.on('end', () => {
      fs.writeFileSync(${JSON.stringify(mark(tag))}, '');
      const poll = setInterval(() => { if (fs.existsSync(${JSON.stringify(mark('go'))})) { clearInterval(poll); s.end(${JSON.stringify(tag)}, () => setTimeout(() => done({ got }), 500)); } }, 50);
    });
    s.on('error', (e) => done({ error: e.code || e.message, got }));
    setTimeout(() => done({ error: 'timeout', got }), 40000);`], { timeoutMs: 50000 });
  // the service must be programmed before the clients start
  t.is(await until('bye', async () => (await topo.lab.execAsync(d.ns, process.execPath, ['-e', `
    const s = require('net').connect(9002, '10.96.58.120'); let g = ''; s.on('data', (x) => { g += x; });
    s.on('end', () => { console.log(g); s.end(); process.exit(0); }); s.on('error', () => { console.log('-'); process.exit(0); });
    setTimeout(() => { console.log('-'); process.exit(0); }, 2000);`], { timeoutMs: 8000 })).stdout.trim()), 'bye');
  const clients = Promise.all([client(d.ns, '10.96.58.120', 9002, 'late-vip'), client(topo.ns.remote, NODE_V4, 30920, 'late-nodeport')]);
  try {
    await waitFor('both clients to get the server\'s FIN', () => existsSync(mark('late-vip')) && existsSync(mark('late-nodeport')), 15000);
    await sleep(11000); // past the closing timeout (10 s): only the half-closed timeout keeps the flows
    const flows = ((await api(topo, 'GET', '/api/v1/conntrack?service=default/closewait&proto=TCP')).json?.items ?? []).filter((f) => f.state === 'tcp_half_closed_backend');
    t.deepEqual(flows.map((f) => f.client === d.ip ? 'pod' : 'outside').sort(), ['outside', 'pod'], `both CLOSE_WAIT flows live, half-closed by the server: ${JSON.stringify(flows)}`);
    t.true(flows.every((f) => f.idleMs >= 10000), `idle past the closing timeout: ${flows.map((f) => f.idleMs)}`);
  } finally {
    writeFileSync(mark('go'), '');
  }
  const [viaVip, viaNodePort] = await clients;
  t.deepEqual(JSON.parse(viaVip.stdout.trim().split('\n').pop() || '{}'), { got: 'bye' }, `ClusterIP client: ${viaVip.stderr}`);
  t.deepEqual(JSON.parse(viaNodePort.stdout.trim().split('\n').pop() || '{}'), { got: 'bye' }, `NodePort client: ${viaNodePort.stderr}`);
  await waitFor('the server to print both', () => server.out.includes('received late-vip') && server.out.includes('received late-nodeport'), 20000).catch(() => {});
  t.true(server.out.includes('received late-vip'), `the server got the ClusterIP client's data sent after the closing timeout:\n${server.out}`);
  t.true(server.out.includes('received late-nodeport'), `and the NodePort client's:\n${server.out}`);
  await del(EPS, 'closewait-1');
  await del(SVC, 'closewait');
});

// ---- a UDP 5-tuple across a Service deleted and recreated ----------------------------------------

// service.go "should work after the service has been recreated" and "should release NodePorts on
// delete" (a new Service takes the node port), with a UDP client that keeps its source port, as
// conntrack.go's clients do: kube-proxy's conntrack cleanup (pkg/proxy/conntrack/cleanup.go) clears
// every UDP entry to a Service IP:port or a NodePort whose endpoint is not one of the Service's
// serving endpoints, so the kept 5-tuple reaches the recreated Service's pod, not the old one.
serial('a UDP client keeping its source port follows a Service deleted and recreated on the same cluster IP and node port with another pod (kube-proxy clears the stale conntrack entries)', async (t) => {
  const [a, b, , d] = topo.pods;
  const vip = '10.96.58.130', np = 30930;
  const up = async (pod) => {
    await put(SVC, service('udp-recreated', cluster(vip, [{ name: 'udp', port: 90, targetPort: 5353, protocol: 'UDP', nodePort: np }], { type: 'NodePort', externalTrafficPolicy: 'Cluster' })));
    await put(EPS, slice('udp-recreated-1', 'udp-recreated', [{ name: 'udp', port: 5353, protocol: 'UDP' }], [[pod, READY]]));
  };
  const ask = async (ns, host, port, bindPort) => { const r = await udpAsk(topo, ns, host, port, 'hostname', { bindPort, timeoutMs: 1000 }); return r.reply ? r.reply.split(':')[0] : null; };
  const viaVip = () => ask(d.ns, vip, 90, 23457);
  const viaNodePort = () => ask(topo.ns.remote, NODE_V4, np, 23458);
  await up(a);
  t.is(await until('pod-a', viaVip), 'pod-a', 'ClusterIP: the first Service\'s pod');
  t.is(await until('pod-a', viaNodePort), 'pod-a', 'NodePort: the first Service\'s pod');
  await del(EPS, 'udp-recreated-1');
  await del(SVC, 'udp-recreated');
  await sleep(500);
  await up(b);
  t.is(await until('pod-b', viaVip, 20), 'pod-b', 'ClusterIP: the same 5-tuple reaches the recreated Service\'s pod');
  t.is(await until('pod-b', viaNodePort, 20), 'pod-b', 'NodePort: the same 5-tuple reaches the new Service\'s pod');
  await del(EPS, 'udp-recreated-1');
  await del(SVC, 'udp-recreated');
});

// ---- session affinity across a rolling update ---------------------------------------------------

// service.go "should have session affinity work for service with type clusterIP" while the pods
// roll (as in loadbalancer.go's rolling update): kube-proxy's affinity is per endpoint and only
// endpoints the Service uses for new connections are matched, so a client pinned to a pod that
// starts terminating is pinned anew to a ready one. When the first pod is ready again the client
// is in both pods' affinity sets and kube-proxy takes the first in its endpoint order: one pod,
// either of them.
serial('sessionAffinity ClientIP while the pods roll: the pin moves off a terminating pod to a ready one; both ready again, still one pod', async (t) => {
  const [a, b, , d] = topo.pods;
  const vip = '10.96.58.140';
  await put(SVC, service('affinity-roll', cluster(vip, [{ name: 'http', port: 80, targetPort: 8080 }], { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } } })));
  const eps = (list) => put(EPS, slice('affinity-roll-1', 'affinity-roll', [{ name: 'http', port: 8080 }], list));
  await eps([[a, READY], [b, READY]]);
  const url = `http://${vip}/`;
  const first = await until(1, async () => (await pods(d.ns, url, 8)).filter((x) => x.startsWith('pod-')).length);
  t.is(first, 1, 'pinned to one pod');
  const [pinned] = await pods(d.ns, url, 4);
  const [x, y] = pinned === 'pod-a' ? [a, b] : [b, a];
  await eps([[x, TERMINATING], [y, READY]]);
  t.deepEqual(await until([y.name], () => pods(d.ns, url, 8)), [y.name], `${x.name} terminating: every new connection to the ready ${y.name}`);
  await eps([[x, READY], [y, READY]]);
  await sleep(500);
  const again = await pods(d.ns, url, 12);
  t.is(again.length, 1, `${x.name} ready again: the client is still pinned to one pod (${again})`);
  t.true(again[0] === 'pod-a' || again[0] === 'pod-b', `${again}`);
  await eps([[x, READY], [y, TERMINATING]]);
  t.deepEqual(await until([x.name], () => pods(d.ns, url, 8)), [x.name], `${y.name} terminating: back to ${x.name}`);
  await del(EPS, 'affinity-roll-1');
  await del(SVC, 'affinity-roll');
});
