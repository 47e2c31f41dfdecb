// An informer's event handlers that throw (src/kube/informer.ts): the client library calls them
// from an async function nobody awaits, so a throw there was an unhandled rejection, which ends
// the daemon and its forwarding. It is reported and the watch goes on: later events still arrive.
// (ava fails a test file on an unhandled rejection.)
import test from 'ava';
import { KubeConfig } from '@kubernetes/client-node';
import { ApiServerDouble } from './lib/apiserver-double.js';
import { until, apiService } from './lib/kube-fixture.js';
import { ResilientInformer } from '../dist/src/kube/informer.js';
import { SERVICES_PATH } from '../dist/src/kube/objects.js';

test('a handler that throws is reported; the watch goes on and later events arrive', async (t) => {
  const double = new ApiServerDouble({});
  await double.listen();
  t.teardown(() => double.close());
  double.create('services', apiService('first', '10.96.0.1'));
  const kc = new KubeConfig();
  kc.loadFromString(double.kubeconfig());
  const seen = [], failures = [];
  const inf = new ResilientInformer(kc, {
    path: SERVICES_PATH, backoffInitialMs: 50, backoffMaxMs: 400, watchTimeoutSeconds: [30, 40],
    onAdd: (o) => { seen.push(o.metadata.name); if (o.metadata.name === 'first' || o.metadata.name === 'boom') throw new Error(`cannot take ${o.metadata.name}`); },
    onUpdate: () => undefined, onDelete: () => undefined,
    onHandlerError: (e, o) => failures.push(`${o.metadata.name}: ${e.message}`),
  });
  t.teardown(() => inf.stop());
  inf.start();
  await until(() => seen.includes('first'), { what: 'the list delivered' });
  double.apply('services', apiService('boom', '10.96.0.2'));
  double.apply('services', apiService('after', '10.96.0.3'));
  await until(() => seen.includes('after'), { what: 'an event after the failing ones' });
  t.deepEqual(failures, ['first: cannot take first', 'boom: cannot take boom']);
  t.is(inf.stats.handlerErrors, 2);
});
