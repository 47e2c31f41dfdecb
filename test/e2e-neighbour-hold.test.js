// End to end, frames kept while a backend's neighbour resolves (src/daemon/hold-queue.ts). The pod
// is attached without a MAC and never sends anything on its own, so right after its Service is
// applied its backends have no next hop: the worker probes at once, but the learned neighbour
// reaches the tables only through the daemon (debounced, then an apply). A client that sends at
// that moment — one UDP datagram, no retry; one TCP connect — used to lose the datagram and the
// first SYN (drop_no_route; the connect then waited for the SYN's 1 s retransmit). Now the worker
// holds them and sends them on once the neighbour is programmed (counted once as received, and not
// as dropped). A frame whose backend never resolves is dropped after 3 s (drop_no_route then).
// The pod's ARP is off until both frames are held, so the resolution cannot come first.
// No timed assertion (the resolution takes ~60 ms on a quiet machine, seconds on a loaded one):
// that the first SYN itself got through is read from the counters — held, released, none expired
// or refused — not from how soon the connect finished.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { e2eSuite, api, serviceYaml, sliceYaml, spawnNode, waitFor, sleep, WDP } from './lib/topology.js';
import { readPcap } from '../dist/src/ports/pcap.js';
import { childDone } from './lib/child-done.js';

const suite = e2eSuite(test, { pods: [{ name: 'pod-a', attach: 'afpacket' }] });
const { serial, apply } = suite;
let topo;
test.before(() => { topo = suite.topo; });

// the global counters, with drop_no_route beside them
const counters = async () => { const j = (await api(topo, 'GET', '/api/v1/counters')).json; return { ...j.global, drop_no_route: j.drops.drop_no_route }; };
const backends = async (service) => (await api(topo, 'GET', `/api/v1/backends?service=${encodeURIComponent(service)}`)).json.items;

// Started before the apply (a process entering a namespace takes longer than the resolution
// window), it sends when it reads a line: one datagram and one connect, each tried once.
const CLIENT = `
const dgram = require('dgram'), net = require('net');
const [vip, udpPort, tcpPort] = process.argv.slice(1);
const out = {};
const done = () => { if ('udp' in out && 'tcp' in out) { console.log(JSON.stringify(out)); process.exit(0); } };
process.stdin.once('data', () => {
  const s = dgram.createSocket('udp4');
  const ut = setTimeout(() => { out.udp = { timeout: true }; s.close(); done(); }, 10000);
  s.on('message', (m) => { clearTimeout(ut); out.udp = { reply: m.toString() }; s.close(); done(); });
  s.send('hello', Number(udpPort), vip);
  const t0 = Date.now();
  const c = net.connect({ host: vip, port: Number(tcpPort) });
  // generous: a retransmitted SYN connecting it is told apart by the counters, not by time
  const ct = setTimeout(() => { out.tcp = { timeout: true }; c.destroy(); done(); }, 10000);
  c.on('connect', () => {
    clearTimeout(ct);
    const connectMs = Date.now() - t0;
    let body = '';
    c.setTimeout(10000, () => { out.tcp = { connectMs, error: 'no response' }; c.destroy(); done(); });
    c.on('data', (d) => { body += d; });
    c.on('end', () => { out.tcp = { connectMs, body: body.split('\\r\\n\\r\\n').slice(1).join('') }; done(); });
    c.write('GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n');
  });
  c.on('error', (e) => { if (!('tcp' in out)) { clearTimeout(ct); out.tcp = { error: e.code || e.message }; done(); } });
});
console.log('ready');
`;

/** `wdp capture` of the client port's received UDP to :53 (from the root namespace: the API is a
 * unix socket), once it runs in the worker: { done, file }. */
async function captureClientDns(dir) {
  const file = join(dir, 'in.pcap');
  const child = spawn(process.execPath, [WDP, 'capture', '--port', 'client', '--direction', 'in', '--proto', 'UDP', '--dport', '53',
    '--duration', '8s', '-c', '20', '-w', file, '--server', `unix:${topo.config.api.listen}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
  const done = childDone(child).then(({ code }) => { clearTimeout(timer); return { code, stderr }; });
  // running once the file has its header (written when every worker has the session)
  const started = () => { try { return statSync(file).size >= 24; } catch { return false; } };
  for (let i = 0; i < 200 && !started() && child.exitCode === null; i++) await sleep(100);
  if (!started()) { child.kill('SIGKILL'); throw new Error(`the capture did not start: ${stderr}`); }
  return { done, file };
}

serial('the first UDP datagram and the first SYN to a backend still being resolved are held and answered', async (t) => {
  const pod = topo.pods[0];
  const dir = mkdtempSync(join(tmpdir(), 'wdp-hold-'));
  const client = spawnNode(topo, topo.ns.client, CLIENT, ['10.96.4.1', '53', '80']);
  try {
    await waitFor('the client to start', async () => client.out.includes('ready'), 10000);
    const capture = await captureClientDns(dir);
    const before = await counters();
    // the pod answers no ARP until the client's frames are held: the resolution cannot win the
    // race with the client (it took ~60 ms; a loaded machine can delay the client longer)
    t.is((await topo.lab.execAsync(pod.ns, 'ip', ['link', 'set', pod.ifname, 'arp', 'off'])).code, 0);
    await apply([
      serviceYaml({ name: 'fresh', clusterIP: '10.96.4.1', ports: [{ name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP' }, { name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] }),
      sliceYaml({ name: 'fresh-1', service: 'fresh', ports: [{ name: 'dns', port: 5353, protocol: 'UDP' }, { name: 'http', port: 8080, protocol: 'TCP' }],
        endpoints: [{ addresses: [pod.ip], conditions: { ready: true }, nodeName: 'node-a' }] }),
    ]);
    client.stdin.write('go\n');
    try {
      await waitFor('the first datagram and SYN held', async () => ((await counters()).slowpath_hold_queued ?? 0) - (before.slowpath_hold_queued ?? 0) >= 2, 15000);
    } finally {
      t.is((await topo.lab.execAsync(pod.ns, 'ip', ['link', 'set', pod.ifname, 'arp', 'on'])).code, 0);
    }
    const line = await waitFor('the client to finish', async () => client.out.split('\n').find((l) => l.startsWith('{')), 30000);
    const r = JSON.parse(line);
    t.log(line);
    t.is(r.udp.reply, 'pod-a:hello', `the lone datagram is answered: ${line}`);
    t.truthy(r.tcp.connectMs !== undefined, `the first SYN connects: ${line}`);
    t.regex(r.tcp.body ?? '', /pod-a/, `and the connection is served: ${line}`);
    const after = await counters();
    const moved = (k) => (after[k] ?? 0) - (before[k] ?? 0);
    t.true(moved('slowpath_hold_queued') >= 2, `held: ${moved('slowpath_hold_queued')}`);
    t.true(moved('slowpath_hold_released') >= 2, `released: ${moved('slowpath_hold_released')}`);
    t.is(moved('slowpath_hold_overflow'), 0);
    // the first datagram and SYN were held (the client sent right after the apply), and every held
    // frame was released: none waited out the hold time, so the first SYN itself was sent on
    t.is(moved('slowpath_hold_expired'), 0, 'nothing held expired');
    // a frame held and sent on is no drop, and counts once as received: every frame received
    // meanwhile once in rx_packets and once in its verdict
    t.is(moved('drop_no_route'), 0, 'the held frames are not counted as dropped');
    t.is(moved('rx_packets'), moved('forward') + moved('reject') + moved('to_host') + moved('drop'), 'received once, decided once');
    t.true((await backends('default/fresh')).every((b) => b.outPort !== null && b.outPort !== undefined), 'the pod resolved');
    // a capture's `in` is what the port received: the datagram once, not again when released
    const c = await capture.done;
    t.is(c.code, 0, c.stderr);
    const dns = readPcap(capture.file).records.filter((r) => r.data[23] === 17 && r.data.subarray(30, 34).join('.') === '10.96.4.1');
    t.is(dns.length, 1, 'the held datagram is captured once, as received');
  } finally {
    client.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

serial('a frame to a backend that never resolves is dropped after the hold time, counted', async (t) => {
  await apply([
    serviceYaml({ name: 'nobody', clusterIP: '10.96.4.2', ports: [{ name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP' }] }),
    sliceYaml({ name: 'nobody-1', service: 'nobody', ports: [{ name: 'dns', port: 5353, protocol: 'UDP' }],
      endpoints: [{ addresses: ['10.244.9.9'], conditions: { ready: true }, nodeName: 'node-a' }] }),
  ]);
  const before = await counters();
  const r = await topo.lab.execAsync(topo.ns.client, process.execPath, ['-e',
    "const s = require('dgram').createSocket('udp4'); s.send('x', 53, '10.96.4.2', () => s.close());"]);
  t.is(r.code, 0, r.stderr);
  const held = await waitFor('the datagram held', async () => { const now = await counters(); return (now.slowpath_hold_queued ?? 0) > (before.slowpath_hold_queued ?? 0) ? now : undefined; }, 15000);
  // (read before the 3 s are over: a waitFor poll comes well within them)
  if ((held.slowpath_hold_expired ?? 0) === (before.slowpath_hold_expired ?? 0)) t.is(held.drop_no_route - before.drop_no_route, 0, 'while held it is not counted as dropped');
  // 3 s hold; expiry is checked on the worker's next loop (it wakes at least every idle wait)
  const c = await waitFor('the datagram expired', async () => {
    const now = await counters();
    return (now.slowpath_hold_expired ?? 0) > (before.slowpath_hold_expired ?? 0) ? now : undefined;
  }, 15000);
  t.is((c.slowpath_hold_released ?? 0) - (before.slowpath_hold_released ?? 0), 0, 'nothing released for it');
  t.is(c.drop_no_route - before.drop_no_route, (c.slowpath_hold_expired ?? 0) - (before.slowpath_hold_expired ?? 0), 'dropped once it expired: drop_no_route');
});
