// The index of the Services' external IP and LB ingress ports by address that the host port
// follows (src/daemon/host-service-ports.ts), read from the compiler's diffs as the dataplane gets
// them: a full compile's column lists and the incremental path's arrays alike; an apply that fails
// changes nothing.
import test from 'ava';
import { Compiler } from '../dist/src/compiler/compiler.js';
import { validateAll } from '../dist/src/model/schema.js';
import { ExternalPorts, followApplies } from '../dist/src/daemon/host-service-ports.js';

const node = { apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' }, spec: { nodeAddresses: ['192.168.0.1', 'fd00:1::1'] } };
const svc = (name, spec, status) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec, ...(status ? { status } : {}) });
const ext = (port = 8080, ips = ['192.168.0.1']) => svc('ext', { clusterIP: '10.96.0.1', externalIPs: ips, ports: [{ name: 'http', port, protocol: 'TCP' }, { name: 'dns', port: 53, protocol: 'UDP' }] });
const lb = svc('lb', { type: 'LoadBalancer', clusterIP: '10.96.0.2', ports: [{ name: 'https', port: 443, nodePort: 30443 }] }, { loadBalancer: { ingress: [{ ip: '192.168.0.1' }, { ip: '203.0.113.7' }] } });
const plain = svc('plain', { type: 'NodePort', clusterIP: '10.96.0.3', ports: [{ name: 'http', port: 8081, nodePort: 30081 }] });

/** A dataplane that takes every diff (or refuses them), and the index following it. */
function follow(fail = () => false, watched = ['192.168.0.1', '203.0.113.7', '198.51.100.9']) {
  const ports = new ExternalPorts(), seen = [];
  ports.watch(watched);
  const dp = { apply: async () => { if (fail()) throw new Error('refused'); return { generation: 1, programmedAtNs: 0 }; }, generation: () => 1 };
  return { ports, seen, dp: followApplies(dp, ports, (a) => seen.push([...a].sort())) };
}
const at = (ports, a) => [...ports.portsAt(a)].sort();

test('a full compile (column lists) and incremental changes: the external and LB ports by address; NodePorts and ClusterIPs are not in it', async (t) => {
  const c = new Compiler(), { ports, seen, dp } = follow();
  const ch = c.change({ upsert: validateAll([node, ext(), lb, plain]) });
  t.truthy(ch.diff.frontendsUpsert.forEachId, 'a full compile\'s list read from the columns');
  await dp.apply(ch.diff, c.ir);
  t.deepEqual(at(ports, '192.168.0.1'), ['tcp 443', 'tcp 8080', 'udp 53']);
  t.deepEqual(at(ports, '203.0.113.7'), ['tcp 443']);
  t.deepEqual(at(ports, '10.96.0.3'), []);
  t.deepEqual(seen, [['192.168.0.1', '203.0.113.7']]);
  t.is(dp.generation(), 1, 'the rest of the dataplane as it is');

  // the port number changed (the same frontend id): the old port goes, the new one comes
  const ch2 = c.change({ upsert: validateAll([ext(8090)]) });
  await dp.apply(ch2.diff, c.ir);
  t.deepEqual(at(ports, '192.168.0.1'), ['tcp 443', 'tcp 8090', 'udp 53']);
  t.deepEqual(seen[1], ['192.168.0.1']);
  // the external IP moved to another address; then the Service went
  await dp.apply(c.change({ upsert: validateAll([ext(8090, ['198.51.100.9'])]) }).diff, c.ir);
  t.deepEqual(at(ports, '192.168.0.1'), ['tcp 443']);
  t.deepEqual(at(ports, '198.51.100.9'), ['tcp 8090', 'udp 53']);
  await dp.apply(c.change({ remove: [{ kind: 'Service', namespace: 'default', name: 'lb' }] }).diff, c.ir);
  t.deepEqual(at(ports, '192.168.0.1'), []);
  t.deepEqual(at(ports, '203.0.113.7'), []);
});

test('only the watched addresses are indexed; watching others rebuilds from the Ir the last diff came with', async (t) => {
  const c = new Compiler(), { ports, seen, dp } = follow(undefined, ['192.168.0.1']);
  await dp.apply(c.change({ upsert: validateAll([node, ext(), lb, plain]) }).diff, c.ir);
  t.deepEqual(at(ports, '192.168.0.1'), ['tcp 443', 'tcp 8080', 'udp 53']);
  t.deepEqual(at(ports, '203.0.113.7'), [], 'not watched');
  t.deepEqual(seen, [['192.168.0.1']]);
  ports.watch(['203.0.113.7']);
  t.deepEqual(at(ports, '203.0.113.7'), ['tcp 443']);
  t.deepEqual(at(ports, '192.168.0.1'), [], 'no longer watched');
  await dp.apply(c.change({ upsert: validateAll([ext(8090, ['203.0.113.7'])]) }).diff, c.ir);
  t.deepEqual(at(ports, '203.0.113.7'), ['tcp 443', 'tcp 8090', 'udp 53']);
});

test('an apply the dataplane refuses changes nothing; its undo is taken like any diff', async (t) => {
  const c = new Compiler();
  let refuse = false;
  const { ports, seen, dp } = follow(() => refuse);
  await dp.apply(c.change({ upsert: validateAll([node, ext()]) }).diff, c.ir);
  refuse = true;
  const ch = c.change({ remove: [{ kind: 'Service', namespace: 'default', name: 'ext' }] });
  await t.throwsAsync(dp.apply(ch.diff, c.ir), { message: 'refused' });
  t.deepEqual(at(ports, '192.168.0.1'), ['tcp 8080', 'udp 53'], 'as the dataplane still has it');
  refuse = false;
  ch.rollback();
  await dp.apply(ch.undoDiff, c.ir);
  t.deepEqual(at(ports, '192.168.0.1'), ['tcp 8080', 'udp 53']);
  t.is(seen.length, 1);
});
