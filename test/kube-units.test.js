// The watcher's parts on their own: kube-proxy's healthz rules, NodePort address selection, the
// API-object trimming (same meaning, fast validation path), the kubernetes: config section,
// chunked lists whose continue token expires, and the per-service health check servers.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { KubeConfig } from '@kubernetes/client-node';
import { ProxyHealth } from '../dist/src/kube/healthz.js';
import { nodeInfo } from '../dist/src/kube/node.js';
import { nodeAddressList, nodePortAddresses, selectNodeAddresses } from '../dist/src/kube/nodeport-addresses.js';
import { healthCheckAddresses } from '../dist/src/kube/service-health.js';
import { serviceForModel, sliceForModel, localReadyEndpoints, healthCheckNodePort } from '../dist/src/kube/objects.js';
import { listAll, openWatch, MAX_WATCH_EVENT } from '../dist/src/kube/client.js';
import { createServer as createHttpServer } from 'node:http';
import { fastPathData, validateObject, validateObjectZod } from '../dist/src/model/schema.js';
import { parseConfig, parseDuration } from '../dist/src/daemon/config.js';
import { ApiServerDouble } from './lib/apiserver-double.js';
import { apiService, apiSlice, apiNode, startKube, until, freePort } from './lib/kube-fixture.js';

test('healthz: healthy while starting and while changes are younger than the timeout; 503 once one waits longer', (t) => {
  let now = 1_000_000;
  const h = new ProxyHealth(60_000, () => now);
  t.true(h.healthy(), 'starting up');
  h.queued(); now += 120_000;
  t.true(h.healthy(), 'no sync has succeeded yet: not judged (as kube-proxy)');
  h.updated();
  t.true(h.healthy());
  now += 10 * 60_000;
  t.true(h.healthy(), 'quiet for long: nothing pending, still healthy');
  h.queued(); now += 59_000;
  t.true(h.healthy(), 'pending but young');
  h.queued(); now += 2_000; // a second change does not move the oldest pending time
  t.false(h.healthy(), 'oldest pending change waited 61 s > 60 s');
  let [code, body] = h.answer(true);
  t.is(code, 503);
  t.is(body.nodeEligible, true);
  h.updated();
  [code, body] = h.answer(true);
  t.is(code, 200);
  t.is(body.lastUpdated, body.currentTime);
  h.nodeEligible = false;
  t.is(h.answer(true)[0], 503, 'healthz includes node eligibility');
  t.is(h.answer(false)[0], 200, 'livez does not');
  const stopping = new ProxyHealth(60_000, () => now, () => false);
  t.is(stopping.answer(false)[0], 503, 'a stopping daemon is not healthy');
});

test('node addresses: configured addresses alone by default; CIDR filters or "primary" select among all', (t) => {
  const info = nodeInfo(apiNode('n', { addresses: [
    { type: 'InternalIP', address: '10.1.1.5' }, { type: 'InternalIP', address: '10.1.1.6' },
    { type: 'ExternalIP', address: '203.0.113.7' }, { type: 'InternalIP', address: 'fd00::0005' },
  ], podCIDRs: ['10.244.1.0/24', 'fd00:244:1::/64'], taints: [{ key: 'ToBeDeletedByClusterAutoscaler', effect: 'NoSchedule' }] }));
  t.deepEqual(info.addresses, ['10.1.1.5', '10.1.1.6', 'fd00::5', '203.0.113.7']);
  t.deepEqual(info.primary, ['10.1.1.5', 'fd00::5']);
  t.deepEqual(info.podCIDRs, ['10.244.1.0/24', 'fd00:244:1::/64']);
  t.false(info.eligible, 'tainted for deletion by the autoscaler');
  t.true(nodeInfo(apiNode('n')).eligible);
  t.is(nodeInfo(apiNode('n')).zone, '');
  const zoned = apiNode('n'); zoned.metadata.labels = { 'topology.kubernetes.io/zone': 'zone-a' };
  t.is(nodeInfo(zoned).zone, 'zone-a', 'the zone label (topology-aware routing)');
  t.false(nodeInfo(apiNode('n', { deleting: true })).eligible);
  t.deepEqual(nodePortAddresses(info, [], []), info.addresses, 'an empty filter with nothing configured (the config never passes one: it defaults to "primary") is every node address');
  t.deepEqual(nodePortAddresses(info, ['192.168.0.1'], []), ['192.168.0.1'], 'configured addresses are used alone');
  t.deepEqual(nodePortAddresses(info, [], ['203.0.113.0/24']), ['fd00::5', '203.0.113.7'], 'an IPv4 CIDR restricts IPv4 only');
  t.deepEqual(nodePortAddresses(info, [], ['primary']), ['10.1.1.5', 'fd00::5']);
  t.deepEqual(nodePortAddresses(info, ['192.168.0.1'], ['192.168.0.0/16', 'fd00::/64']), ['192.168.0.1', 'fd00::5']);
  t.deepEqual(nodePortAddresses(null, [], ['primary']), [], 'no Node object: no primary IPs');
});

// nodePortAddresses narrows where NodePorts are served, as kube-proxy's: the node's other addresses
// stay node addresses (the NodeConfig's nodeAddresses: answered for, on the host port's TAP)
test('node addresses beside the NodePort addresses: every Node address (or node.addresses configured) under "primary", a CIDR filter or none', (t) => {
  const info = nodeInfo(apiNode('n', { addresses: [
    { type: 'InternalIP', address: '10.1.1.5' }, { type: 'InternalIP', address: '10.1.1.6' },
    { type: 'ExternalIP', address: '203.0.113.7' }, { type: 'InternalIP', address: 'fd00::0005' },
  ] }));
  const both = (configured, filter) => selectNodeAddresses(info, configured, filter);
  t.deepEqual(both([], ['primary']), { addresses: ['10.1.1.5', '10.1.1.6', 'fd00::5', '203.0.113.7'], nodePortAddresses: ['10.1.1.5', 'fd00::5'] }, 'the primary default: every Node address answered, NodePorts on the primary IPs');
  t.deepEqual(both([], ['203.0.113.0/24']), { addresses: ['10.1.1.5', '10.1.1.6', 'fd00::5', '203.0.113.7'], nodePortAddresses: ['fd00::5', '203.0.113.7'] });
  t.deepEqual(both([], ['0.0.0.0/0', '::/0']), { addresses: info.addresses, nodePortAddresses: info.addresses });
  t.deepEqual(both(['192.168.0.1'], []), { addresses: ['192.168.0.1'], nodePortAddresses: ['192.168.0.1'] }, 'node.addresses configured: those alone');
  t.deepEqual(both(['192.168.0.1'], ['192.168.0.0/16', 'fd00::/64']), { addresses: ['192.168.0.1', 'fd00::5'], nodePortAddresses: ['192.168.0.1', 'fd00::5'] }, 'a Node address the filter selects beside node.addresses is a node address too');
  t.deepEqual(nodeAddressList(null, [], []), [], 'no Node, nothing configured: none');
  t.deepEqual(selectNodeAddresses(null, [], ['primary']), { addresses: [], nodePortAddresses: [] }, 'no Node under the primary default: none');
  t.deepEqual(selectNodeAddresses(null, ['192.168.0.1', 'fd00::1'], ['192.168.0.0/16']), { addresses: ['192.168.0.1', 'fd00::1'], nodePortAddresses: ['192.168.0.1', 'fd00::1'] }, 'no Node, node.addresses configured: those, each family filtered by its own CIDRs');
  t.deepEqual(selectNodeAddresses({ addresses: info.addresses, primary: info.primary }, [], ['primary']), both([], ['primary']), 'the facts alone (a saved Node: no name or eligibility) select the same');
});

// kube-proxy runs one proxier per IP family, each with NewNodePortAddresses(family, cidrs): the
// CIDRs of its family, or — none of its family listed — the zero CIDR, which matches every address
// of the family (MatchAll); "primary" is the node IP of each family as a /32 or /128 (a family with
// no node IP, or a loopback one, gets none: all of it)
test('nodePortAddresses per IP family, as kube-proxy\'s per-family proxiers: a family without a CIDR of its own matches all its node addresses', (t) => {
  const info = nodeInfo(apiNode('n', { addresses: [
    { type: 'InternalIP', address: '10.1.1.5' }, { type: 'InternalIP', address: '10.1.1.6' },
    { type: 'ExternalIP', address: '203.0.113.7' }, { type: 'InternalIP', address: 'fd00::5' }, { type: 'ExternalIP', address: '2001:db8::7' },
  ] }));
  t.deepEqual(info.addresses, ['10.1.1.5', '10.1.1.6', 'fd00::5', '203.0.113.7', '2001:db8::7']);
  const all = info.addresses;
  t.deepEqual(nodePortAddresses(info, [], ['10.0.0.0/8']), ['10.1.1.5', '10.1.1.6', 'fd00::5', '2001:db8::7'], 'IPv4 CIDRs only: every IPv6 node address');
  t.deepEqual(nodePortAddresses(info, [], ['fd00::/64']), ['10.1.1.5', '10.1.1.6', 'fd00::5', '203.0.113.7'], 'IPv6 CIDRs only: every IPv4 node address');
  t.deepEqual(nodePortAddresses(info, [], ['10.0.0.0/8', 'fd00::/64']), ['10.1.1.5', '10.1.1.6', 'fd00::5'], 'both families restricted');
  t.deepEqual(nodePortAddresses(info, [], ['192.0.2.0/24']), ['fd00::5', '2001:db8::7'], 'an IPv4 CIDR holding no node address: no IPv4, still every IPv6');
  // zero CIDRs: that family's MatchAll (whatever else of the family is listed)
  t.deepEqual(nodePortAddresses(info, [], ['0.0.0.0/0']), all);
  t.deepEqual(nodePortAddresses(info, [], ['::/0']), all);
  t.deepEqual(nodePortAddresses(info, [], ['10.0.0.0/8', '0.0.0.0/0', 'fd00::/64']), ['10.1.1.5', '10.1.1.6', 'fd00::5', '203.0.113.7']);
  // configured node addresses are candidates beside the Node's once a filter is set
  t.deepEqual(nodePortAddresses(null, ['10.0.0.1', 'fd00::1'], ['10.0.0.0/8']), ['10.0.0.1', 'fd00::1']);
  t.deepEqual(nodePortAddresses(info, ['192.168.0.1'], ['192.168.0.0/16']), ['192.168.0.1', 'fd00::5', '2001:db8::7']);
  // "primary": the primary IP per family; a family with none matches all (kube-proxy adds no CIDR for it)
  const v4only = nodeInfo(apiNode('n', { addresses: [{ type: 'InternalIP', address: '10.1.1.5' }, { type: 'InternalIP', address: '10.1.1.6' }] }));
  t.deepEqual(nodePortAddresses(v4only, ['fd00::7', 'fd00::8'], ['primary']), ['fd00::7', 'fd00::8', '10.1.1.5']);
  t.deepEqual(nodePortAddresses(info, [], ['primary']), ['10.1.1.5', 'fd00::5']);
  // a loopback node IP is no node IP to kube-proxy ("primary" skips it): the family matches all
  const lo = nodeInfo(apiNode('n', { addresses: [{ type: 'InternalIP', address: '127.0.0.1' }, { type: 'InternalIP', address: '10.1.1.5' }, { type: 'InternalIP', address: 'fd00::5' }, { type: 'InternalIP', address: 'fd00::6' }] }));
  t.deepEqual(nodePortAddresses(lo, [], ['primary']), ['127.0.0.1', '10.1.1.5', 'fd00::5']);
});

test('API objects are trimmed to what the model reads, mean the same, and take the fast validation path', (t) => {
  const svc = { ...apiService('web', '10.96.0.10', { ports: [{ name: 'http', port: 80, targetPort: 8080 }, { name: 'dns', port: 53, targetPort: 53, protocol: 'UDP' }] }) };
  svc.metadata.resourceVersion = '123'; svc.metadata.managedFields = [{ manager: 'kubectl' }]; svc.metadata.uid = 'u';
  const raw = serviceForModel(svc);
  t.is(raw.kind, 'Service'); t.is(raw.apiVersion, 'v1');
  t.is(raw.metadata.resourceVersion, '123');
  t.falsy(raw.metadata.managedFields);
  t.truthy(fastPathData(raw), 'a plain ClusterIP service from the API server takes the fast path');
  // the same normalised service as zod's reading of the untrimmed object
  const full = validateObjectZod({ apiVersion: 'v1', kind: 'Service', ...svc });
  const trimmed = validateObject(raw);
  t.true(full.ok && trimmed.ok);
  const strip = (o) => { const { raw: _r, ...rest } = o; return rest; };
  t.deepEqual(strip(trimmed.obj), strip(full.obj));
  // a LoadBalancer with eTP Local keeps its policy, ingress and health check port
  const lb = apiService('lb', '10.96.0.11', { type: 'LoadBalancer', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }],
    extra: { externalTrafficPolicy: 'Local', healthCheckNodePort: 32000 }, status: { loadBalancer: { ingress: [{ ip: '198.51.100.1', ipMode: 'VIP' }] } } });
  const lbRaw = serviceForModel(lb);
  const lbModel = validateObject(lbRaw);
  t.true(lbModel.ok);
  t.true(lbModel.obj.externalLocal);
  t.deepEqual(lbModel.obj.lbIngress, ['198.51.100.1']);
  t.is(healthCheckNodePort(lb), 32000);
  t.is(healthCheckNodePort(apiService('c', '10.96.0.12')), null);
  // dual-stack: ipFamilies kept when it says something clusterIPs do not
  const ds = apiService('ds', '10.96.0.13', { extra: { clusterIPs: ['10.96.0.13', 'fd00::13'], ipFamilies: ['IPv4', 'IPv6'] } });
  t.falsy(serviceForModel(ds).spec.ipFamilies);
  const odd = apiService('odd', '10.96.0.14', { extra: { ipFamilies: ['IPv6'] } });
  t.deepEqual(serviceForModel(odd).spec.ipFamilies, ['IPv6'], 'a mismatch stays, for validation to report');
  // slices: targetRef dropped; conditions, node, zone and node hints kept, fast path
  const sl = apiSlice('web-1', 'web', ['10.244.1.5', '10.244.2.5'], { trigger: '2026-01-01T00:00:00Z' });
  sl.endpoints[0].hints = { forZones: [{ name: 'a' }], forNodes: [{ name: 'node-a' }] };
  const sraw = sliceForModel(sl);
  t.deepEqual(sraw.endpoints[0], { addresses: ['10.244.1.5'], conditions: { ready: true, serving: true, terminating: false }, nodeName: 'node-a', hints: { forZones: [{ name: 'a' }], forNodes: [{ name: 'node-a' }] } });
  t.truthy(fastPathData(sraw));
  t.deepEqual(validateObject(sraw).obj.endpoints[0].zoneHints, ['a']);
  t.deepEqual(validateObject(sraw).obj.endpoints[0].nodeHints, ['node-a']);
  t.is(validateObject(sraw).obj.triggerTimeMs, Date.parse('2026-01-01T00:00:00Z'));
  // local ready endpoints: by address, this node only, not-ready excluded; per IP family
  const v4 = (n) => ({ IPv4: n, IPv6: 0 });
  const other = apiSlice('web-2', 'web', ['10.244.9.9'], { nodeName: 'node-b' });
  const notReady = apiSlice('web-3', 'web', ['10.244.1.7'], { ready: false });
  const dup = apiSlice('web-4', 'web', ['10.244.1.5']);
  t.deepEqual(localReadyEndpoints([sl, other, notReady, dup], 'node-a'), v4(2));
  // by address, as kube-proxy's LocalReadyEndpoints ("squash the data by IP"): a pod serving two
  // ports counts once; a slice without a numbered port adds nothing
  const twoPorts = apiSlice('web-5', 'web', ['10.244.1.8']);
  twoPorts.ports = [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'dns', port: 53, protocol: 'UDP' }, { name: 'none', protocol: 'TCP' }];
  t.deepEqual(localReadyEndpoints([twoPorts], 'node-a'), v4(1));
  const noNumber = apiSlice('web-9', 'web', ['10.244.1.9']);
  noNumber.ports = [{ name: 'http', protocol: 'TCP' }];
  t.deepEqual(localReadyEndpoints([twoPorts, noNumber], 'node-a'), v4(1));
  // an FQDN slice's endpoints are not forwarded to (kube-proxy supports IPv4 and IPv6 slices only)
  const fqdn = apiSlice('web-f', 'web', ['db.example.com']);
  fqdn.addressType = 'FQDN';
  t.deepEqual(localReadyEndpoints([twoPorts, fqdn], 'node-a'), v4(1));
  // slices kube-proxy's informer leaves out count nothing: headless, or another proxy's
  const headless = apiSlice('web-6', 'web', ['10.244.1.10']);
  headless.metadata.labels['service.kubernetes.io/headless'] = '';
  const theirs = apiSlice('web-7', 'web', ['10.244.1.11']);
  theirs.metadata.labels['service.kubernetes.io/service-proxy-name'] = 'other-proxy';
  const ours = apiSlice('web-8', 'web', ['10.244.1.12']);
  ours.metadata.labels['service.kubernetes.io/service-proxy-name'] = 'wdp';
  t.deepEqual(localReadyEndpoints([sl, headless, theirs, ours], 'node-a'), v4(2), 'without a proxy name: only the unlabelled slice');
  t.deepEqual(localReadyEndpoints([sl, headless, theirs, ours], 'node-a', 'wdp'), v4(3), 'with the proxy name wdp: its own slice too');
  // per family, as each kube-proxy family proxier's count: a dual-stack pod is one endpoint of each
  const v6 = apiSlice('web-v6', 'web', ['fd00:244:1::5', 'fd00:244:1::6']);
  v6.addressType = 'IPv6';
  t.deepEqual(localReadyEndpoints([sl, v6], 'node-a'), { IPv4: 2, IPv6: 2 });
});

test('config: the kubernetes section, durations, node name from the hostname', (t) => {
  t.is(parseDuration('1s'), 1000);
  t.is(parseDuration('500ms'), 500);
  t.is(parseDuration('1m30s'), 90_000);
  t.is(parseDuration(2), 2000);
  t.true(Number.isNaN(parseDuration('1 s')));
  const base = { ports: [{ name: 'p', type: 'tap', ifname: 't0', role: 'pod' }] };
  const c = parseConfig({ ...base, node: {}, kubernetes: {} });
  t.is(c.kubernetes.minSyncPeriod, 1000);
  t.is(c.kubernetes.syncPeriod, 30_000);
  t.is(c.kubernetes.healthzBindAddress, '0.0.0.0:10256');
  t.is(c.kubernetes.metricsBindAddress, '127.0.0.1:10249');
  t.regex(c.node.name, /^[a-z0-9]/, 'the hostname names the node');
  t.is(parseConfig({ ...base, node: { name: 'x' }, kubernetes: { hostnameOverride: 'node-7' } }).node.name, 'node-7');
  const e = t.throws(() => parseConfig({ ...base, node: {} }));
  t.regex(e.message, /node\.name: required/);
  const bad = t.throws(() => parseConfig({ ...base, node: {}, kubernetes: { minSyncPeriod: 'soon', nodePortAddresses: ['10.0.0.0/33'], detectLocalMode: 'Bridge', healthzBindAddress: 'nowhere', bogus: 1 } }));
  for (const re of [/kubernetes\.minSyncPeriod: must be a duration/, /kubernetes\.nodePortAddresses\[0\]/, /kubernetes\.detectLocalMode/, /kubernetes\.healthzBindAddress/, /Unrecognized key: "bogus"/]) t.regex(bad.message, re);
  t.regex(t.throws(() => parseConfig({ ...base, node: {}, kubernetes: { minSyncPeriod: '10s', syncPeriod: '1s' } })).message, /kubernetes\.minSyncPeriod: must not be longer than syncPeriod/);
  t.deepEqual(parseConfig({ ...base, node: {}, kubernetes: { nodePortAddresses: ['primary'] } }).kubernetes.nodePortAddresses, ['primary']);
  // a bind address's port is checked in every form, ":port" too (else the start failed late)
  for (const [field, v] of [['metricsBindAddress', ':99999'], ['healthzBindAddress', ':65536'], ['metricsBindAddress', '127.0.0.1:70000'], ['healthzBindAddress', '/run/wdp-healthz.sock']])
    t.regex(t.throws(() => parseConfig({ ...base, node: {}, kubernetes: { [field]: v } })).message, new RegExp(`kubernetes\\.${field}: must be host:port`), `${field} ${v}`);
  t.is(parseConfig({ ...base, node: {}, kubernetes: { metricsBindAddress: ':10249' } }).kubernetes.metricsBindAddress, ':10249');
});

test('config: nodePortAddresses "primary" must stand alone, as kube-proxy refuses "primary" mixed with CIDRs (at the first "primary")', (t) => {
  const base = { ports: [{ name: 'p', type: 'tap', ifname: 't0', role: 'pod' }], node: {} };
  const mixed = (list) => t.throws(() => parseConfig({ ...base, kubernetes: { nodePortAddresses: list } })).message;
  t.regex(mixed(['primary', '10.0.0.0/8']), /kubernetes\.nodePortAddresses\[0\]: can't use both "primary" and CIDRs/);
  t.regex(mixed(['10.0.0.0/8', 'primary']), /kubernetes\.nodePortAddresses\[1\]: can't use both "primary" and CIDRs/);
  t.regex(mixed(['primary', 'primary']), /kubernetes\.nodePortAddresses\[0\]: can't use both/);
  t.notRegex(mixed(['primary', 'primary']), /nodePortAddresses\[1\]/, 'reported once, at the first "primary"');
  t.deepEqual(parseConfig({ ...base, kubernetes: { nodePortAddresses: ['10.0.0.0/8', 'fd00::/64'] } }).kubernetes.nodePortAddresses, ['10.0.0.0/8', 'fd00::/64']);
});

// kube-proxy's nftables mode: an empty --nodeport-addresses is "primary" (platformApplyDefaults,
// the nftables backend's Init), for the NodePorts and the health-check node ports alike (both read
// the one list); "0.0.0.0/0,::/0" is how it asks for every address
test('config: nodePortAddresses unset is "primary" as kube-proxy nftables\' default: NodePorts and health checks on the primary IP per family, not the other node addresses; [0.0.0.0/0, ::/0] serves every one; node.addresses configured keeps those alone', (t) => {
  const base = { ports: [{ name: 'p', type: 'tap', ifname: 't0', role: 'pod' }] };
  const k = (node, kubernetes = {}) => parseConfig({ ...base, node, kubernetes }).kubernetes;
  t.deepEqual(k({}).nodePortAddresses, ['primary']);
  t.deepEqual(k({}, { nodePortAddresses: [] }).nodePortAddresses, ['primary'], 'an empty list is unset, as kube-proxy\'s len() == 0');
  t.deepEqual(k({}, { nodePortAddresses: ['0.0.0.0/0', '::/0'] }).nodePortAddresses, ['0.0.0.0/0', '::/0']);
  t.deepEqual(k({ addresses: ['192.168.0.1'] }).nodePortAddresses, [], 'node.addresses configured: no default');
  const info = nodeInfo(apiNode('n', { addresses: [
    { type: 'InternalIP', address: '10.1.1.5' }, { type: 'InternalIP', address: '10.1.1.6' },
    { type: 'ExternalIP', address: '203.0.113.7' }, { type: 'InternalIP', address: 'fd00::5' }, { type: 'ExternalIP', address: '2001:db8::7' },
  ] }));
  const served = (cfg, configured = []) => nodePortAddresses(info, configured, cfg.nodePortAddresses);
  t.deepEqual(served(k({})), ['10.1.1.5', 'fd00::5'], 'the default: the primary IP per family only');
  t.deepEqual(served(k({}, { nodePortAddresses: ['0.0.0.0/0', '::/0'] })), info.addresses, 'every node address, asked for');
  t.deepEqual(served(k({ addresses: ['192.168.0.1'] }), ['192.168.0.1']), ['192.168.0.1']);
  const hosts = (cfg) => healthCheckAddresses(served(cfg), cfg.nodePortAddresses, info.primary).map((a) => a.host);
  t.deepEqual(hosts(k({})), ['10.1.1.5', 'fd00::5'], 'health checks on the primary IPs, not the wildcard');
  t.deepEqual(hosts(k({}, { nodePortAddresses: ['0.0.0.0/0', '::/0'] })), ['0.0.0.0', '::']);
  // a Node without a primary IP of a family (none, or a loopback one): kube-proxy adds no CIDR of
  // it, so that family is unrestricted — every address of it, its wildcard for health checks
  const v4only = nodeInfo(apiNode('n', { addresses: [{ type: 'InternalIP', address: '10.1.1.5' }, { type: 'InternalIP', address: '10.1.1.6' }] }));
  t.deepEqual(nodePortAddresses(v4only, [], k({}).nodePortAddresses), ['10.1.1.5']);
  t.deepEqual(healthCheckAddresses(['10.1.1.5'], k({}).nodePortAddresses, v4only.primary).map((a) => `${a.family}:${a.host}`), ['4:10.1.1.5', '6:::']);
  t.deepEqual(nodePortAddresses(null, [], k({}).nodePortAddresses), [], 'no Node read yet: no node address');
});

test('config: hostnameOverride is trimmed and lowercased, as kube-proxy\'s GetHostname; empty after trimming, or not a name a Node can have, is refused', (t) => {
  const base = { ports: [{ name: 'p', type: 'tap', ifname: 't0', role: 'pod' }], node: {} };
  const name = (h) => parseConfig({ ...base, kubernetes: { hostnameOverride: h } }).node.name;
  t.is(name(' Node-A.Example.COM\n'), 'node-a.example.com');
  t.is(name('node-7'), 'node-7');
  t.regex(t.throws(() => name('   ')).message, /kubernetes\.hostnameOverride: empty hostname is invalid/);
  // an empty override is no override (kube-proxy's config file writes hostnameOverride: "" by default)
  t.is(name(''), hostname().trim().toLowerCase(), 'empty: the hostname, as kube-proxy');
  t.is(parseConfig({ ...base, node: { name: 'node-b' }, kubernetes: { hostnameOverride: '' } }).node.name, 'node-b');
  t.regex(t.throws(() => name('node_7')).message, /kubernetes\.hostnameOverride: must be an RFC 1123 name/);
  t.regex(t.throws(() => name('-node')).message, /kubernetes\.hostnameOverride/);
});

test('config: syncPeriod must be greater than 0, as kube-proxy validates it (0 would resync without pause and make healthz time out at once)', (t) => {
  const base = { ports: [{ name: 'p', type: 'tap', ifname: 't0', role: 'pod' }], node: {} };
  for (const syncPeriod of [0, '0s', '0ms']) {
    t.regex(t.throws(() => parseConfig({ ...base, kubernetes: { syncPeriod, minSyncPeriod: 0 } })).message, /kubernetes\.syncPeriod: must be greater than 0/);
  }
  t.is(parseConfig({ ...base, kubernetes: { syncPeriod: '1ms', minSyncPeriod: 0 } }).kubernetes.syncPeriod, 1);
  t.is(parseConfig({ ...base, kubernetes: { minSyncPeriod: 0 } }).kubernetes.minSyncPeriod, 0, 'minSyncPeriod 0 stays allowed');
});

test('config: clusterCIDRs are one CIDR or a dual-stack pair in detectLocalMode ClusterCIDR, as kube-proxy validates them', (t) => {
  const base = { ports: [{ name: 'p', type: 'tap', ifname: 't0', role: 'pod' }], node: {} };
  const k = (kubernetes) => parseConfig({ ...base, kubernetes });
  const err = (kubernetes) => t.throws(() => k(kubernetes)).message;
  t.deepEqual(k({ clusterCIDRs: ['10.244.0.0/16'] }).kubernetes.clusterCIDRs, ['10.244.0.0/16']);
  t.deepEqual(k({ clusterCIDRs: ['fd00:244::/56', '10.244.0.0/16'] }).kubernetes.clusterCIDRs, ['fd00:244::/56', '10.244.0.0/16']);
  t.deepEqual(k({ clusterCIDRs: [] }).kubernetes.clusterCIDRs, []);
  t.regex(err({ clusterCIDRs: ['10.244.0.0/16', '10.245.0.0/16'] }), /kubernetes\.clusterCIDRs: must be either a single CIDR or a dual-stack pair/);
  t.regex(err({ clusterCIDRs: ['10.244.0.0/16', 'fd00::/56', '10.245.0.0/16'] }), /kubernetes\.clusterCIDRs: must be either a single CIDR or a dual-stack pair/);
  t.deepEqual(k({ detectLocalMode: 'NodeCIDR', clusterCIDRs: ['10.244.0.0/16', '10.245.0.0/16'] }).kubernetes.clusterCIDRs, ['10.244.0.0/16', '10.245.0.0/16'],
    'NodeCIDR does not read them: kube-proxy checks them in ClusterCIDR mode only');
});

test('chunked list: a continue token that expires between pages falls back to one unpaged list (client-go\'s pager), which misses nothing and shows no deleted object', async (t) => {
  const d = new ApiServerDouble();
  await d.listen();
  t.teardown(() => d.close());
  for (let i = 0; i < 7; i++) d.create('services', apiService(`s${i}`, `10.96.9.${i + 1}`));
  const kc = new KubeConfig();
  kc.loadFromString(d.kubeconfig());
  // consistent snapshot: a change between pages is not seen by the rest of that list
  const seen = await (async () => {
    const orig = d.list.bind(d);
    let pages = 0;
    d.list = (res, r, url) => { orig(res, r, url); if (++pages === 1) { d.delete('services', 'default', 's6'); d.create('services', apiService('s7', '10.96.9.8')); } };
    const l = await listAll(kc, '/api/v1/services', { limit: 3 });
    d.list = orig;
    return l;
  })();
  t.deepEqual(seen.items.map((o) => o.metadata.name), ['s0', 's1', 's2', 's3', 's4', 's5', 's6'], 'pages after the first read the first page\'s snapshot');
  // expiry: compaction after the first page makes the token too old: 410, and a fresh list
  const orig = d.list.bind(d);
  let pages = 0;
  // (s1, on the first page, deleted too: the inconsistent continue token the 410 offers would keep it)
  d.list = (res, r, url) => { orig(res, r, url); if (++pages === 1) { d.delete('services', 'default', 's1'); d.delete('services', 'default', 's3'); d.compact(); } };
  const l = await listAll(kc, '/api/v1/services', { limit: 3 });
  t.true(d.stats.gone >= 1, 'the second page was 410 Gone');
  t.deepEqual(d.stats.listFrom.services.slice(-2), [{ resourceVersion: '', limit: 3 }, { resourceVersion: '', limit: 0 }], 'then one unpaged list');
  t.deepEqual(l.items.map((o) => o.metadata.name), ['s0', 's2', 's4', 's5', 's7']);
  t.is(l.metadata.resourceVersion, String(d.rv));
});

test('healthCheckNodePort: 200 with the local endpoint count while this node has ready endpoints, 503 without; closed when the service goes', async (t) => {
  const port = await freePort();
  const lb = apiService('lb', '10.96.7.1', { type: 'LoadBalancer', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }], extra: { externalTrafficPolicy: 'Local', healthCheckNodePort: port } });
  const k = await startKube(t, {
    seed: (d) => {
      d.create('nodes', apiNode('node-a'));
      d.create('services', lb);
      d.create('endpointslices', apiSlice('lb-1', 'lb', ['10.244.1.10', '10.244.1.11']));
      d.create('endpointslices', apiSlice('lb-2', 'lb', ['10.244.2.10'], { nodeName: 'node-b' }));
    },
  });
  const url = `http://127.0.0.1:${port}/`;
  const get = async () => { try { const r = await fetch(url); return { code: r.status, body: await r.json(), type: r.headers.get('content-type') }; } catch { return null; } };
  let r = await until(get, { what: 'health check port open' });
  t.is(r.code, 200);
  t.deepEqual(r.body, { service: { namespace: 'default', name: 'lb' }, localEndpoints: 2, serviceProxyHealthy: true });
  t.is(r.type, 'application/json');
  // the local endpoints move to another node: 503
  k.double.apply('endpointslices', apiSlice('lb-1', 'lb', ['10.244.3.10'], { nodeName: 'node-c' }));
  r = await until(async () => { const x = await get(); return x?.code === 503 && x; }, { what: '503' });
  t.is(r.body.localEndpoints, 0);
  const m = await k.cp.metrics.registry.metrics();
  t.regex(m, /kubeproxy_sync_proxy_rules_no_local_endpoints_total\{traffic_policy="external",ip_family="IPv4"\} 1/);
  t.regex(m, /kubeproxy_sync_proxy_rules_no_local_endpoints_total\{traffic_policy="internal",ip_family="IPv4"\} 0/);
  // policy back to Cluster: no health check server
  k.double.apply('services', { ...lb, spec: { ...lb.spec, externalTrafficPolicy: 'Cluster', healthCheckNodePort: undefined } });
  await until(async () => (await get()) === null, { what: 'port closed' });
  t.pass();
});

test('healthCheckNodePort counts the local endpoints the syncs programmed: a slice that arrives while a sync runs counts once the next sync has programmed it (as kube-proxy syncs its health servers from the maps it has just written)', async (t) => {
  const { LocalDataplane } = await import('../dist/src/core/dataplane.js');
  const port = await freePort();
  const lb = apiService('lb', '10.96.7.2', { type: 'LoadBalancer', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30081 }], extra: { externalTrafficPolicy: 'Local', healthCheckNodePort: port } });
  const dp = new LocalDataplane();
  const apply = dp.apply.bind(dp);
  let hold = null, entered = 0;
  dp.apply = async (...a) => { entered++; if (hold) await hold; return apply(...a); };
  const k = await startKube(t, { seed: (d) => { d.create('nodes', apiNode('node-a')); d.create('services', lb); }, dataplane: dp });
  const get = async () => { try { const r = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) }); return { code: r.status, body: await r.json() }; } catch { return null; } };
  await until(async () => (await get())?.code === 503, { what: 'the health check port, no local endpoint yet' });
  // a sync under way (another Service), held in the dataplane while the slice arrives
  let release1, release2;
  t.teardown(() => { hold = null; release1?.(); release2?.(); }); // (before the watcher stops: no sync left waiting)
  hold = new Promise((r) => { release1 = r; });
  const before = entered;
  k.double.create('services', apiService('other', '10.96.7.3'));
  await until(() => entered > before, { what: 'the sync in the dataplane' });
  k.double.create('endpointslices', apiSlice('lb-1', 'lb', ['10.244.1.10']));
  await until(() => k.watcher.informers.slices.list().length === 1, { what: 'the slice in the informer' });
  hold = new Promise((r) => { release2 = r; });
  release1();
  // that sync is done (the next one, with the slice, waits in the dataplane): its rules have no local endpoint
  await until(() => entered > before + 1, { what: 'the next sync in the dataplane' });
  const mid = await get();
  t.is(mid?.code, 503, JSON.stringify(mid));
  t.is(mid?.body.localEndpoints, 0);
  release2();
  const r = await until(async () => { const x = await get(); return x?.code === 200 && x; }, { what: '200 once the slice is programmed' });
  t.is(r.body.localEndpoints, 1);
});

test('wdp bench kube runs briefly and reports well-formed figures', async (t) => {
  const { runKubeBench } = await import('../dist/src/bench/kube.js');
  const r = await runKubeBench({ services: 40, endpoints: 3, pageSize: 7 });
  t.is(r.frontends, 40);
  t.is(r.backends, 120);
  t.true(r.list_pages >= 12, `40 services and 40 slices in pages of 7 (${r.list_pages})`);
  for (const k of ['list_ms', 'programmed_ms', 'one_endpoint_change_ms']) t.true(r[k] > 0, k);
});

test('deploy/: the ConfigMap is a valid daemon config; RBAC reads only; the DaemonSet is host-network with NET_ADMIN + NET_RAW and probes the configured healthz port', async (t) => {
  const { readFileSync } = await import('node:fs');
  const { parse, parseAllDocuments } = await import('yaml');
  const read = (f) => parseAllDocuments(readFileSync(new URL(`../deploy/base/${f}`, import.meta.url), 'utf8')).map((d) => d.toJS());
  const [cm] = read('configmap.yaml');
  const cfg = parseConfig(parse(cm.data['wdp.yaml']));
  t.truthy(cfg.kubernetes, 'the ConfigMap turns the watcher on');
  t.is(cfg.kubernetes.kubeconfig, undefined, 'in-cluster credentials');
  const [role] = read('clusterrole.yaml');
  const verbs = new Set(role.rules.flatMap((r) => r.verbs));
  t.deepEqual([...verbs].sort(), ['get', 'list', 'watch'], 'no write verb');
  const byRes = Object.fromEntries(role.rules.flatMap((r) => r.resources.map((x) => [x, r.verbs])));
  t.deepEqual(Object.keys(byRes).sort(), ['endpointslices', 'nodes', 'servicecidrs', 'services']);
  t.deepEqual(role.rules.find((r) => r.resources.includes('servicecidrs')), { apiGroups: ['networking.k8s.io'], resources: ['servicecidrs'], verbs: ['list', 'watch'] });
  const [ds] = read('daemonset.yaml');
  const pod = ds.spec.template.spec;
  t.true(pod.hostNetwork);
  t.is(pod.serviceAccountName, read('serviceaccount.yaml')[0].metadata.name);
  const c = pod.containers[0];
  t.deepEqual(c.securityContext.capabilities, { drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW'] });
  t.false(c.securityContext.privileged);
  t.true(c.command.includes('--hostname-override'));
  t.is(c.livenessProbe.httpGet.port, Number(cfg.kubernetes.healthzBindAddress.split(':').pop()));
  const [binding] = read('clusterrolebinding.yaml');
  t.is(binding.roleRef.name, role.metadata.name);
});

test('credentials: outside a cluster without a kubeconfig, and with a missing kubeconfig, startup says why', async (t) => {
  const { loadKubeConfig } = await import('../dist/src/kube/client.js');
  const saved = process.env.KUBERNETES_SERVICE_HOST;
  delete process.env.KUBERNETES_SERVICE_HOST;
  try {
    t.throws(() => loadKubeConfig({}), { message: /not running in a cluster.*kubernetes\.kubeconfig/ });
  } finally { if (saved !== undefined) process.env.KUBERNETES_SERVICE_HOST = saved; }
  const { writeFileSync } = await import('node:fs');
  const cfgFile = `${process.env.TMPDIR ?? '/tmp'}/wdp-kube-cfg-${process.pid}.yaml`;
  writeFileSync(cfgFile, JSON.stringify({ node: {}, ports: [{ name: 'p', type: 'tap', ifname: 't0', role: 'pod' }] }));
  const r = spawnSync(process.execPath, [new URL('../bin/wdp.js', import.meta.url).pathname, 'start', '--config', cfgFile, '--kubeconfig', '/nonexistent/kubeconfig'], { encoding: 'utf8', timeout: 30000 });
  t.is(r.status, 1);
  t.regex(r.stderr, /kubernetes: .*nonexistent\/kubeconfig/);
  // --kubernetes alone: in-cluster credentials, which a process outside a cluster does not have
  const env = { ...process.env }; delete env.KUBERNETES_SERVICE_HOST;
  const r2 = spawnSync(process.execPath, [new URL('../bin/wdp.js', import.meta.url).pathname, 'start', '--config', cfgFile, '--kubernetes', '--hostname-override', 'node-9'], { encoding: 'utf8', timeout: 30000, env });
  t.is(r2.status, 1);
  t.regex(r2.stderr, /kubernetes: not running in a cluster/);
});

test('healthCheckNodePort already taken: logged once, retried at later syncs, served once free', async (t) => {
  const { createServer: httpServer } = await import('node:http');
  const port = await freePort();
  const squatter = httpServer((_q, r) => r.end('not wdp'));
  await new Promise((r) => squatter.listen(port, '127.0.0.1', r));
  const lb = apiService('lb', '10.96.12.1', { type: 'LoadBalancer', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30081 }], extra: { externalTrafficPolicy: 'Local', healthCheckNodePort: port } });
  const k = await startKube(t, { seed: (d) => { d.create('services', lb); d.create('endpointslices', apiSlice('lb-1', 'lb', ['10.244.12.1'])); } });
  await until(() => k.lines.some((l) => /cannot open the service health check port/.test(l.msg)), { what: 'warning' });
  k.double.create('services', apiService('x', '10.96.12.2'));
  await until(() => k.compiler.getService('default', 'x'), { what: 'another sync' });
  t.is(k.lines.filter((l) => /cannot open the service health check port/.test(l.msg)).length, 1, 'logged once');
  await new Promise((r) => squatter.close(r));
  k.double.create('services', apiService('y', '10.96.12.3'));
  const r = await until(async () => { try { const x = await fetch(`http://127.0.0.1:${port}/`); const b = await x.json(); return b.localEndpoints === 1 && x.status; } catch { return null; } }, { what: 'health check served' });
  t.is(r, 200);
});

// (makes its certificates with openssl: skipped, saying so, where it is not installed)
const HAS_OPENSSL = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;
(HAS_OPENSSL ? test : test.skip)(`HTTPS with a cluster CA and a bearer token: a kubeconfig and the in-cluster service-account files both work; another CA or token is refused${HAS_OPENSSL ? '' : ' (skipped: needs openssl)'}`, async (t) => {
  const { mkdtempSync, readFileSync, rmSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'wdp-kube-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ssl = (args) => { const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' }); if (r.status !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr}`); };
  ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=test-ca']);
  ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1']);
  writeFileSync(join(dir, 'ext'), 'subjectAltName=IP:127.0.0.1\n');
  ssl(['x509', '-req', '-in', 'srv.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.crt', '-days', '2', '-extfile', 'ext']);
  ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'other.key', '-out', 'other.crt', '-days', '2', '-subj', '/CN=other-ca']);
  const read = (f) => readFileSync(join(dir, f), 'utf8');
  const tls = { key: read('srv.key'), cert: read('srv.crt'), ca: read('ca.crt') };
  const k = await startKube(t, { double: { tls, token: 'sa-token-0123456789' }, seed: (d) => d.create('services', apiService('secure', '10.96.14.1')) });
  await until(() => k.compiler.getService('default', 'secure'), { what: 'programmed over HTTPS' });
  k.double.create('services', apiService('secure2', '10.96.14.2'));
  await until(() => k.compiler.getService('default', 'secure2'), { what: 'watched over HTTPS' });
  t.true(k.double.url.startsWith('https://'));
  // in-cluster credentials: the service account's CA and token files, KUBERNETES_SERVICE_HOST/PORT
  const { loadKubeConfig } = await import('../dist/src/kube/client.js');
  const sa = join(dir, 'var/run/secrets/kubernetes.io/serviceaccount');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(sa, { recursive: true });
  writeFileSync(join(sa, 'ca.crt'), tls.ca);
  writeFileSync(join(sa, 'token'), 'sa-token-0123456789');
  writeFileSync(join(sa, 'namespace'), 'kube-system');
  const env = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
  process.env.KUBERNETES_SERVICE_HOST = '127.0.0.1';
  process.env.KUBERNETES_SERVICE_PORT = new URL(k.double.url).port;
  let inCluster;
  try { inCluster = loadKubeConfig({ inClusterRoot: dir }); } finally {
    if (env.host === undefined) delete process.env.KUBERNETES_SERVICE_HOST; else process.env.KUBERNETES_SERVICE_HOST = env.host;
    if (env.port === undefined) delete process.env.KUBERNETES_SERVICE_PORT; else process.env.KUBERNETES_SERVICE_PORT = env.port;
  }
  const viaSa = await listAll(inCluster, '/api/v1/services');
  t.deepEqual(viaSa.items.map((o) => o.metadata.name).sort(), ['secure', 'secure2']);
  // a client that trusts another CA is refused
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  kc.loadFromString(k.double.kubeconfig().replace(Buffer.from(tls.ca).toString('base64'), Buffer.from(read('other.crt')).toString('base64')));
  await t.throwsAsync(() => listAll(kc, '/api/v1/services'), { message: /certificate|self.signed|unable to verify/i });
  // and a wrong token is a 401
  const kc2 = new KubeConfig();
  kc2.loadFromString(k.double.kubeconfig().replace('sa-token-0123456789', 'wrong-token'));
  await t.throwsAsync(() => listAll(kc2, '/api/v1/services'), { message: /401/ });
});

/** A KubeConfig for a plain-HTTP test server on loopback, no credentials. */
function plainKubeConfig(server) {
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: 'c', server: `http://127.0.0.1:${server.address().port}`, skipTLSVerify: true }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
  return kc;
}

test('a watch event without a type, or whose object has no metadata, fails the watch instead of reaching the library (which would dereference it unhandled)', async (t) => {
  const lines = ['{"type":"ADDED","object":null}', '123', '{"type":"MODIFIED","object":{"kind":"Service"}}', '{"object":{"metadata":{}}}'];
  let i = 0;
  const server = createHttpServer((req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(`${lines[i++]}\n`); });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const kc = plainKubeConfig(server);
  for (const line of lines) {
    const events = [];
    const err = await new Promise((resolve) => { void openWatch(kc, '/api/v1/services', {}, (type, obj) => events.push([type, obj]), resolve, 10_000); });
    t.deepEqual(events, [], line);
    t.regex(String(err?.message), /is not \{type, object with metadata\}/, line);
  }
});

test('a watch stream that never ends its line fails the watch once the line passes MAX_WATCH_EVENT, instead of buffering without bound', async (t) => {
  const chunk = 'x'.repeat(1024 * 1024);
  let written = 0;
  const server = createHttpServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    // (bounded: a little more than the limit, then the stream stays open)
    const more = () => { while (written <= MAX_WATCH_EVENT + chunk.length) { written += chunk.length; if (!res.write(chunk)) { res.once('drain', more); return; } } };
    more();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => { server.closeAllConnections(); server.close(); });
  const kc = plainKubeConfig(server);
  const events = [];
  const err = await new Promise((resolve) => { void openWatch(kc, '/api/v1/services', {}, (type) => events.push(type), resolve, 60_000); });
  t.deepEqual(events, []);
  t.regex(String(err?.message), /an event is longer than/);
});
