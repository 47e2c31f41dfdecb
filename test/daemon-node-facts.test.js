// What a daemon following a Kubernetes Node saves for a restart keeps the Node's facts apart from
// the config file's fallbacks: a restart whose read of the Node fails (the API server is away)
// takes the Node's facts as last seen and the fallbacks from the config file as it is now — an old
// config's zone, pod CIDRs or node.addresses are never taken for what the Node said. The daemon
// runs in this process against the API-server double on loopback (then against a port nothing
// listens on); its one TAP port is created in a network namespace the test makes
// (DaemonOptions.portNetns), its API on a unix socket. No packets are sent.
import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import pino from 'pino';
import { canUseNetns, NetnsLab } from '../dist/src/netns.js';
import { parseConfig } from '../dist/src/daemon/config.js';
import { startDaemon } from '../dist/src/daemon/daemon.js';
import { ApiServerDouble } from './lib/apiserver-double.js';

const root = canUseNetns();
const serial = root ? test.serial : (title, ...rest) => test.skip(`${title} (skipped: needs root and ip: the TAP port goes in a network namespace)`, ...rest);

const AWAY = JSON.stringify({
  apiVersion: 'v1', kind: 'Config', 'current-context': 'away',
  clusters: [{ name: 'away', cluster: { server: 'http://127.0.0.1:9', 'insecure-skip-tls-verify': true } }],
  users: [{ name: 'away', user: {} }], contexts: [{ name: 'away', context: { cluster: 'away', user: 'away' } }],
});

/** A lab (namespace for the TAP), a state dir, the double serving `node`, and start(node, kubernetes, away). */
async function setUp(t, tag, node) {
  const lab = new NetnsLab(tag);
  const dir = mkdtempSync(join(tmpdir(), `wdp-nodefacts-${tag}-`));
  const double = new ApiServerDouble();
  let daemon;
  t.teardown(async () => {
    await daemon?.stop().catch(() => undefined);
    await double.close().catch(() => undefined);
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  const ns = lab.namespace('dp');
  await double.listen();
  double.create('nodes', node);
  writeFileSync(join(dir, 'kubeconfig'), double.kubeconfig());
  writeFileSync(join(dir, 'kubeconfig-away'), AWAY);
  return {
    double,
    stateDir: join(dir, 'state'),
    async start(nodeCfg, k8s, { away = false } = {}) {
      await daemon?.stop();
      const cfg = parseConfig({
        node: { name: 'n1', ...nodeCfg }, stateDir: join(dir, 'state'), workers: 1,
        api: { listen: `unix:${join(dir, 'api.sock')}`, healthz: 'off' },
        ports: [{ name: 'pods', type: 'tap', ifname: `wdp${tag}0`, role: 'pod' }],
        kubernetes: {
          kubeconfig: join(dir, away ? 'kubeconfig-away' : 'kubeconfig'), minSyncPeriod: '100ms', syncPeriod: '5s',
          healthzBindAddress: 'off', metricsBindAddress: 'off', nodeWaitSeconds: 20, ...k8s,
        },
      });
      daemon = await startDaemon(cfg, { logger: pino({ level: 'silent' }), portNetns: ns });
      await daemon.settled();
      return daemon;
    },
  };
}

const nodeObject = (addresses, extra = {}) => ({
  metadata: { name: 'n1', ...(extra.zone ? { labels: { 'topology.kubernetes.io/zone': extra.zone } } : {}) },
  spec: extra.podCIDR ? { podCIDRs: [extra.podCIDR] } : {},
  status: { addresses: addresses.map((address) => ({ type: 'InternalIP', address })) },
});

serial('a restart with the API server away takes the zone and pod CIDRs the config file gives now as fallbacks, not the old config\'s as the Node\'s', async (t) => {
  const s = await setUp(t, 'nfa', nodeObject(['192.168.100.2']));   // no zone label, no pod CIDRs
  let d = await s.start({ zone: 'zone-a', podCIDRs: ['10.244.7.0/24'] }, {});
  t.like(d.nodeConfig().spec, { nodeAddresses: ['192.168.100.2'], zone: 'zone-a', podCIDRs: ['10.244.7.0/24'] }, 'the config\'s fallbacks while the Node has none');
  d = await s.start({ zone: 'zone-b', podCIDRs: ['10.244.8.0/24'] }, {}, { away: true });
  const spec = d.nodeConfig().spec;
  t.deepEqual(spec.nodeAddresses, ['192.168.100.2'], 'the Node\'s addresses as last seen');
  t.is(spec.zone, 'zone-b', 'the zone of the config file as it is now');
  t.deepEqual(spec.podCIDRs, ['10.244.8.0/24'], 'the pod CIDRs of the config file as it is now');
});

serial('a restart with the API server away keeps what the Node said over the config file: its zone and pod CIDR win over the fallbacks, changed or not', async (t) => {
  const s = await setUp(t, 'nfb', nodeObject(['192.168.100.2'], { zone: 'zone-n', podCIDR: '10.244.3.0/24' }));
  let d = await s.start({ zone: 'zone-a', podCIDRs: ['10.244.3.0/24'] }, {});
  t.like(d.nodeConfig().spec, { zone: 'zone-n', podCIDRs: ['10.244.3.0/24'] });
  d = await s.start({}, {}, { away: true });
  t.like(d.nodeConfig().spec, { zone: 'zone-n', podCIDRs: ['10.244.3.0/24'] }, 'the Node\'s facts as last seen, with no fallback configured');
});

serial('a restart with the API server away selects among the Node\'s addresses as last seen and node.addresses as configured now: an address only the old config listed is gone', async (t) => {
  const s = await setUp(t, 'nfc', nodeObject(['192.168.100.2']));
  // a nodePortAddresses beside node.addresses: the start reads the Node (it may select its addresses)
  let d = await s.start({ addresses: ['192.168.100.5'] }, { nodePortAddresses: ['0.0.0.0/0'] });
  t.like(d.nodeConfig().spec, { nodeAddresses: ['192.168.100.5', '192.168.100.2'], nodePortAddresses: ['192.168.100.5', '192.168.100.2'] });
  d = await s.start({ addresses: ['192.168.100.6'] }, { nodePortAddresses: ['0.0.0.0/0'] }, { away: true });
  t.like(d.nodeConfig().spec, { nodeAddresses: ['192.168.100.6', '192.168.100.2'], nodePortAddresses: ['192.168.100.6', '192.168.100.2'] },
    'the configured address now and the Node\'s; not 192.168.100.5, which only the old config named');
});

serial('node.addresses configured (the start does not wait for the Node): a restart that cannot read it takes the zone the config file gives now', async (t) => {
  const s = await setUp(t, 'nfd', nodeObject(['192.168.100.2']));
  let d = await s.start({ addresses: ['192.168.100.2'], zone: 'zone-a' }, {});
  // the Node is read in the background: its facts (no zone) are saved once read
  for (let i = 0; i < 100 && !d.kube?.nodeState(); i++) await new Promise((r) => setTimeout(r, 100));
  await d.settled();
  t.is(d.nodeConfig().spec.zone, 'zone-a');
  d = await s.start({ addresses: ['192.168.100.2'], zone: 'zone-b' }, {}, { away: true });
  t.is(d.nodeConfig().spec.zone, 'zone-b');
});

serial('the facts the watcher reads later are the ones a restart takes; a Node never seen leaves none: the config file\'s fallbacks as they are now', async (t) => {
  const s = await setUp(t, 'nfe', nodeObject(['192.168.100.2']));
  let d = await s.start({ podCIDRs: ['10.244.7.0/24'] }, {});
  // the Node changes while the daemon watches it: a second InternalIP (now its primary) and a pod CIDR
  s.double.update('nodes', nodeObject(['192.168.100.3', '192.168.100.2'], { podCIDR: '10.244.4.0/24', zone: 'zone-n' }));
  for (let i = 0; i < 100 && d.nodeConfig().spec.zone !== 'zone-n'; i++) await new Promise((r) => setTimeout(r, 100));
  await d.settled();
  t.like(d.nodeConfig().spec, { nodeAddresses: ['192.168.100.3', '192.168.100.2'], nodePortAddresses: ['192.168.100.3'], podCIDRs: ['10.244.4.0/24'], zone: 'zone-n' });
  d = await s.start({ podCIDRs: ['10.244.7.0/24'] }, {}, { away: true });
  t.like(d.nodeConfig().spec, { nodeAddresses: ['192.168.100.3', '192.168.100.2'], nodePortAddresses: ['192.168.100.3'], nodeIPs: ['192.168.100.3'], podCIDRs: ['10.244.4.0/24'], zone: 'zone-n' },
    'the Node as the watcher read it last');

  // a state directory whose daemon never read the Node (the API server away at its first start)
  const s2 = await setUp(t, 'nff', nodeObject(['192.168.100.2']));
  d = await s2.start({ podCIDRs: ['10.244.7.0/24'] }, { nodeWaitSeconds: 0 }, { away: true });
  t.like(d.nodeConfig().spec, { nodeAddresses: [], podCIDRs: ['10.244.7.0/24'] });
  d = await s2.start({ podCIDRs: ['10.244.8.0/24'] }, {}, { away: true });
  t.like(d.nodeConfig().spec, { nodeAddresses: [], podCIDRs: ['10.244.8.0/24'] }, 'no Node facts: the pod CIDRs configured now');
});

serial('a state directory without saved Node facts (an older wdp\'s), or with a damaged file: the Node as last seen from the saved node config', async (t) => {
  const s = await setUp(t, 'nfg', nodeObject(['192.168.100.2', '192.168.100.22'], { zone: 'zone-n' }));
  let d = await s.start({}, {});
  t.like(d.nodeConfig().spec, { nodeAddresses: ['192.168.100.2', '192.168.100.22'], nodePortAddresses: ['192.168.100.2'], zone: 'zone-n' });
  await d.stop();
  rmSync(join(s.stateDir, 'node-facts.json'));
  d = await s.start({}, {}, { away: true });
  t.like(d.nodeConfig().spec, { nodeAddresses: ['192.168.100.2', '192.168.100.22'], nodePortAddresses: ['192.168.100.2'], zone: 'zone-n' }, 'no file');
  // saved although read from a NodeConfig, not from the Node: the NodeConfig this start saves mixes
  // in the config's fallbacks of now, and a next start that read it instead would take them for
  // the Node's (the test below whose saved node config has no zone)
  t.true(existsSync(join(s.stateDir, 'node-facts.json')), 'the facts in force are saved');
  await d.stop();
  writeFileSync(join(s.stateDir, 'node-facts.json'), '{"version":1,"node":{"addr');
  d = await s.start({}, {}, { away: true });
  t.like(d.nodeConfig().spec, { nodeAddresses: ['192.168.100.2', '192.168.100.22'], nodePortAddresses: ['192.168.100.2'], zone: 'zone-n' }, 'a damaged file');
});

serial('an older wdp\'s state directory whose saved node config holds the config\'s zone and pod CIDR fallbacks: a restart with the API server away takes them for the fallbacks, so a later one takes the fallbacks the config gives then', async (t) => {
  const s = await setUp(t, 'nfi', nodeObject(['192.168.100.2']));   // no zone label, no pod CIDRs
  let d = await s.start({ zone: 'zone-a', podCIDRs: ['10.244.7.0/24'] }, {});
  t.like(d.nodeConfig().spec, { zone: 'zone-a', podCIDRs: ['10.244.7.0/24'] }, 'the fallbacks while the Node has none');
  await d.stop();
  rmSync(join(s.stateDir, 'node-facts.json'));                      // as an older wdp left it
  d = await s.start({ zone: 'zone-a', podCIDRs: ['10.244.7.0/24'] }, {}, { away: true });
  t.like(d.nodeConfig().spec, { nodeAddresses: ['192.168.100.2'], zone: 'zone-a', podCIDRs: ['10.244.7.0/24'] });
  await d.stop();
  t.like(JSON.parse(readFileSync(join(s.stateDir, 'node-facts.json'), 'utf8')).node, { zone: '', podCIDRs: [] }, 'the fallbacks\' zone and pod CIDRs: not saved as the Node\'s');
  d = await s.start({ zone: 'zone-b', podCIDRs: ['10.244.8.0/24'] }, {}, { away: true });
  t.like(d.nodeConfig().spec, { nodeAddresses: ['192.168.100.2'], zone: 'zone-b', podCIDRs: ['10.244.8.0/24'] }, 'the zone and pod CIDRs the config file gives now');
});

serial('an older wdp\'s state directory whose saved node config has no zone: a restart with the API server away and a zone fallback does not make that fallback the Node\'s for the next', async (t) => {
  const s = await setUp(t, 'nfj', nodeObject(['192.168.100.2']));   // no zone label
  let d = await s.start({}, {});
  t.is(d.nodeConfig().spec.zone ?? '', '');
  await d.stop();
  rmSync(join(s.stateDir, 'node-facts.json'));                      // as an older wdp left it
  d = await s.start({ zone: 'zone-x' }, {}, { away: true });
  t.is(d.nodeConfig().spec.zone, 'zone-x', 'the fallback the config gives now');
  d = await s.start({ zone: 'zone-y' }, {}, { away: true });
  t.is(d.nodeConfig().spec.zone, 'zone-y', 'the fallback the config gives now, not the one of the restart before');
});

serial('a restart with the API server away takes the cluster\'s ServiceCIDRs as last seen with node.serviceCIDRs as the config file gives them now: a CIDR removed from the config is not kept', async (t) => {
  const s = await setUp(t, 'nfh', nodeObject(['192.168.100.2']));
  s.double.create('servicecidrs', { metadata: { name: 'kubernetes' }, spec: { cidrs: ['10.99.62.0/24'] } });
  let d = await s.start({ serviceCIDRs: ['10.96.0.0/16'] }, {});
  for (let i = 0; i < 100 && !d.kube?.serviceCIDRs(); i++) await new Promise((r) => setTimeout(r, 100));
  await d.settled();
  t.deepEqual(d.nodeConfig().spec.serviceCIDRs, ['10.96.0.0/16', '10.99.62.0/24'], 'the config\'s and the cluster\'s');
  d = await s.start({}, {}, { away: true });
  t.deepEqual(d.nodeConfig().spec.serviceCIDRs, ['10.99.62.0/24'], 'the cluster\'s as last seen; not the config\'s of before');
  d = await s.start({ serviceCIDRs: ['10.97.0.0/16'] }, {}, { away: true });
  t.deepEqual(d.nodeConfig().spec.serviceCIDRs, ['10.97.0.0/16', '10.99.62.0/24'], 'the config\'s now beside the cluster\'s as last seen');
  // the cluster's ServiceCIDR deleted while the daemon watches: a restart drops it too
  d = await s.start({}, {});
  s.double.delete('servicecidrs', null, 'kubernetes');
  for (let i = 0; i < 100 && d.nodeConfig().spec.serviceCIDRs?.length; i++) await new Promise((r) => setTimeout(r, 100));
  await d.settled();
  t.deepEqual(d.nodeConfig().spec.serviceCIDRs ?? [], []);
  d = await s.start({ serviceCIDRs: ['10.97.0.0/16'] }, {}, { away: true });
  t.deepEqual(d.nodeConfig().spec.serviceCIDRs, ['10.97.0.0/16']);
});
