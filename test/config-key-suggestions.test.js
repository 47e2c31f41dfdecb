// An unknown key in the daemon config says which known key at its level it is close to
// (src/util/suggest.ts): `workers` for `worker`, within 2 edits or a prefix, at every depth and
// for a runtime port too; a key close to nothing gets zod's line alone.
import test from 'ava';
import { parseConfig, parsePortConfig } from '../dist/src/daemon/config.js';
import { didYouMean, similarNames } from '../dist/src/util/suggest.js';

const base = () => ({
  node: { name: 'node-a', addresses: ['192.168.100.2'] },
  ports: [{ name: 'pod-a', type: 'tap', ifname: 'tap-a', role: 'pod', gateways: ['10.244.0.1'] }],
});
const message = (f) => { try { f(); } catch (e) { return e.message; } return ''; };

test('similarNames: within 2 edits (case ignored, a swap is one) or a prefix; the closest only', (t) => {
  t.deepEqual(similarNames('worker', ['workers', 'workerCpus', 'node']), ['workers']);
  t.deepEqual(similarNames('wrokers', ['workers', 'ports']), ['workers']);
  t.deepEqual(similarNames('WORKERS', ['workers']), ['workers']);
  t.deepEqual(similarNames('conntrackFlows', ['conntrack', 'node']), ['conntrack']); // a prefix, 5 edits away
  t.deepEqual(similarNames('bogus', ['workers', 'node', 'ports']), []);
  t.deepEqual(similarNames('x', ['xdpMode']), []); // too short a prefix
  t.is(didYouMean('worker', ['workers']), 'did you mean "workers"?');
  t.is(didYouMean('mtx', ['mtu', 'max']), 'did you mean one of "max", "mtu"?');
  t.is(didYouMean('bogus', ['workers']), '');
});

test('parseConfig: an unknown key close to a known one at its level names it', (t) => {
  const c = { ...base(), worker: 2 };
  t.regex(message(() => parseConfig(c)), /^ {2}\(top level\): Unrecognized key: "worker" \(did you mean "workers"\?\)$/m);
  const deep = base();
  deep.node.addreses = deep.node.addresses; delete deep.node.addresses;
  deep.ports[0].wroker = 0;
  deep.conntrack = { flow: 1024 };
  deep.kubernetes = { syncPeriods: '1s' };
  const m = message(() => parseConfig(deep));
  t.regex(m, /^ {2}node: Unrecognized key: "addreses" \(did you mean "addresses"\?\)$/m);
  t.regex(m, /^ {2}ports\[0\]: Unrecognized key: "wroker" \(did you mean "worker"\?\)$/m);
  t.regex(m, /^ {2}conntrack: Unrecognized key: "flow" \(did you mean "flows"\?\)$/m);
  t.regex(m, /^ {2}kubernetes: Unrecognized key: "syncPeriods" \(did you mean "syncPeriod"\?\)$/m);
  t.regex(message(() => parsePortConfig({ name: 'p', type: 'tap', ifname: 't', role: 'pod', ifnam: 'x' })), /Unrecognized key: "ifnam" \(did you mean "ifname"\?\)$/m);
});

test('parseConfig: several unknown keys, hints for the close ones; none for a key close to nothing', (t) => {
  const m = message(() => parseConfig({ ...base(), worker: 2, bogus: 1 }));
  t.regex(m, /^ {2}\(top level\): Unrecognized keys: "worker", "bogus" \("worker": did you mean "workers"\?\)$/m);
  t.regex(message(() => parseConfig({ ...base(), bogus: 1 })), /^ {2}\(top level\): Unrecognized key: "bogus"$/m);
});
