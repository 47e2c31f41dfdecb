// Several workers on one interface: `workers: 2` with every port `fanout: true` (one PACKET_FANOUT
// group per interface, frames steered to the worker that owns their flow; docs/running.md). Many
// TCP connections from several clients through a ClusterIP (DNAT) and through a NodePort with
// masquerade (DNAT + SNAT) must all complete, spread over both workers, with every reply finding
// its flow: no connection created twice, no reply routed untranslated or dropped for want of a flow.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { e2eSuite, api, curlOk, httpMany, serviceYaml, sliceYaml, readyEndpoints, startDaemon, sleep, waitFor, NODE_V4, POD_SERVER, WDP } from './lib/topology.js';
import { CLIENTS, REMOTES, fromSources, counters, drops, delta, fanoutServices, manyConnections } from './lib/fanout-checks.js';

const suite = e2eSuite(test, {
  pods: [{ name: 'pod-a', attach: 'afpacket' }, { name: 'pod-b', attach: 'afpacket' }, { name: 'pod-c', attach: 'afpacket' }],
  configure(config) {
    config.workers = 2;
    for (const p of config.ports) p.fanout = true;
  },
});
const serial = suite.serial;

test.before(async () => {
  await suite.ready;
  const topo = suite.topo;
  if (!topo) return;
  await fanoutServices(suite, { name: 'fan', clusterIP: '10.96.7.10', npClusterIP: '10.96.7.11', nodePort: 30700 });
});

serial('the ports are opened by both workers in a fanout group', async (t) => {
  const ports = (await api(suite.topo, 'GET', '/api/v1/ports')).json;
  const items = ports.items ?? ports;
  t.true(items.length >= 5);
  t.true(items.every((p) => p.kind === 'native-afpacket'), JSON.stringify(items.map((p) => p.kind)));
  // (the start's lines can reach the pipe after its API answers)
  await waitFor('every port\'s "port open" logged', () => (suite.topo.daemonLog.match(/"msg":"port open"/g) ?? []).length >= 5);
});

serial('ClusterIP (DNAT): many connections from several clients all complete, spread over both workers, every reply finds its flow', async (t) => {
  const topo = suite.topo;
  const { before, after, perWorker } = await manyConnections(t, topo, topo.ns.client, 'http://10.96.7.10/', CLIENTS, 20);
  t.true(after.workers.every((w) => (w.global.rx_packets ?? 0) > 0));
  // the kernel's fanout program already put client->ClusterIP frames (uplink: by source) and the
  // pods' replies (pod ports: by destination) on the client's worker: almost nothing handed over
  const handed = delta(after, before, 'steer_handed_off'), frames = delta(after, before, 'rx_packets');
  t.log(`handed over ${handed} of ${frames} frames; flows per worker ${perWorker}`);
  t.true(handed * 20 < frames, `handed over ${handed} of ${frames} frames`);
  t.is(after.global.steer_handed_off, after.global.steer_received);
  const cli = spawnSync(process.execPath, [WDP, 'get', 'counters', '--server', `unix:${topo.config.api.listen}`], { encoding: 'utf8', timeout: 20000 });
  t.regex(cli.stdout, /^ {2}worker 0: rx \d+, forward \d+, drop \d+, flows \d+, handed over \d+, received \d+, ring full 0$/m, cli.stderr);
  t.regex(cli.stdout, /^ {2}worker 1: rx /m);
});

serial('NodePort with masquerade (DNAT + SNAT): many connections all complete, replies come back to the worker owning the SNAT port', async (t) => {
  const topo = suite.topo;
  const { before, after, connections } = await manyConnections(t, topo, topo.ns.remote, `http://${NODE_V4}:30700/`, REMOTES, 25);
  // a masqueraded reply's owner is keyed by its SNAT port, which the kernel's program does not
  // read: those frames are the ones steering hands over
  t.true(delta(after, before, 'steer_handed_off') > 0);
  const ct = (await api(topo, 'GET', '/api/v1/conntrack?service=default/fan-np&limit=1000')).json;
  const masq = (ct.items ?? []).filter((f) => f.flags.includes('snat'));
  t.true(masq.length >= connections, `masqueraded flows listed: ${masq.length} ${JSON.stringify(ct).slice(0, 300)}`);
});

serial('UDP from several clients and a pod reaching itself (hairpin, masqueraded): every answer comes back', async (t) => {
  const topo = suite.topo;
  const [a, b, c] = topo.pods;
  await suite.apply([
    serviceYaml({ name: 'fan-u', clusterIP: '10.96.7.14', ports: [{ name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP' }] }),
    sliceYaml({ name: 'fan-u-1', service: 'fan-u', ports: [{ name: 'dns', port: 5353, protocol: 'UDP' }], endpoints: readyEndpoints([a, b, c]) }),
    serviceYaml({ name: 'fan-h', clusterIP: '10.96.7.13', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] }),
    sliceYaml({ name: 'fan-h-1', service: 'fan-h', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: readyEndpoints([a]) }),
  ]);
  const before = await counters(topo);
  const script = `
    const dgram = require('dgram');
    const out = [];
    const one = (src, i) => new Promise((resolve) => {
      const s = dgram.createSocket('udp4');
      const done = (v) => { clearTimeout(t); s.close(); resolve(v); };
      const t = setTimeout(() => done({ src, timeout: true }), 3000);
      s.on('message', (m, r) => done({ src, reply: m.toString(), from: r.address }));
      s.on('error', (e) => done({ src, error: e.code || e.message }));
      s.bind({ address: src }, () => s.send('ask-' + i, 53, '10.96.7.14'));
    });
    (async () => {
      for (let i = 0; i < 10; i++) out.push(...await Promise.all(${JSON.stringify(CLIENTS)}.map((src) => one(src, i))));
      console.log(JSON.stringify(out));
    })();`;
  const r = await topo.lab.execAsync(topo.ns.client, process.execPath, ['-e', script], { timeoutMs: 60_000 });
  const udp = JSON.parse(r.stdout.trim().split('\n').pop());
  const lost = udp.filter((x) => !x.reply || x.from !== '10.96.7.14');
  t.deepEqual(lost, [], `${lost.length} of ${udp.length} UDP asks unanswered or answered from the wrong address`);
  const hair = await httpMany(topo, a.ns, 'http://10.96.7.13/', 30);
  t.deepEqual(hair.filter((x) => x.error || x.pod !== 'pod-a' || x.peer !== NODE_V4), [], 'hairpin connections answered, seen from the SNAT address');
  const after = await counters(topo);
  t.is(drops(after) - drops(before), 0, JSON.stringify(after.reasons));
  t.is(after.global.steer_ring_full ?? 0, 0);
});

serial('a pod port added at runtime is opened by every worker (fanout: true); one without fanout is refused', async (t) => {
  const topo = suite.topo;
  const ns = topo.lab.namespace('fx');
  topo.lab.veth(ns, 'eth0', topo.ns.dp, 'wfx');
  topo.lab.up(ns, 'eth0');
  topo.lab.addr(ns, 'eth0', '10.244.3.10/32');
  topo.lab.route(ns, '10.244.0.1', undefined, 'eth0');
  topo.lab.route(ns, 'default', '10.244.0.1', 'eth0');
  const refused = await api(topo, 'POST', '/api/v1/ports', { name: 'pod-x', type: 'afpacket', ifname: 'wfx', role: 'pod', gateways: ['10.244.0.1'] });
  t.is(refused.status, 422, refused.text);
  t.regex(refused.text, /fanout/);
  const added = await api(topo, 'POST', '/api/v1/ports', { name: 'pod-x', type: 'afpacket', ifname: 'wfx', role: 'pod', gateways: ['10.244.0.1'], pods: [{ ip: '10.244.3.10' }], fanout: true });
  t.is(added.status, 201, added.text);
  const server = topo.lab.spawn(ns, process.execPath, [POD_SERVER, 'pod-x', '--http', '8080']);
  topo.podProcs.push(server);
  await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('pod-x server not ready')), 10000);
    server.stdout.on('data', (d) => { out += d; if (out.includes('ready')) { clearTimeout(timer); resolve(); } });
  });
  await suite.apply([
    serviceYaml({ name: 'fan-x', clusterIP: '10.96.7.12', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] }),
    sliceYaml({ name: 'fan-x-1', service: 'fan-x', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: [{ addresses: ['10.244.3.10'], conditions: { ready: true }, nodeName: 'node-a' }] }),
  ]);
  const first = await curlOk(topo, topo.ns.client, 'http://10.96.7.12/', 25);
  t.is(first.body.trim(), 'pod-x', `${first.stderr}\n${topo.daemonLog.slice(-1500)}`);
  const res = await fromSources(topo, topo.ns.client, 'http://10.96.7.12/', CLIENTS, 5);
  t.deepEqual(res.filter((r) => r.pod !== 'pod-x'), []);
  const listed = (await api(topo, 'GET', '/api/v1/ports')).json.items.filter((p) => p.name === 'pod-x');
  t.is(listed.length, 1, 'listed once, its stats summed over the workers');
  t.is((await api(topo, 'DELETE', '/api/v1/ports/pod-x')).status, 200);
  t.is((await api(topo, 'GET', '/api/v1/ports')).json.items.filter((p) => p.name === 'pod-x').length, 0);
});

serial('a restart keeps the workers\' flows: uploads (direct and masqueraded) from several clients run through it on their connections', async (t) => {
  const topo = suite.topo;
  // one slow upload per source address (POST /sink: the pod answers the bytes it received), a
  // chunk every 100 ms, on one TCP connection each, across the restart
  const script = (url, sources) => `
    const http = require('http');
    const u = new URL(${JSON.stringify(url)});
    const ups = ${JSON.stringify(sources)}.map((src) => {
      const c = { src, sent: 0, answer: null, err: null };
      c.req = http.request({ method: 'POST', host: u.hostname, port: u.port || 80, path: '/sink', localAddress: src, agent: false, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
        let body = ''; res.on('data', (d) => { body += d; }); res.on('end', () => { c.answer = body.trim(); done(); });
      });
      c.req.on('error', (e) => { c.err = e.code || e.message; done(); });
      return c;
    });
    const tick = setInterval(() => { for (const c of ups) if (!c.err) { c.req.write(Buffer.alloc(1000, 120)); c.sent += 1000; } }, 100);
    const done = () => { if (ups.every((c) => c.answer !== null || c.err)) { console.log(JSON.stringify(ups.map(({ src, sent, answer, err }) => ({ src, sent, answer, err })))); process.exit(0); } };
    process.stdin.on('data', () => { clearInterval(tick); for (const c of ups) c.req.end(); });
    setTimeout(() => process.exit(3), 120000);`;
  const spawn = (ns, url, sources) => {
    const child = topo.lab.spawn(ns, process.execPath, ['-e', script(url, sources)], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.out = '';
    child.stdout.on('data', (d) => { child.out += d; });
    child.stderr.on('data', (d) => { child.out += d; });
    child.finished = new Promise((res) => child.once('exit', res));
    return child;
  };
  const direct = spawn(topo.ns.client, 'http://10.96.7.10/', CLIENTS);
  const masq = spawn(topo.ns.remote, `http://${NODE_V4}:30700/`, REMOTES);
  try {
    // every upload on its connection through the daemon before the stop (the clients boot and
    // connect slowly on a loaded machine), then uploading a while
    const uploading = async (src) => (await api(topo, 'GET', `/api/v1/conntrack?client=${src}`)).json.items
      .some((f) => f.state === 'tcp_established' && (f.vip === '10.96.7.10' || (f.vip === NODE_V4 && f.vipPort === 30700)));
    await waitFor('every upload established', async () => (await Promise.all([...CLIENTS, ...REMOTES].map(uploading))).every(Boolean), 30000);
    await sleep(2000);
    const d = topo.daemon;
    const exited = new Promise((res) => d.once('exit', (code) => res(code)));
    d.kill('SIGTERM');
    t.is(await exited, 0);
    await startDaemon(topo);
    const restored = (await api(topo, 'GET', '/api/v1/counters')).json;
    t.true(restored.workers.every((w) => (w.global.ct_active ?? 0) > 0), `flows restored in both workers: ${restored.workers.map((w) => w.global.ct_active)}`);
    await sleep(3000);
    for (const c of [direct, masq]) c.stdin.write('end\n');
    await Promise.all([direct.finished, masq.finished]);
    const ups = [direct, masq].flatMap((c) => JSON.parse(c.out.trim().split('\n').pop()));
    t.is(ups.length, CLIENTS.length + REMOTES.length);
    for (const u of ups) {
      t.is(u.err, null, `${u.src}: ${u.err}`);
      t.is(Number(String(u.answer).split(' ')[0]), u.sent, `${u.src}: the pod received every byte sent on the one connection (${u.answer})`);
      t.true(u.sent >= 40_000, `${u.src}: sent ${u.sent} bytes across the restart`);
    }
  } finally {
    direct.kill('SIGKILL'); masq.kill('SIGKILL');
  }
});
