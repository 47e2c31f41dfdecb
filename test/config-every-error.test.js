// `wdp start --config FILE` names every problem of the file in one run (src/daemon/config.ts): a
// field's own problems and those between fields (a duplicate name, a route naming no port, a field
// only a TAP has, the API's token, kube-proxy's nodePortAddresses rule) alike. Before, the rules
// between fields were zod refinements, which zod runs only on values whose fields all parsed: a
// wrong type or enum anywhere hid them, and the operator saw the file one level at a time. Also:
// a field that is invalid is not followed by a rule's guess at what it meant (no consequential
// problems), and a runtime port (the ports API) is checked the same way.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ConfigError, parseConfig, parsePortConfig } from '../dist/src/daemon/config.js';

const WDP = new URL('../bin/wdp.js', import.meta.url).pathname;
const ROOT = new URL('../', import.meta.url).pathname;

/** A valid config; each entry of `errors` breaks one thing in it, at its own depth. */
const valid = () => ({
  node: { name: 'node-a', addresses: ['192.168.100.2'] },
  ports: [
    { name: 'uplink', type: 'afpacket', ifname: 'eth0', role: 'uplink', gateways: ['10.0.0.1'] },
    { name: 'pod-a', type: 'tap', ifname: 'tap-a', role: 'pod', gateways: ['10.244.0.1'], pods: [{ ip: '10.244.1.11' }, { ip: '10.244.1.12', mac: '02:00:00:00:00:01' }] },
    { name: 'pod-b', type: 'tap', ifname: 'tap-b', role: 'pod', gateways: ['10.244.0.1'] },
    { name: 'pod-c', type: 'afpacket', ifname: 'veth-c', role: 'pod', gateways: ['10.244.0.1'] },
  ],
  routes: [
    { prefix: '0.0.0.0/0', port: 'uplink', mac: '02:00:00:00:00:fe' },
    { prefix: '10.9.0.0/16', port: 'uplink', mac: '02:00:00:00:00:fe' },
  ],
  api: { listen: '127.0.0.1:9440' },
  conntrack: { flows: 65536 },
  kubernetes: { nodePortAddresses: ['primary'] },
});

/** [what it breaks, the line it must give]: independent of each other, at every depth, of every
 * kind (a wrong type, a wrong enum value, a failed check, a rule between fields). */
const errors = [
  [(c) => { c.workers = 'two'; }, 'workers: Invalid input: expected number, received string'],
  [(c) => { c.node.name = 'Node_A'; }, 'node.name: must be a lowercase RFC 1123 name'],
  [(c) => { c.ports[0].type = 'pcap'; }, 'ports[0].type: Invalid option: expected one of "tap"|"afpacket"|"afxdp"'],
  [(c) => { c.ports[1].pods[1].mac = '03:00:00:00:00:01'; }, 'ports[1].pods[1].mac: must be a unicast MAC (first octet even)'],
  [(c) => { c.ports[2].name = 'pod-a'; }, 'ports[2].name: duplicate port name "pod-a" (also ports[1])'],
  [(c) => { c.ports[3].mtu = 1400; }, 'ports[3].mtu: only a TAP port is created with an MTU (other ports take their interface\'s: set it with ip link)'],
  [(c) => { c.routes[0].port = 'nope'; }, 'routes[0].port: no port named "nope"'],
  [(c) => { c.routes[1].prefix = '0.0.0.0/0'; }, 'routes[1].prefix: duplicate route 0.0.0.0/0 (also routes[0])'],
  [(c) => { c.api.listen = '0.0.0.0:9440'; }, /^api\.token: required when api\.listen \(0\.0\.0\.0:9440\) /],
  [(c) => { c.conntrack.flows = 3; }, 'conntrack.flows: Too small: expected number to be >=16'],
  [(c) => { c.kubernetes.listPageSize = 'many'; }, 'kubernetes.listPageSize: Invalid input: expected number, received string'],
  [(c) => { c.kubernetes.nodePortAddresses = ['primary', '10.0.0.0/8']; }, 'kubernetes.nodePortAddresses[0]: can\'t use both "primary" and CIDRs: "primary" (the node\'s primary IP per family) must be the only entry'],
];

/** The problem lines of a config (none: it is valid). */
function problems(cfg) {
  try { parseConfig(cfg, 'x.yaml'); return []; } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    const [head, ...lines] = e.message.split('\n');
    if (head !== 'invalid config x.yaml:') throw e;
    return lines.map((l) => l.replace(/^ {2}/, ''));
  }
}
const matches = (line, want) => (typeof want === 'string' ? line === want : want.test(line));
/** Each wanted line found once, and nothing else. */
function sameLines(t, got, wanted, what) {
  const left = [...got];
  for (const w of wanted) {
    const i = left.findIndex((l) => matches(l, w));
    if (i < 0) t.fail(`${what}: no line ${w} in\n${got.join('\n')}`);
    else left.splice(i, 1);
  }
  t.deepEqual(left, [], `${what}: lines nobody asked for`);
}

const broken = () => { const c = valid(); for (const [breakIt] of errors) breakIt(c); return c; };

test('the valid config is valid (the errors below are all the test\'s own)', (t) => {
  t.deepEqual(problems(valid()), []);
});

test('every error of the file in one run, each with its path, and no other line', (t) => {
  sameLines(t, problems(broken()), errors.map(([, line]) => line), 'all at once');
});

test('the errors are independent: each alone gives its line only', (t) => {
  for (const [breakIt, line] of errors) {
    const c = valid();
    breakIt(c);
    sameLines(t, problems(c), [line], String(line));
  }
});

test('an invalid field is not followed by a rule\'s guess at what it meant', (t) => {
  const cases = [
    // a type that is no type: whether netns or persist are a TAP's is not judged
    [(c) => { c.ports[3].type = 'pcap'; c.ports[3].netns = 'x'; }, ['ports[3].type: Invalid option: expected one of "tap"|"afpacket"|"afxdp"']],
    // a next hop's MAC that is invalid: the route is not told it has no next hop
    [(c) => { c.routes[0].mac = 'nope'; }, ['routes[0].mac: must be a MAC address like 02:00:00:00:00:01']],
    // the port's gateways invalid: the route via an address is not told the port has none of its family
    [(c) => { c.ports[3].gateways = ['10.0.0.300']; c.routes.push({ prefix: '10.8.0.0/16', port: 'pod-c', via: '10.244.0.9' }); }, ['ports[3].gateways[0]: must be an IPv4 or IPv6 address']],
    // a node name that is invalid is not "required"
    [(c) => { delete c.kubernetes; c.node.name = 7; }, ['node.name: Invalid input: expected string, received number']],
    // a port that is no mapping: a route naming a port is not told there is none (it may be that one)
    [(c) => { c.ports.push('eth9'); c.routes[0].port = 'other'; }, ['ports[4]: Invalid input: expected object, received string']],
    // syncPeriod invalid: minSyncPeriod is not compared with it
    [(c) => { c.kubernetes.syncPeriod = 0; c.kubernetes.minSyncPeriod = '1s'; }, ['kubernetes.syncPeriod: must be greater than 0']],
    // ports that are no list, workers > 1: no per-port placement problem
    [(c) => { c.ports = 'eth0'; c.workers = 2; c.routes = []; }, ['ports: Invalid input: expected array, received string']],
  ];
  for (const [breakIt, lines] of cases) {
    const c = valid();
    breakIt(c);
    sameLines(t, problems(c), lines, lines[0]);
  }
});

test('the rules between fields still hold with other fields invalid (a few of them)', (t) => {
  const c = valid();
  c.workers = 2;                          // valid: every port needs worker: N (or fanout)
  c.ports[0].type = 'pcap';               // invalid: its worker is still known
  c.ports[1].pods.push({ ip: '10.244.1.11' });
  c.ports[1].pods.push({ ip: 'nope' });
  c.ports.forEach((p, i) => { if (i) p.worker = 0; });
  const got = problems(c);
  sameLines(t, got, [
    'ports[0].type: Invalid option: expected one of "tap"|"afpacket"|"afxdp"',
    'ports[1].pods[3].ip: must be an IPv4 or IPv6 address',
    'ports[1].pods[2].ip: duplicate pod 10.244.1.11 (also ports[1].pods[0])',
    'ports[0].worker: with workers > 1 every port needs "worker: N" (flows must enter and leave through ports of the same worker) or every port "fanout: true"',
  ], 'mixed');
});

test('wdp start --config FILE: every error on stderr, exit 2, nothing started (no state directory made)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-cfg-all-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const c = broken();
  c.stateDir = join(dir, 'state');
  writeFileSync(join(dir, 'wdp.yaml'), stringify(c));
  const r = spawnSync(process.execPath, [WDP, 'start', '--config', join(dir, 'wdp.yaml')], { encoding: 'utf8', cwd: ROOT, timeout: 60_000 });
  t.is(r.status, 2, r.stderr);
  const [head, ...lines] = r.stderr.trim().split('\n');
  t.is(head, `wdp start: invalid config ${join(dir, 'wdp.yaml')}:`);
  sameLines(t, lines.map((l) => l.replace(/^ {2}/, '')), errors.map(([, line]) => line), 'wdp start');
  t.false(existsSync(join(dir, 'state')), 'the state directory is not made');
});

test('a runtime port (the ports API): its field problems and the rules between its fields at once', (t) => {
  const e = t.throws(() => parsePortConfig({
    name: 'pod-x', type: 'pcap', ifname: 'veth-x', role: 'uplink', netns: 'ns-x', worker: 'one',
    pods: [{ ip: '10.244.1.5' }, { ip: '10.244.1.5' }, { ip: 'x' }], hostNodePorts: '30000-32767',
  }), { instanceOf: ConfigError });
  sameLines(t, e.message.split('\n').slice(1).map((l) => l.replace(/^ {2}/, '')), [
    'type: Invalid option: expected one of "tap"|"afpacket"|"afxdp"',
    'worker: Invalid input: expected number, received string',
    'pods[2].ip: must be an IPv4 or IPv6 address',
    'pods: pods can only be listed on a pod-facing port (role: pod)',
    'role: uplink, hostAddresses, hostRoutes, hostNodePorts and hostHairpin belong to a host port',
    'pods[1].ip: duplicate pod 10.244.1.5 (also pods[0])',
  ], 'runtime port');
});
