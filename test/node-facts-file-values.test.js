// node-facts.json holds what goes into the daemon's own NodeConfig at a start that cannot read the
// Node, and that NodeConfig is the start's first program, whose refusal fails the start: a file
// whose pod CIDRs are not CIDRs, or whose zone the NodeConfig cannot take, is unusable (the start
// then takes the facts from the saved node config, logged), never a start that fails on it.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { readNodeFacts, NODE_FACTS_FILE } from '../dist/src/daemon/node-facts-file.js';
import { validateObject } from '../dist/src/model/schema.js';

const FACTS = { addresses: ['192.168.1.2'], primary: ['192.168.1.2'], podCIDRs: ['10.244.1.0/24'], zone: 'z' };

test('pod CIDRs that are not CIDRs, and a zone longer than a label value, make the file unusable; what it accepts a NodeConfig takes', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-nodefacts-v-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const put = (node) => { writeFileSync(join(dir, NODE_FACTS_FILE), JSON.stringify({ version: 1, node })); return readNodeFacts(dir); };
  const nodeConfig = (f) => validateObject({ apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node' }, spec: { nodeName: 'node-a', nodeAddresses: f.addresses, podCIDRs: f.podCIDRs, ...(f.zone ? { zone: f.zone } : {}) } });
  t.true(nodeConfig(FACTS).ok, JSON.stringify(nodeConfig(FACTS).errors));
  for (const bad of [{ podCIDRs: ['nonsense'] }, { podCIDRs: ['10.244.1.0'] }, { podCIDRs: ['10.244.1.5/24'] }, { zone: 'z'.repeat(64) }]) {
    t.false(nodeConfig({ ...FACTS, ...bad }).ok, `a NodeConfig refuses ${JSON.stringify(bad)}`);
    t.like(put({ ...FACTS, ...bad }), { state: 'unusable' }, JSON.stringify(bad));
  }
  t.like(put(FACTS), { state: 'saved' });
  t.like(put({ ...FACTS, zone: '' }), { state: 'saved' }, 'no zone label');
});
