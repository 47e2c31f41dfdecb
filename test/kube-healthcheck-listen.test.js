// Where the healthCheckNodePort servers listen when the daemon config names the node addresses
// (node.addresses) and no kubernetes.nodePortAddresses: kube-proxy's health servers listen on its
// nodePortAddresses (nftables' default "primary": the node IP), the addresses NodePorts are
// served on — here the configured node addresses, not every address of the host.
import test from 'ava';
import { apiService, apiSlice, apiNode, startKube, until, freePort } from './lib/kube-fixture.js';

test('healthCheckNodePort with node.addresses configured and no nodePortAddresses: listens on those addresses (where NodePorts are), not on the wildcard', async (t) => {
  const port = await freePort();
  const lb = apiService('lb', '10.96.7.1', { type: 'LoadBalancer', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }], extra: { externalTrafficPolicy: 'Local', healthCheckNodePort: port } });
  const k = await startKube(t, {
    configuredAddresses: ['127.0.0.1'],
    config: { healthCheckBindAddress: undefined },
    seed: (d) => {
      d.create('nodes', apiNode('node-a'));
      d.create('services', lb);
      d.create('endpointslices', apiSlice('lb-1', 'lb', ['10.244.1.10']));
    },
  });
  const listeners = await until(() => { const p = k.watcher.serviceHealth.ports(); return p.length > 0 && p; }, { what: 'health check listener' });
  t.deepEqual(listeners.map((l) => `${l.family}:${l.host}:${l.port}`), [`4:127.0.0.1:${port}`]);
  const r = await fetch(`http://127.0.0.1:${port}/`);
  t.is(r.status, 200);
  t.is((await r.json()).localEndpoints, 1);
});
