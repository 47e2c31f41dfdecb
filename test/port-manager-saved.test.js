// The runtime ports saved in <stateDir>/ports.json come back at the next start under their saved
// indexes (src/daemon/port-manager.ts); one whose index is taken gets a free one — never an index
// another port has. TAP ports without a namespace: nothing in the kernel is touched.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { parseConfig } from '../dist/src/daemon/config.js';
import { PortManager } from '../dist/src/daemon/port-manager.js';

const tap = (name) => ({ name, type: 'tap', ifname: `t-${name}`, role: 'pod', gateways: ['10.244.0.1'] });

test('saved runtime ports keep their indexes; one whose index is taken gets one no port has, even next to the highest index', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-ports-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = parseConfig({ node: { name: 'node-a', addresses: ['192.168.100.2'] }, stateDir: dir, ports: [tap('cfg-0')] });
  // a (after the indexes wrapped) at the highest index, b below it, c at an index the config's
  // port has now
  writeFileSync(join(dir, 'ports.json'), JSON.stringify({ ports: [tap('a'), tap('b'), tap('c')], indexes: [0xfffe, 0xfffd, 0] }));
  const pm = new PortManager(cfg, pino({ level: 'silent' }));
  const specs = pm.initialSpecs();
  const byName = Object.fromEntries(specs.map((s) => [s.name, s.index]));
  t.deepEqual(Object.keys(byName).sort(), ['a', 'b', 'c', 'cfg-0']);
  t.like(byName, { 'cfg-0': 0, a: 0xfffe, b: 0xfffd });
  t.is(new Set(specs.map((s) => s.index)).size, specs.length, `distinct indexes: ${JSON.stringify(byName)}`);
  t.true(specs.every((s) => s.index >= 0 && s.index <= 0xfffe));
});

test('close (the daemon\'s stop) waits for the port change under way; after it no add, remove or link check starts', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-ports-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = parseConfig({ node: { name: 'node-a', addresses: ['192.168.100.2'] }, stateDir: dir, ports: [tap('cfg-0')] });
  const pm = new PortManager(cfg, pino({ level: 'silent' }));
  let open;
  const opened = new Promise((r) => { open = r; });
  const calls = [];
  await pm.attach({
    addPort: async (_w, spec) => { calls.push(`add ${spec.name}`); await opened; return { name: spec.name, index: spec.index, mac: spec.mac, kind: 'stand-in', stats: {} }; },
    removePort: async (_w, index) => { calls.push(`remove ${index}`); },
    ports: async () => [],
  });
  const adding = pm.add(tap('a'));
  await new Promise((r) => setImmediate(r));
  t.deepEqual(calls, ['add a']);
  let closed = false;
  const closing = pm.close().then(() => { closed = true; });
  await new Promise((r) => setTimeout(r, 20));
  t.false(closed, 'close waits for the add under way');
  open();
  await adding;
  await closing;
  t.true(closed);
  t.deepEqual(await pm.checkLinks(), []);
  await t.throwsAsync(pm.add(tap('b')), { message: /not running/ });
  await t.throwsAsync(pm.remove('a'), { message: /not running/ });
  t.deepEqual(calls, ['add a'], 'nothing reached the dataplane after close');
});
