// The CNI plugin (bin/wdp-cni.js) driven exactly as a container runtime drives a chained plugin,
// and pods made the way the chain's first plugin (ptp) makes them, for the e2e tests
// (test/e2e-ports.test.js, test/e2e-cni-gc.test.js). Everything lives in the topology's namespaces.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { POD_SERVER, ROOT } from './topology.js';

const CNI = join(ROOT, 'bin/wdp-cni.js');

/** One plugin call: the CNI_* environment, the network config on stdin (`network`: its name;
 * `conf`: more fields, e.g. GC's cni.dev/valid-attachments), run in the node's namespace (here the
 * dataplane's). Returns { code, out (the stdout's JSON), stderr }. */
export async function cniCall(topo, command, { id, netnsPath, ifname = 'eth0', prevResult, cniVersion = '1.0.0', network = 'wdp-e2e', conf = {} } = {}) {
  const config = { cniVersion, name: network, type: 'wdp-cni', server: `unix:${topo.config.api.listen}`, ...(prevResult ? { prevResult } : {}), ...conf };
  // STATUS and GC are about the network, not an attachment: no container, namespace or interface
  const attachment = command === 'STATUS' || command === 'GC' ? [] : [`CNI_CONTAINERID=${id}`, `CNI_NETNS=${netnsPath}`, `CNI_IFNAME=${ifname}`];
  const envs = [`CNI_COMMAND=${command}`, ...attachment, 'CNI_PATH=/opt/cni/bin'];
  const r = await topo.lab.execAsync(topo.ns.dp, 'env', [...envs, process.execPath, CNI], { input: JSON.stringify(config), timeoutMs: 30000 });
  return { code: r.code, out: r.stdout ? JSON.parse(r.stdout) : undefined, stderr: r.stderr };
}

/** What the previous plugin of the chain (ptp) does: a veth pair, the pod end named eth0 in the
 * pod's namespace `<prefix><i>` with its /32 (`ip`, default 10.244.2.<10+i>; null: none) and/or
 * /128 (`ip6`) and on-link routes via the gateways (10.244.0.1, fd00:244::1), the gateway
 * addresses on the host end `wv<i>` (`hostIf`). */
export function ptpLike(topo, i, { prefix = 'n', ip = `10.244.2.${10 + i}`, ip6, hostIf = `wv${i}` } = {}) {
  const ns = topo.lab.namespace(`${prefix}${i}`);
  topo.lab.veth(ns, 'eth0', topo.ns.dp, hostIf);
  if (ip6) {
    topo.lab.sysctl(ns, 'net.ipv6.conf.eth0.disable_ipv6', '0');
    topo.lab.sysctl(topo.ns.dp, `net.ipv6.conf.${hostIf}.disable_ipv6`, '0');
  }
  topo.lab.up(ns, 'eth0');
  const families = [[ip, 32, '10.244.0.1', '0.0.0.0/0'], [ip6, 128, 'fd00:244::1', '::/0']].filter(([a]) => a);
  for (const [addr, len, gw] of families) {
    topo.lab.addr(ns, 'eth0', `${addr}/${len}`);
    topo.lab.route(ns, gw, undefined, 'eth0');
    topo.lab.route(ns, 'default', gw, 'eth0');
    topo.lab.addr(topo.ns.dp, hostIf, `${gw}/${len}`);
  }
  const prevResult = {
    cniVersion: '1.0.0',
    interfaces: [{ name: hostIf, mac: topo.lab.mac(topo.ns.dp, hostIf) }, { name: 'eth0', mac: topo.lab.mac(ns, 'eth0'), sandbox: `/var/run/netns/${ns}` }],
    ips: families.map(([addr, len, gw]) => ({ address: `${addr}/${len}`, gateway: gw, interface: 1 })),
    routes: families.map(([, , gw, dst]) => ({ dst, gw })), dns: {},
  };
  return { ns, hostIf, ...(ip ? { ip } : {}), ...(ip6 ? { ip6 } : {}), prevResult, id: `ctr-${prefix}${i}-${process.pid}`, netnsPath: `/var/run/netns/${ns}` };
}

/** The test's HTTP server in a pod's namespace, answering its `name`; resolves once it listens. */
export function startServer(topo, ns, name) {
  const child = topo.lab.spawn(ns, process.execPath, [POD_SERVER, name, '--http', '8080']);
  topo.podProcs.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`${name} not ready`)), 10000);
    child.stdout.on('data', (d) => { out += d; if (out.includes('ready')) { clearTimeout(t); resolve(child); } });
  });
}

/** host-local's default gateway: the subnet's first address (10.244.1.0/24: 10.244.1.1,
 * fd00:244:1::/64: fd00:244:1::1). */
const firstAddress = (net) => { const a = net.split('/')[0]; return a.endsWith('::') ? `${a}1` : a.replace(/[0-9a-f]+$/, (n) => (a.includes(':') ? (parseInt(n, 16) + 1).toString(16) : String(Number(n) + 1))); };

/** Exactly what `ptp` with host-local IPAM does for a pod (containernetworking/plugins ptp.go),
 * as the chain's first plugin before wdp-cni: a veth pair (the host end `hostIf` in the node's
 * namespace, the kernel's default offloads), the pod's address with the subnet's prefix and ptp's
 * routes (the gateway — the subnet's first address — on-link, the subnet and the IPAM routes via
 * it), the gateway as a /32 on the host end and a host route to the pod; with `ip6` in `subnet6`
 * the same for IPv6 (/128s). Returns ptp's result. */
export function ptpAdd(topo, ns, hostIf, ip, subnet, ipamRoutes, { ip6, subnet6 } = {}) {
  const { lab } = topo;
  lab.veth(ns, 'eth0', topo.ns.dp, hostIf);
  // a dual-stack pod (host-local with an IPv6 range too): IPv6 on at both ends, as on a node
  if (ip6) for (const [n, i] of [[ns, 'eth0'], [topo.ns.dp, hostIf]]) lab.sysctl(n, `net.ipv6.conf.${i}.disable_ipv6`, '0');
  const fams = [[ip, subnet, 32], ...(ip6 ? [[ip6, subnet6, 128]] : [])].map(([a, net, bits]) => ({ a, net, bits, prefix: net.split('/')[1], gw: firstAddress(net) }));
  for (const { a, net, bits, prefix, gw } of fams) {
    lab.addr(ns, 'eth0', `${a}/${prefix}`);
    lab.exec(ns, 'ip', ['route', 'del', net, 'dev', 'eth0']);
    lab.exec(ns, 'ip', ['route', 'add', `${gw}/${bits}`, 'dev', 'eth0', 'scope', 'link', 'src', a]);
    lab.exec(ns, 'ip', ['route', 'add', net, 'via', gw, 'dev', 'eth0', 'src', a]);
    for (const r of ipamRoutes.filter((x) => x.dst.includes(':') === (bits === 128))) lab.exec(ns, 'ip', ['route', 'add', /^(0\.0\.0\.0|::)\/0$/.test(r.dst) ? 'default' : r.dst, 'via', r.gw ?? gw, 'dev', 'eth0']);
    lab.addr(topo.ns.dp, hostIf, `${gw}/${bits}`);
    lab.exec(topo.ns.dp, 'ip', ['route', 'add', `${a}/${bits}`, 'dev', hostIf]);
  }
  return {
    cniVersion: '1.0.0',
    interfaces: [{ name: hostIf, mac: lab.mac(topo.ns.dp, hostIf) }, { name: 'eth0', mac: lab.mac(ns, 'eth0'), sandbox: `/var/run/netns/${ns}` }],
    ips: fams.map(({ a, prefix, gw }) => ({ address: `${a}/${prefix}`, gateway: gw, interface: 1 })),
    routes: ipamRoutes, dns: {},
  };
}

/** The first ```FENCE block after `heading` in docs/running.md (e.g. the CNI plugin's network
 * config list: `runningBlock('**The CNI plugin.**', 'json')`). */
export function runningBlock(heading, fence) {
  const text = readFileSync(join(ROOT, 'docs/running.md'), 'utf8');
  return new RegExp('```' + fence + '\\n([\\s\\S]*?)```').exec(text.slice(text.indexOf(heading)))[1];
}
