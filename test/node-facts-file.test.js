// node-facts-file.ts: the Node's facts saved for a restart — written whole or not at all, read back
// the same, a missing file told apart from a damaged one (which never throws), and the facts of an
// older wdp's state directory read from its saved NodeConfig.
import test from 'ava';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { readNodeFacts, writeNodeFacts, factsOfSavedNodeConfig, NODE_FACTS_FILE } from '../dist/src/daemon/node-facts-file.js';

const dirFor = (t) => { const d = mkdtempSync(join(tmpdir(), 'wdp-nodefacts-')); t.teardown(() => rmSync(d, { recursive: true, force: true })); return d; };
const FACTS = { addresses: ['192.168.1.2', 'fd00::2'], primary: ['192.168.1.2', 'fd00::2'], podCIDRs: ['10.244.1.0/24'], zone: 'z' };

test('written and read back; null (no Node seen) is a saved state too; the file is private and nothing else is left', (t) => {
  const dir = dirFor(t);
  t.deepEqual(readNodeFacts(dir), { state: 'none' });
  writeNodeFacts(dir, FACTS);
  t.deepEqual(readNodeFacts(dir), { state: 'saved', node: FACTS });
  t.is(statSync(join(dir, NODE_FACTS_FILE)).mode & 0o777, 0o600);
  writeNodeFacts(dir, null);
  t.deepEqual(readNodeFacts(dir), { state: 'saved', node: null });
  t.deepEqual(readdirSync(dir), [NODE_FACTS_FILE]);
});

test('a damaged file is unusable with its reason, never thrown', (t) => {
  const dir = dirFor(t);
  const put = (text) => { writeFileSync(join(dir, NODE_FACTS_FILE), text); return readNodeFacts(dir); };
  t.like(put('{"version":1,"node":{"addr'), { state: 'unusable' });
  t.like(put('{"version":2,"node":null}'), { state: 'unusable', reason: 'not version 1' });
  t.like(put('null'), { state: 'unusable' });
  t.like(put(JSON.stringify({ version: 1, node: { ...FACTS, addresses: ['not an address'] } })), { state: 'unusable', reason: 'node.addresses is not a list of IP addresses' });
  t.like(put(JSON.stringify({ version: 1, node: { ...FACTS, zone: 3 } })), { state: 'unusable', reason: 'node.zone is not a string' });
  t.like(put(JSON.stringify({ version: 1, node: 'x' })), { state: 'unusable', reason: 'node is not an object' });
  t.like(put(JSON.stringify({ version: 1 })), { state: 'unusable' }, 'node absent is not null');
});

test('a failed write leaves the previous file', (t) => {
  const dir = dirFor(t);
  writeNodeFacts(dir, FACTS);
  writeFileSync(join(dir, 'a-file'), '');
  t.throws(() => writeNodeFacts(join(dir, 'a-file', 'dir'), null));
  t.deepEqual(readNodeFacts(dir), { state: 'saved', node: FACTS });
});

test('an older wdp\'s saved NodeConfig: its addresses, node IPs, pod CIDRs and zone (what does not parse left out)', (t) => {
  t.is(factsOfSavedNodeConfig(null), null);
  t.is(factsOfSavedNodeConfig({ kind: 'NodeConfig' }), null);
  t.deepEqual(factsOfSavedNodeConfig({ spec: { nodeAddresses: ['192.168.1.2'], nodeIPs: ['192.168.1.2'], podCIDRs: ['10.244.1.0/24'], zone: 'z', nodePortAddresses: ['192.168.1.2'] } }),
    { addresses: ['192.168.1.2'], primary: ['192.168.1.2'], podCIDRs: ['10.244.1.0/24'], zone: 'z' });
  t.deepEqual(factsOfSavedNodeConfig({ spec: { nodeAddresses: ['x'], nodeIPs: 'y' } }), { addresses: [], primary: [], podCIDRs: [], zone: '' });
});

test('the cluster\'s ServiceCIDRs beside the Node\'s facts: absent (not listed yet), saved, or unusable when not CIDRs', (t) => {
  const dir = dirFor(t);
  writeNodeFacts(dir, FACTS);
  t.deepEqual(readNodeFacts(dir), { state: 'saved', node: FACTS });
  writeNodeFacts(dir, FACTS, ['10.99.62.0/24', 'fd00:99::/112']);
  t.deepEqual(readNodeFacts(dir), { state: 'saved', node: FACTS, serviceCIDRs: ['10.99.62.0/24', 'fd00:99::/112'] });
  writeNodeFacts(dir, null, []);
  t.deepEqual(readNodeFacts(dir), { state: 'saved', node: null, serviceCIDRs: [] });
  writeFileSync(join(dir, NODE_FACTS_FILE), JSON.stringify({ version: 1, node: null, serviceCIDRs: ['10.99.62.0'] }));
  t.like(readNodeFacts(dir), { state: 'unusable', reason: 'serviceCIDRs is not a list of CIDRs' });
});
