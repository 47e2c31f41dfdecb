// <stateDir>/ports.json (the runtime ports, src/daemon/port-manager.ts): written atomically and
// durably (tmp, fsync, rename, directory fsync; mode 0600 like the state directory's other files),
// and a truncated or invalid one at start — a power loss before it reached the disk — is a logged
// fallback (kept aside for inspection, the config's ports start), never a crash. TAP ports without
// a namespace and a stand-in dataplane: nothing in the kernel is touched.
import test from 'ava';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { parseConfig } from '../dist/src/daemon/config.js';
import { PortManager } from '../dist/src/daemon/port-manager.js';

const tap = (name) => ({ name, type: 'tap', ifname: `t-${name}`, role: 'pod', gateways: ['10.244.0.1'] });

function setup(t) {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-portsfile-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = parseConfig({ node: { name: 'node-a', addresses: ['192.168.100.2'] }, stateDir: dir, ports: [tap('cfg-0')] });
  const lines = [];
  const log = pino({ level: 'info' }, { write: (s) => lines.push(JSON.parse(s)) });
  return { dir, cfg, lines, log };
}

const VALID = JSON.stringify({ ports: [tap('a'), tap('b')], indexes: [1, 2], attachments: [null, null] }, null, 1);

for (const [what, text] of [
  ['a truncated ports.json', VALID.slice(0, Math.floor(VALID.length / 2))],
  ['an empty ports.json (its data never reached the disk)', ''],
  ['a ports.json of null', 'null'],
  ['a ports.json without a list of ports', '{"ports":"a"}'],
]) {
  test(`${what} at start: logged, kept aside, the config's ports start`, (t) => {
    const { dir, cfg, lines, log } = setup(t);
    writeFileSync(join(dir, 'ports.json'), text);
    const pm = new PortManager(cfg, log);
    t.deepEqual(pm.initialSpecs().map((s) => s.name), ['cfg-0']);
    const l = lines.find((x) => x.msg === 'saved runtime ports unreadable: starting without them');
    t.truthy(l, JSON.stringify(lines));
    t.is(l.level, 50, 'an error');
    t.regex(l.problem, /not JSON|no list of ports/);
    t.regex(l.keptAs, /ports\.json\.rejected-/);
    t.is(readFileSync(l.keptAs, 'utf8'), text, 'kept as it was');
    t.false(readdirSync(dir).includes('ports.json'));
  });
}

test('ports.json is written through a synced temporary file, mode 0600, none left behind', async (t) => {
  const { dir, cfg, log } = setup(t);
  const pm = new PortManager(cfg, log);
  pm.initialSpecs();
  await pm.attach({
    addPort: async (_w, spec) => ({ name: spec.name, index: spec.index, mac: spec.mac, kind: 'stand-in', stats: {} }),
    removePort: async () => {},
    ports: async () => [],
  });
  await pm.add(tap('a'));
  t.deepEqual(readdirSync(dir).filter((f) => f.startsWith('ports.json')), ['ports.json']);
  t.is(statSync(join(dir, 'ports.json')).mode & 0o777, 0o600);
  t.deepEqual(JSON.parse(readFileSync(join(dir, 'ports.json'), 'utf8')).ports.map((p) => p.name), ['a']);
  // and the next start takes it
  t.true(new PortManager(cfg, pino({ level: 'silent' })).initialSpecs().some((s) => s.name === 'a'));
});
