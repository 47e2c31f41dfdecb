// `wdp start --config`: validation with every problem reported at once.
import test from 'ava';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, loadConfigFile, ConfigError } from '../dist/src/daemon/config.js';

const good = {
  node: { name: 'node-a', addresses: ['192.168.100.2'] },
  ports: [
    { name: 'client', type: 'afpacket', ifname: 'c0', role: 'uplink', gateways: ['10.0.0.1'] },
    { name: 'pod-a', type: 'tap', ifname: 'tap-a', role: 'pod', gateways: ['10.244.0.1'], pods: [{ ip: '10.244.1.11', mac: '02:AA:00:00:00:0B' }] },
  ],
};

test('a valid config gets defaults', (t) => {
  const c = parseConfig(good);
  t.is(c.workers, 1);
  t.is(c.logLevel, 'info');
  t.is(c.api.listen, '127.0.0.1:9440');
  t.is(c.api.healthz, '127.0.0.1:10256');
  t.is(c.stateDir, '/var/lib/wdp');
  t.is(c.hugePages, false);
  t.is(parseConfig({ ...good, hugePages: true }).hugePages, true);
  t.is(c.ports[1].pods[0].mac, '02:aa:00:00:00:0b');
  t.deepEqual(c.ports[0].pods, []);
});

test('every error is reported with its path', (t) => {
  const bad = structuredClone(good);
  bad.ports[0].gateways = ['10.0.0.300'];
  bad.ports[1].type = 'pcap';
  bad.ports.push({ name: 'client', type: 'afpacket', ifname: 'c0', role: 'uplink', mac: '03:00:00:00:00:01' });
  bad.workers = 0;
  bad.hugePages = 'yes';
  bad.surprise = true;
  const e = t.throws(() => parseConfig(bad, 'x.yaml'), { instanceOf: ConfigError });
  t.regex(e.message, /invalid config x\.yaml/);
  t.regex(e.message, /ports\[0\]\.gateways\[0\]: must be an IPv4 or IPv6 address/);
  t.regex(e.message, /ports\[1\]\.type/);
  t.regex(e.message, /ports\[2\]\.mac: must be a unicast MAC/);
  t.regex(e.message, /workers/);
  t.regex(e.message, /surprise/);
  t.regex(e.message, /hugePages/);
});

test('cross-field rules: duplicates, netns only for TAP, pods only on pod ports, routes name ports, multi-worker needs placement', (t) => {
  const bad = structuredClone(good);
  bad.ports.push({ name: 'pod-b', type: 'afpacket', ifname: 'c0', role: 'uplink', netns: 'x', pods: [{ ip: '10.1.1.1' }] });
  bad.routes = [{ prefix: '0.0.0.0/0', port: 'nope', mac: '02:00:00:00:00:01' }];
  const e = t.throws(() => parseConfig(bad), { instanceOf: ConfigError });
  t.regex(e.message, /ports\[2\]\.ifname: duplicate interface "c0"/);
  t.regex(e.message, /ports\[2\]\.netns: only a TAP port/);
  t.regex(e.message, /ports\[2\]\.pods: pods can only be listed on a pod-facing port/);
  t.regex(e.message, /routes\[0\]\.port: no port named "nope"/);
  const multi = { ...structuredClone(good), workers: 2 };
  t.throws(() => parseConfig(multi), { message: /with workers > 1 every port needs "worker: N"/ });
  multi.ports[0].worker = 0; multi.ports[1].worker = 3;
  t.throws(() => parseConfig(multi), { message: /worker 3 does not exist/ });
});

test('files: unreadable, not YAML, not a mapping', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-cfg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.throws(() => loadConfigFile(join(dir, 'missing.yaml')), { message: /cannot read config/ });
  writeFileSync(join(dir, 'bad.yaml'), 'node: [unclosed');
  t.throws(() => loadConfigFile(join(dir, 'bad.yaml')), { message: /not valid YAML/ });
  writeFileSync(join(dir, 'list.yaml'), '- a\n- b\n');
  t.throws(() => loadConfigFile(join(dir, 'list.yaml')), { message: /must be a YAML mapping/ });
  writeFileSync(join(dir, 'ok.yaml'), 'node: {name: n1}\nports:\n  - {name: p, type: tap, ifname: t0, role: pod}\n');
  t.is(loadConfigFile(join(dir, 'ok.yaml')).ports[0].ifname, 't0');
});

test('api listen addresses are checked', (t) => {
  t.is(parseConfig({ ...good, api: { listen: '/run/wdp.sock', healthz: 'off' } }).api.listen, '/run/wdp.sock');
  t.is(parseConfig({ ...good, api: { listen: '[::1]:80' } }).api.listen, '[::1]:80');
  t.throws(() => parseConfig({ ...good, api: { listen: 'nope' } }), { message: /api\.listen: must be host:port/ });
  t.throws(() => parseConfig({ ...good, api: { healthz: 'nope' } }), { message: /api\.healthz/ });
});

test('AF_PACKET ring version: v2 or v3, anything else is an error with its path', (t) => {
  const ok = structuredClone(good);
  ok.ports[0].ring = 'v3';
  t.is(parseConfig(ok).ports[0].ring, 'v3');
  t.is(parseConfig(good).ports[0].ring, undefined, 'default left to the worker (v2)');
  const bad = structuredClone(good);
  bad.ports[0].ring = 'v4';
  const e = t.throws(() => parseConfig(bad, 'x.yaml'), { instanceOf: ConfigError });
  t.regex(e.message, /ports\[0\]\.ring/);
});

test('host port: a TAP bridged with an uplink, one per daemon; its fields nowhere else', async (t) => {
  const { parsePortConfig } = await import('../dist/src/daemon/config.js');
  const host = { name: 'host', type: 'tap', ifname: 'wdp-host', role: 'host', gateways: ['10.244.0.1'], hostAddresses: ['192.168.100.2/24'], hostRoutes: [{ prefix: '10.96.0.0/12', via: '10.244.0.1' }, { prefix: 'default', via: '192.168.100.1' }] };
  const c = parseConfig({ ...good, ports: [...good.ports, host] });
  t.is(c.ports[2].role, 'host');
  t.deepEqual(c.announce, { loadBalancerIPs: false, externalIPs: false });
  t.is(c.neighbourReachableMs, 30000);
  const err = (cfg) => t.throws(() => parseConfig(cfg), { instanceOf: ConfigError }).message;
  t.regex(err({ ...good, ports: [...good.ports, { ...host, type: 'afpacket' }] }), /ports\[2\]\.type: a host port is a TAP/);
  t.regex(err({ ...good, ports: [...good.ports, { ...host, uplink: 'pod-a' }] }), /ports\[2\]\.uplink: port "pod-a" is not an uplink/);
  t.regex(err({ ...good, ports: [...good.ports, { ...host, uplink: 'nope' }] }), /no port named "nope"/);
  t.regex(err({ ...good, ports: [...good.ports, { ...good.ports[0], name: 'up2', ifname: 'c1' }, host] }), /say which uplink/);
  t.regex(err({ ...good, ports: [...good.ports, host, { ...host, name: 'host2', ifname: 'wdp-host2' }] }), /at most one host port/);
  t.regex(err({ ...good, ports: [{ ...good.ports[0], hostAddresses: ['10.0.0.1/24'] }, good.ports[1]] }), /belong to a host port/);
  t.regex(err({ ...good, ports: [...good.ports, { ...host, hostAddresses: ['192.168.100.2'] }] }), /hostAddresses\[0\]: must be an address with a prefix length/);
  t.regex(err({ ...good, ports: [...good.ports, { ...host, hostNodePorts: '30000' }] }), /hostNodePorts: must be a port range/);
  // hairpin addresses: default 169.254.42.1; one per family, never a node address, host port only
  const { hostHairpinOf } = await import('../dist/src/daemon/config.js');
  t.deepEqual(hostHairpinOf(c.ports[2]), ['169.254.42.1']);
  t.deepEqual(hostHairpinOf(parseConfig({ ...good, ports: [...good.ports, { ...host, hostHairpin: [] }] }).ports[2]), []);
  t.regex(err({ ...good, ports: [...good.ports, { ...host, hostHairpin: ['169.254.42.1', '169.254.42.2'] }] }), /ports\[2\]\.hostHairpin: at most one address per family/);
  t.regex(err({ ...good, ports: [...good.ports, { ...host, hostHairpin: ['192.168.100.2'] }] }), /ports\[2\]\.hostHairpin\[0\]: must not be an address of the node/);
  t.regex(err({ ...good, ports: [...good.ports, { ...host, hostHairpin: ['nope'] }] }), /ports\[2\]\.hostHairpin\[0\]: must be an IPv4 or IPv6 address/);
  t.regex(err({ ...good, ports: [{ ...good.ports[0], hostHairpin: ['169.254.42.1'] }, good.ports[1]] }), /belong to a host port/);
  t.regex(err({ ...good, announce: { loadBalancerIPs: 'yes' } }), /announce\.loadBalancerIPs/);
  t.regex(err({ ...good, neighbourReachableMs: 10 }), /neighbourReachableMs/);
  // runtime ports (the ports API): pod and uplink only, same field checks
  t.is(parsePortConfig({ name: 'p', type: 'afpacket', ifname: 'veth1', role: 'pod', pods: [{ ip: '10.244.1.2' }] }).name, 'p');
  t.throws(() => parsePortConfig(host), { message: /host port can only be configured in the config file/ });
  // fanout at runtime: afpacket only; the message says where an afxdp one goes, and why not a TAP
  t.throws(() => parsePortConfig({ name: 'x', type: 'afxdp', ifname: 'veth1', role: 'uplink', fanout: true }), { message: /afxdp port shared by the workers can only be configured in the config file/ });
  t.throws(() => parsePortConfig({ name: 't', type: 'tap', ifname: 'tap1', role: 'pod', fanout: true }), { message: /a TAP fd is one queue/ });
  t.throws(() => parsePortConfig({ name: 'p', type: 'afpacket', ifname: 'veth1', role: 'pod', netns: 'x' }), { message: /only a TAP port/ });
  t.throws(() => parsePortConfig({ name: 'P!', type: 'afpacket', ifname: 'veth1', role: 'pod' }), { message: /name/ });
  // a runtime port is a port, not the config file; a field left out is named as required
  const missing = t.throws(() => parsePortConfig({ type: 'tap', role: 'pod' }));
  t.is(missing.message, 'invalid port:\n  name: required (string)\n  ifname: required (string)');
  t.throws(() => parseConfig({ ports: [{ name: 'p', type: 'tap', role: 'pod' }] }, 'x.yaml'), { message: /^invalid config x\.yaml:\n(.*\n)*  ports\[0\]\.ifname: required \(string\)$/m });
});

test('fanout: every port shared by all workers, afpacket only, never with worker: N', (t) => {
  const afp = (name, ifname, extra = {}) => ({ name, type: 'afpacket', ifname, role: 'pod', gateways: ['10.244.0.1'], ...extra });
  const ok = parseConfig({ node: good.node, workers: 2, ports: [afp('a', 'v0', { fanout: true }), afp('b', 'v1', { fanout: true })] });
  t.true(ok.ports.every((p) => p.fanout));
  const mixed = () => parseConfig({ node: good.node, workers: 2, ports: [afp('a', 'v0', { fanout: true }), afp('b', 'v1', { worker: 1 })] });
  const e = t.throws(mixed, { instanceOf: ConfigError });
  t.regex(e.message, /ports\[1\]\.fanout: with a fanout port every port must be fanout: true/);
  const tap = t.throws(() => parseConfig({ node: good.node, workers: 2, ports: [afp('a', 'v0', { fanout: true }), { ...good.ports[1], fanout: true }] }));
  t.regex(tap.message, /ports\[1\]\.fanout: only an afpacket or afxdp port can be shared by the workers \(a TAP fd is one queue\)/);
  // AF_XDP: each worker binds some of the interface's queues (test/daemon-fanout-afxdp.test.js)
  t.true(parseConfig({ node: good.node, workers: 2, ports: [afp('a', 'v0', { fanout: true, type: 'afxdp' })] }).ports[0].fanout);
  const both = t.throws(() => parseConfig({ node: good.node, workers: 2, ports: [afp('a', 'v0', { fanout: true, worker: 0 })] }));
  t.regex(both.message, /ports\[0\]\.worker: a fanout port is in every worker: leave worker out/);
});

test('worker tuning: busy-poll off, worker and control plane at the default nice, normal scheduling (no SCHED_FIFO), unless configured; out-of-range values named', (t) => {
  const c = parseConfig(good);
  t.is(c.busyPollUs, 0);
  t.is(c.workerNice, 0, 'the worker is not raised by default (docs/running.md, workerNice: it cost connection rate on a quiet node)');
  t.is(c.controlNice, 0);
  t.is(c.helperNice, 5, 'the runtime\'s helper threads below the daemon\'s own by default (docs/running.md, helperNice)');
  t.is(parseConfig({ ...good, helperNice: 0 }).helperNice, 0);
  t.regex(t.throws(() => parseConfig({ ...good, helperNice: 20 }), { instanceOf: ConfigError }).message, /helperNice/);
  const d = parseConfig({ ...good, busyPollUs: 200, workerNice: -10, controlNice: -5 });
  t.is(d.busyPollUs, 200);
  t.is(d.workerNice, -10);
  t.is(d.controlNice, -5);
  const e = t.throws(() => parseConfig({ ...good, busyPollUs: -1, workerNice: -21, controlNice: 20 }), { instanceOf: ConfigError });
  t.regex(e.message, /busyPollUs/);
  t.regex(e.message, /workerNice/);
  t.regex(e.message, /controlNice/);
  t.is(c.workerRealtimePriority, 0, 'normal scheduling unless the config asks for SCHED_FIFO');
  t.is(parseConfig({ ...good, workerRealtimePriority: 50 }).workerRealtimePriority, 50);
  t.is(parseConfig({ ...good, workerRealtimePriority: 0 }).workerRealtimePriority, 0);
  for (const bad of [-1, 100, 1.5, 'high', true]) {
    const x = t.throws(() => parseConfig({ ...good, workerRealtimePriority: bad }), { instanceOf: ConfigError });
    t.regex(x.message, /workerRealtimePriority/, `rejected with its name: ${bad}`);
  }
});

test('kernelPath: off by default; on with its lifetime and table size; bad values and more than one worker named with their path', (t) => {
  t.deepEqual(parseConfig(good).kernelPath, { enabled: false, lifetimeMs: 1000, flows: 65536 });
  t.deepEqual(parseConfig({ ...good, kernelPath: { enabled: true, lifetimeMs: 250 } }).kernelPath, { enabled: true, lifetimeMs: 250, flows: 65536 });
  const e = t.throws(() => parseConfig({ ...good, kernelPath: { enabled: 'yes', lifetimeMs: 5, flows: 1 << 23, lifetime: 1 } }), { instanceOf: ConfigError });
  for (const re of [/kernelPath\.enabled/, /kernelPath\.lifetimeMs/, /kernelPath\.flows/, /kernelPath/]) t.regex(e.message, re);
  const two = { ...good, workers: 2, ports: good.ports.map((p, i) => ({ ...p, worker: i })) };
  t.notThrows(() => parseConfig(two), 'two workers without the kernel path');
  t.regex(t.throws(() => parseConfig({ ...two, kernelPath: { enabled: true } }), { instanceOf: ConfigError }).message, /kernelPath\.enabled: the kernel path runs with one worker \(workers: 2\)/);
});

test('AF_XDP rxRing, xdpMode and workerCpus: accepted where they apply, bad values named with their path', (t) => {
  const xdp = { name: 'up', type: 'afxdp', ifname: 'x0', role: 'uplink', gateways: ['10.0.0.1'], rxRing: 4096, xdpMode: 'generic' };
  const c = parseConfig({ ...good, ports: [xdp, good.ports[1]], workerCpus: [1] });
  t.is(c.ports[0].rxRing, 4096);
  t.is(c.ports[0].xdpMode, 'generic');
  t.regex(t.throws(() => parseConfig({ ...good, ports: [{ ...xdp, xdpMode: 'skb' }, good.ports[1]] }), { instanceOf: ConfigError }).message, /ports\[0\]\.xdpMode/);
  t.regex(t.throws(() => parseConfig({ ...good, ports: [xdp, { ...good.ports[1], xdpMode: 'native' }] }), { instanceOf: ConfigError }).message,
    /ports\[1\]\.xdpMode: only an afxdp port attaches an XDP program/);
  t.deepEqual(c.workerCpus, [1]);
  t.is(parseConfig(good).workerCpus, undefined);
  const e = t.throws(() => parseConfig({ ...good, ports: [{ ...xdp, rxRing: 3000 }, { ...good.ports[1], rxRing: 1024 }], workerCpus: [1, 0] }), { instanceOf: ConfigError });
  t.regex(e.message, /ports\[0\]\.rxRing: must be a power of two/);
  t.regex(e.message, /ports\[1\]\.rxRing: only an afxdp port has an AF_XDP RX ring/);
  t.regex(e.message, /workerCpus: one CPU per worker: 1 worker\(s\), 2 CPU\(s\) listed/);
  const r = t.throws(() => parseConfig({ ...good, ports: [{ ...xdp, rxRing: 32768 }, good.ports[1]], workerCpus: [-1] }), { instanceOf: ConfigError });
  t.regex(r.message, /ports\[0\]\.rxRing/);
  t.regex(r.message, /workerCpus\[0\]/);
});

test('mtu: a TAP port is created with it (68..65521); any other port refuses it, in the file and at runtime', async (t) => {
  const { parsePortConfig } = await import('../dist/src/daemon/config.js');
  const ok = structuredClone(good);
  ok.ports[1].mtu = 1280;
  t.is(parseConfig(ok).ports[1].mtu, 1280);
  const bad = structuredClone(good);
  bad.ports[0].mtu = 1280;
  bad.ports[1].mtu = 67;
  const e = t.throws(() => parseConfig(bad), { instanceOf: ConfigError });
  t.regex(e.message, /ports\[0\]\.mtu: only a TAP port is created with an MTU/);
  t.regex(e.message, /ports\[1\]\.mtu/);
  t.is(parsePortConfig({ name: 't', type: 'tap', ifname: 'tap1', role: 'pod', mtu: 9000 }).mtu, 9000);
  t.throws(() => parsePortConfig({ name: 'p', type: 'afpacket', ifname: 'veth1', role: 'pod', mtu: 9000 }), { message: /mtu: only a TAP port/ });
});
