// The watcher's cache keeps each EndpointSlice as the model's input (src/kube/objects.ts
// sliceForCache), made as it arrives, listed or watched: the model holds that same object (no
// second copy per slice), and what is programmed and stored is what it was.
import test from 'ava';
import { startKube, until, apiService, apiSlice, apiNode } from './lib/kube-fixture.js';
import { sliceForCache, sliceForModel } from '../dist/src/kube/objects.js';

test('a listed or watched slice is cached as the model\'s input, and the model holds that object', async (t) => {
  const k = await startKube(t, {
    seed: (d) => {
      d.create('services', apiService('web', '10.96.0.10'));
      d.create('endpointslices', apiSlice('web-a', 'web', ['10.244.1.1', '10.244.1.2']));
      d.create('nodes', apiNode('node-a'));
    },
  });
  await until(() => k.compiler.sliceCount() === 1, { what: 'the listed slice programmed' });
  const cached = (name) => k.watcher.informers.slices.list().find((s) => s.metadata.name === name);
  const listed = cached('web-a');
  t.is(k.compiler.getSlice('default', 'web-a').raw, listed, 'the model holds the cached object');
  t.deepEqual(Object.keys(listed), ['apiVersion', 'kind', 'metadata', 'addressType', 'endpoints', 'ports']);
  t.is(listed.metadata.uid, undefined);
  k.double.apply('endpointslices', apiSlice('web-b', 'web', ['10.244.1.3']));
  await until(() => k.compiler.sliceCount() === 2, { what: 'the watched slice programmed' });
  t.is(k.compiler.getSlice('default', 'web-b').raw, cached('web-b'));
  // an update: a new object, cached and programmed
  k.double.apply('endpointslices', apiSlice('web-b', 'web', ['10.244.1.4']));
  await until(() => k.compiler.getSlice('default', 'web-b')?.endpoints[0].addresses[0] === '10.244.1.4', { what: 'the update programmed' });
  t.is(k.compiler.getSlice('default', 'web-b').raw, cached('web-b'));
  t.deepEqual((await k.cp.core.compiler.getSlice('default', 'web-a')).endpoints.map((e) => e.addresses[0]).sort(), ['10.244.1.1', '10.244.1.2']);
});

test('sliceForCache: the model\'s input, made once (sliceForModel returns it as it is)', (t) => {
  const full = apiSlice('web-a', 'web', ['10.244.1.1', 'fd00::1'], { nodeName: 'node-b' });
  full.metadata.uid = 'u1';
  full.endpoints[0].hostname = 'h';
  const expected = sliceForModel(structuredClone(full));
  const c = sliceForCache(structuredClone(full));
  t.deepEqual(c, expected);
  t.is(sliceForModel(c), c, 'no second conversion');
  t.not(sliceForModel(structuredClone(full)), expected, 'an API object is still converted');
});
