// CNI GC on the daemon's side (src/daemon/cni-gc.ts, PortManager.removeWhere, POST /api/v1/cni/gc):
// a runtime port records the CNI attachment its ADD made it for (network, containerID, ifname),
// saved with it; a GC of network N removes N's ports whose attachment is not in the valid list, as
// a DEL would, and leaves other networks' ports, ports without an attachment (added by hand, or
// saved before attachments were recorded) and config-file ports alone. TAP ports without a
// namespace and a stand-in dataplane: nothing in the kernel is touched.
import test from 'ava';
import Fastify from 'fastify';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { parseConfig, parsePortConfig } from '../dist/src/daemon/config.js';
import { PortManager } from '../dist/src/daemon/port-manager.js';
import { cniGc, parseCniGcRequest } from '../dist/src/daemon/cni-gc.js';
import { registerPortRoutes } from '../dist/src/api/ports-routes.js';

const tap = (name, attachment, ifname = `t-${name}`) => ({ name, type: 'tap', ifname, role: 'pod', gateways: ['10.244.0.1'], ...(attachment ? { attachment } : {}) });
const att = (network, containerID, ifname = 'eth0') => ({ network, containerID, ifname });

/** A port manager over a stand-in dataplane in a fresh state directory; `failRemove`: indexes whose
 * removal the dataplane refuses. */
async function setup(t, { saved, failRemove = new Set(), dir } = {}) {
  dir ??= mkdtempSync(join(tmpdir(), 'wdp-cnigc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  if (saved) writeFileSync(join(dir, 'ports.json'), JSON.stringify(saved));
  const cfg = parseConfig({ node: { name: 'node-a', addresses: ['192.168.100.2'] }, stateDir: dir, ports: [tap('cfg-0')] });
  const changed = [], removedIdx = [];
  const pm = new PortManager(cfg, pino({ level: 'silent' }), undefined, { changed: (p, how) => { changed.push(`${how} ${p.spec.name}`); } });
  const open = new Set(pm.initialSpecs().map((s) => s.index));
  await pm.attach({
    addPort: async (_w, spec) => { open.add(spec.index); return { name: spec.name, index: spec.index, mac: spec.mac, kind: 'stand-in', stats: {} }; },
    removePort: async (_w, index) => { if (failRemove.has(index)) throw new Error('worker timed out'); open.delete(index); removedIdx.push(index); },
    ports: async () => [...open].map((index) => ({ index, name: `p${index}`, mac: '02:00:00:00:00:01', kind: 'stand-in', stats: {} })),
  });
  changed.length = 0;
  return { pm, dir, changed, removedIdx };
}

const names = async (pm) => (await pm.list()).map((p) => p.name).sort();
const savedFile = (dir) => JSON.parse(readFileSync(join(dir, 'ports.json'), 'utf8'));

test('GC of a network removes its ports whose attachment is not valid, as a DEL would; other networks\', unrecorded and config ports stay', async (t) => {
  const { pm, dir, changed, removedIdx } = await setup(t);
  await pm.add(tap('a1', att('net-a', 'c1')));
  await pm.add(tap('a2', att('net-a', 'c2')));
  await pm.add(tap('a3', att('net-a', 'c1', 'net1')));   // the same container, a second interface
  await pm.add(tap('b1', att('net-b', 'c3')));
  await pm.add(tap('manual'));
  const a2 = pm.byName('a2').spec.index;
  changed.length = 0;
  const r = await cniGc(pm, { network: 'net-a', validAttachments: [{ containerID: 'c1', ifname: 'eth0' }, { containerID: 'c9', ifname: 'eth0' }] });
  t.deepEqual(r, { network: 'net-a', removed: ['a2', 'a3'], failed: [] });
  t.deepEqual(await names(pm), ['a1', 'b1', 'cfg-0', 'manual']);
  t.true(removedIdx.includes(a2), 'closed in its worker');
  t.deepEqual(changed, ['removed a2', 'removed a3'], 'its neighbours forgotten and the node config re-programmed, as for a DEL');
  t.deepEqual(savedFile(dir).ports.map((p) => p.name).sort(), ['a1', 'b1', 'manual'], 'and no longer saved');
  // an empty list: nothing of net-b is valid any more; net-a's and the others stay
  t.deepEqual((await cniGc(pm, { network: 'net-b', validAttachments: [] })).removed, ['b1']);
  t.deepEqual((await cniGc(pm, { network: 'net-c', validAttachments: [] })).removed, [], 'a network with no ports');
  t.deepEqual(await names(pm), ['a1', 'cfg-0', 'manual']);
  t.like((await pm.list()).find((p) => p.name === 'a1'), { attachment: att('net-a', 'c1') }, 'the ports API shows the attachment');
});

test('attachments are saved with their ports and survive a restart; a GC after it removes what is stale', async (t) => {
  const first = await setup(t);
  await first.pm.add(tap('a1', att('net-a', 'c1')));
  await first.pm.add(tap('a2', att('net-a', 'c2')));
  const saved = savedFile(first.dir);
  t.deepEqual(saved.attachments, [att('net-a', 'c1'), att('net-a', 'c2')]);
  // beside the ports, not in them: a wdp from before attachments (a downgrade) reads the ports as
  // it wrote them (its strict schema would drop a port with an unknown field)
  t.true(saved.ports.every((p) => !('attachment' in p)), JSON.stringify(saved.ports));
  await first.pm.add(tap('manual'));
  t.deepEqual(savedFile(first.dir).attachments, [att('net-a', 'c1'), att('net-a', 'c2'), null]);
  await first.pm.close();
  const again = await setup(t, { dir: first.dir });
  t.deepEqual(again.pm.all().filter((p) => p.origin === 'api').map((p) => [p.spec.name, p.config.attachment]), [['a1', att('net-a', 'c1')], ['a2', att('net-a', 'c2')], ['manual', undefined]]);
  t.deepEqual((await cniGc(again.pm, { network: 'net-a', validAttachments: [{ containerID: 'c2', ifname: 'eth0' }] })).removed, ['a1']);
  t.deepEqual(savedFile(first.dir).attachments, [att('net-a', 'c2'), null]);
});

test('a saved attachment that is not valid costs its port only the attachment: restored without it, never GC\'d', async (t) => {
  const { pm } = await setup(t, { saved: { ports: [tap('a1'), tap('a2')], indexes: [5, 6], attachments: [att('net-a', '-bad'), att('net-a', 'c2')] } });
  t.deepEqual(await names(pm), ['a1', 'a2', 'cfg-0']);
  t.is(pm.byName('a1').config.attachment, undefined);
  t.deepEqual((await cniGc(pm, { network: 'net-a', validAttachments: [] })).removed, ['a2']);
});

test('ports saved before attachments were recorded are restored and never GC\'d', async (t) => {
  // ports.json as an older wdp wrote it: ports without an attachment (a CNI port's name, a hand-made one)
  const { pm } = await setup(t, { saved: { ports: [tap('cni-0123456789abcdef', undefined, 't-cni'), tap('legacy')], indexes: [5, 6] } });
  t.deepEqual(await names(pm), ['cfg-0', 'cni-0123456789abcdef', 'legacy']);
  for (const network of ['k8s-pod-network', 'net-a']) t.deepEqual((await cniGc(pm, { network, validAttachments: [] })).removed, []);
  t.deepEqual(await names(pm), ['cfg-0', 'cni-0123456789abcdef', 'legacy']);
});

test('a port that fails to go does not stop the others: it stays, listed with its error', async (t) => {
  const probe = await setup(t);
  await probe.pm.add(tap('a1', att('net-a', 'c1')));
  const stuck = probe.pm.byName('a1').spec.index;
  await probe.pm.close();
  const { pm } = await setup(t, { dir: probe.dir, failRemove: new Set([stuck]) });
  await pm.add(tap('a2', att('net-a', 'c2')));
  const r = await cniGc(pm, { network: 'net-a', validAttachments: [] });
  t.deepEqual(r.removed, ['a2']);
  t.deepEqual(r.failed, [{ name: 'a1', error: 'worker timed out' }]);
  t.deepEqual(await names(pm), ['a1', 'cfg-0'], 'kept for the next GC');
});

test('a GC request is checked whole: a bad one removes nothing', async (t) => {
  const { pm } = await setup(t);
  await pm.add(tap('a1', att('net-a', 'c1')));
  for (const body of [
    {}, { network: 'net-a' }, { network: 'net-a', validAttachments: 'c1' }, { network: '', validAttachments: [] },
    { network: 'net-a', validAttachments: [{ containerID: 'c2', ifname: 'eth0' }, { containerID: 'c1' }] },
    { network: 'net-a', validAttachments: [{ containerID: 'c1', ifname: 'eth0', extra: 1 }] },
    { network: 'net-a', validAttachments: [], other: true }, ['net-a'], null,
  ]) t.throws(() => cniGc(pm, body), { message: /invalid CNI GC request|body must be/ }, JSON.stringify(body));
  t.deepEqual(await names(pm), ['a1', 'cfg-0']);
  t.deepEqual([...parseCniGcRequest({ network: 'net-a', validAttachments: [{ containerID: 'c1', ifname: 'eth0' }] }).valid].length, 1);
});

test('the attachment of a port is validated; a config-file port cannot have one', (t) => {
  t.deepEqual(parsePortConfig(tap('x', att('k8s-pod-network', 'abc123_x.y-z', 'net1'))).attachment, att('k8s-pod-network', 'abc123_x.y-z', 'net1'));
  for (const bad of [att('-net', 'c1'), att('net', ''), att('net', 'c1', 'a/b'), att('net', 'c1', 'sixteen-chars-xx'), att('net', 'c1', '..'), { ...att('n', 'c'), more: 1 }]) {
    t.throws(() => parsePortConfig(tap('x', bad)), { message: /attachment/ }, JSON.stringify(bad));
  }
  t.throws(() => parseConfig({ node: { name: 'node-a', addresses: ['192.168.100.2'] }, ports: [tap('cfg-0', att('n', 'c'))] }), { message: /ports\[0\]\.attachment: only a port the CNI plugin adds/ });
});

test('POST /api/v1/cni/gc: 200 with what was removed; 400 no object; 422 invalid, nothing removed; 503 while stopped', async (t) => {
  const { pm } = await setup(t);
  await pm.add(tap('a1', att('net-a', 'c1')));
  await pm.add(tap('a2', att('net-a', 'c2')));
  const app = Fastify();
  app.removeAllContentTypeParsers(); // as the control API does: the routes get the body's text
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  registerPortRoutes(app, pm);
  t.teardown(() => app.close());
  const post = (payload) => app.inject({ method: 'POST', url: '/api/v1/cni/gc', headers: { 'content-type': 'application/json' }, payload });
  let r = await post('[]');
  t.is(r.statusCode, 400);
  r = await post(JSON.stringify({ network: 'net-a', validAttachments: [{ containerID: 'c1' }] }));
  t.is(r.statusCode, 422);
  t.regex(r.json().message, /validAttachments\[0\]/);
  t.deepEqual(await names(pm), ['a1', 'a2', 'cfg-0']);
  r = await post(JSON.stringify({ network: 'net-a', validAttachments: [{ containerID: 'c1', ifname: 'eth0' }] }));
  t.is(r.statusCode, 200, r.body);
  t.deepEqual(r.json(), { kind: 'CniGcResult', network: 'net-a', removed: ['a2'], failed: [] });
  await pm.close();
  r = await post(JSON.stringify({ network: 'net-a', validAttachments: [] }));
  t.is(r.statusCode, 503);
  t.deepEqual(await names(pm), ['a1', 'cfg-0']);
});
