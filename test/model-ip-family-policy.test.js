// spec.ipFamilyPolicy (Kubernetes "IPv4/IPv6 dual-stack"): the API server allocates what a policy
// asks for; wdp allocates no cluster IP, so a policy its clusterIPs cannot satisfy is refused
// with the field named, on the validation fast path and the zod path alike, instead of a Service
// silently programmed with other families than asked for.
import test from 'ava';
import { validateObject, validateObjectZod, fastPathData } from '../dist/src/model/schema.js';

const svc = (spec) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { ports: [{ name: 'http', port: 80 }], ...spec } });
const both = (raw) => [validateObject(structuredClone(raw)), validateObjectZod(structuredClone(raw))];

test('RequireDualStack with one cluster IP and SingleStack with two cluster IPs or two ipFamilies are refused on spec.ipFamilyPolicy; an unknown policy is not supported', (t) => {
  for (const [spec, reason, text] of [
    [{ clusterIP: '10.96.0.1', clusterIPs: ['10.96.0.1'], ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack' }, 'FieldValueInvalid', /"RequireDualStack": needs a cluster IP of each family/],
    [{ clusterIP: 'fd00:96::1', ipFamilyPolicy: 'RequireDualStack' }, 'FieldValueInvalid', /does not allocate cluster IPs/],
    [{ clusterIPs: ['10.96.0.1', 'fd00:96::1'], ipFamilyPolicy: 'SingleStack' }, 'FieldValueInvalid', /"SingleStack": a SingleStack Service has one cluster IP/],
    [{ clusterIP: '10.96.0.1', ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'SingleStack' }, 'FieldValueInvalid', /"SingleStack": must be RequireDualStack or PreferDualStack when multiple 'ipFamilies' are specified/],
    [{ clusterIP: '10.96.0.1', ipFamilyPolicy: 'DualStack' }, 'FieldValueNotSupported', /Unsupported value: "DualStack"/],
  ]) {
    for (const r of both(svc(spec))) {
      t.false(r.ok, JSON.stringify(spec));
      t.deepEqual(r.errors.map((e) => [e.field, e.reason]), [['spec.ipFamilyPolicy', reason]], JSON.stringify(spec));
      t.regex(r.errors[0].message, text);
    }
  }
});

test('every policy the API server stores with its cluster IPs is accepted, on the fast path, and kept in the stored object', (t) => {
  for (const spec of [
    { clusterIP: '10.96.0.1', clusterIPs: ['10.96.0.1'], ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack' },
    { clusterIP: '10.96.0.1', clusterIPs: ['10.96.0.1'], ipFamilies: ['IPv4'], ipFamilyPolicy: 'PreferDualStack' },
    { clusterIP: '10.96.0.1', clusterIPs: ['10.96.0.1', 'fd00:96::1'], ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'PreferDualStack' },
    { clusterIP: 'fd00:96::1', clusterIPs: ['fd00:96::1', '10.96.0.1'], ipFamilies: ['IPv6', 'IPv4'], ipFamilyPolicy: 'RequireDualStack' },
    // headless: no cluster IP to check, whatever families it asks for
    { clusterIP: 'None', clusterIPs: ['None'], ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack' },
  ]) {
    const [fast, zod] = both(svc(spec));
    t.true(fast.ok, JSON.stringify(fast.errors));
    t.deepEqual(fast, zod);
    t.is(fast.obj.raw.spec.ipFamilyPolicy, spec.ipFamilyPolicy);
    if (spec.clusterIP !== 'None') {
      // (as the Kubernetes watcher hands it over: ipFamilies that only repeat the IPs' families dropped)
      const { ipFamilies, ...slim } = spec;
      t.truthy(fastPathData(svc(slim)), `the fast path takes ${spec.ipFamilyPolicy} with ${ipFamilies.length} IP(s)`);
      t.deepEqual(fast.obj.clusterIPs, spec.clusterIPs);
    }
  }
});
