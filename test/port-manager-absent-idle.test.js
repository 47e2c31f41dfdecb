// deploy/base/configmap.yaml's ports on a node whose pods are all attached by the CNI plugin: the
// `pods` port's interface (wdp-pods) does not exist there. Nothing is routed to that port (none of
// its pods is configured, no route names it), so its absence at start is said at info level —
// the start has nothing for the operator to look at; a pod port with a configured pod (or a route
// naming it) still warns, as what is routed to it is dropped (src/daemon/port-manager.ts
// startAbsent). The uplink is a veth in a namespace this test creates.
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { parse as parseYaml } from 'yaml';
import { parseConfig } from '../dist/src/daemon/config.js';
import { PortManager } from '../dist/src/daemon/port-manager.js';
import { NetnsLab } from '../dist/src/netns.js';
import { rootGate } from './lib/root-gate.js';

const gate = rootGate(test);
const cm = parseYaml(readFileSync(new URL('../deploy/base/configmap.yaml', import.meta.url), 'utf8'));
const deployed = parseYaml(cm.data['wdp.yaml']);

/** The start's log lines of a PortManager over `ports` in a namespace that has only the uplink's
 * interface, with its ports as the API lists them. */
async function startWith(ports, routes = []) {
  const lab = new NetnsLab('pai');
  const dir = mkdtempSync(join(tmpdir(), 'wdp-pai-'));
  try {
    const ns = lab.namespace('a'), peer = lab.namespace('b');
    const uplink = ports.find((p) => p.role === 'uplink');
    lab.veth(ns, uplink.ifname, peer, 'eth0');
    const lines = [];
    const log = pino({ level: 'info' }, { write: (s) => lines.push(JSON.parse(s)) });
    const cfg = parseConfig({ node: { name: 'node-a', addresses: ['10.0.0.2'] }, stateDir: dir, ports, routes });
    const pm = new PortManager(cfg, log, ns);
    await pm.attach({
      addPort: async () => { throw new Error('not here'); }, removePort: async () => {}, setPortMtu: async () => {},
      ports: async () => pm.initialSpecs().filter((s) => !s.absent).map((s) => ({ name: s.name, index: s.index, mac: s.mac, kind: 'stand-in', stats: {} })),
    });
    return { lines, list: await pm.list() };
  } finally {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

gate.serial('the deploy ConfigMap\'s ports on a node without its pod-facing link: the pods port is absent, said at info level, nothing warned', async (t) => {
  const pods = deployed.ports.find((p) => p.role === 'pod');
  t.truthy(pods, 'the ConfigMap declares a pod-facing port');
  const { lines, list } = await startWith(deployed.ports);
  t.is(list.find((p) => p.name === pods.name).state, 'absent');
  t.is(list.find((p) => p.role === 'uplink').state, 'up');
  const said = lines.filter((l) => /does not exist at start: port absent/.test(l.msg));
  t.is(said.length, 1);
  t.like(said[0], { level: 30, port: pods.name, ifname: pods.ifname });
  t.regex(said[0].msg, /nothing is routed to it/);
  t.deepEqual(lines.filter((l) => l.level >= 40), [], 'nothing the operator should look at');
});

gate.serial('a pod port missing at start that has a configured pod, or a route naming it, still warns', async (t) => {
  const base = deployed.ports.map((p) => ({ ...p }));
  const pods = base.find((p) => p.role === 'pod');
  const withPod = await startWith(base.map((p) => (p === pods ? { ...p, pods: [{ ip: '10.244.0.5', mac: '02:00:00:00:05:05' }] } : p)));
  t.like(withPod.lines.find((l) => /does not exist at start/.test(l.msg)), { level: 40, port: pods.name });
  const routed = await startWith(base, [{ prefix: '10.250.0.0/16', port: pods.name, mac: '02:00:00:00:06:06' }]);
  t.like(routed.lines.find((l) => /does not exist at start/.test(l.msg)), { level: 40, port: pods.name });
});
