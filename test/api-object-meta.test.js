// Object metadata the Kubernetes API server refuses is refused by the API's write path too, in
// its wording and with its field paths (a Service name is a DNS-1035 label, an EndpointSlice's a
// DNS-1123 subdomain, a namespace a DNS-1123 label; label keys and values, annotation keys and
// their total size in bytes; generateName). What the store already holds, and what the
// Kubernetes watcher applies (ControlPlaneCore.applyEach), is not held to these rules: a store
// written before them still loads.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane } from './lib/server.js';
import { objectMetaErrors } from '../dist/src/model/object-meta.js';

const svc = (name, metadata = {}) => ({ apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'shop', name, ...metadata }, spec: { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80 }] } });
const slice = (name, metadata = {}) => ({
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
  metadata: { namespace: 'shop', name, labels: { 'kubernetes.io/service-name': 'web' }, ...metadata },
  endpoints: [{ addresses: ['10.244.1.5'] }], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
});

const DNS1035 = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name' or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const SUBDOMAIN = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL1123 = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name' or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const NAME_PART = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName' or 'my.name' or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue' or 'my_value' or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/** The causes of a refused apply, as [field, message without the object's label]. */
const causes = (r) => r.json.details.causes.map((c) => [c.field, c.message.slice(c.message.indexOf(`: ${c.field}: `) + c.field.length + 4)]);

test('names: a Service name must be a DNS-1035 label, an EndpointSlice name a DNS-1123 subdomain, a namespace a DNS-1123 label (422 as the API server words it; nothing applied)', async (t) => {
  const { req } = await startControlPlane(t);
  const cases = [
    [svc('Foo_Bar'), [['metadata.name', `Invalid value: "Foo_Bar": ${DNS1035}`]]],
    // valid DNS-1123 subdomains that are no DNS-1035 labels: a leading digit, a dot
    [svc('1web'), [['metadata.name', `Invalid value: "1web": ${DNS1035}`]]],
    [svc('web.v2'), [['metadata.name', `Invalid value: "web.v2": ${DNS1035}`]]],
    [svc('a'.repeat(64)), [['metadata.name', `Invalid value: "${'a'.repeat(64)}": must be no more than 63 characters`]]],
    [slice('Web-1'), [['metadata.name', `Invalid value: "Web-1": ${SUBDOMAIN}`]]],
    [svc('web', { namespace: 'Shop' }), [['metadata.namespace', `Invalid value: "Shop": ${LABEL1123}`]]],
    [svc('web', { namespace: 'shop.eu' }), [['metadata.namespace', 'Invalid value: "shop.eu": must not contain dots']]],
  ];
  for (const [obj, want] of cases) {
    for (const [body, headers] of [[JSON.stringify([obj]), {}], [JSON.stringify(obj), {}], [`${JSON.stringify(obj)}\n`, { 'content-type': 'application/yaml' }]]) {
      const r = await req('POST', '/api/v1/apply', body, headers);
      t.is(r.status, 422, r.text);
      t.deepEqual(causes(r), want, body);
      t.is((await req('POST', '/api/v1/apply?dryRun=true', body, headers)).status, 422);
    }
  }
  t.deepEqual((await req('GET', '/api/v1/services')).json.items, []);
  t.deepEqual((await req('GET', '/api/v1/endpointslices')).json.items, []);
  // what the API server takes: a DNS-1035 Service name, a subdomain for a slice
  t.is((await req('POST', '/api/v1/apply', JSON.stringify([svc('web-2'), slice('web-2.abc12')]))).status, 200);
});

test('labels, annotations and generateName: keys, values and size as the API server checks them', async (t) => {
  const { req } = await startControlPlane(t);
  const cases = [
    [svc('web', { labels: { 'bad key!': 'x' } }), [['metadata.labels', `Invalid value: "bad key!": ${NAME_PART}`]]],
    [svc('web', { labels: { app: 'bad value!' } }), [['metadata.labels', `Invalid value: "bad value!": ${LABEL_VALUE}`]]],
    [svc('web', { labels: { 'Example.com/app': 'x' } }), [['metadata.labels', `Invalid value: "Example.com/app": prefix part ${SUBDOMAIN}`]]],
    [svc('web', { labels: { app: 'v'.repeat(64) } }), [['metadata.labels', `Invalid value: "${'v'.repeat(64)}": must be no more than 63 characters`]]],
    [svc('web', { labels: { '/app': 'x' } }), [['metadata.labels', 'Invalid value: "/app": prefix part must be non-empty']]],
    [slice('web-1', { labels: { 'kubernetes.io/service-name': 'web/x' } }), [['metadata.labels', `Invalid value: "web/x": ${LABEL_VALUE}`]]],
    [svc('web', { annotations: { 'a/b/c': 'x' } }), [['metadata.annotations', `Invalid value: "a/b/c": a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName' or 'my.name' or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`]]],
    // 140k characters of two bytes each: within 256 Ki characters, not within 256 KiB
    [svc('web', { annotations: { note: 'é'.repeat(140_000) } }), [['metadata.annotations', 'Too long: must have at most 262144 bytes']]],
    [svc('', { generateName: 'web-' }), [['metadata.name', 'Required value: wdp does not generate names (metadata.generateName): set metadata.name']]],
    [svc('web', { generateName: 'Web-' }), [['metadata.generateName', `Invalid value: "Web-": ${DNS1035}`]]],
  ];
  for (const [obj, want] of cases) {
    const r = await req('POST', '/api/v1/apply', JSON.stringify([obj]));
    t.is(r.status, 422, r.text);
    t.deepEqual(causes(r), want, JSON.stringify(obj.metadata).slice(0, 200));
  }
  t.deepEqual((await req('GET', '/api/v1/services')).json.items, []);
  // what the API server takes: annotation keys in any case, a prefix that is a subdomain, empty
  // label values, a generateName (a prefix may end in '-') beside a name
  const ok = svc('web', { labels: { 'example.com/App_1': '', tier: 'Front.End' }, annotations: { 'Example.COM/Note': 'é'.repeat(1000) }, generateName: 'web-' });
  const r = await req('POST', '/api/v1/apply', JSON.stringify([ok]));
  t.is(r.status, 200, r.text);
});

test('the model alone: each rule has its own message, in the API server\'s order (name, namespace, labels, annotations)', (t) => {
  const errs = objectMetaErrors(svc('Web', { namespace: 'A', labels: { k: '-' }, annotations: { '-': 'x' } }));
  t.deepEqual(errs.map((e) => e.field), ['metadata.name', 'metadata.namespace', 'metadata.labels', 'metadata.annotations']);
  t.is(errs[0].message, `Service A/Web: metadata.name: Invalid value: "Web": ${DNS1035}`);
  t.deepEqual(objectMetaErrors(svc('web')), []);
  // a NodeConfig is cluster-scoped: a namespace given to it is not checked (the API server clears it)
  t.deepEqual(objectMetaErrors({ apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a', namespace: 'X_Y' }, spec: {} }), []);
});

test('a store holding names the API refuses now (written before, or by the watcher) still loads; the API refuses them on write only', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-objmeta-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const old = svc('1web', { labels: { tier: 'bad value!' } });
  {
    const { cp, req, close } = await startControlPlane(t, { stateDir: dir });
    t.is((await req('POST', '/api/v1/apply', JSON.stringify([old]))).status, 422);
    // the watcher's path (and an older build's apply) takes it: it is stored
    const r = await cp.core.applyEach([old]);
    t.deepEqual(r.skipped, []);
    await close();
  }
  const { cp, req } = await startControlPlane(t, { stateDir: dir });
  t.is(cp.core.restoredFrom, 'store');
  const got = await req('GET', '/api/v1/namespaces/shop/services/1web');
  t.is(got.status, 200, got.text);
  t.deepEqual(got.json.metadata.labels, { tier: 'bad value!' });
  t.is((await req('GET', '/api/v1/frontends?service=shop/1web')).json.items.length, 1);
  // applied again through the API: refused, the stored one kept
  const again = await req('POST', '/api/v1/apply', JSON.stringify([{ ...old, spec: { ...old.spec, ports: [{ name: 'http', port: 81 }] } }]));
  t.is(again.status, 422, again.text);
  t.is((await req('GET', '/api/v1/namespaces/shop/services/1web')).json.spec.ports[0].port, 80);
  // deleting it through the API works (a delete names an object; it writes none)
  t.is((await req('DELETE', '/api/v1/namespaces/shop/services/1web')).status, 200);
});
