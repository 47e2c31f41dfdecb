// What the watcher's informer caches keep of an EndpointSlice (src/kube/objects.ts trimSlice,
// src/kube/informer.ts `trim`): each endpoint's targetRef, never read, is dropped from listed
// and from watched slices as they arrive — and what is programmed is what it was.
import test from 'ava';
import { startKube, until, apiService, apiSlice, apiNode } from './lib/kube-fixture.js';
import { localReadyEndpoints, sliceForModel, trimSlice } from '../dist/src/kube/objects.js';

test('listed and watched EndpointSlices are cached without targetRefs; what is programmed is unchanged', async (t) => {
  const k = await startKube(t, {
    seed: (d) => {
      d.create('services', apiService('web', '10.96.0.10'));
      d.create('endpointslices', apiSlice('web-a', 'web', ['10.244.1.1', '10.244.1.2']));
      d.create('nodes', apiNode('node-a'));
    },
  });
  await until(() => k.compiler.sliceCount() === 1, { what: 'the listed slice programmed' });
  const refs = () => k.watcher.informers.slices.list().flatMap((s) => s.endpoints.filter((e) => e.targetRef !== undefined).map(() => s.metadata.name));
  t.deepEqual(refs(), [], 'the listed slice is cached without targetRefs');
  k.double.apply('endpointslices', apiSlice('web-b', 'web', ['10.244.1.3']));
  await until(() => k.compiler.sliceCount() === 2, { what: 'the watched slice programmed' });
  t.deepEqual(refs(), [], 'the watched slice is cached without targetRefs');
  const cached = k.watcher.informers.slices.list().find((s) => s.metadata.name === 'web-b');
  t.deepEqual(cached.endpoints, [{ addresses: ['10.244.1.3'], conditions: { ready: true, serving: true, terminating: false }, nodeName: 'node-a' }]);
  t.deepEqual(k.compiler.getSlice('default', 'web-a').endpoints.map((e) => e.addresses[0]).sort(), ['10.244.1.1', '10.244.1.2']);
});

test('trimSlice changes nothing the model or the local-endpoint count reads', (t) => {
  const full = apiSlice('web-a', 'web', ['10.244.1.1', '10.244.1.2', 'fd00::1'], { nodeName: 'node-b' });
  full.endpoints[0].zone = 'z1';
  full.endpoints[0].hints = { forZones: [{ name: 'z1' }], forNodes: [{ name: 'node-b' }] };
  full.endpoints.push('not an endpoint', null);
  const trimmed = structuredClone(full);
  trimSlice(trimmed);
  t.true(full.endpoints[0].targetRef !== undefined);
  t.is(trimmed.endpoints[0].targetRef, undefined);
  t.deepEqual(sliceForModel(trimmed), sliceForModel(full));
  t.deepEqual(localReadyEndpoints([trimmed], 'node-b'), localReadyEndpoints([full], 'node-b'));
  t.notThrows(() => trimSlice({ metadata: { name: 'x' }, endpoints: null }));
});
