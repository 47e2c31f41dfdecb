// healthCheckNodePort 0 is "not set", as the API server reads it (an int32: 0 and absent are the
// same field; its validation checks only a non-zero one): accepted on any Service and not kept,
// the fast path and zod alike.
import test from 'ava';
import { validateObject, validateObjectZod } from '../dist/src/model/schema.js';

const svc = (spec) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'a', namespace: 'default' }, spec });

test('healthCheckNodePort 0 is unset: a ClusterIP Service and a LoadBalancer (Local) with it are accepted, without a health check port', (t) => {
  for (const spec of [
    { clusterIP: '10.96.0.5', healthCheckNodePort: 0, ports: [{ port: 80 }] },
    { type: 'LoadBalancer', clusterIP: '10.96.0.6', externalTrafficPolicy: 'Local', healthCheckNodePort: 0, ports: [{ port: 80, nodePort: 30001 }] },
  ]) {
    const a = validateObject(svc(structuredClone(spec))), b = validateObjectZod(svc(structuredClone(spec)));
    t.deepEqual(a, b);
    t.true(a.ok, JSON.stringify(a.errors));
    t.is(a.obj.healthCheckNodePort, undefined);
  }
});
