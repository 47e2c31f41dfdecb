// The kernel path end to end (config kernelPath; src/daemon/kernel-path.ts, native/src/kernel_path.rs),
// shared by test/e2e-kernel-path.test.js (AF_XDP ports) and test/e2e-kernel-path-afpacket.test.js
// (AF_PACKET ports): a daemon whose client uplink and pod are such ports, with the kernel path on.
// A UDP stream and TCP transfers both ways through a ClusterIP, and through a NodePort from
// outside (masqueraded), get every answer and byte right while most of their frames are forwarded
// by the kernel (kernel_path_frames), not the worker; an apply flushes the entries and the traffic
// after it is still right — a UDP stream whose endpoint is removed moves to the other pod at once;
// a capture flushes them and sees every frame while it runs.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { e2eSuite, api, curlOk, WDP, serviceYaml, sliceYaml, spawnNode, waitFor, NODE_V4 } from './topology.js';
import { parsePcap } from '../../dist/src/ports/pcap.js';
import { childDone } from './child-done.js';

export const VIP = '10.96.0.10';

export const objects = (topo, extraPort = false, pods = topo.pods) => [
  serviceYaml({ name: 'web', clusterIP: VIP, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }, { name: 'echo', port: 53, targetPort: 5353, protocol: 'UDP' },
    ...(extraPort ? [{ name: 'alt', port: 81, targetPort: 8080, protocol: 'TCP' }] : [])] }),
  sliceYaml({
    name: 'web-1', service: 'web',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'echo', port: 5353, protocol: 'UDP' }, ...(extraPort ? [{ name: 'alt', port: 8080, protocol: 'TCP' }] : [])],
    endpoints: pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true }, nodeName: 'node-a' })),
  }),
];

export const POD_BYTES = new URL('../../dist/src/demo/pod-bytes.js', import.meta.url).pathname;

/** One UDP socket asking every `gapMs` for `ms`; then one TCP
 * connection downloading `download` bytes and one uploading `upload` bytes: what came back,
 * checked here (the download byte for byte against podBytes, the upload by the pod's sha256). */
export async function traffic(topo, { ms = 4000, gapMs = 10, download = 8 << 20, upload = 2 << 20, ns = topo.ns.client, host = VIP, udpPort = 53, httpPort = 80 } = {}) {
  const script = `
    const dgram = require('dgram'), http = require('http'), crypto = require('crypto');
    (async () => {
      const { podBytes } = await import(${JSON.stringify(POD_BYTES)});
      const s = dgram.createSocket('udp4');
      let sent = 0, right = 0, wrong = [], lost = 0;
      const end = Date.now() + ${ms};
      while (Date.now() < end) {
        const payload = 'ask-' + sent++;
        const got = await new Promise((resolve) => {
          const t = setTimeout(() => { s.off('message', on); resolve(null); }, 1000);
          const on = (m, r) => { clearTimeout(t); s.off('message', on); resolve({ m: m.toString(), from: r.address + ':' + r.port }); };
          s.on('message', on);
          s.send(payload, ${udpPort}, '${host}');
        });
        if (!got) lost++;
        else if (/^pod-[ab]:/.test(got.m) && got.m.endsWith(':' + payload) && got.from === '${host}:${udpPort}') right++;
        else if (wrong.length < 5) wrong.push(got);
        await new Promise((r) => setTimeout(r, ${gapMs}));
      }
      s.close();
      const down = await new Promise((resolve) => {
        const h = crypto.createHash('sha256'); let n = 0;
        const req = http.get({ host: '${host}', port: ${httpPort}, path: '/bytes/${download}', agent: false, timeout: 20000 }, (res) => {
          res.on('data', (d) => { n += d.length; h.update(d); }); res.on('end', () => resolve({ n, sha: h.digest('hex') }));
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', (e) => resolve({ error: e.message }));
      });
      const body = crypto.randomBytes(${upload});
      const up = await new Promise((resolve) => {
        const req = http.request({ host: '${host}', port: ${httpPort}, path: '/sink', method: 'POST', agent: false, timeout: 20000, headers: { 'content-length': body.length } }, (res) => {
          let t = ''; res.on('data', (d) => t += d); res.on('end', () => resolve({ answer: t.trim(), want: body.length + ' ' + crypto.createHash('sha256').update(body).digest('hex') }));
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', (e) => resolve({ error: e.message }));
        req.end(body);
      });
      const downWant = crypto.createHash('sha256').update(podBytes(0, ${download})).digest('hex');
      console.log(JSON.stringify({ sent, right, wrong, lost, downOk: down.n === ${download} && down.sha === downWant, down, upOk: up.answer === up.want, up }));
    })();`;
  const r = await topo.lab.execAsync(ns, process.execPath, ['-e', script], { timeoutMs: ms + 60000 });
  try { return JSON.parse(r.stdout.trim().split('\n').pop()); } catch { throw new Error(`traffic failed (${r.code}): ${r.stderr}`); }
}

const [major, minor] = release().split('.').map(Number);
const tcx = major > 6 || (major === 6 && minor >= 6);
const counters = async (topo) => (await api(topo, 'GET', '/api/v1/counters')).json.global;

/** The kernel path's e2e tests with the client uplink and the pod on ports of `type`. */
export function kernelPathSuite(test, type) {
const suite = e2eSuite(tcx ? test : { ...test, before: () => undefined, after: { always: () => undefined }, serial: test.serial }, {
  pods: [{ name: 'pod-a', attach: type }, { name: 'pod-b', attach: type }],
  configure: (c) => {
    for (const p of c.ports) if (p.role === 'uplink') p.type = type;
    // a lifetime far longer than an apply takes: the tests see the flush, not a renewal
    c.kernelPath = { enabled: true, lifetimeMs: 5000 };
  },
});
const serial = tcx ? suite.serial : test.skip;

serial('a UDP stream, a download and an upload through a ClusterIP: every answer and byte right, most frames forwarded by the kernel path; after an apply what follows is still right', async (t) => {
  const topo = suite.topo;
  t.regex(topo.daemonLog, /kernel path open/, 'the worker opened the kernel path');
  await suite.apply(objects(topo));
  t.is((await curlOk(topo, topo.ns.client, `http://${VIP}/`)).code, 0, 'the service answers');
  const before = await counters(topo);
  const r = await traffic(topo);
  t.deepEqual(r.wrong, [], 'no UDP answer from elsewhere or with another payload');
  t.true(r.lost <= 2, `UDP asks unanswered: ${r.lost} of ${r.sent}`);
  t.true(r.right >= r.sent - 2, JSON.stringify(r));
  t.true(r.downOk, `the download arrived whole: ${JSON.stringify(r.down)}`);
  t.true(r.upOk, `the upload arrived whole: ${JSON.stringify(r.up)}`);
  const after = await counters(topo);
  const kernel = after.kernel_path_frames - (before.kernel_path_frames ?? 0);
  const worker = after.rx_packets - before.rx_packets;
  t.log(`kernel path ${kernel} frames, worker ${worker}; entries set ${after.kernel_path_entries_set}`);
  // UDP: the round trips after the first (two frames each); TCP: the
  // transfers' segments and ACKs after the handshake
  t.true(kernel > 500, `kernel path frames ${kernel} (worker ${worker}): ${JSON.stringify(after)}`);
  t.true(kernel > worker, `the kernel forwarded ${kernel} frames, the worker ${worker}: most should be the kernel's`);
  t.is(after.kernel_path_declined ?? 0, 0, 'no frame the path was left was declined at tc');
  t.true(after.kernel_path_entries_set >= 4, 'entries for both directions of both flows');
  const metrics = (await api(topo, 'GET', '/metrics')).text;
  const m = /^wdp_kernel_path_packets_total (\d+)$/m.exec(metrics);
  t.truthy(m, 'the kernel path\'s packets are a metric');
  t.true(Number(m?.[1]) >= after.kernel_path_frames, metrics.slice(0, 200));
  // an apply (another port on the Service): the traffic after it is right
  await suite.apply(objects(topo, true));
  const flushed = await counters(topo);
  const r2 = await traffic(topo, { ms: 3000 });
  t.true(r2.right >= r2.sent - 2 && r2.wrong.length === 0, JSON.stringify(r2));
  t.true(r2.downOk && r2.upOk, JSON.stringify(r2));
  t.true((await counters(topo)).kernel_path_frames > flushed.kernel_path_frames, 'the new flows took the kernel path again');
});

serial('a capture flushes the kernel path and sees every frame while it runs', async (t) => {
  const topo = suite.topo;
  await suite.apply(objects(topo));
  const dir = mkdtempSync(join(tmpdir(), 'wdp-kpath-'));
  try {
    const file = join(dir, 'client.pcap');
    const child = spawn(process.execPath, [WDP, 'capture', '--port', 'client', '--proto', 'UDP', '-c', '100000', '--duration', '6s', '-w', file, '--server', `unix:${topo.config.api.listen}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    const done = childDone(child);
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    // the capture's header is written once the worker has the session
    for (let i = 0; i < 100 && !(existsSync(file) && statSync(file).size >= 24); i++) await new Promise((r) => setTimeout(r, 50));
    const before = await counters(topo);
    const r = await traffic(topo, { ms: 3000, download: 1 << 20, upload: 1 << 16 });
    t.true(r.right >= r.sent - 2, JSON.stringify(r));
    const after = await counters(topo);
    t.is(after.kernel_path_frames, before.kernel_path_frames, 'no frame took the kernel path while the capture ran');
    const { code } = await done;
    clearTimeout(timer);
    t.is(code, 0, stderr);
    // every UDP frame of the client's port both ways: two a round trip answered
    const frames = parsePcap(readFileSync(file)).records.length;
    t.true(frames >= 2 * r.right, `captured ${frames} UDP frames for ${r.right} round trips`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

serial('an apply that does not touch a carried UDP stream leaves it to the kernel path; one that removes its endpoint moves it to the other pod at once (its conntrack flow decided again, as kube-proxy clears it), not when the entry\'s 5-s lifetime ends', async (t) => {
  const topo = suite.topo;
  await suite.apply(objects(topo));
  // one socket asking every 10 ms, each answer a line: the time it came, the pod
  const child = spawnNode(topo, topo.ns.client, `
    const s = require('dgram').createSocket('udp4');
    let n = 0;
    s.on('message', (m) => { process.stdout.write(Date.now() + ' ' + m.toString().split(':')[0] + '\\n'); });
    const t = setInterval(() => s.send('ask-' + n++, 53, '${VIP}'), 10);
    setTimeout(() => { clearInterval(t); s.close(); }, 6000);`, []);
  t.teardown(() => child.kill('SIGKILL'));
  const answers = () => child.out.trim().split('\n').filter(Boolean).map((l) => { const [at, pod] = l.split(' '); return { at: Number(at), pod }; });
  await waitFor('a second of answers', () => answers().length >= 100, 10_000);
  const first = answers()[0].pod;
  t.true(answers().every((a) => a.pod === first), 'one flow, one pod');
  const c00 = await counters(topo);
  await new Promise((r) => setTimeout(r, 300));
  const c0 = await counters(topo);
  t.log(`before the apply: ${c0.kernel_path_frames - c00.kernel_path_frames} kernel path frames in 0.3 s, the worker ${c0.rx_packets - c00.rx_packets}`);
  // (both directions: two frames an ask)
  t.true(c0.kernel_path_frames - c00.kernel_path_frames >= 45, `the kernel path carries the stream: ${c0.kernel_path_frames - c00.kernel_path_frames} frames in 0.3 s`);
  // another port on the Service: its frontend and backends are new, the stream's are not
  await suite.apply(objects(topo, true));
  const k0 = await counters(topo);
  await new Promise((r) => setTimeout(r, 300));
  const k1 = await counters(topo);
  t.log(`after an unrelated apply: ${k1.kernel_path_frames - k0.kernel_path_frames} kernel path frames in 0.3 s, the worker ${k1.rx_packets - k0.rx_packets}, entries invalidated ${k0.kernel_path_invalidated}`);
  t.true(k1.rx_packets - k0.rx_packets < 10, 'the stream stayed on the kernel path: the worker saw (almost) none of it');
  t.is(k1.kernel_path_flushes, c0.kernel_path_flushes, 'no flush');
  const other = topo.pods.find((p) => p.name !== first);
  await suite.apply(objects(topo, false, [other]));
  const appliedAt = Date.now();
  await waitFor('answers after the apply', () => answers().filter((a) => a.at > appliedAt + 500).length >= 20, 10_000);
  const after = answers().filter((a) => a.at > appliedAt + 100);
  t.deepEqual([...new Set(after.map((a) => a.pod))], [other.name], `after the apply every answer from ${other.name}: ${JSON.stringify(after.slice(0, 5))}`);
  const c1 = await counters(topo);
  t.log(`kernel path: ${c1.kernel_path_frames - c0.kernel_path_frames} frames after the apply, invalidated ${k1.kernel_path_invalidated} → ${c1.kernel_path_invalidated}, entries set ${c0.kernel_path_entries_set} → ${c1.kernel_path_entries_set}`);
  t.true(c1.kernel_path_invalidated >= k1.kernel_path_invalidated + 2, 'the removal invalidated both directions\' entries');
  t.true(c1.kernel_path_frames > c0.kernel_path_frames, 'and the kernel path carries it there too');
  await suite.apply(objects(topo));
});

serial('masqueraded: a NodePort from outside the node (source translated to the node) — a UDP stream and transfers both ways through the kernel path, every answer and byte right', async (t) => {
  const topo = suite.topo;
  await suite.apply([...objects(topo),
    serviceYaml({ name: 'np', type: 'NodePort', clusterIP: '10.96.0.20', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080, protocol: 'TCP' }, { name: 'echo', port: 53, targetPort: 5353, nodePort: 30053, protocol: 'UDP' }] }),
    sliceYaml({ name: 'np-1', service: 'np', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'echo', port: 5353, protocol: 'UDP' }],
      endpoints: topo.pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true }, nodeName: 'node-a' })) }),
  ]);
  const before = await counters(topo);
  const r = await traffic(topo, { ns: topo.ns.remote, host: NODE_V4, udpPort: 30053, httpPort: 30080, ms: 2000, download: 4 << 20, upload: 1 << 20 });
  t.true(r.right >= r.sent - 2 && r.wrong.length === 0, JSON.stringify(r));
  t.true(r.downOk && r.upOk, JSON.stringify(r));
  const after = await counters(topo);
  t.true(after.snat > before.snat, 'the flows were masqueraded');
  const kernel = after.kernel_path_frames - before.kernel_path_frames, worker = after.rx_packets - before.rx_packets;
  t.log(`kernel path ${kernel} frames, worker ${worker}`);
  t.true(kernel > 2 * worker, `the kernel forwarded ${kernel} frames, the worker ${worker}`);
});
}
