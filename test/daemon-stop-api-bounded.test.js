// The daemon's stop is bounded with a hung worker and API clients that would hold it: an apply
// waiting on the hung worker, an apply whose body never finishes arriving, a live trace that
// would run for an hour, and an idle keep-alive connection. The API gives them a short grace
// (API_CLOSE_GRACE_MS), then answers what has no answer yet 503, ends the streams and closes every
// connection: the stop goes on and ends, so a pod's stop ends inside its grace period. The hung
// worker is faked by dropping every message posted to it (its thread runs, it just never hears a
// request). The daemon's own stop runs in this process, its TAP ports in a network namespace the
// test makes.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request, Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { canUseNetns, NetnsLab } from '../dist/src/netns.js';
import { parseConfig } from '../dist/src/daemon/config.js';
import { startDaemon } from '../dist/src/daemon/daemon.js';
import { ApiServerDouble } from './lib/apiserver-double.js';
import { waitFor } from './lib/topology.js';
import { within } from './lib/bounded-wait.js';

const svc = (name, ip) => ({ apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'shop', name }, spec: { clusterIP: ip, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } });

/** A request on the API's unix socket: resolves with its status and body once the answer ends
 * (or with { error } when the connection ends without one). `body: null` sends the headers and
 * half a body, never the rest. */
function call(socketPath, method, path, body, agent) {
  let req;
  const done = new Promise((resolve) => {
    req = request({ socketPath, method, path, agent, headers: { 'content-type': 'application/json', ...(body === null ? { 'content-length': '1000' } : {}) } }, (res) => {
      let s = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { s += c; });
      res.on('end', () => resolve({ status: res.statusCode, body: s }));
      res.on('error', (e) => resolve({ status: res.statusCode, body: s, error: e.message }));
      res.on('aborted', () => resolve({ status: res.statusCode, body: s, error: 'aborted' }));
    });
    req.on('error', (e) => resolve({ error: e.message }));
  });
  if (body === null) req.write('{"apiVersion":"v1",'); else req.end(body === undefined ? undefined : JSON.stringify(body));
  return { req, done };
}

const root = canUseNetns();
// deploy/base/daemonset.yaml's terminationGracePeriodSeconds less room for the process's exit: a stop
// that waited on the hung worker for good, or for the hour-long trace, would not end at all
const STOP_BOUND_MS = 50_000;
(root ? test : test.skip)(`a stop with a hung worker and API clients that would hold it still ends: the in-flight requests answered 503, the streams and connections closed${root ? '' : ' (skipped: needs root and ip: the TAP ports go in a network namespace)'}`, async (t) => {
  // the stop must end inside a pod's grace period (deploy/base/daemonset.yaml's 60 s): asserted on the
  // stop alone; the test's own timeout leaves the set-up room on a loaded machine
  t.timeout(180_000);
  const lab = new NetnsLab('sa');
  const dir = mkdtempSync(join(tmpdir(), 'wdp-stopapi-'));
  let daemon;
  const agent = new Agent({ keepAlive: true });
  t.teardown(async () => {
    agent.destroy();
    // (a stop that did not end is not waited for again: the namespace goes anyway)
    await within(daemon?.stop().catch(() => undefined), 1000);
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  const ns = lab.namespace('dp');
  const lines = [];
  const sock = join(dir, 'api.sock');
  const cfg = parseConfig({
    node: { name: 'n1', addresses: ['192.168.100.2'] }, stateDir: join(dir, 'state'), workers: 2,
    api: { listen: `unix:${sock}`, healthz: 'off' },
    ports: [0, 1].map((w) => ({ name: `pods${w}`, type: 'tap', ifname: `sa${process.pid % 10000}p${w}`, role: 'pod', worker: w, gateways: ['10.244.0.1'] })),
  });
  daemon = await startDaemon(cfg, { logger: pino({ level: 'info' }, { write: (s) => lines.push(JSON.parse(s)) }), portNetns: ns });
  await daemon.settled();

  // a keep-alive connection, idle after its answer
  const idle = call(sock, 'GET', '/api/v1/generation', undefined, agent);
  t.is((await idle.done).status, 200);
  const idleSocket = Object.values(agent.freeSockets).flat()[0];
  t.truthy(idleSocket, 'the keep-alive connection stays open');
  const idleClosed = new Promise((r) => idleSocket.once('close', r));
  // a live trace that would run for an hour (started before the worker hangs: its session is set up)
  const trace = call(sock, 'POST', '/api/v1/trace/live', { filter: {}, durationMs: 3_600_000 });
  await new Promise((resolve) => { trace.req.on('response', resolve); });
  // the worker hangs; an apply waits on it, another's body never finishes
  const asked = [];
  daemon.dataplane.workers[1].port.postMessage = (m) => { asked.push(m.type); };
  // the half-sent apply first: its headers are read (it is in flight) before the apply below has
  // been read, parsed, compiled and posted — a request that arrived once the stop began would be
  // answered 503 by the closing server instead, not by the stop's bounded close
  const halfBody = call(sock, 'POST', '/api/v1/apply', null);
  const apply = call(sock, 'POST', '/api/v1/apply', [svc('web', '10.96.0.10')]);
  // (the apply is parsed and compiled before it is posted: on a loaded machine that is not 300 ms)
  await waitFor('the apply posted to the hung worker', () => asked.includes('apply'), 20000).catch(() => undefined);
  t.true(asked.includes('apply'), `the apply waits on the hung worker (asked: ${asked.join(',')})`);

  const t0 = performance.now();
  await daemon.stop();
  const took = performance.now() - t0;
  t.log(`stop took ${Math.round(took)} ms with worker 1 hung, an apply on it, a half-sent apply, a live trace and a keep-alive connection`);
  t.true(took < STOP_BOUND_MS, `the stop ended inside the grace period (${Math.round(took)} ms)`);
  daemon = undefined;
  const [a, h, tr] = await Promise.all([apply.done, halfBody.done, trace.done]);
  await idleClosed;
  t.is(a.status, 503, JSON.stringify(a));
  t.regex(JSON.parse(a.body).message, /the daemon is stopping/);
  t.is(h.status, 503, JSON.stringify(h));
  t.is(tr.status, 200, 'the live trace had started');
  t.truthy(lines.find((l) => l.msg === 'stopped'));
  t.truthy(lines.find((l) => l.msg === 'the API\'s requests still in flight at the stop were answered 503 and its connections closed' && l.requests >= 2), JSON.stringify(lines.filter((l) => /API/.test(l.msg))));
});

(root ? test : test.skip)(`a stop with a hung worker and the Kubernetes watcher's sync waiting on it still ends${root ? '' : ' (skipped: needs root and ip: the TAP ports go in a network namespace)'}`, async (t) => {
  // the stop must end inside a pod's grace period (deploy/base/daemonset.yaml's 60 s): asserted on the
  // stop alone; the test's own timeout leaves the set-up room on a loaded machine
  t.timeout(180_000);
  const lab = new NetnsLab('sk');
  const dir = mkdtempSync(join(tmpdir(), 'wdp-stopkube-'));
  const double = new ApiServerDouble();
  let daemon;
  t.teardown(async () => {
    await within(daemon?.stop().catch(() => undefined), 1000);
    await double.close().catch(() => undefined);
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  const ns = lab.namespace('dp');
  await double.listen();
  double.create('nodes', { metadata: { name: 'n1' }, spec: {}, status: { addresses: [{ type: 'InternalIP', address: '192.168.100.2' }] } });
  writeFileSync(join(dir, 'kubeconfig'), double.kubeconfig());
  const lines = [];
  const cfg = parseConfig({
    node: { name: 'n1', addresses: ['192.168.100.2'] }, stateDir: join(dir, 'state'), workers: 2,
    api: { listen: `unix:${join(dir, 'api.sock')}`, healthz: 'off' },
    ports: [0, 1].map((w) => ({ name: `pods${w}`, type: 'tap', ifname: `sk${process.pid % 10000}p${w}`, role: 'pod', worker: w, gateways: ['10.244.0.1'] })),
    kubernetes: { kubeconfig: join(dir, 'kubeconfig'), minSyncPeriod: '100ms', syncPeriod: '5s', healthzBindAddress: 'off', metricsBindAddress: 'off', nodeWaitSeconds: 20 },
  });
  daemon = await startDaemon(cfg, { logger: pino({ level: 'info' }, { write: (s) => lines.push(JSON.parse(s)) }), portNetns: ns });
  await daemon.settled();
  const asked = [];
  daemon.dataplane.workers[1].port.postMessage = (m) => { asked.push(m.type); };
  double.create('services', { metadata: { name: 'web', namespace: 'default' }, spec: { type: 'ClusterIP', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'], ipFamilies: ['IPv4'], ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 }] } });
  await waitFor('the watcher\'s sync posted to the hung worker', () => asked.includes('apply'), 20000).catch(() => undefined);
  t.true(asked.includes('apply'), `the watcher's sync waits on the hung worker (asked: ${asked.join(',')})`);
  const t0 = performance.now();
  await daemon.stop();
  const took = performance.now() - t0;
  t.log(`stop took ${Math.round(took)} ms with worker 1 hung and the watcher's sync waiting on it`);
  t.true(took < STOP_BOUND_MS, `the stop ended inside the grace period (${Math.round(took)} ms)`);
  daemon = undefined;
  t.truthy(lines.find((l) => l.msg === 'stopped'));
});
