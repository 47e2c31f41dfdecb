// The diff a forwarding worker receives (src/ir/diff-wire.ts): many backends travel by column,
// and what the worker decodes is the diff that was encoded, record for record.
import test from 'ava';
import { encodeDiff, decodeDiff, receiveDiff, COLUMN_MIN_BACKENDS, COLUMN_MIN_FRONTENDS } from '../dist/src/ir/diff-wire.js';
import { Compiler } from '../dist/src/compiler/compiler.js';
import { validateAll } from '../dist/src/model/schema.js';

const clone = (x) => structuredClone(x); // what postMessage does to it

function backend(i, extra = {}) {
  return {
    id: i + 1, service: `ns${i % 7}/svc${i % 100}`, portName: i % 3 ? 'http' : '', addr: i % 5 ? `10.1.${(i >> 8) & 255}.${i & 255}` : `fd00::${i.toString(16)}`,
    family: i % 5 ? 4 : 6, port: 8000 + (i % 1000), state: 1 + (i % 3), outPort: i % 4 === 0 ? 0xffff : i % 4,
    dstMac: '02:00:00:00:00:01', srcMac: '02:00:00:00:00:02',
    ...(i % 2 ? { nodeName: `node-${i % 3}` } : {}), ...(i % 3 === 1 ? { zone: i % 2 ? '' : 'z1' } : {}), ...extra,
  };
}
const diffOf = (backs) => ({ frontendsUpsert: [], frontendsRemove: [3], backendsUpsert: backs, backendsRemove: [7, 8], routes: [], snat: { v4: '192.168.0.1' } });

test('many backends go by column and come back equal, optional fields included', (t) => {
  const backs = Array.from({ length: COLUMN_MIN_BACKENDS + 100 }, (_, i) => backend(i));
  const wire = encodeDiff(diffOf(backs));
  t.false(Array.isArray(wire.backendsUpsert), 'sent by column');
  t.deepEqual(decodeDiff(clone(wire)), diffOf(backs));
});

test('a few backends go as objects', (t) => {
  const backs = [backend(1), backend(2)];
  const wire = encodeDiff(diffOf(backs));
  t.true(Array.isArray(wire.backendsUpsert));
  t.deepEqual(decodeDiff(clone(wire)), diffOf(backs));
});

test('backends go by column whatever their strings hold: separators, empty and absent names', (t) => {
  const backs = Array.from({ length: COLUMN_MIN_BACKENDS }, (_, i) => backend(i, i === 17 ? { zone: 'a\nb', nodeName: 'n\n', service: 'x\ny/z' } : i === 18 ? { nodeName: '', zone: '' } : {}));
  const wire = encodeDiff(diffOf(backs));
  t.false(Array.isArray(wire.backendsUpsert));
  t.deepEqual(decodeDiff(clone(wire)), diffOf(backs));
  const got = receiveDiff(clone(wire)).backendsUpsert;
  t.deepEqual(got.slice(), backs, 'received as columns: the same records');
  t.deepEqual([...got], backs);
  const seen = [];
  got.forEach((b) => seen.push({ ...b }));
  t.deepEqual(seen.map((b) => b.addr), backs.map((b) => b.addr), 'forEach passes every row in order');
  t.deepEqual(seen[18].nodeName, '');
  t.is(seen[0].nodeName, undefined);
});

test('a full compile\'s diff (rows read through one reused object) decodes to its records', (t) => {
  const objs = [];
  for (let s = 0; s < 200; s++) {
    objs.push({ apiVersion: 'v1', kind: 'Service', metadata: { name: `s${s}`, namespace: 'default' }, spec: { clusterIP: `10.96.${s >> 8}.${(s & 255) + 1}`, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] } });
    objs.push({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `s${s}-1`, namespace: 'default', labels: { 'kubernetes.io/service-name': `s${s}` } }, addressType: 'IPv4',
      endpoints: Array.from({ length: 5 }, (_, e) => ({ addresses: [`10.244.${s}.${e + 1}`], conditions: { ready: e !== 2 }, ...(e % 2 ? { nodeName: 'n1', zone: 'z' } : {}) })), ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] });
  }
  const c = new Compiler({ maglevWorker: 'never' });
  const { diff } = c.change({ upsert: validateAll(objs) });
  const wire = encodeDiff(diff);
  t.false(Array.isArray(wire.backendsUpsert));
  const back = decodeDiff(clone(wire));
  t.false(Array.isArray(wire.frontendsUpsert));
  t.is(back.backendsUpsert.length, 1000);
  t.deepEqual(back.backendsUpsert, [...c.ir.backends.values()].sort((a, b) => a.id - b.id));
  t.deepEqual(back.frontendsUpsert, diff.frontendsUpsert.slice());
});

function frontend(i, extra = {}) {
  const n = i % 7 === 0 ? 0 : i % 5 === 0 ? 300 : 1 + (i % 12);
  const width = n > 256 ? 2 : i % 11 === 0 ? 4 : 1;
  const maglev = width === 1 ? new Uint8Array(n ? 251 : 0) : width === 2 ? new Uint16Array(509) : new Uint32Array(n ? 251 : 0);
  for (let k = 0; k < maglev.length; k++) maglev[k] = width === 4 ? 1000 + (k % n) : k % n;
  return {
    id: i + 1, service: `ns/svc${i % 50}`, portName: i % 2 ? 'http' : '', kind: ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalIP'][i % 4], addr: i % 3 ? `10.96.0.${i & 255}` : `fd00::${i}`,
    family: i % 3 ? 4 : 6, port: 1 + (i % 65535), proto: ['TCP', 'UDP', 'SCTP'][i % 3], flags: i % 64, affinityTimeoutMs: i % 4 ? 0 : 10800000,
    sourceRanges: i % 6 === 0 ? ['203.0.113.0/24', '198.51.100.0/25'] : [], backends: Array.from({ length: n }, (_, k) => 1000 + k), maglev,
    ...(width === 4 ? {} : i % 2 ? { maglevIndexed: true } : { maglevIndexed: false }), ...extra,
  };
}

test('many frontends go by column: strings, ranges, backend lists and Maglev tables of every width come back equal', (t) => {
  const fronts = Array.from({ length: COLUMN_MIN_FRONTENDS + 60 }, (_, i) => frontend(i));
  const d = { frontendsUpsert: fronts, frontendsRemove: [], backendsUpsert: [], backendsRemove: [] };
  const wire = encodeDiff(d);
  t.false(Array.isArray(wire.frontendsUpsert), 'sent by column');
  const back = decodeDiff(clone(wire));
  t.deepEqual(back.frontendsUpsert, fronts);
  t.true(back.frontendsUpsert.some((f) => f.maglev instanceof Uint16Array) && back.frontendsUpsert.some((f) => f.maglev instanceof Uint32Array));
  // strings holding anything (a newline, the empty string) go by column too: no separators
  const odd = fronts.map((f, i) => (i === 3 ? { ...f, sourceRanges: ['a\nb', ''], service: 'x\ny', portName: '\n' } : i === 4 ? { ...f, addr: '' } : f));
  const w2 = encodeDiff({ ...d, frontendsUpsert: odd });
  t.false(Array.isArray(w2.frontendsUpsert));
  t.deepEqual(decodeDiff(clone(w2)).frontendsUpsert, odd);
});

test('frontend columns that do not add up are refused, not decoded into wrong frontends', (t) => {
  const fronts = Array.from({ length: COLUMN_MIN_FRONTENDS }, (_, i) => frontend(i));
  const wire = encodeDiff({ frontendsUpsert: fronts, frontendsRemove: [], backendsUpsert: [], backendsRemove: [] });
  const cut = clone(wire); cut.frontendsUpsert.addrs = cut.frontendsUpsert.addrs.slice(1);
  t.throws(() => decodeDiff(cut), { message: /inconsistent/ });
  const bad = clone(wire); bad.frontendsUpsert.kind[5] = 9;
  t.throws(() => decodeDiff(bad), { message: /no owner, kind or protocol/ });
});

test('a full compile\'s diff writes its columns from the compiler\'s tables: the same records as the objects, every field', (t) => {
  const node = {
    apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' },
    spec: {
      nodeAddresses: ['192.168.0.1', 'fd00:1::1'],
      routes: [{ prefix: '10.244.0.0/16', port: 1, nextHopMac: '02:00:00:00:00:11', localMac: '02:00:00:00:00:01' },
        { prefix: 'fd00:244::/32', port: 2, nextHopMac: '02:00:00:00:00:13', localMac: '02:00:00:00:00:02' }],
      neighbours: [{ address: '10.244.1.2', port: 3, mac: '02:00:00:00:00:33', localMac: '02:00:00:00:00:03' }],
    },
  };
  const objs = [node];
  for (let s = 0; s < 150; s++) {
    const v6 = s % 5 === 4, lb = s % 3 === 0;
    objs.push({ apiVersion: 'v1', kind: 'Service', metadata: { name: `s${s}`, namespace: s % 2 ? 'a' : 'b' },
      spec: { ...(v6 ? { clusterIP: `fd00:96::${s + 1}`, ipFamilies: ['IPv6'] } : { clusterIP: `10.96.${s >> 8}.${(s & 255) + 1}` }),
        ...(lb ? { type: 'LoadBalancer', loadBalancerSourceRanges: ['203.0.113.0/24', '2001:db8::/32'], externalTrafficPolicy: s % 2 ? 'Local' : 'Cluster' } : {}),
        ...(s % 7 === 0 ? { sessionAffinity: 'ClientIP' } : {}),
        ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', ...(lb ? { nodePort: 30000 + s } : {}) }, { name: 'dns', port: 53, protocol: 'UDP', ...(lb ? { nodePort: 31000 + s } : {}) }] },
      ...(lb && !v6 ? { status: { loadBalancer: { ingress: [{ ip: `198.51.100.${s}` }] } } } : {}) });
    objs.push({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `s${s}-1`, namespace: s % 2 ? 'a' : 'b', labels: { 'kubernetes.io/service-name': `s${s}` } }, addressType: v6 ? 'IPv6' : 'IPv4',
      endpoints: Array.from({ length: 4 + (s % 3) }, (_, e) => ({ addresses: [v6 ? `fd00:244::${s}:${e + 1}` : `10.${e === 0 ? 99 : 244}.${s}.${e + 1}`], conditions: { ready: e !== 2, serving: true, terminating: e === 2 },
        ...(e % 2 ? { nodeName: 'node-a', zone: 'z' } : { nodeName: `other-${e}` }) })),
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'dns', port: 5353, protocol: 'UDP' }] });
  }
  const c = new Compiler({ maglevWorker: 'never' });
  const { diff } = c.change({ upsert: validateAll(objs) });
  t.is(typeof diff.frontendsUpsert.wireColumns, 'function', 'the tables write the columns');
  const wire = encodeDiff(diff);
  t.false(Array.isArray(wire.frontendsUpsert)); t.false(Array.isArray(wire.backendsUpsert));
  const back = decodeDiff(clone(wire));
  const fronts = diff.frontendsUpsert.slice(), backs = diff.backendsUpsert.slice();
  t.true(fronts.some((f) => f.sourceRanges.length) && fronts.some((f) => f.clusterFront) && fronts.some((f) => f.family === 6) && fronts.some((f) => f.proto === 'UDP'));
  t.true(new Set(backs.map((b) => b.outPort)).size >= 3, 'several next hops');
  t.deepEqual(back.frontendsUpsert, fronts);
  t.deepEqual(back.backendsUpsert, backs);
  // and what the objects' own encoding gives
  t.deepEqual(decodeDiff(clone(encodeDiff({ ...diff, frontendsUpsert: fronts, backendsUpsert: backs }))), back);
  c.change({ upsert: validateAll([{ ...objs[2], endpoints: [] }]) });
  t.throws(() => encodeDiff(diff), { message: /after the compiler changed again/ }, 'a stale diff is refused');
});

test('an externalTrafficPolicy Local frontend\'s clusterFront survives the columns', (t) => {
  const fronts = Array.from({ length: COLUMN_MIN_FRONTENDS + 10 }, (_, i) => frontend(i, i % 4 === 1 ? { clusterFront: 5000 + i } : {}));
  const wire = encodeDiff({ frontendsUpsert: fronts, frontendsRemove: [], backendsUpsert: [], backendsRemove: [] });
  t.false(Array.isArray(wire.frontendsUpsert), 'sent by column');
  const back = decodeDiff(clone(wire)).frontendsUpsert;
  t.deepEqual(back, fronts);
  t.is(back[1].clusterFront, 5001);
  t.false('clusterFront' in back[0]);
});

// What a worker receives is checked whole before it is decoded: an offset, a length or a
// dictionary index that points outside what came with it refuses the diff (the worker answers the
// apply with an error) instead of decoding a clamped Maglev table, an empty address or an
// undefined service into its tables.
test('columns whose offsets, lengths or dictionary indexes do not fit are refused, frontends and backends', (t) => {
  const fronts = Array.from({ length: COLUMN_MIN_FRONTENDS }, (_, i) => frontend(i));
  const backs = Array.from({ length: COLUMN_MIN_BACKENDS }, (_, i) => backend(i));
  const wire = encodeDiff({ frontendsUpsert: fronts, frontendsRemove: [], backendsUpsert: backs, backendsRemove: [] });
  t.false(Array.isArray(wire.frontendsUpsert)); t.false(Array.isArray(wire.backendsUpsert));
  t.notThrows(() => receiveDiff(clone(wire)));
  const f = 1; // frontend(1): a Maglev table of width 1, no source ranges
  const cases = {
    'frontend Maglev offset past its array': (w) => { w.frontendsUpsert.maglevAt[f] = w.frontendsUpsert.maglev1.length; },
    'frontend Maglev length past its array': (w) => { w.frontendsUpsert.maglevLen[f] = w.frontendsUpsert.maglev1.length + 1; },
    'frontend Maglev width not 1, 2 or 4': (w) => { w.frontendsUpsert.maglevWidth[f] = 3; },
    'frontend Maglev column short': (w) => { w.frontendsUpsert.maglevAt = w.frontendsUpsert.maglevAt.subarray(0, 3); },
    'frontend range offsets decreasing': (w) => { const r = w.frontendsUpsert.rangeAt; r[7] = r[8] + 1; },
    'frontend address offsets decreasing': (w) => { const a = w.frontendsUpsert.addrAt; a[f] = a[f + 1] + 1; },
    'frontend family column short': (w) => { w.frontendsUpsert.family = new Uint8Array(3); },
    'frontend port column short': (w) => { w.frontendsUpsert.port = new Uint32Array(3); },
    'frontend port-name dictionary short': (w) => { w.frontendsUpsert.ownerPortName = []; },
    'backend owner past its dictionary': (w) => { w.backendsUpsert.owner[5] = w.backendsUpsert.ownerService.length; },
    'backend node label past its dictionary': (w) => { w.backendsUpsert.node[5] = w.backendsUpsert.labels.length + 1; },
    'backend zone label past its dictionary': (w) => { w.backendsUpsert.zone[5] = w.backendsUpsert.labels.length + 1; },
    'backend family column short': (w) => { w.backendsUpsert.family = new Uint8Array(3); },
    'backend state column short': (w) => { w.backendsUpsert.state = new Uint8Array(3); },
    'backend port column short': (w) => { w.backendsUpsert.port = new Uint32Array(3); },
    'backend address offsets decreasing': (w) => { const a = w.backendsUpsert.addrAt; a[5] = a[6] + 1; },
    'backend next hop past its dictionary': (w) => { w.backendsUpsert.hop[5] = w.backendsUpsert.hopDstMac.length; },
    'backend next-hop dictionary columns of different lengths': (w) => { w.backendsUpsert.hopSrcMac = []; },
  };
  for (const [name, spoil] of Object.entries(cases)) {
    const w = clone(wire); spoil(w);
    t.throws(() => receiveDiff(w), { message: /inconsistent|no owner|out of range/ }, name);
    t.throws(() => decodeDiff(clone(w)), { message: /inconsistent|no owner|out of range/ }, `${name} (decodeDiff)`);
  }
});
