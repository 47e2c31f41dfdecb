// NodeGiven: what the workers (their answered node addresses) and the host port's TAP (its
// addresses, masquerade source and NodePort addresses) were last given; a node change reaches
// each only when it changes what they have.
import test from 'ava';
import { NodeGiven } from '../dist/src/daemon/node-given.js';

const start = () => new NodeGiven(['192.168.100.2', 'fd00::2'], { snat: { v4: '192.168.100.2', v6: 'fd00::2' }, nodePorts: undefined });
const change = (addresses, snat = { v4: addresses.find((a) => !a.includes(':')), v6: addresses.find((a) => a.includes(':')) }, nodePorts = undefined) => ({ addresses, snat, nodePorts });

test('the node config as given: nobody gets it again, whatever the order of its addresses', (t) => {
  const g = start();
  t.deepEqual(g.take(change(['192.168.100.2', 'fd00::2'])), { host: false, workers: false });
  t.deepEqual(g.take(change(['fd00::2', '192.168.100.2'], { v4: '192.168.100.2', v6: 'fd00::2' })), { host: false, workers: false });
});

test('new node addresses: the host TAP and the workers; the same again: nobody', (t) => {
  const g = start();
  t.deepEqual(g.take(change(['192.168.100.3'])), { host: true, workers: true });
  t.deepEqual(g.take(change(['192.168.100.3'])), { host: false, workers: false });
});

test('only the masquerade source or the NodePort addresses changed: the host TAP alone', (t) => {
  const g = start();
  t.deepEqual(g.take(change(['192.168.100.2', 'fd00::2'], { v4: '10.0.0.9', v6: 'fd00::2' })), { host: true, workers: false });
  t.deepEqual(g.take(change(['192.168.100.2', 'fd00::2'], { v4: '10.0.0.9', v6: 'fd00::2' }, ['192.168.100.2'])), { host: true, workers: false });
  t.deepEqual(g.nodePorts, ['192.168.100.2']);
  t.deepEqual(g.take(change(['192.168.100.2', 'fd00::2'], { v4: '10.0.0.9', v6: 'fd00::2' }, ['192.168.100.2'])), { host: false, workers: false });
  // NodePort addresses unset again: every node address
  t.deepEqual(g.take(change(['192.168.100.2', 'fd00::2'], { v4: '10.0.0.9', v6: 'fd00::2' })), { host: true, workers: false });
  t.is(g.nodePorts, undefined);
});

test('a node config without node addresses: the workers answer none, the host TAP keeps what it has (its masquerade source taken as given)', (t) => {
  const g = new NodeGiven(['192.168.100.2'], { snat: { v4: '192.168.100.2' }, nodePorts: ['192.168.100.2'] });
  t.deepEqual(g.take(change([], {}, ['10.1.1.1'])), { host: false, workers: true });
  t.deepEqual(g.nodePorts, ['192.168.100.2'], 'the host TAP\'s NodePort addresses as they were');
  t.deepEqual(g.take(change([], {}, ['10.1.1.1'])), { host: false, workers: false }, 'nothing new');
  // the addresses back: both again
  t.deepEqual(g.take(change(['192.168.100.2'], { v4: '192.168.100.2' }, ['192.168.100.2'])), { host: true, workers: true });
});

test('the workers\' updates run one after another in the order queued, a failed one does not stop the next, settled() waits for all', async (t) => {
  const g = start();
  const ran = [];
  let release;
  const first = new Promise((r) => { release = r; });
  g.queueWorkers(async () => { await first; ran.push(1); });
  g.queueWorkers(async () => { ran.push(2); throw new Error('worker gone'); });
  g.queueWorkers(async () => { ran.push(3); });
  let settled = false;
  const s = g.settled().then(() => { settled = true; });
  await new Promise((r) => setImmediate(r));
  t.deepEqual(ran, []);
  t.false(settled);
  release();
  await s;
  t.deepEqual(ran, [1, 2, 3]);
  await t.notThrowsAsync(g.settled());
});
