// src/core/node-flag-sweep.ts: when an apply asks the core to decide every flow's node flag again —
// only when it changes the node's addresses (the SNAT addresses, the routes with localSource
// 'node'), whatever else it carries, and at the first apply over a restart's table image.
import test from 'ava';
import { NodeFlagSweep } from '../dist/src/core/node-flag-sweep.js';

const none = { outPort: 0xffff, dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00' };
const node = (prefix) => ({ prefix, ...none, localSource: 'node' });
const pod = (prefix) => ({ prefix, ...none, localSource: 'pod' });
const route = (prefix) => ({ prefix, outPort: 1, dstMac: '02:00:00:00:00:01', srcMac: '02:00:00:00:00:02' });
const diff = (extra = {}) => ({ frontendsUpsert: [], frontendsRemove: [], backendsUpsert: [], backendsRemove: [], ...extra });

test('sweeps only when the node addresses change; counts the sweeps and the flows they changed', (t) => {
  let calls = 0;
  const core = { exports: { ct_node_sweep: () => { calls++; return 3; } } };
  const s = new NodeFlagSweep();
  s.applied(core, diff());
  t.is(calls, 0, 'nothing about routes or SNAT');
  s.applied(core, diff({ routes: [route('10.1.0.0/16'), pod('10.1.0.0/16')] }));
  t.is(calls, 0, 'routes without node entries (none before either)');
  s.applied(core, diff({ routes: [route('10.1.0.0/16'), node('192.168.0.1/32'), node('fd00::1/128')] }));
  t.is(calls, 1, 'node entries added');
  s.applied(core, diff({ routes: [node('fd00::1/128'), route('10.2.0.0/16'), node('192.168.0.1/32')] }));
  t.is(calls, 1, 'the same node entries, another order, other routes');
  s.applied(core, diff({ snat: { v4: '192.168.0.1', v6: undefined, hairpinV4: '169.254.0.1' } }));
  t.is(calls, 2, 'a SNAT address set');
  s.applied(core, diff({ snat: { v4: '192.168.0.1', v6: undefined, hairpinV4: '169.254.0.2' } }));
  t.is(calls, 2, 'only the hairpin address changed: no node address');
  s.applied(core, diff({ routes: [node('192.168.0.1/32')] }));
  t.is(calls, 3, 'a node entry removed');
  s.applied(core, diff(), true);
  t.is(calls, 4, 'the first apply over a table image: always');
  t.deepEqual([s.sweeps, s.changed], [4, 12]);
});

test('a new core starts from what its tables hold', (t) => {
  let calls = 0;
  const core = { exports: { ct_node_sweep: () => { calls++; return 0; } } };
  const s = new NodeFlagSweep('192.168.0.1', undefined, [node('192.168.0.1/32')]);
  s.applied(core, diff({ snat: { v4: '192.168.0.1' }, routes: [node('192.168.0.1/32')] }));
  t.is(calls, 0);
});
