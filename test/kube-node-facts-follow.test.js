// The watcher tells the daemon (onNode) whenever the Node's facts change, not only when the
// addresses it selects from them do: the daemon saves the facts (node-facts.json) for a restart
// that cannot read the Node, which selects from them with the config as it is then. With
// node.addresses configured the Node's own addresses select nothing now, but a restart whose
// config no longer lists node.addresses takes them as last seen.
import test from 'ava';
import { apiNode, startKube, until } from './lib/kube-fixture.js';

test('a Node address the config does not select now still reaches onNode (the facts a restart takes)', async (t) => {
  const k = await startKube(t, {
    configuredAddresses: ['192.168.100.2'],
    seed: (d) => d.create('nodes', apiNode('node-a')),
  });
  await until(() => k.watcher.nodeState(), { what: 'the Node read' });
  await until(() => k.nodeUpdates.length >= 1, { what: 'the first update' });
  const n = k.nodeUpdates.length;
  k.double.update('nodes', apiNode('node-a', { addresses: [{ type: 'InternalIP', address: '192.168.100.2' }, { type: 'ExternalIP', address: '203.0.113.5' }] }));
  await until(() => k.watcher.nodeState()?.addresses.includes('203.0.113.5'), { what: 'the Node\'s new address read' });
  await until(() => k.nodeUpdates.length > n, { what: 'onNode called' });
  t.deepEqual(k.nodeUpdates.at(-1).addresses, ['192.168.100.2'], 'the selection is the same');
});
