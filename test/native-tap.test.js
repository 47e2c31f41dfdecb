// TAP ports: the TAP is created inside a namespace this file creates; frames the namespace's
// kernel sends out of the TAP (injected with an AF_PACKET socket there, and independently with a
// python3 raw socket) arrive byte-exact in the arena; frames written with txBurst arrive
// byte-exact on the namespace side. Needs root; skipped with a reason otherwise.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import * as L from '../dist/assembly/layout.js';
import { NetnsLab, run } from '../dist/src/netns.js';
import { rootOnly, destroyLab, makeArea as makeAreaOf, putTx, getRx, receive, ofEthertype, openWithoutCaps } from './lib/native-area.js';

const makeArea = (slots = 64, slotSize = 2048) => makeAreaOf(slots, slotSize);
import { AfPacketPort, TapPort, nativeAvailable, removeTap, wait } from '../dist/src/ports/native.js';
import { numberedFrame } from './lib/frames.js';

const { isRoot, rootTest } = rootOnly(test, 'native-tap', 'network namespaces, CAP_NET_ADMIN');

const ETHERTYPE = 0x88b5;
const DEV_MAC = '02:7a:00:00:00:11';

const frame = (len, seq) => numberedFrame(len, seq, { dst: DEV_MAC, src: '02:99:00:00:00:01', ethertype: ETHERTYPE });

/** Our test frames among what arrived (the kernel may send its own on the TAP). */
function receiveOurs(port, area, want, boundMs = 3000) {
  return ofEthertype(receive(port, area, want, boundMs, 64), ETHERTYPE);
}

let lab, ns;
test.before(() => {
  if (!isRoot) return;
  const avail = nativeAvailable();
  if (!avail.ok) throw new Error(`native addon unavailable as root: ${avail.reason}`);
  lab = new NetnsLab('nt');
  ns = lab.namespace('tap');
  for (const k of ['all', 'default']) lab.sysctl(ns, `net.ipv6.conf.${k}.disable_ipv6`, '1');
});
test.after.always(() => destroyLab(lab));

rootTest('a TAP created inside a namespace is up with the requested MAC/MTU and vanishes on close', (t) => {
  const tap = new TapPort({ ifname: 'wtap0', netns: ns, index: 2, deviceMac: DEV_MAC, mtu: 1400, mac: '02:64:00:00:00:02' });
  const show = run('ip', ['-n', ns, '-o', 'link', 'show', 'wtap0']);
  t.is(show.code, 0, show.stderr);
  t.regex(show.stdout, /mtu 1400/);
  t.regex(show.stdout, /[<,]UP[,>]/);
  t.true(show.stdout.includes(`link/ether ${DEV_MAC}`));
  t.is(tap.deviceMac, DEV_MAC);
  t.deepEqual([...tap.mac], [2, 0x64, 0, 0, 0, 2]);
  t.is(tap.ifname, 'wtap0');
  t.true(tap.fd >= 0);
  t.is(run('ip', ['link', 'show', 'wtap0']).code === 0, false, 'nothing created in the root namespace');
  tap.close();
  t.not(run('ip', ['-n', ns, 'link', 'show', 'wtap0']).code, 0, 'a non-persistent TAP goes away with its fd');
});

rootTest('frames sent out of the TAP by the namespace arrive byte-exact; txBurst frames arrive byte-exact on the namespace side', (t) => {
  const tap = new TapPort({ ifname: 'wtap1', netns: ns, index: 5, deviceMac: DEV_MAC });
  // The kernel side of the TAP, seen from inside the namespace.
  const kside = new AfPacketPort({ ifname: 'wtap1', netns: ns, index: 9, blockSize: 1 << 16, blockCount: 4 });
  t.teardown(() => { kside.close(); tap.close(); });

  // namespace -> TAP fd -> arena
  const inj = makeArea(16);
  const sent = [60, 64, 200, 1000, 1414].map((len, k) => frame(len, k));
  sent.forEach((f, k) => putTx(inj, k, f, 9));
  t.is(kside.txBurst(inj, sent.length), sent.length);
  const rx = makeArea(64);
  const got = receiveOurs(tap, rx, sent.length);
  t.is(got.length, sent.length);
  got.forEach((g, k) => { t.is(g.inPort, 5); t.deepEqual(g.bytes, sent[k], `frame ${k}`); });
  t.is(tap.stats().rxPackets, sent.length);

  // arena -> TAP fd -> namespace
  const out = makeArea(16);
  const back = [60, 333, 1414].map((len, k) => frame(len, 100 + k));
  back.forEach((f, k) => putTx(out, k, f, 5));
  putTx(out, 3, frame(80, 999), 6);                         // for another port: not sent
  t.is(tap.txBurst(out, 4), back.length);
  const seen = receiveOurs(kside, makeArea(64), back.length);
  t.is(seen.length, back.length);
  seen.forEach((g, k) => t.deepEqual(g.bytes, back[k], `tx frame ${k}`));
  const s = tap.stats();
  t.is(s.txPackets, back.length);
  t.is(s.txBytes, back.reduce((a, f) => a + f.length, 0));
});

rootTest('a frame from an independent python3 raw socket arrives byte-exact', (t) => {
  const py = run('python3', ['-c', 'print(1)']);
  if (py.code !== 0) { t.log('python3 not available: covered by the AF_PACKET injection test only'); t.pass(); return; }
  const tap = new TapPort({ ifname: 'wtap2', netns: ns, index: 1, deviceMac: DEV_MAC });
  t.teardown(() => tap.close());
  const f = frame(123, 77);
  const hex = Buffer.from(f).toString('hex');
  const r = spawnSync('ip', ['netns', 'exec', ns, 'python3', '-c',
    `import socket\ns = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\ns.bind(("wtap2", 0))\ns.send(bytes.fromhex("${hex}"))`], { encoding: 'utf8', timeout: 20000 });
  t.is(r.status, 0, r.stderr);
  const got = receiveOurs(tap, makeArea(16), 1);
  t.is(got.length, 1);
  t.deepEqual(got[0].bytes, f);
});

rootTest('TAP frames larger than a slot are dropped and counted', (t) => {
  const tap = new TapPort({ ifname: 'wtap3', netns: ns, index: 1, deviceMac: DEV_MAC });
  const kside = new AfPacketPort({ ifname: 'wtap3', netns: ns, index: 0 });
  t.teardown(() => { kside.close(); tap.close(); });
  const inj = makeArea(8);
  [100, 600, 256, 257].forEach((len, k) => putTx(inj, k, frame(len, k), 0));
  t.is(kside.txBurst(inj, 4), 4);
  const rx = makeArea(8, 256);
  const got = [];
  const deadline = Date.now() + 3000;
  while (got.length + tap.stats().oversize < 4 && Date.now() < deadline) {
    wait([tap], 20);
    const n = tap.rxBurst(rx, 0, 8);
    for (let i = 0; i < n; i++) got.push(getRx(rx, i));
  }
  t.deepEqual(got.map((g) => g.len), [100, 256]);
  t.deepEqual(got[1].bytes, frame(256, 2));
  t.is(tap.stats().oversize, 2);
  t.is(tap.stats().rxDropped, 2);
});

rootTest('TAP error paths: long name, busy device, not a TAP, closed port', (t) => {
  const e1 = t.throws(() => new TapPort({ ifname: 'tap-name-too-long', netns: ns, index: 0 }));
  t.is(e1.code, 'ENAMETOOLONG');
  t.regex(e1.message, /tap-name-too-long/);
  const tap = new TapPort({ ifname: 'wtap4', netns: ns, index: 0 });
  const e2 = t.throws(() => new TapPort({ ifname: 'wtap4', netns: ns, index: 1 }));
  t.is(e2.code, 'EBUSY');
  t.regex(e2.message, /wtap4/);
  const e3 = t.throws(() => new TapPort({ ifname: 'lo', netns: ns, index: 1 }));
  t.is(e3.code, 'EINVAL');
  t.regex(e3.message, /not a TAP/);
  t.throws(() => new TapPort({ ifname: 'wtap5', netns: ns, index: 0, deviceMac: '01:00:5e:00:00:01' }), { code: 'EINVAL' });
  t.throws(() => new TapPort({ ifname: 'wtap5', netns: ns, index: 0, mtu: 10 }), { code: 'EINVAL' });
  t.throws(() => new TapPort({ ifname: 'wtap5', netns: `${ns}-missing`, index: 0 }), { code: 'ENOENT' });
  tap.close();
  const area = makeArea(4);
  for (const f of [() => tap.rxBurst(area, 0, 1), () => tap.txBurst(area, 1), () => tap.stats()]) t.is(t.throws(f).code, 'ECLOSED');
  // the name is free again once closed
  const again = new TapPort({ ifname: 'wtap4', netns: ns, index: 0 });
  again.close();
  t.pass();
});

rootTest('multi-queue TAP: two queues attach to one device', (t) => {
  const q0 = new TapPort({ ifname: 'wtapmq', netns: ns, index: 0, multiQueue: true });
  const q1 = new TapPort({ ifname: 'wtapmq', netns: ns, index: 0, multiQueue: true });
  t.teardown(() => { q0.close(); q1.close(); });
  t.not(q0.fd, q1.fd);
  t.is(q0.ifindex, q1.ifindex);
});

rootTest('without CAP_NET_ADMIN the TAP error names the capability', (t) => {
  const { status, stderr, out } = openWithoutCaps("new m.TapPort({ ifname: 'wtapx', index: 0 })");
  t.is(status, 0, stderr);
  t.is(out?.code, 'EPERM', JSON.stringify(out));
  t.regex(out.message, /CAP_NET_ADMIN/);
});

rootTest('persist: the TAP and its addresses outlive the port; opening it again re-attaches; removeInterface / removeTap delete it', (t) => {
  const linkOf = () => run('ip', ['-n', ns, '-o', 'link', 'show', 'wtapp']);
  const first = new TapPort({ ifname: 'wtapp', netns: ns, index: 1, persist: true });
  t.true(first.persistent);
  run('ip', ['-n', ns, 'addr', 'add', '10.55.0.1/24', 'dev', 'wtapp']);
  first.close();
  t.is(linkOf().code, 0, 'still there after close');
  t.regex(run('ip', ['-n', ns, '-o', 'addr', 'show', 'dev', 'wtapp']).stdout, /10\.55\.0\.1\/24/);
  const again = new TapPort({ ifname: 'wtapp', netns: ns, index: 1, persist: true });
  t.is(again.ifindex, first.ifindex, 're-attached to the same device');
  again.close({ removeInterface: true });
  t.not(linkOf().code, 0, 'close with removeInterface deletes it');
  const third = new TapPort({ ifname: 'wtapp', netns: ns, index: 1, persist: true });
  third.close();
  t.is(linkOf().code, 0);
  t.true(removeTap('wtapp', { netns: ns }), 'removeTap deletes a persistent TAP nobody holds');
  t.not(linkOf().code, 0);
  t.false(removeTap('wtapp', { netns: ns }), 'and reports that there is nothing left');
});
