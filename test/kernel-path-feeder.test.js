// The worker's side of the kernel path (src/daemon/kernel-path.ts) against a recording addon, no
// root: the entries it gives the kernel for a TCP flow's two directions are the frames as they
// arrived (the flow entry's original and reply keys) and as the core sent them (MACs, addresses,
// ports), with the ports' ifindexes, the egress MTU, the lifetime and the ingress port's MAC
// (native/src/kernel_path.rs ENTRY_SIZE layout); a flow not yet confirmed, a SYN, a port without
// the path and a flow seen again within half a lifetime get none; a flush lets it be set again;
// the lifetime is capped by the conntrack timeouts; an attach the kernel refuses is returned, not thrown.
import test from 'ava';
import * as B from '../dist/src/packet/build.js';
import { Core } from '../dist/src/core/host.js';
import { KernelPath, KP_ENTRY_SIZE } from '../dist/src/daemon/kernel-path.js';
import { backend, frontend, mkIr, MAC, L } from './lib/packets.js';

const VIP = '10.96.0.1', CLIENT = '10.0.0.1', POD = '10.1.0.1';
const CLIENT_PORT = 3, POD_PORT = 1, IFINDEX = { [CLIENT_PORT]: 30, [POD_PORT]: 10 };
const PORT_MAC = { [CLIENT_PORT]: Uint8Array.from([2, 0, 0, 0, 0, 0xaa]), [POD_PORT]: Uint8Array.from([2, 0, 0, 0, 0, 0xbb]) };
const cli = (flags) => B.frame({ srcMac: MAC.client, dstMac: MAC.node, src: CLIENT, dst: VIP, proto: 'TCP', sport: 40000, dport: 80, flags });
const pod = (flags) => B.frame({ srcMac: MAC.beDst, dstMac: MAC.beSrc, src: POD, dst: CLIENT, proto: 'TCP', sport: 8080, dport: 40000, flags });

/** An addon that records what the path asks of the kernel. */
function fakeAddon({ attachError } = {}) {
  const calls = { set: [], flush: 0, attach: [], detach: [], remove: [] };
  return {
    calls,
    kernelPathOpen: () => 7,
    kernelPathAttach: (h, name, netns, mode) => { if (attachError) throw attachError; calls.attach.push([name, mode]); return 1; },
    kernelPathDetach: (h, name) => { calls.detach.push(name); return true; },
    kernelPathSet: (h, entries) => { for (let o = 0; o < entries.length; o += KP_ENTRY_SIZE) calls.set.push(entries.slice(o, o + KP_ENTRY_SIZE)); return entries.length / KP_ENTRY_SIZE; },
    kernelPathFlush: () => ++calls.flush,
    kernelPathRemove: (h, keys) => { for (let o = 0; o < keys.length; o += 20) calls.remove.push(keys.slice(o, o + 20)); return keys.length / 20; },
    kernelPathStats: () => ({ frames: 0, bytes: 0, declined: 0, generation: calls.flush }),
    kernelPathClose: () => undefined,
  };
}

function setup(addon, lifetimeMs = 1000) {
  const core = Core.create({ flows: 64, batchMax: 16 });
  core.applyIr(mkIr({ frontends: [frontend({ id: 1, addr: VIP, port: 80, proto: 'TCP' }, [backend({ id: 3, addr: POD, port: 8080, outPort: POD_PORT })])], backends: [backend({ id: 3, addr: POD, port: 8080, outPort: POD_PORT })] }));
  core.setPortMtu(CLIENT_PORT, 1500);
  core.setPortMtu(POD_PORT, 1450);
  const kp = new KernelPath(addon, { capacity: 1024, lifetimeMs }, core.flowTimeouts());
  for (const p of [CLIENT_PORT, POD_PORT]) {
    t0(kp.attach(p, `if${p}`, 'xdp'));
    kp.portOpen(p, IFINDEX[p], PORT_MAC[p]);
  }
  return { core, kp };
}
const t0 = (x) => { if (x) throw x; };
/** Frames through the core from `inPort`, then the path fed with the burst. */
function burst(core, kp, frames, inPort, now) {
  core.run(frames, now, inPort);
  kp.feed(core, frames.length, now);
}
const ip = (b, at) => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
const hex = (b) => Buffer.from(b).toString('hex');
function decode(e) {
  const dv = new DataView(e.buffer, e.byteOffset);
  return {
    in: dv.getUint32(0, true), from: `${ip(e, 4)}:${dv.getUint16(12)}`, to: `${ip(e, 8)}:${dv.getUint16(14)}`, proto: e[16],
    out: dv.getUint32(20, true), newFrom: `${ip(e, 24)}:${dv.getUint16(32)}`, newTo: `${ip(e, 28)}:${dv.getUint16(34)}`,
    dstMac: hex(e.subarray(36, 42)), srcMac: hex(e.subarray(42, 48)), maxIpLen: dv.getUint16(48, true), lifetimeMs: dv.getUint16(50, true),
    inMac: hex(e.subarray(52, 58)),
  };
}

test('a confirmed TCP flow: one entry per direction, each the frame as it arrived and as the core sent it', (t) => {
  const addon = fakeAddon();
  const { core, kp } = setup(addon);
  burst(core, kp, [cli('S')], CLIENT_PORT, 1000);
  burst(core, kp, [pod('SA')], POD_PORT, 1001);
  t.is(addon.calls.set.length, 0, 'no entry before the handshake completes (SYN, SYN-ACK)');
  burst(core, kp, [cli('A')], CLIENT_PORT, 1002);       // the handshake's ACK: confirmed
  burst(core, kp, [pod('PA')], POD_PORT, 1003);
  t.is(addon.calls.set.length, 2, JSON.stringify(addon.calls.set.map(decode)));
  t.deepEqual(decode(addon.calls.set[0]), {
    in: 30, from: `${CLIENT}:40000`, to: `${VIP}:80`, proto: 6,
    out: 10, newFrom: `${CLIENT}:40000`, newTo: `${POD}:8080`,
    dstMac: MAC.beDst.replaceAll(':', ''), srcMac: MAC.beSrc.replaceAll(':', ''), maxIpLen: 1450, lifetimeMs: 1000, inMac: '0200000000aa',
  });
  t.deepEqual(decode(addon.calls.set[1]), {
    in: 10, from: `${POD}:8080`, to: `${CLIENT}:40000`, proto: 6,
    out: 30, newFrom: `${VIP}:80`, newTo: `${CLIENT}:40000`,
    dstMac: MAC.client.replaceAll(':', ''), srcMac: MAC.node.replaceAll(':', ''), maxIpLen: 1500, lifetimeMs: 1000, inMac: '0200000000bb',
  });
  // within half a lifetime: not again; after it, and after a flush, again
  burst(core, kp, [cli('A')], CLIENT_PORT, 1400);
  burst(core, kp, [pod('A')], POD_PORT, 1400);
  t.is(addon.calls.set.length, 2);
  burst(core, kp, [cli('A')], CLIENT_PORT, 1600);
  t.is(addon.calls.set.length, 3, 'half a lifetime later the entry is renewed');
  kp.flush();
  burst(core, kp, [cli('A')], CLIENT_PORT, 1601);
  t.is(addon.calls.set.length, 4, 'a flush forgets what was set');
  t.is(kp.stats().entriesSet, 4);
  // an apply that touches other frontends and backends leaves the entries; one that touches the
  // flow's backend (or frontend) removes them, by key, and they are set again by the next frame
  burst(core, kp, [pod('A')], POD_PORT, 1602);
  t.is(kp.invalidate(new Set([2]), new Set([9])), 0);
  t.is(addon.calls.remove.length, 0);
  t.is(kp.invalidate(new Set(), new Set([3])), 2);
  t.deepEqual(addon.calls.remove.map(hex).sort(), [addon.calls.set[3], addon.calls.set[4]].map((e) => hex(e.subarray(0, 20))).sort());
  burst(core, kp, [cli('A')], CLIENT_PORT, 1603);
  t.is(addon.calls.set.length, 6, 'set again at once');
  t.is(kp.invalidate(new Set([1]), new Set()), 1, 'by its frontend too (the entry set since)');
  t.is(kp.stats().invalidated, 3);
});

test('no entry: a FIN, a port the path is not on, a flow the core did not mark', (t) => {
  const addon = fakeAddon();
  const { core, kp } = setup(addon);
  burst(core, kp, [cli('S')], CLIENT_PORT, 1000);
  burst(core, kp, [pod('SA')], POD_PORT, 1001);
  burst(core, kp, [cli('A')], CLIENT_PORT, 1002);
  const n = addon.calls.set.length;
  kp.flush();
  burst(core, kp, [cli('FA')], CLIENT_PORT, 1003);
  t.is(addon.calls.set.length, n, 'a FIN is the core\'s');
  kp.detach(POD_PORT);
  t.deepEqual(addon.calls.detach, [`if${POD_PORT}`]);
  burst(core, kp, [cli('A')], CLIENT_PORT, 1004);
  t.is(addon.calls.set.length, n, 'its egress port no longer has the path');
});

test('the lifetime is capped at a quarter of the shortest conntrack timeout it could outlive; an attach the kernel refuses is returned', (t) => {
  const addon = fakeAddon();
  const core = Core.create({ flows: 64, timeouts: { udpMs: 2000 } });
  const kp = new KernelPath(addon, { capacity: 16, lifetimeMs: 1000 }, core.flowTimeouts());
  t.is(kp.lifetime, 500);
  const refused = Object.assign(new Error("kernel path on 'x': no tcx link in this kernel (Linux 6.6 or later)"), { code: 'ENOTCX' });
  const bad = new KernelPath(fakeAddon({ attachError: refused }), { capacity: 16, lifetimeMs: 1000 }, core.flowTimeouts());
  const why = bad.attach(1, 'x', 'packet');
  t.is(why?.code, 'ENOTCX');
  t.is(bad.ports, 0);
  bad.detach(1);   // nothing attached: nothing to detach
});
