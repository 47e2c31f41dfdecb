// Live trace and capture on the running daemon (`wdp trace --live`, `wdp capture`), with two
// forwarding workers: real curls through a ClusterIP (worker 0's ports) and a NodePort (worker
// 1's), traced and captured through the CLI; tcpdump reads the capture back.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  curlOk, rootGate, startTwoWorkerTopology, destroyTopology, api, curl, serviceYaml, twoWorkerServices, sleep, NODE_V4, WDP,
} from './lib/topology.js';
import { parsePcap } from '../dist/src/ports/pcap.js';
import { childDone } from './lib/child-done.js';

const gate = rootGate(test);
const root = gate.ok;
const serial = gate.serial;
const hasTcpdump = spawnSync('tcpdump', ['--version']).status === 0;

let topo, dir, captured;
test.before(async () => {
  if (!root) return;
  dir = mkdtempSync(join(tmpdir(), 'wdp-observe-'));
  // ports: 0 client, 1 remote, 2 pod-a, 3 pod-b, 4 pod-c (worker 0: client, pod-a, pod-b)
  topo = await startTwoWorkerTopology();
  try {
    const r = await api(topo, 'POST', '/api/v1/apply', [
      ...twoWorkerServices(topo),
      serviceYaml({ name: 'empty', clusterIP: '10.96.4.20', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] }),
    ]);
    if (r.status !== 200) throw new Error(`apply: ${r.text}`);
    if ((await curlOk(topo, topo.ns.client, 'http://10.96.4.10/', 25)).code !== 0) throw new Error('ClusterIP not answering');
    if ((await curlOk(topo, topo.ns.remote, `http://${NODE_V4}:30400/`, 25)).code !== 0) throw new Error('NodePort not answering');
  } catch (e) {
    await destroyTopology(topo);
    throw e;
  }
});
test.after.always(async () => {
  if (topo) await destroyTopology(topo);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs the wdp CLI (from the root namespace: the API is a unix socket) in the background. */
function wdp(args) {
  const child = spawn(process.execPath, [WDP, ...args, '--server', `unix:${topo.config.api.listen}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const done = childDone(child).then(({ code }) => ({ code, stdout, stderr }));
  const timer = setTimeout(() => child.kill("SIGKILL"), 40_000);
  done.then(() => clearTimeout(timer));
  return { child, done, exited: () => child.exitCode !== null };
}

/** Whether a capture writing `file` runs: its header is written once every worker has the session. */
const started = (file) => { try { return statSync(file).size >= 24; } catch { return false; } };

/** Curls (bounded) until the background CLI exits. */
async function trafficUntil(run, urls) {
  await sleep(1500);   // the session starts in every worker before traffic flows
  for (let i = 0; i < 60 && !run.exited(); i++) {
    for (const [ns, url] of urls) await curl(topo, ns, url, { timeout: 2 });
  }
  return run.done;
}

serial('trace --live: real packets of new flows, every stage with its values, from both workers', async (t) => {
  const run = wdp(['trace', '--live', '--proto', 'TCP', '--port', '8080', '-c', '400', '--duration', '25s', '--rate', '1000', '-o', 'json']);
  const out = await trafficUntil(run, [[topo.ns.client, 'http://10.96.4.10/'], [topo.ns.remote, `http://${NODE_V4}:30400/`]]);
  t.is(out.code, 0, out.stderr);
  const lines = out.stdout.trim().split('\n').map((l) => JSON.parse(l));
  const end = lines.pop();
  t.is(end.kind, 'TraceEnd');
  t.true(lines.length > 0);
  t.deepEqual([...new Set(lines.map((e) => e.worker))].sort(), [0, 1], 'both workers trace');
  // a SYN to the ClusterIP: service matched, new flow, Maglev choice, DNAT to a pod's 8080
  const syn = lines.find((e) => e.input.dst === '10.96.4.10' && e.conntrack === 'new');
  t.truthy(syn, JSON.stringify(lines.slice(0, 3)));
  t.is(syn.verdict, 'forward');
  t.is(syn.frontend.service, 'default/w0');
  t.is(syn.selection, 'maglev');
  t.true(Number.isInteger(syn.maglevSlot));
  t.true([topo.pods[0].ip, topo.pods[1].ip].includes(syn.output.dst));
  t.is(syn.output.dport, 8080);
  t.is(syn.output.dst, syn.backend.addr);
  t.is(syn.flow.backend, syn.backend.addr);
  t.is(syn.flow.clientPort, syn.input.sport);
  // the pod's reply: a conntrack hit, reverse-translated back to the VIP
  const reply = lines.find((e) => e.input.src === syn.backend.addr && e.input.dport === syn.input.sport);
  t.truthy(reply);
  t.is(reply.conntrack, 'hit_reply');
  t.is(reply.output.src, '10.96.4.10');
  t.is(reply.output.sport, 80);
  // the NodePort flow, handled by worker 1
  const np = lines.find((e) => e.input.dport === 30400 && e.conntrack === 'new');
  t.truthy(np);
  t.is(np.worker, 1);
  t.is(np.frontend.service, 'default/w1');
  t.is(np.output.dst, topo.pods[2].ip);
});

serial('trace --live --reason: only the rejected packets, human output, the count bounds it', async (t) => {
  // the prefix keeps 10.96.4.10 (w0) out: only 10.96.4.20 (empty) is in 10.96.4.16/28
  // the in port by name, the service by name: both become ids the core matches
  const run = wdp(['trace', '--live', '--reason', 'reject_no_endpoints', '--dst', '10.96.4.16/28', '--in-port', 'client', '--service', 'default/empty', '-c', '2', '--duration', '25s']);
  const out = await trafficUntil(run, [[topo.ns.client, 'http://10.96.4.10/'], [topo.ns.client, 'http://10.96.4.20/']]);
  t.is(out.code, 0, out.stderr);
  const heads = out.stdout.split('\n').filter((l) => /worker \d port/.test(l));
  t.is(heads.length, 2, out.stdout);
  for (const h of heads) t.regex(h, /-> 10\.96\.4\.20:80 {2}reject \(reject_no_endpoints\)/);
  t.regex(out.stdout, /service: +default\/empty http ClusterIP/);
  t.regex(out.stderr, /2 packet\(s\) traced \(count reached\)/);
});

serial('trace --live: bad filters are clear errors', async (t) => {
  const r = await api(topo, 'POST', '/api/v1/trace/live', { filter: { src: 'nope', bogus: 1 }, count: 0 });
  t.is(r.status, 422, r.text);
  t.regex(r.text, /filter\.src/);
  t.regex(r.text, /filter\.bogus/);
  t.regex(r.text, /count/);
  const cli = wdp(['trace', '--live', '--sport', 'x']);
  const out = await cli.done;
  t.is(out.code, 1);
  t.regex(out.stderr, /--sport must be a number/);
  const port = await wdp(['trace', '--live', '--in-port', 'nope']).done;
  t.is(port.code, 1);
  t.regex(port.stderr, /--in-port "nope": no such port in the daemon \(ports: client \(0\), remote \(1\)/);
});

serial('capture: a port\'s frames before and after translation, bounded, readable by tcpdump', async (t) => {
  const file = join(dir, 'client.pcap');
  const run = wdp(['capture', '--port', 'client', '--proto', 'TCP', '-c', '12', '--duration', '8s', '-w', file]);
  const out = await trafficUntil(run, [[topo.ns.client, 'http://10.96.4.10/']]);
  t.is(out.code, 0, out.stderr);
  const pcap = parsePcap(readFileSync(file));
  t.is(pcap.records.length, 12);
  const ipv4 = (d) => `${d[26]}.${d[27]}.${d[28]}.${d[29]}>${d[30]}.${d[31]}.${d[32]}.${d[33]}`;
  const pairs = pcap.records.map((r) => ipv4(r.data));
  t.true(pairs.includes('10.0.0.2>10.96.4.10'), 'client to VIP, as received');
  t.true(pairs.includes('10.96.4.10>10.0.0.2'), 'VIP to client, as sent after reverse translation');
  captured = file;
});

(hasTcpdump ? serial : (title, fn) => test.skip(`${title} (skipped: tcpdump is not installed)`, fn))('capture: tcpdump reads the file', (t) => {
  t.truthy(captured, 'the capture test wrote no file');
  const file = captured;
  const td = spawnSync('tcpdump', ['-nn', '-r', file], { encoding: 'utf8' });
  t.is(td.status, 0, td.stderr);
  t.is(td.stdout.trim().split('\n').length, 12, td.stdout);
  t.regex(td.stdout, /10\.0\.0\.2\.\d+ > 10\.96\.4\.10\.80: Flags \[S\]/);
});

let rejectCapture;
serial('capture: the slow path\'s frames too (ARP answered by wdp) and the ICMP port unreachable wdp sent for a rejected connection', async (t) => {
  const file = join(dir, 'reject.pcap');
  const run = wdp(['capture', '--port', 'client', '-c', '60', '--duration', '8s', '-w', file]);
  // the ARP exchange below happens once: the capture runs before it (a fixed 1.5 s did not cover
  // the CLI's start on a loaded machine)
  for (let i = 0; i < 200 && !started(file) && !run.exited(); i++) await sleep(100);
  t.true(started(file), 'the capture did not start');
  // the client forgets its neighbours: it asks for the gateway again, and wdp's slow path answers
  spawnSync('ip', ['-n', topo.ns.client, 'neigh', 'flush', 'all']);
  const out = await trafficUntil(run, [[topo.ns.client, 'http://10.96.4.20/']]);
  t.is(out.code, 0, out.stderr);
  const recs = parsePcap(readFileSync(file)).records;
  const et = (d) => (d[12] << 8) | d[13];
  const arpReply = recs.find((r) => et(r.data) === 0x0806 && r.data[21] === 2);
  t.truthy(arpReply, 'the ARP reply wdp sent (slow path) is in the capture');
  t.truthy(recs.find((r) => et(r.data) === 0x0806 && r.data[21] === 1), 'the client\'s ARP request (to the host) too');
  const tcp = recs.filter((r) => et(r.data) === 0x0800 && r.data[23] === 6);
  const from = (d) => `${d[26]}.${d[27]}.${d[28]}.${d[29]}`;
  // kube-proxy's bare reject: an ICMP port unreachable (type 3 code 3), from the client port's
  // gateway address (the ClusterIP is not the node's: __icmp_send's route back), quoting the SYN
  const unreach = recs.find((r) => et(r.data) === 0x0800 && r.data[23] === 1 && r.data[34] === 3 && r.data[35] === 3);
  t.truthy(unreach, 'the port unreachable wdp answered the SYN with');
  if (unreach) {
    t.is(from(unreach.data), '10.0.0.1', 'from the client port\'s gateway address');
    const q = unreach.data.subarray(42);
    t.deepEqual([q[9], `${q[16]}.${q[17]}.${q[18]}.${q[19]}`, (q[22] << 8) | q[23]], [6, '10.96.4.20', 80], 'quoting the SYN to the ClusterIP');
  }
  t.falsy(tcp.find((r) => from(r.data) === '10.96.4.20' && (r.data[47] & 0x04)), 'no RST');
  t.truthy(tcp.find((r) => from(r.data) === '10.0.0.2' && (r.data[47] & 0x02)), 'the SYN it answered');
  rejectCapture = file;
});

(hasTcpdump ? serial : (title, fn) => test.skip(`${title} (skipped: tcpdump is not installed)`, fn))('capture: tcpdump reads the rejected connection\'s port unreachable and the ARP reply', (t) => {
  t.truthy(rejectCapture, 'the reject capture test wrote no file');
  const td = spawnSync('tcpdump', ['-nn', '-r', rejectCapture], { encoding: 'utf8' });
  t.is(td.status, 0, td.stderr);
  t.regex(td.stdout, /10\.0\.0\.1 > 10\.0\.0\.2: ICMP 10\.96\.4\.20 tcp port 80 unreachable/);
  t.regex(td.stdout, /ARP, Reply/);
});

serial('capture and trace --live end at their duration when nothing matches', async (t) => {
  const file = join(dir, 'none.pcap');
  const cap = wdp(['capture', '--port', 'client', '--dport', '9', '--duration', '2s', '-w', file]);
  const tr = wdp(['trace', '--live', '--dport', '9', '--duration', '2s', '-o', 'json']);
  const [c, r] = await Promise.all([trafficUntil(cap, [[topo.ns.client, 'http://10.96.4.10/']]), tr.done]);
  t.is(c.code, 0, c.stderr);
  t.is(parsePcap(readFileSync(file)).records.length, 0);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(JSON.parse(r.stdout.trim()), { kind: 'TraceEnd', traced: 0, reason: 'duration' });
});

serial('replay: a capture run offline with the daemon\'s exported state sends the same translated frames', async (t) => {
  const inFile = join(dir, 'in.pcap'), outFile = join(dir, 'replayed.pcap');
  const podFiles = [0, 1].map((i) => join(dir, `pod${i}.pcap`));
  const pods = podFiles.map((f, i) => wdp(['capture', '--port', topo.pods[i].name, '--direction', 'out', '--proto', 'TCP', '--dport', '8080', '--duration', '20s', '-c', '400', '-w', f]));
  // the pods' captures are running once their file has its header: only then does the client's
  // capture start, so every SYN it sees is seen leaving
  for (let i = 0; i < 200 && !podFiles.every(started); i++) await sleep(100);
  t.true(podFiles.every(started), 'the pod captures did not start');
  const client = wdp(['capture', '--port', 'client', '--direction', 'in', '--proto', 'TCP', '--dport', '80', '--duration', '8s', '-c', '40', '-w', inFile]);
  const c = await trafficUntil(client, [[topo.ns.client, 'http://10.96.4.10/']]);
  t.is(c.code, 0, `${c.stderr}\n${topo.daemonLog.slice(-3000)}`);
  for (const p of pods) { const r = await p.done; t.is(r.code, 0, r.stderr); }
  // the daemon's state, exported the way an operator would
  let state = '';
  for (const what of ['services', 'endpointslices', 'nodeconfig']) {
    const g = wdp(['get', what, '-o', 'yaml']);
    const r = await g.done;
    t.is(r.code, 0, r.stderr);
    state += `---\n${r.stdout}\n`;
  }
  const stateFile = join(dir, 'state.yaml');
  writeFileSync(stateFile, state);
  const rep = await wdp(['replay', inFile, '-f', stateFile, '--in-port', '0', '-w', outFile, '-o', 'json']).done;
  t.is(rep.code, 0, rep.stderr);
  const events = rep.stdout.trim().split('\n').map((l) => JSON.parse(l));
  const input = parsePcap(readFileSync(inFile)).records;
  t.is(events.length, input.length);
  const replayed = parsePcap(readFileSync(outFile)).records.map((r) => Buffer.from(r.data).toString('hex'));
  const sent = new Set(podFiles.flatMap((f) => parsePcap(readFileSync(f)).records.map((r) => Buffer.from(r.data).toString('hex'))));
  // first packets of new flows: the SYNs; each replayed SYN is bit for bit a frame the daemon sent
  let syns = 0, k = 0;
  events.forEach((e) => {
    if (e.verdict !== 'forward' && e.verdict !== 'reject') return;
    const hex = replayed[k++];
    if (e.conntrack !== 'new') return;
    syns++;
    t.is(e.frontend.service, 'default/w0');
    t.true(sent.has(hex), `replayed SYN ${e.input.sport} -> ${e.output.dst} not among the daemon's frames`);
  });
  t.true(syns >= 3, `only ${syns} new flows in the capture`);
});
