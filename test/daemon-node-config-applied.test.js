// A NodeConfig applied to a daemon through the API (examples/node.yaml's shape: other neighbours,
// routes, masquerade) is programmed as the daemon keeps it — its own NodeConfig with the applied
// node and NodePort addresses — in that apply's own transaction: the dry run's diff (`wdp diff`)
// shows only what the addresses change, and the applied neighbours and routes are never
// programmed, not even until the daemon's next re-program (they were, for a moment, and the dry
// run listed them). The adoption is saved with the NodeConfig (its wdp.io/applied-as annotation):
// a restart keeps the applied addresses (before: the config file's again). A delete of the
// daemon's NodeConfig — by its name or by the name it was applied as, before or after a restart —
// puts its own in its place in the same transaction, without the applied addresses (before: no
// node config, so no route, until the re-program; the applied name was not found; the addresses
// stayed until a restart). The daemon runs in this process; its one TAP port is created in a network
// namespace the test makes (DaemonOptions.portNetns), its API on a unix socket. No packets are sent.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import pino from 'pino';
import { canUseNetns, NetnsLab } from '../dist/src/netns.js';
import { parseConfig } from '../dist/src/daemon/config.js';
import { startDaemon } from '../dist/src/daemon/daemon.js';
import { ApiClient } from '../dist/src/cli/client.js';

const root = canUseNetns();
const GATEWAY_MAC = '02:77:64:70:00:fe';
const POD = { ip: '10.128.0.5', mac: '02:77:64:70:00:05' };

// examples/node.yaml's spec, with node addresses of its own
const applied = {
  apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' },
  spec: {
    nodeName: 'node-a', nodeAddresses: ['192.168.100.2', '192.168.100.9'],
    masquerade: { ipv4: '192.168.100.9' },
    neighbours: [{ address: '10.244.1.10', port: 0, mac: '02:42:0a:f4:01:0a', localMac: '02:00:00:00:00:01' }],
    routes: [{ prefix: '10.244.0.0/16', port: 0, nextHopMac: '02:00:00:00:10:01', localMac: '02:00:00:00:00:00' }],
  },
};
const nodePortService = [
  { apiVersion: 'v1', kind: 'Service', metadata: { name: 'np', namespace: 'default' }, spec: { type: 'NodePort', clusterIP: '10.96.40.4', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }] } },
  { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'np-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'np' } }, addressType: 'IPv4', endpoints: [{ addresses: [POD.ip] }], ports: [{ name: 'http', port: 8080 }] },
];

(root ? test : test.skip)(`a NodeConfig applied through the API is programmed as the daemon keeps it, dry run and apply alike: only its node addresses are taken${root ? '' : ' (skipped: needs root and ip: the TAP port goes in a network namespace)'}`, async (t) => {
  const lab = new NetnsLab('nca');
  const dir = mkdtempSync(join(tmpdir(), 'wdp-nodeapplied-'));
  let daemon;
  t.teardown(async () => { await daemon?.stop().catch(() => undefined); await lab.destroy(); rmSync(dir, { recursive: true, force: true }); });
  const ns = lab.namespace('dp');
  const sock = join(dir, 'api.sock');
  const cfg = parseConfig({
    node: { name: 'n1', addresses: ['192.168.100.2'] }, stateDir: join(dir, 'state'), workers: 1,
    api: { listen: `unix:${sock}`, healthz: 'off' },
    ports: [{ name: 'pods', type: 'tap', ifname: 'wdpna0', role: 'pod', pods: [POD] }],
    routes: [{ prefix: '10.128.0.0/9', port: 'pods', mac: GATEWAY_MAC }],
  });
  daemon = await startDaemon(cfg, { logger: pino({ level: 'silent' }), portNetns: ns });
  const api = new ApiClient({ server: `unix:${sock}`, timeoutMs: 30_000 });
  const post = (path, body) => api.call('POST', path, JSON.stringify(body));
  await post('/api/v1/apply', nodePortService);
  const before = (await api.call('GET', '/api/v1/nodeconfig')).spec;
  t.deepEqual(before.nodeAddresses, ['192.168.100.2']);
  const frontends = async () => (await api.call('GET', '/api/v1/frontends')).items.filter((f) => f.kind === 'NodePort').map((f) => f.addr).sort();
  t.deepEqual(await frontends(), ['192.168.100.2']);

  // the dry run: the NodePort frontend on the new address, nothing of the applied routes or neighbours
  const dry = await post('/api/v1/apply?dryRun=All', [applied]);
  t.deepEqual(dry.objects, [{ kind: 'NodeConfig', name: 'node-a', action: 'configured' }]);
  // (the routes go as one table: the new node address's local route changes it)
  const prefixes = (d) => (d.routes ?? []).map((x) => x.prefix).sort();
  t.deepEqual(prefixes(dry.diff), ['10.128.0.0/9', '10.128.0.5/32', '192.168.100.2/32', '192.168.100.9/32'], 'the daemon\'s routes and the node\'s addresses, not the applied routes');
  t.deepEqual(dry.diff.frontendsUpsert.filter((f) => f.op === 'add').map((f) => `${f.kind} ${f.addr}:${f.port}`), ['NodePort 192.168.100.9:30080']);
  t.deepEqual(dry.diff.frontendsRemove, []);
  t.deepEqual(dry.diff.backendsUpsert.filter((b) => b.outPort === null), [], 'no backend loses its route');

  // neighbours or routes on a port the daemon does not have are refused with their field paths, as
  // any NodeConfig's (though the applied ones are not programmed)
  const bad = { ...applied, spec: { ...applied.spec, neighbours: [{ ...applied.spec.neighbours[0], port: 7 }], routes: [{ ...applied.spec.routes[0], port: 3 }] } };
  for (const q of ['?dryRun=All', '']) {
    const e = await t.throwsAsync(post(`/api/v1/apply${q}`, [bad]));
    t.regex(e.message, /spec\.neighbours\[0\]\.port.*no such port \(its ports: 0\)/s, e.message);
    t.regex(e.message, /spec\.routes\[0\]\.port/, e.message);
  }
  t.deepEqual((await api.call('GET', '/api/v1/nodeconfig')).spec, before, 'nothing changed');

  // the apply: every node config programmed carries the daemon's routes and neighbours
  const programmed = [];
  daemon.control.onNodeChange((n) => programmed.push(n));
  // the daemon's own programs (its re-programs pass a function that reads its node config)
  let ownPrograms = 0;
  const countOwn = (core) => { const apply = core.apply.bind(core); core.apply = (objs, o) => { if (typeof objs === 'function') ownPrograms++; return apply(objs, o); }; };
  countOwn(daemon.control);
  const r = await post('/api/v1/apply', [applied]);
  t.deepEqual(r.objects, [{ kind: 'NodeConfig', name: 'node-a', action: 'configured' }]);
  t.deepEqual(prefixes(r.diff), prefixes(dry.diff), 'the apply programs what its dry run showed');
  await daemon.settled();
  t.is(programmed.length, 1, 'one node change: the apply\'s');
  t.is(ownPrograms, 0, 'nothing for the daemon to re-program: the apply programmed its own (and its answer did not wait for the debounce)');
  for (const n of programmed) {
    t.deepEqual(n.routes.map((x) => x.prefix), ['10.128.0.0/9'], 'only the daemon\'s route, each time');
    t.false(n.neighbours.some((x) => x.address === '10.244.1.10'), 'never the applied neighbour');
    t.deepEqual(n.addresses, ['192.168.100.2', '192.168.100.9']);
  }
  const afterObj = await api.call('GET', '/api/v1/nodeconfig');
  t.deepEqual(afterObj.metadata.annotations, { 'wdp.io/applied-as': 'node-a' }, 'the name it was applied as, saved with it');
  const after = afterObj.spec;
  t.deepEqual(after.nodeAddresses, ['192.168.100.2', '192.168.100.9'], 'the applied node addresses are kept');
  t.deepEqual(after.routes, before.routes);
  t.deepEqual(after.neighbours, before.neighbours);
  t.is(after.masquerade, undefined, 'the applied masquerade is not the daemon\'s');
  t.deepEqual(await frontends(), ['192.168.100.2', '192.168.100.9']);
  // applied again: nothing to change
  const again = await post('/api/v1/apply?dryRun=All', [applied]);
  t.is(again.objects[0].action, 'unchanged', JSON.stringify(again.diff));

  // a restart: the applied addresses are kept (the acknowledged apply is not undone by it), the
  // table image written at the stop is used
  await daemon.stop();
  daemon = await startDaemon(cfg, { logger: pino({ level: 'silent' }), portNetns: ns });
  const restarted = await api.call('GET', '/api/v1/nodeconfig');
  t.deepEqual(restarted.spec.nodeAddresses, ['192.168.100.2', '192.168.100.9'], 'the applied node addresses survive the restart');
  t.deepEqual(restarted.metadata.annotations, { 'wdp.io/applied-as': 'node-a' });
  t.deepEqual(await frontends(), ['192.168.100.2', '192.168.100.9']);
  const { restore } = await api.call('GET', '/api/v1/generation');
  t.like(restore.images?.[0], { used: true }, JSON.stringify(restore));
  daemon.control.onNodeChange((n) => programmed.push(n));
  countOwn(daemon.control);

  // a delete of the daemon's NodeConfig: its own in its place in the same transaction, so no node
  // config without its routes is ever programmed (before: none at all until the re-program)
  // — named as it was applied (`wdp delete -f` of the manifest `wdp apply -f` took), or as the
  // daemon names it; a name neither held nor applied is not found
  programmed.length = 0;
  ownPrograms = 0;
  const nodeRef = (name) => ({ apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name } });
  await t.throwsAsync(post('/api/v1/delete', [nodeRef('node-b')]), { message: /NodeConfig node-b.*not found/i });
  const dryDel = await post('/api/v1/delete?dryRun=All', [nodeRef('node-a')]);
  t.deepEqual(dryDel.objects, [{ kind: 'NodeConfig', name: 'node-a', action: 'deleted' }]);
  t.deepEqual(dryDel.diff.frontendsRemove.map((f) => `${f.kind} ${f.addr}:${f.port}`), ['NodePort 192.168.100.9:30080'], 'the applied address goes with it');
  t.is(dryDel.diff.counts.backendsUpsert, 0, JSON.stringify(dryDel.diff));
  const del = await post('/api/v1/delete', [nodeRef('node-a')]);
  t.deepEqual(del.objects, [{ kind: 'NodeConfig', name: 'node-a', action: 'deleted' }]);
  await t.throwsAsync(post('/api/v1/delete?dryRun=All', [nodeRef('node-a')]), { message: /not found/i }, 'deleted once: gone with the NodeConfig');
  const delOwn = await post('/api/v1/delete?dryRun=All', [nodeRef('n1')]);
  t.is(delOwn.objects[0].action, 'deleted', 'the daemon\'s own name always names it');
  await daemon.settled();
  t.is(programmed.length, 1, 'one node change: the delete\'s');
  t.is(ownPrograms, 0, 'nothing for the daemon to re-program after the delete either');
  t.true(programmed.every((n) => n !== null && n.routes.some((x) => x.prefix === '10.128.0.0/9')), JSON.stringify(programmed.map((n) => n?.routes)));
  const deleted = await api.call('GET', '/api/v1/nodeconfig');
  t.deepEqual(deleted.spec.routes, before.routes);
  t.deepEqual(deleted.spec.nodeAddresses, ['192.168.100.2'], 'the configured node addresses again');
  t.is(deleted.metadata.annotations, undefined);
  t.deepEqual(await frontends(), ['192.168.100.2']);
  // and a restart now starts with the configured ones
  await daemon.stop();
  daemon = await startDaemon(cfg, { logger: pino({ level: 'silent' }), portNetns: ns });
  t.deepEqual((await api.call('GET', '/api/v1/nodeconfig')).spec.nodeAddresses, ['192.168.100.2']);
  // applied again, then a restart under another node name: another node's addresses, not taken
  await post('/api/v1/apply', [applied]);
  await daemon.stop();
  daemon = await startDaemon({ ...cfg, node: { ...cfg.node, name: 'n2' } }, { logger: pino({ level: 'silent' }), portNetns: ns });
  const other = await api.call('GET', '/api/v1/nodeconfig');
  t.deepEqual([other.metadata.name, other.spec.nodeAddresses, other.metadata.annotations], ['n2', ['192.168.100.2'], undefined]);
});
