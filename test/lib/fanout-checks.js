// What the several-workers-on-one-interface e2e tests (daemon-fanout*.test.js) share: the client
// addresses, many HTTP connections from several sources, and the check that every connection kept
// one flow and every reply found it.
import { api, curlOk, serviceYaml, sliceYaml, readyEndpoints, waitFor } from './topology.js';
import { childDone } from './child-done.js';

export const CLIENTS = ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6', '10.0.0.7'];
export const REMOTES = ['192.168.100.10', '192.168.100.11', '192.168.100.12', '192.168.100.13'];

/** `perSource` HTTP GETs from each source address of `sources`, 6 at a time, from one node process
 * inside `ns`; returns [{ src, pod } | { src, error }]. */
export async function fromSources(topo, ns, url, sources, perSource) {
  const script = `
    const http = require('http');
    const u = new URL(${JSON.stringify(url)});
    const jobs = [];
    for (const src of ${JSON.stringify(sources)}) for (let i = 0; i < ${perSource}; i++) jobs.push(src);
    const out = [];
    const one = (src) => new Promise((resolve) => {
      const req = http.get({ host: u.hostname, port: u.port || 80, path: '/', agent: false, localAddress: src, timeout: 5000 }, (res) => {
        let body = ''; res.on('data', (d) => body += d); res.on('end', () => resolve({ src, pod: body.trim() }));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e) => resolve({ src, error: e.code || e.message }));
    });
    (async () => {
      let next = 0;
      await Promise.all(Array.from({ length: 6 }, async () => { while (next < jobs.length) out.push(await one(jobs[next++])); }));
      console.log(JSON.stringify(out));
    })();`;
  const r = await topo.lab.execAsync(ns, process.execPath, ['-e', script], { timeoutMs: 120_000 });
  try { return JSON.parse(r.stdout.trim().split('\n').pop()); } catch { throw new Error(`connections failed (${r.code}): ${r.stderr}`); }
}

export const counters = async (topo) => (await api(topo, 'GET', '/api/v1/counters')).json;
export const drops = (c) => Object.entries(c.reasons).filter(([k]) => k.startsWith('drop_')).reduce((a, [, v]) => a + v, 0);
export const delta = (after, before, k) => (after.reasons[k] ?? after.global[k] ?? 0) - (before.reasons[k] ?? before.global[k] ?? 0);
/** A reply that misses its flow is not reverse-translated: the client's TCP never accepts it (steering
 * is deterministic, so the retransmissions miss too and the connection fails), it is not counted as
 * fwd_reply, and a flow created twice shows as ct_new beyond the connections. Every connection here
 * has at least three server packets (SYN-ACK, the response, FIN). */
export function flowsKept(t, before, after, connections) {
  // at most one flow per connection (a client port the kernel reuses toward the same Service can
  // meet its predecessor's closing flow, so fewer is possible)
  const created = delta(after, before, 'ct_new');
  t.true(created <= connections && created >= connections / 2, `${created} flows for ${connections} connections`);
  t.true(delta(after, before, 'fwd_reply') >= 3 * connections, `replies reverse-translated: ${delta(after, before, 'fwd_reply')} for ${connections} connections`);
  t.is(drops(after) - drops(before), 0, JSON.stringify(after.reasons));
  t.is(after.global.steer_ring_full ?? 0, 0);
}

/** The clients' extra source addresses, a ClusterIP `name` at `clusterIP` and a NodePort `name-np`
 * at `npClusterIP`:`nodePort`, both over the three pods' port 8080. */
export async function fanoutServices(suite, { name, clusterIP, npClusterIP, nodePort }) {
  const topo = suite.topo;
  for (const a of CLIENTS.slice(1)) topo.lab.addr(topo.ns.client, 'eth0', `${a}/24`);
  for (const a of REMOTES.slice(1)) topo.lab.addr(topo.ns.remote, 'eth0', `${a}/24`);
  const eps = readyEndpoints(topo.pods.slice(0, 3));
  const port = [{ name: 'http', port: 8080, protocol: 'TCP' }];
  await suite.apply([
    serviceYaml({ name, clusterIP, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] }),
    sliceYaml({ name: `${name}-1`, service: name, ports: port, endpoints: eps }),
    serviceYaml({ name: `${name}-np`, type: 'NodePort', clusterIP: npClusterIP, ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort, protocol: 'TCP' }] }),
    sliceYaml({ name: `${name}-np-1`, service: `${name}-np`, ports: port, endpoints: eps }),
  ]);
}

/** `perSource` connections from each of `sources` (in `ns`) to `url`: all must reach a pod, keep
 * one flow each with every reply finding it, and both workers must create flows. Returns the
 * counters before and after, the connections made and the flows created per worker. */
export async function manyConnections(t, topo, ns, url, sources, perSource, workers = 2) {
  t.is((await curlOk(topo, ns, url, 25)).code, 0, topo.daemonLog.slice(-2000));
  const before = await counters(topo);
  const res = await fromSources(topo, ns, url, sources, perSource);
  const failed = res.filter((r) => r.error || !/^pod-/.test(r.pod));
  t.deepEqual(failed, [], `${failed.length} of ${res.length} failed`);
  const after = await counters(topo);
  flowsKept(t, before, after, res.length);
  t.is(after.workers.length, workers);
  const perWorker = after.workers.map((w, i) => (w.global.ct_new ?? 0) - (before.workers[i].global.ct_new ?? 0));
  t.log(`handed over ${delta(after, before, 'steer_handed_off')} of ${delta(after, before, 'rx_packets')} frames; flows per worker ${perWorker}`);
  t.true(perWorker.every((n) => n > 0), `flows per worker ${perWorker}`);
  return { before, after, connections: res.length, perWorker };
}

/** One long upload from `ns` (of `topo`) to `url`/sink: `n` chunks of 1000 bytes, `everyMs` apart, on one TCP
 * connection; the test's `during()` runs once the first chunk is out. The answer: { pod, got }
 * (the bytes the pod received) or { error }. */
export async function longUpload(topo, ns, url, n, everyMs, during) {
  const script = `
    const http = require('http');
    const u = new URL(${JSON.stringify(url)});
    const done = (o) => { console.log(JSON.stringify(o)); process.exit(0); };
    const req = http.request({ host: u.hostname.replace(/^\\[|\\]$/g, ''), port: u.port || 80, path: '/sink', method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
      let body = ''; res.on('data', (d) => body += d); res.on('end', () => done({ pod: res.headers['x-pod'], got: Number(body.split(' ')[0]) }));
    });
    req.on('error', (e) => done({ error: e.code || e.message }));
    let i = 0;
    const next = () => {
      if (i++ === ${n}) { req.end(); setTimeout(() => done({ error: 'no answer 5 s after the end' }), 5000); return; }
      req.write('x'.repeat(1000));
      if (i === 1) console.log('first');
      setTimeout(next, ${everyMs});
    };
    next();`;
  const child = topo.lab.spawn(ns, process.execPath, ['-e', script]);
  let out = '';
  const exited = childDone(child);
  const kill = setTimeout(() => child.kill('SIGKILL'), n * everyMs + 20000);
  child.stdout.on('data', (d) => { out += d; });
  await waitFor('the upload started', () => out.includes('first') || child.exitCode !== null, 15000);
  await during();
  await exited;
  clearTimeout(kill);
  try { return JSON.parse(out.trim().split('\n').pop()); } catch { throw new Error(`upload client: ${out}`); }
}

/** A pod's long upload (`ns` to `url`/sink, 12 chunks 250 ms apart) during which Service `name`
 * is deleted: every byte must reach one of pod-b and pod-c (its backends). */
export async function uploadThroughDeletion(t, topo, ns, url, name) {
  const before = await counters(topo);
  const N = 12;
  const res = await longUpload(topo, ns, url, N, 250, async () => {
    await new Promise((r) => setTimeout(r, 500));
    const r = await api(topo, 'DELETE', `/api/v1/namespaces/default/services/${name}`);
    t.is(r.status, 200, r.text);
  });
  const after = await counters(topo);
  t.log(res, `handed over ${after.global.steer_handed_off - before.global.steer_handed_off}`);
  t.regex(res.pod ?? '', /^pod-[bc]$/, JSON.stringify(res));
  t.is(res.got, N * 1000, 'every byte sent after the deletion reached the backend');
}
