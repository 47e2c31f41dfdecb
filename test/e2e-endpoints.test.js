// End to end, endpoint life cycle and stickiness: endpoint churn, readiness / terminating
// fallback, an open TCP connection surviving its backend going not-ready while a UDP 5-tuple moves on, sessionAffinity ClientIP with a
// short timeout, and hairpin (a pod reaching itself through its own Service). `wdp start` runs in
// its own namespace; pods are attached by TAP and AF_PACKET.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import {
  curlOk, e2eSuite, api, curl, udpAsk, udpMany, httpMany, serviceYaml, sliceYaml, sleep, NODE_V4,
} from './lib/topology.js';

const suite = e2eSuite(test, { pods: [{ name: 'pod-a', attach: 'tap' }, { name: 'pod-b', attach: 'afpacket' }, { name: 'pod-c', attach: 'tap' }] });
const { serial, apply } = suite;
let topo;
test.before(() => { topo = suite.topo; });

const READY = { ready: true };
const NOT_READY = { ready: false, serving: false, terminating: false };
const TERMINATING_SERVING = { ready: false, serving: true, terminating: true };

function svc(name, vip, extra = {}) {
  return serviceYaml({ name, clusterIP: vip, extra, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }, { name: 'echo', port: 53, targetPort: 5353, protocol: 'UDP' }] });
}
function slice(name, service, conds) {
  return sliceYaml({
    name, service, ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'echo', port: 5353, protocol: 'UDP' }],
    endpoints: topo.pods.flatMap((p, i) => (conds[i] ? [{ addresses: [p.ip], conditions: conds[i], nodeName: 'node-a' }] : [])),
  });
}

async function dropReasons() {
  const r = await api(topo, 'GET', '/api/v1/counters');
  return Object.fromEntries(Object.entries(r.json?.drops ?? {}).filter(([, v]) => v));
}

async function podsSeen(url, n = 24, ns = topo.ns.client) {
  const before = await dropReasons();
  const res = await httpMany(topo, ns, url, n);
  const failed = res.filter((r) => r.error);
  if (failed.length) {
    // say where the packets went: drop reasons that moved, and the flows owning the client ports
    const after = await dropReasons();
    const moved = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]).filter(([, v]) => v));
    const ports = new Set(failed.map((r) => r.cport));
    const ct = (await api(topo, 'GET', '/api/v1/conntrack')).json?.items ?? [];
    const owners = ct.filter((f) => ports.has(f.clientPort)).map((f) => `${f.clientPort}->${f.vip}:${f.vipPort}=>${f.backend} ${f.state} idle ${f.idleMs}ms`);
    throw new Error(`${failed.length}/${n} requests to ${url} failed: ${failed[0].error} (client ports ${[...ports]}; drops ${JSON.stringify(moved)}; flows ${owners.join(', ') || 'none'})`);
  }
  return [...new Set(res.map((r) => r.pod))].sort();
}

serial('endpoint churn: removed endpoints stop receiving new connections, re-added ones receive again', async (t) => {
  const url = 'http://10.96.2.10/';
  await apply([svc('churn', '10.96.2.10'), slice('churn-1', 'churn', [READY, READY, READY])]);
  t.is((await curlOk(topo, topo.ns.client, url)).code, 0);
  t.deepEqual(await podsSeen(url), ['pod-a', 'pod-b', 'pod-c']);
  await apply([slice('churn-1', 'churn', [READY, null, READY])]);
  t.deepEqual(await podsSeen(url), ['pod-a', 'pod-c']);
  await apply([slice('churn-1', 'churn', [null, READY, null])]);
  t.deepEqual(await podsSeen(url, 10), ['pod-b']);
  await apply([slice('churn-1', 'churn', [READY, READY, READY])]);
  t.deepEqual(await podsSeen(url), ['pod-a', 'pod-b', 'pod-c']);
  // deleting the slice leaves the service without endpoints: connection refused
  const del = await api(topo, 'DELETE', '/api/v1/namespaces/default/endpointslices/churn-1');
  t.is(del.status, 200, del.text);
  t.is((await curl(topo, topo.ns.client, url, { timeout: 3 })).code, 7);
});

serial('readiness: not-ready endpoints get no new flows; terminating-serving ones only when nothing is ready', async (t) => {
  const url = 'http://10.96.2.11/';
  await apply([svc('ready', '10.96.2.11'), slice('ready-1', 'ready', [READY, NOT_READY, READY])]);
  t.is((await curlOk(topo, topo.ns.client, url)).code, 0);
  t.deepEqual(await podsSeen(url), ['pod-a', 'pod-c']);
  await apply([slice('ready-1', 'ready', [TERMINATING_SERVING, TERMINATING_SERVING, NOT_READY])]);
  t.deepEqual(await podsSeen(url), ['pod-a', 'pod-b'], 'fallback to serving-terminating endpoints');
  await apply([slice('ready-1', 'ready', [TERMINATING_SERVING, TERMINATING_SERVING, READY])]);
  t.deepEqual(await podsSeen(url, 12), ['pod-c'], 'a ready endpoint wins over terminating ones');
});

/** One TCP connection from `ns` that stays open across an endpoint change: a POST /sink whose
 * second half is sent only once the file `go` exists (namespaces share the file system). Answers
 * { pod, bytes, cport } (bytes: what the pod received) or { error }. */
async function uploadAcrossChange(ns, url, go) {
  const script = `
    const http = require('http'), fs = require('fs');
    const half = Buffer.alloc(1000, 120);
    let cport;
    const req = http.request(${JSON.stringify(url)}, { method: 'POST', agent: false, headers: { 'content-length': 2 * half.length } }, (res) => {
      let body = ''; res.on('data', (d) => body += d);
      res.on('end', () => { console.log(JSON.stringify({ pod: res.headers['x-pod'], bytes: Number(body.split(' ')[0]), cport })); process.exit(0); });
    });
    req.on('socket', (s) => s.on('connect', () => { cport = s.localPort; }));
    req.on('error', (e) => { console.log(JSON.stringify({ error: e.code || e.message })); process.exit(0); });
    req.write(half);
    (async () => {
      for (let i = 0; i < 400 && !fs.existsSync(${JSON.stringify(go)}); i++) await new Promise((r) => setTimeout(r, 50));
      req.end(half);
    })();`;
  const r = await topo.lab.execAsync(ns, process.execPath, ['-e', script], { timeoutMs: 40000 });
  try { return JSON.parse(r.stdout.trim().split('\n').pop()); } catch { return { error: `no output (${r.code}): ${r.stderr}` }; }
}

// kube-proxy leaves TCP conntrack entries alone when an endpoint stops being ready, but deletes
// UDP entries toward an endpoint that is no longer serving (pkg/proxy/conntrack/cleanup.go
// CleanStaleEntries), so a UDP client that keeps its source port moves to a serving pod ("should
// be able to preserve UDP traffic when server pod cycles", test/e2e/network/conntrack.go). With no
// serving endpoint left the entry is deleted too (kubernetes#139629): the next datagram is a new
// connection to a Service without endpoints, refused (e2e-semantics-udp-cleanup).
serial('an endpoint stops being ready: an open TCP connection keeps it; a UDP 5-tuple moves to a serving pod; new flows avoid it', async (t) => {
  await apply([svc('sticky', '10.96.2.12'), slice('sticky-1', 'sticky', [READY, READY, READY])]);
  t.is((await curlOk(topo, topo.ns.client, 'http://10.96.2.12/')).code, 0);
  // TCP: one connection open across the change
  const go = join(mkdtempSync(join(tmpdir(), 'wdp-sticky-')), 'go');
  t.teardown(() => rmSync(dirname(go), { recursive: true, force: true }));
  const tcp = uploadAcrossChange(topo.ns.client, 'http://10.96.2.12/sink', go);
  let flow;
  for (let i = 0; i < 200 && !flow; i++) {
    const ct = (await api(topo, 'GET', '/api/v1/conntrack?proto=TCP')).json?.items ?? [];
    flow = ct.find((f) => f.vip === '10.96.2.12' && f.state === 'tcp_established');
    if (!flow) await sleep(50);
  }
  t.truthy(flow, 'the open connection\'s flow');
  const tcpIdx = topo.pods.findIndex((p) => p.ip === flow.backend);
  const tcpConds = [READY, READY, READY];
  tcpConds[tcpIdx] = NOT_READY;
  await apply([slice('sticky-1', 'sticky', tcpConds)]);
  writeFileSync(go, '');
  const up = await tcp;
  t.deepEqual([up.pod, up.bytes], [topo.pods[tcpIdx].name, 2000], `an open TCP connection keeps its not-ready backend: ${JSON.stringify(up)}`);
  await apply([slice('sticky-1', 'sticky', [READY, READY, READY])]);

  // UDP: the same 5-tuple again and again
  let first;
  for (let i = 0; i < 20 && !first?.reply; i++) { first = await udpAsk(topo, topo.ns.client, '10.96.2.12', 53, 'hello', { bindPort: 40001 }); if (!first.reply) await sleep(200); }
  t.truthy(first.reply, JSON.stringify(first));
  const pod = first.reply.split(':')[0];
  const idx = topo.pods.findIndex((p) => p.name === pod);
  const conds = [READY, READY, READY];
  conds[idx] = NOT_READY;
  await apply([slice('sticky-1', 'sticky', conds)]);
  const again = await udpAsk(topo, topo.ns.client, '10.96.2.12', 53, 'again', { bindPort: 40001 });
  t.truthy(again.reply, JSON.stringify(again));
  t.not(again.reply.split(':')[0], pod, 'same 5-tuple: the UDP flow leaves the backend that stopped serving');
  const moved = again.reply.split(':')[0];
  const fresh = new Set((await udpMany(topo, topo.ns.client, '10.96.2.12', 53, Array.from({ length: 16 }, () => ({ payload: 'new' }))))
    .map((r) => r.reply?.split(':')[0]));
  t.false(fresh.has(pod), `new flows must avoid the not-ready ${pod}: ${[...fresh]}`);
  t.is(fresh.size, 2);
  // nothing serving any more: the flow leaves its pod (which still runs and would answer)
  await apply([slice('sticky-1', 'sticky', [NOT_READY, NOT_READY, NOT_READY])]);
  const last = await udpAsk(topo, topo.ns.client, '10.96.2.12', 53, 'last', { bindPort: 40001 });
  t.falsy(last.reply, `no serving endpoint: not answered by ${moved} any more (${JSON.stringify(last)})`);
});

serial('sessionAffinity ClientIP: every connection of a client goes to one pod until the affinity times out', async (t) => {
  const url = 'http://10.96.2.13/';
  await apply([
    svc('aff', '10.96.2.13', { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 2 } } }),
    slice('aff-1', 'aff', [READY, READY, READY]),
  ]);
  t.is((await curlOk(topo, topo.ns.client, url)).code, 0);
  const pods = await podsSeen(url, 15);
  t.is(pods.length, 1, `all connections of one client on one pod: ${pods}`);
  // trace shows why: the affinity entry picks the backend
  const tr = await api(topo, 'POST', '/api/v1/trace', { src: '10.0.0.2', dst: '10.96.2.13', proto: 'TCP', sport: 1111, dport: 80, inPort: 0 });
  t.is(tr.json.selection, 'affinity');
  t.is(tr.json.backend.addr, topo.pods.find((p) => p.name === pods[0]).ip);
  // idle for longer than the timeout: the next connection is a fresh Maglev choice
  await sleep(3500);
  const tr2 = await api(topo, 'POST', '/api/v1/trace', { src: '10.0.0.2', dst: '10.96.2.13', proto: 'TCP', sport: 1112, dport: 80, inPort: 0 });
  t.is(tr2.json.selection, 'maglev');
});

serial('hairpin: a pod reaching itself through its Service gets the answer, seen from the SNAT address', async (t) => {
  await apply([svc('hair', '10.96.2.14'), slice('hair-1', 'hair', [READY, null, null])]);
  const podA = topo.pods[0];
  const r = await curlOk(topo, podA.ns, 'http://10.96.2.14/');
  t.is(r.code, 0, `${r.stderr}\n${topo.daemonLog.slice(-2000)}`);
  t.is(r.body.trim(), 'pod-a');
  const peer = r.headers['x-peer'].replace('::ffff:', '');
  t.not(peer, podA.ip, 'without SNAT the reply would never come back through the dataplane');
  t.is(peer, NODE_V4);
  // and a pod reaching another pod through the Service is not SNATed
  await apply([slice('hair-1', 'hair', [null, READY, null])]);
  const r2 = await curlOk(topo, podA.ns, 'http://10.96.2.14/');
  t.is(r2.body.trim(), 'pod-b');
  t.is(r2.headers['x-peer'].replace('::ffff:', ''), podA.ip);
});

// Regression: a client reuses its port for another Service that shares the backend, right after
// its first connection through that port closed. Linux picks ephemeral ports per destination, so
// this happens on its own: it is what made the readiness test above flaky (a fallback-step SYN
// from a port the churn test had used for 10.96.2.10 -> the same pod had the same reply tuple as
// that flow, still tcp_closing: every SYN was dropped as drop_ct_clash until the old flow expired
// 10 s later, so the request timed out). A pure SYN must take over a closing flow's reply tuple,
// as it already restarts a closing flow with the same original tuple (assembly/pipeline.ts newFlow).
serial('a fresh SYN from a reused client port takes over the closing flow another Service left on the same backend', async (t) => {
  await apply([
    svc('reuse-a', '10.96.2.15'), slice('reuse-a-1', 'reuse-a', [null, READY, null]),
    svc('reuse-b', '10.96.2.16'), slice('reuse-b-1', 'reuse-b', [null, READY, null]),
  ]);
  t.is((await curlOk(topo, topo.ns.client, 'http://10.96.2.15/')).code, 0);
  const port = 45001; // odd: connect() hands out even ports first, so no other request collides
  const first = await httpMany(topo, topo.ns.client, 'http://10.96.2.15/', 1, { localPort: port });
  t.is(first[0].pod, 'pod-b', JSON.stringify(first));
  // wait until the dataplane has seen the close (FIN): the old flow is tcp_closing, not expired
  let state;
  for (let i = 0; i < 100 && state !== 'tcp_closing'; i++) {
    const ct = (await api(topo, 'GET', '/api/v1/conntrack?client=10.0.0.2')).json?.items ?? [];
    state = ct.find((f) => f.clientPort === port && f.vip === '10.96.2.15')?.state;
    if (state !== 'tcp_closing') await sleep(20);
  }
  t.is(state, 'tcp_closing');
  const before = (await dropReasons()).drop_ct_clash ?? 0;
  const second = await httpMany(topo, topo.ns.client, 'http://10.96.2.16/', 1, { localPort: port });
  const clashes = ((await dropReasons()).drop_ct_clash ?? 0) - before;
  t.is(second[0].pod, 'pod-b', JSON.stringify(second));
  t.is(clashes, 0, 'SYNs refused as a reply-tuple clash with the closing flow');
});
