// healthCheckNodePort servers across a restart with the API server away (`wdp start` in its
// network namespace, fed by the API-server double). The restarted daemon forwards from the state it
// restored; the health checks of its Services with externalTrafficPolicy Local answer from that
// same restored state from the start on — the local endpoint count the restored slices give — not
// only after the first sync, which waits for the API server: else the cloud load balancers drain
// the node for those Services while it forwards them.
import test from 'ava';
import { READY, SVC, EPS, service, cluster, slice, kit, kubeNode, stopWithApiAway } from './lib/kube-e2e-kit.js';
import { rootGate, destroyTopology, api, curl, startDaemon } from './lib/topology.js';

const { ok: root, serial } = rootGate(test, { tools: ['curl'] });
let topo;
let double;
const { put, until } = kit(() => topo, () => double);

test.before(async () => {
  if (!root) return;
  ({ topo, double } = await kubeNode('kh'));
});
test.after.always(async () => { await destroyTopology(topo); });

/** A GET of a healthCheckNodePort on the node (its wildcard listener, healthCheckBindAddress 0.0.0.0). */
const check = (port) => curl(topo, topo.ns.dp, `http://127.0.0.1:${port}/`, { timeout: 3 });
/** The HTTP status of a healthCheckNodePort; 0 when nothing answers. */
async function status(port) {
  const r = await topo.lab.execAsync(topo.ns.dp, 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '3', `http://127.0.0.1:${port}/`], { timeoutMs: 8000 });
  return Number(r.stdout.trim()) || 0;
}

const lb = (ip, nodePort, hc, lbIP) => ({
  ...cluster(ip, [{ name: 'http', port: 80, targetPort: 8080, nodePort }], { type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: hc }), lbIP,
});

serial('a restart with the API server away: the healthCheckNodePorts answer from the restored state at once, 200 with the local endpoint count, 503 without local endpoints', async (t) => {
  const [a, b, c] = topo.pods;
  await put(SVC, service('hclocal', lb('10.96.57.10', 30571, 32571, '203.0.113.71')));
  await put(EPS, slice('hclocal-1', 'hclocal', [{ name: 'http', port: 8080 }], [[a, READY], [b, READY], [c, READY, 'node-b']]));
  await put(SVC, service('hcnone', lb('10.96.57.11', 30572, 32572, '203.0.113.72')));
  await put(EPS, slice('hcnone-1', 'hcnone', [{ name: 'http', port: 8080 }], [[c, READY, 'node-b']]));
  t.is(await until(200, () => status(32571)), 200, 'before the restart: local endpoints, 200');
  t.is(await until(503, () => status(32572)), 503, 'before the restart: none local, 503');

  t.is(await stopWithApiAway(topo), 0);
  await startDaemon(topo);
  t.like((await api(topo, 'GET', '/api/v1/generation')).json.restore, { objects: { services: 2 } }, 'restored from the saved state');
  // no sync can run (nothing answers where the kubeconfig points): the answers are the restored state's
  const local = await check(32571);
  t.is(local.code, 0, `the health check of hclocal answers: ${local.stderr}\n${topo.daemonLog.slice(-2000)}`);
  t.is(local.headers['x-load-balancing-endpoint-weight'], '2');
  t.deepEqual(JSON.parse(local.body), { service: { namespace: 'default', name: 'hclocal' }, localEndpoints: 2, serviceProxyHealthy: true }, local.body);
  t.is(await status(32571), 200, '200: two ready local endpoints restored');
  const none = await check(32572);
  t.is(none.code, 0, `the health check of hcnone answers: ${none.stderr}`);
  t.deepEqual(JSON.parse(none.body), { service: { namespace: 'default', name: 'hcnone' }, localEndpoints: 0, serviceProxyHealthy: true }, none.body);
  t.is(await status(32572), 503, '503: no local endpoint restored');
});
