// Validation messages name the value the client sent, whatever its type: the checks that run
// after a structural error (a Service's `type` an object, ports that are not objects, a port of
// YAML's .inf) printed JavaScript's renderings of it — '[object Object]', `undefined`, `null` for
// Infinity — and a missing kind or apiVersion was an "Unsupported value: undefined". Cases found
// by the seeded fuzzer (test/lib/api-fuzz.js; /tmp script: validateObject on mutated objects).
import test from 'ava';
import { validateObject } from '../dist/src/model/schema.js';
import { parseManifests } from '../dist/src/model/load.js';

const svc = (spec) => ({ apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'fz', name: 'a' }, spec: { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80 }], ...spec } });
const messages = (raw) => {
  const v = validateObject(raw);
  return v.ok ? [] : v.errors.map((e) => e.message);
};
const JS_TEXT = /\[object |undefined|NaN/;

test('a Service type that is not a string: the type error alone, not "may not be used when `type` is \'[object Object]\'"', (t) => {
  for (const type of [{}, { a: 1 }, [], ['NodePort'], 5, true]) {
    const m = messages(svc({ type, ports: [{ name: 'http', port: 80, nodePort: 30000 }] }));
    t.true(m.some((x) => /spec\.type: /.test(x)), JSON.stringify(m));
    for (const x of m) t.notRegex(x, JS_TEXT, JSON.stringify(type));
  }
});

test('ports that are not objects: their type errors, no "Duplicate value: {"port":undefined,...}"', (t) => {
  for (const ports of [['tcp', 'udp'], [1, 1], [[], []], [null, null], [{ name: 'a', port: {} }, { name: 'b', port: {} }], [{ name: 'a', port: 80, nodePort: {} }, { name: 'b', port: 81, nodePort: {} }]]) {
    const m = messages(svc({ type: 'NodePort', ports }));
    t.true(m.length > 0);
    for (const x of m) { t.notRegex(x, JS_TEXT, JSON.stringify(ports)); t.notRegex(x, /Duplicate value/, JSON.stringify(ports)); }
  }
});

test('YAML .inf and .nan as a port: the message shows them, not null', (t) => {
  for (const [v, shown] of [['.inf', 'Infinity'], ['-.inf', '-Infinity'], ['.nan', 'NaN']]) {
    const [raw] = parseManifests(`apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec:\n  clusterIP: 10.96.0.10\n  ports: [{port: ${v}}]\n`);
    const m = messages(raw);
    t.true(m.some((x) => x.includes(`spec.ports[0].port: Invalid value: ${shown}:`)), JSON.stringify(m));
  }
  const m = messages(svc({ type: 'LoadBalancer', healthCheckNodePort: 'x' }));
  for (const x of m) t.notRegex(x, /Invalid value: x:/, 'a string is shown quoted');
});

test('a missing kind, apiVersion or addressType is a Required value naming what is supported', (t) => {
  const noKind = messages({ apiVersion: 'v1', metadata: { name: 'a' } });
  t.deepEqual(noKind, ['<no kind> default/a: kind: Required value: supported values: "Service", "EndpointSlice", "NodeConfig"']);
  const v = validateObject({ kind: 'Service', metadata: { name: 'a' }, spec: { clusterIP: '10.96.0.10', ports: [{ port: 80 }] } });
  t.false(v.ok);
  t.is(v.errors[0].field, 'apiVersion');
  t.is(v.errors[0].reason, 'FieldValueRequired');
  t.is(v.errors[0].message, 'Service default/a: apiVersion: Required value: supported values: "v1"');
  const s = messages({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'a' }, endpoints: [] });
  t.true(s.includes('EndpointSlice default/a: addressType: Required value: supported values: "IPv4", "IPv6", "FQDN"'), JSON.stringify(s));
});
