// The pieces behind `wdp bench` that need no root: the kube-proxy rule generators (checked
// against chain names from kube-proxy's own unit tests), Markdown tables and the SVG charts.
import test from 'ava';
import { makeServiceSet, kubeHash } from '../dist/src/bench/peers/service-set.js';
import { iptablesRuleset, svcChain, sepChain } from '../dist/src/bench/peers/iptables.js';
import { nftRuleset, nftServiceChain, nftEndpointChain } from '../dist/src/bench/peers/nftables.js';
import { mdTable, fmt, renderBar, Progress } from '../dist/src/bench/report.js';
import { lineChart, barChart } from '../dist/src/bench/svg.js';
import { benchObjects, changedEndpoints } from '../dist/src/bench/control.js';
import { trafgenConfig, e2eServices } from '../dist/src/bench/e2e.js';
import { validateAll } from '../dist/src/model/schema.js';
import { compileAll } from '../dist/src/compiler/compiler.js';

// pkg/proxy/iptables/proxier_test.go and pkg/proxy/nftables/proxier_test.go use these names for
// service ns1/svc1 port p80/TCP, endpoint 10.180.0.1:80
const KP = { namespace: 'ns1', name: 'svc1', portName: 'p80', proto: 'TCP', clusterIP: '172.30.0.41', port: 80, targetPort: 80, endpoints: [{ addr: '10.180.0.1', port: 80 }] };

test('chain names match kube-proxy byte for byte', (t) => {
  t.is(svcChain(KP), 'KUBE-SVC-XPGD46QRK7WJZT7O');
  t.is(sepChain(KP, KP.endpoints[0]), 'KUBE-SEP-SXIVWICOYRO3J4NJ');
  t.is(nftServiceChain(KP), 'service-ULMVA6XW-ns1/svc1/tcp/p80');
  t.is(nftEndpointChain(KP, KP.endpoints[0]), 'endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80');
  t.is(kubeHash('x', 5).length, 5);
});

test('service set: distinct VIPs and endpoints, bad sizes rejected', (t) => {
  const s = makeServiceSet({ services: 300, endpoints: 3 });
  t.is(new Set(s.map((x) => x.clusterIP)).size, 300);
  t.is(new Set(s.flatMap((x) => x.endpoints.map((e) => e.addr))).size, 900);
  t.throws(() => makeServiceSet({ services: 0, endpoints: 1 }), { message: /--services/ });
  t.throws(() => makeServiceSet({ services: 5, endpoints: -1 }), { message: /--endpoints/ });
  t.throws(() => makeServiceSet({ services: 1.5, endpoints: 1 }), { message: /--services/ });
});

test('iptables ruleset: kube-proxy shape with probabilities 1/n, 1/(n-1), ...', (t) => {
  const [s] = makeServiceSet({ services: 1, endpoints: 4 });
  const { text, rules } = iptablesRuleset([s]);
  const svcRules = text.split('\n').filter((l) => l.startsWith(`-A ${svcChain(s)} `) && l.includes('KUBE-SEP-'));
  t.is(svcRules.length, 4);
  t.regex(svcRules[0], /--probability 0\.2500000000/);
  t.regex(svcRules[1], /--probability 0\.3333333333/);
  t.regex(svcRules[2], /--probability 0\.5000000000/);
  t.notRegex(svcRules[3], /statistic/);               // the last endpoint takes the rest
  for (const e of s.endpoints) t.true(text.includes(`-A ${sepChain(s, e)} -m comment --comment bench/svc-0:http -m tcp -p tcp -j DNAT --to-destination ${e.addr}:8080`));
  t.is(rules, text.split('\n').filter((l) => l.startsWith('-A ')).length);
  t.is(text.split('\n').filter((l) => l === 'COMMIT').length, 2);
});

test('nft ruleset: chains declared before any vmap names them; one map element per service', (t) => {
  const svcs = makeServiceSet({ services: 1500, endpoints: 2 });
  const { text, mapElements } = nftRuleset(svcs);
  t.is(mapElements, 1500);
  const lines = text.split('\n');
  const declared = new Map();
  lines.forEach((l, i) => { const m = /^add chain ip kube-proxy (\S+)/.exec(l); if (m) declared.set(m[1], i); });
  lines.forEach((l, i) => {
    for (const m of l.matchAll(/goto (\S+?)(?: |$|,)/g)) {
      t.true(declared.has(m[1]) && declared.get(m[1]) < i, `line ${i} names ${m[1]} before it exists`);
    }
  });
  t.true(lines.some((l) => l.includes('numgen random mod 2 vmap')));
});

test('bench objects compile to one frontend per service with the generated endpoints', (t) => {
  const svcs = makeServiceSet({ services: 20, endpoints: 3 });
  const c = compileAll(validateAll(benchObjects(svcs)));
  t.is(c.ir.frontends.size, 20);
  t.is(c.ir.backends.size, 60);
  const fe = [...c.ir.frontends.values()].find((f) => f.addr === svcs[7].clusterIP);
  t.truthy(fe);
  const addrs = fe.backends.map((id) => c.ir.backends.get(id).addr).sort();
  t.deepEqual(addrs, svcs[7].endpoints.map((e) => e.addr).sort());
  t.true(fe.backends.every((id) => c.ir.backends.get(id).outPort === 1));
  const a = changedEndpoints(svcs[0], 0), b = changedEndpoints(svcs[0], 1);
  t.not(a.newAddr, b.newAddr);
  t.is(a.endpoints.length, svcs[0].endpoints.length);
});

test('trafgen config: 60-byte frame, fixed tuple vs random tuple', (t) => {
  const one = trafgenConfig('02:00:00:00:00:01', false), many = trafgenConfig('02:00:00:00:00:01', true);
  t.notRegex(one, /drnd/);
  t.regex(many, /10, 131, drnd\(2\)/);
  t.regex(one, /fill\(0x00, 18\)/);                   // 14 + 20 + 8 + 18 = 60 bytes
  t.is(e2eServices().length, 3);
});

test('markdown table: aligned, numbers right-aligned, null as n/a', (t) => {
  const md = mdTable(['name', 'ms'], [['wdp', 1.23456], ['nft', null], ['iptables', 12345.6]]);
  const lines = md.trim().split('\n');
  t.is(lines.length, 5);
  t.regex(lines[1], /^\| -+ \| -+: \|$/);
  t.true(lines[3].includes('n/a'));
  t.true(lines[4].includes('12,346'));
  t.is(new Set(lines.map((l) => l.length)).size, 1);
  t.is(fmt(0.000123), '0.000123');
  t.is(fmt(true), 'yes');
  t.regex(renderBar('x', 5, 10, 1), /\[#{15}\.{15}\] 5\/10/);
});

test('progress: silent when disabled, plain lines when not a terminal', async (t) => {
  const out = []; const sink = { write: (s) => out.push(s), isTTY: false };
  const p = new Progress(true, sink);
  const b = p.bar('load', 3); b.tick(); b.tick(); b.done();
  await p.step('step', async () => 1);
  t.true(out.every((s) => !s.includes('\r')));
  t.is(out.length, 2);
  const quiet = []; const q = new Progress(false, { write: (s) => quiet.push(s), isTTY: true });
  q.bar('x', 2).done(); await q.step('y', async () => 1);
  t.is(quiet.length, 0);
  await t.throwsAsync(() => p.step('bad', async () => { throw new Error('boom'); }), { message: 'boom' });
  t.regex(out[out.length - 1], /bad: failed/);
});

test('svg: line chart breaks at missing points, bars draw n/a not zero', (t) => {
  const line = lineChart({ title: 't', xLabel: 'services', yLabel: 'Mpps', logX: true, series: [{ name: 'a', points: [[100, 1], [1000, null], [10000, 3]] }] });
  t.true(line.startsWith('<svg'));
  t.is((line.match(/<circle /g) ?? []).length, 2);
  t.is((line.match(/ M/g) ?? []).length + (line.match(/d="M/g) ?? []).length, 2);   // two segments
  const bars = barChart({ title: 'b <&>', yLabel: 'ms', groups: [{ label: 'g', bars: [{ name: 'x', value: 5 }, { name: 'y', value: null }] }] });
  t.is((bars.match(/<rect [^>]*><title>/g) ?? []).length, 1);
  t.true(bars.includes('n/a'));
  t.true(bars.includes('b &lt;&amp;&gt;'));
  t.regex(barChart({ title: 'e', yLabel: 'ms', groups: [] }), /no data/);
});
