// End to end, an open TCP connection whose pod leaves the Service's endpoints while the pod keeps
// running — a blue/green switch of the Service's selector (the EndpointSlice now lists the green
// pod only) and a targetPort change (the same pod, another port). kube-proxy never cleans TCP
// conntrack entries (pkg/proxy/conntrack/cleanup.go cleans UDP only), so the kernel keeps
// translating the connection to the old pod, which keeps serving it; new connections go to the
// endpoints in force. wdp does the same (docs/core.md "Flows of endpoints that stop serving or go
// away"): the core forwards the open flow by the route to its old address. `wdp start` runs in
// its own namespace; the client and the pods are real TCP stacks in theirs.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname } from 'node:path';
import { e2eSuite, api, serviceYaml, sliceYaml, sleep, join, spawnNode, waitFor } from './lib/topology.js';

const suite = e2eSuite(test, { pods: [{ name: 'pod-a', attach: 'tap' }, { name: 'pod-b', attach: 'afpacket' }] });
const { serial, apply } = suite;
let topo;
test.before(() => { topo = suite.topo; });

const READY = { ready: true };
const PORTS = [9100, 9101];

const servers = [];
/** A line echo server in every pod on both PORTS: each line comes back as `pod:port:line`. */
async function startEchoServers() {
  for (const pod of topo.pods) {
    const script = `
      const net = require('net');
      let up = 0;
      for (const port of ${JSON.stringify(PORTS)}) {
        net.createServer((s) => {
          s.on('error', () => {});
          let buf = '';
          s.on('data', (d) => {
            buf += d;
            for (let i; (i = buf.indexOf('\\n')) >= 0; buf = buf.slice(i + 1)) s.write(${JSON.stringify(pod.name)} + ':' + port + ':' + buf.slice(0, i) + '\\n');
          });
        }).listen(port, () => { if (++up === ${PORTS.length}) console.log('ready'); });
      }`;
    const child = spawnNode(topo, pod.ns, script, []);
    servers.push(child);
    await waitFor(`the echo server of ${pod.name}`, () => child.out.includes('ready'), 15000);
  }
}

const service = (name, vip, targetPort) => serviceYaml({ name, clusterIP: vip, ports: [{ name: 'tcp', port: 80, targetPort, protocol: 'TCP' }] });
const slice = (name, service, pods, port) => sliceYaml({
  name, service, ports: [{ name: 'tcp', port, protocol: 'TCP' }],
  endpoints: pods.map((p) => ({ addresses: [p.ip], conditions: READY, nodeName: 'node-a' })),
});

/** One short connection to vip:80 from the client: the answer's `pod:port`, or the error. */
async function ask(vip) {
  const script = `
    const s = require('net').connect(80, ${JSON.stringify(vip)});
    const done = (r) => { console.log(r); process.exit(0); };
    let buf = '';
    s.on('connect', () => s.write('hello\\n'));
    s.on('data', (d) => { buf += d; if (buf.includes('\\n')) { s.end(); done(buf.split(':').slice(0, 2).join(':')); } });
    s.on('error', (e) => done('error ' + (e.code || e.message)));
    setTimeout(() => done('error timeout'), 3000);`;
  return (await topo.lab.execAsync(topo.ns.client, process.execPath, ['-e', script], { timeoutMs: 10000 })).stdout.trim();
}

/** A long-lived connection to vip:80: an exchange, then (once `go` exists) another exchange on the
 * same connection and a clean close. Its result line: { first, second, closed } or { error, … }. */
function longLived(vip, go) {
  const script = `
    const fs = require('fs');
    const s = require('net').connect(80, ${JSON.stringify(vip)});
    const got = [];
    let buf = '';
    const done = (r) => { console.log(JSON.stringify({ ...r, got })); process.exit(0); };
    s.on('error', (e) => done({ error: e.code || e.message }));
    setTimeout(() => done({ error: 'timeout' }), 60000);
    s.on('connect', () => s.write('one\\n'));
    s.on('data', async (d) => {
      buf += d;
      for (let i; (i = buf.indexOf('\\n')) >= 0; buf = buf.slice(i + 1)) got.push(buf.slice(0, i));
      if (got.length === 1 && !s.waiting) {
        s.waiting = true;
        console.log('first ' + got[0]);
        while (!fs.existsSync(${JSON.stringify(go)})) await new Promise((r) => setTimeout(r, 50));
        s.write('two\\n');
      } else if (got.length === 2) {
        // a clean close through the same pod: the FINs and the last ACK reach it
        s.end();
        s.on('close', (hadError) => done({ closed: !hadError }));
      }
    });`;
  return spawnNode(topo, topo.ns.client, script, []);
}

/** Runs the long-lived connection across `change` (an apply that takes its pod out of the
 * endpoints); returns { result, after } — `after`: answers of new connections once it applied. */
async function acrossChange(t, vip, change, expectAfter) {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-left-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const go = join(dir, 'go');
  const client = longLived(vip, go);
  t.teardown(() => { if (client.exitCode === null) client.kill(); });
  const ended = new Promise((resolve) => { if (client.exitCode !== null) resolve(); else client.on('close', resolve); });
  const first = await waitFor('the first exchange', () => /first (\S+)/.exec(client.out)?.[1] ?? (client.exitCode !== null ? 'exited' : undefined), 20000);
  await change();
  // new connections reach the endpoints in force (bounded: the apply is synchronous, this only
  // absorbs a loaded machine)
  const after = [];
  for (let i = 0; i < 40 && after.filter((a) => a === expectAfter).length < 3; i++) { after.push(await ask(vip)); if (after.at(-1) !== expectAfter) await sleep(200); }
  writeFileSync(go, '');
  await ended;
  let result;
  try { result = JSON.parse(client.out.trim().split('\n').pop()); } catch { result = { error: `no result: ${client.out}` }; }
  return { first, result, after };
}

test.before(async () => { await suite.ready; topo = suite.topo; if (suite.root) await startEchoServers(); });
test.after.always(() => { for (const c of servers) if (c.exitCode === null) c.kill(); });

serial('a blue/green switch of the endpoints: the open connection stays with the old pod (still running), new connections go to the new one', async (t) => {
  const [blue, green] = topo.pods;
  const vip = '10.96.7.10';
  await apply([service('bluegreen', vip, 9100), slice('bluegreen-1', 'bluegreen', [blue], 9100)]);
  t.is(await waitFor('the blue pod answering', async () => { const r = await ask(vip); return r.startsWith('pod-') ? r : undefined; }), 'pod-a:9100');
  const before = (await api(topo, 'GET', '/api/v1/counters')).json.reasons.fwd_nat ?? 0;
  const { first, result, after } = await acrossChange(t, vip, () => apply([slice('bluegreen-1', 'bluegreen', [green], 9100)]), 'pod-b:9100');
  t.is(first, 'pod-a:9100:one');
  t.true(after.includes('pod-b:9100'), `new connections reach the green pod: ${after.join(', ')}`);
  t.false(after.some((a) => a.startsWith('pod-a')), `no new connection goes to the blue pod: ${after.join(', ')}`);
  t.deepEqual(result, { closed: true, got: ['pod-a:9100:one', 'pod-a:9100:two'] }, 'the open connection was not reset: answered by the blue pod, closed cleanly');
  t.true(((await api(topo, 'GET', '/api/v1/counters')).json.reasons.fwd_nat ?? 0) > before);
});

serial('a targetPort change: the open connection stays on the old port, new connections use the new one', async (t) => {
  const [pod] = topo.pods;
  const vip = '10.96.7.11';
  await apply([service('retarget', vip, 9100), slice('retarget-1', 'retarget', [pod], 9100)]);
  t.is(await waitFor('the pod answering', async () => { const r = await ask(vip); return r.startsWith('pod-') ? r : undefined; }), 'pod-a:9100');
  const { first, result, after } = await acrossChange(t, vip, () => apply([service('retarget', vip, 9101), slice('retarget-1', 'retarget', [pod], 9101)]), 'pod-a:9101');
  t.is(first, 'pod-a:9100:one');
  t.true(after.includes('pod-a:9101'), `new connections use the new port: ${after.join(', ')}`);
  t.deepEqual(result, { closed: true, got: ['pod-a:9100:one', 'pod-a:9100:two'] }, 'the open connection was not reset: still on the old port');
});
