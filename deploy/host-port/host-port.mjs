// The host port's start and stop in a pod (deploy/host-port/daemonset.yaml): what the systemd
// unit of docs/running.md ("On a Kubernetes node: the host port") does around `wdp start` with
// ExecStartPre and ExecStopPost, for a DaemonSet whose one ConfigMap serves every node.
//
//   node host-port.mjs --template FILE --config FILE --saved FILE -- COMMAND...
//
// 1. The NIC is the uplink the template's host port is bridged with (its `uplink:`, else the only
//    uplink). Its global addresses (with their prefix lengths) and default gateways are the node's
//    network: read from the NIC and saved to --saved (a host path) while the NIC has addresses;
//    when it has none — wdp moved them to the host port, and wdp or this pod stopped without
//    giving them back (SIGKILL, a crash) — the saved ones are used.
// 2. --config is the template with them filled in where the template leaves them out: the host
//    port's hostAddresses, a default hostRoute per family via the gateway, and a route per family
//    for the uplink (backends on other nodes: the router). What the template sets stays.
// 3. COMMAND runs (`node wdp.js start --config ...`), SIGTERM and SIGINT are passed to it. The
//    daemon reads its Node through the NIC, then puts the node's addresses and routes on the host
//    port; once the host port has them all, the NIC's addresses are flushed (the systemd unit's
//    ExecStartPre, after the start rather than before: the API server stays reachable while the
//    daemon starts, so a first start does not wait nodeWaitSeconds for a Node it cannot read).
// 4. When it ends, however it ends, the NIC gets the node's network back (ExecStopPost): wdp's
//    nftables table removed (a clean stop has removed it), IPv6 on again, the addresses and default
//    routes — so the node can pull the next image and reach its API server. Exit: COMMAND's code
//    (128 + the signal's number if a signal ended it).
//
// Errors (exit 2, one line): no template, a template without a host port or its uplink, a NIC
// with no address and nothing saved.
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { parse, stringify } from 'yaml';
import { systemTool } from '../../dist/src/util/system-tool.js';
import { canonicalCidr, completeTemplate, family, hostPortOf } from './host-port-config.mjs';

const args = process.argv.slice(2);
const sep = args.indexOf('--');
const opt = (name) => { const i = args.indexOf(name); return i >= 0 && (sep < 0 || i < sep) ? args[i + 1] : undefined; };
const command = sep >= 0 ? args.slice(sep + 1) : [];
const log = (msg, extra = {}) => process.stderr.write(`${JSON.stringify({ time: Date.now(), name: 'host-port', msg, ...extra })}\n`);
const fail = (msg) => { process.stderr.write(`host-port: ${msg}\n`); process.exit(2); };

const USAGE = 'usage: node host-port.mjs --template FILE --config FILE --saved FILE -- COMMAND...';
if (['--help', '-h'].includes(args[0])) { process.stdout.write(`${USAGE}\n  (deploy/host-port/daemonset.yaml's command; docs/running.md, "Deploying it")\n`); process.exit(0); }
const [templatePath, configPath, savedPath] = [opt('--template'), opt('--config'), opt('--saved')];
if (!templatePath || !configPath || !savedPath || !command.length) fail(USAGE);

const tool = (name) => systemTool(name) ?? fail(`${name} is not installed`);
const ip = (...a) => execFileSync(tool('ip'), a, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

let template;
try { template = parse(readFileSync(templatePath, 'utf8')); } catch (e) { fail(`cannot read the template ${templatePath}: ${e.message}`); }
let nic;
try { nic = hostPortOf(template).uplink.ifname; } catch (e) { fail(`${templatePath}: ${e.message}`); }

/** The NIC's global addresses ("addr/plen") and default gateways, as `ip` shows them now. */
function readNic() {
  let info;
  try { [info] = JSON.parse(ip('-j', 'addr', 'show', 'dev', nic)); } catch (e) { fail(`the NIC ${nic} (the host port's uplink): ${e.stderr?.toString().trim() || e.message}`); }
  const addresses = (info.addr_info ?? []).filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`);
  const gateways = [];
  for (const fam of ['-4', '-6']) {
    try {
      const [r] = JSON.parse(ip('-j', fam, 'route', 'show', 'default', 'dev', nic));
      if (r?.gateway) gateways.push(r.gateway);
    } catch { /* no route of that family */ }
  }
  return { nic, addresses, gateways };
}

let net = readNic();
if (net.addresses.length) {
  const tmp = `${savedPath}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(net)}\n`, { mode: 0o600 });
  renameSync(tmp, savedPath);
} else {
  let saved;
  try { saved = JSON.parse(readFileSync(savedPath, 'utf8')); } catch { /* none */ }
  if (saved?.nic !== nic || !saved.addresses?.length) fail(`the NIC ${nic} has no address, and none was saved in ${savedPath} (the first start needs the node's address on its NIC)`);
  net = saved;
  log('the NIC has no address: the node\'s network as saved', { nic, saved: savedPath });
}

// the template, completed with this node's network
const config = completeTemplate(template, net);
const { host } = hostPortOf(config);
writeFileSync(configPath, stringify(config));

/** The node's network back on the NIC (ExecStopPost). Each step on its own: one failing does not
 * keep the others from running. */
function giveBack() {
  const steps = [
    [tool('nft'), ['delete', 'table', 'netdev', 'wdp']],
    [tool('sysctl'), ['-qw', `net.ipv6.conf.${nic}.disable_ipv6=0`]],
    ...net.addresses.map((a) => [tool('ip'), ['addr', 'replace', a, 'dev', nic]]),
    [tool('ip'), ['link', 'set', 'dev', nic, 'up']],
    ...net.gateways.map((g) => [tool('ip'), [family(g) === 6 ? '-6' : '-4', 'route', 'replace', 'default', 'via', g, 'dev', nic]]),
  ];
  const failed = [];
  for (const [cmd, a] of steps) {
    try { execFileSync(cmd, a, { stdio: 'pipe' }); } catch (e) { if (!(a[0] === 'delete' && /No such file|does not exist/.test(String(e.stderr)))) failed.push(`${cmd} ${a.join(' ')}: ${String(e.stderr).trim()}`); }
  }
  log('the node\'s network is back on its NIC', { nic, addresses: net.addresses, gateways: net.gateways, ...(failed.length ? { failed } : {}) });
}

/** True once the host port's TAP carries every address of the node's network. */
function hostPortUp() {
  try {
    const [info] = JSON.parse(ip('-j', 'addr', 'show', 'dev', host.ifname));
    const on = new Set((info?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`));
    return host.hostAddresses.every((a) => on.has(canonicalCidr(a)));
  } catch { return false; }   // not created yet
}

log('the daemon starts; the node\'s network moves to the host port', { nic, hostPort: host.ifname, addresses: net.addresses, gateways: net.gateways, config: configPath });
const child = spawn(command[0], command.slice(1), { stdio: 'inherit' });
const since = Date.now();
let late = false;
const moving = setInterval(() => {
  if (!hostPortUp()) {
    if (!late && Date.now() - since > 30000) { late = true; log('the host port does not carry the node\'s addresses yet: the NIC keeps them', { nic, hostPort: host.ifname, addresses: host.hostAddresses }); }
    return;
  }
  clearInterval(moving);
  try { ip('addr', 'flush', 'dev', nic); log('the NIC\'s addresses flushed: the node\'s network is on the host port', { nic, hostPort: host.ifname }); } catch (e) { log(`cannot flush the NIC's addresses: ${e.stderr?.toString().trim() || e.message}`); }
}, 100);
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { try { child.kill(sig); } catch { /* gone */ } });
child.on('error', (e) => { clearInterval(moving); log(`cannot run ${command[0]}: ${e.message}`); giveBack(); process.exit(2); });
child.on('exit', (code, signal) => {
  clearInterval(moving);
  giveBack();
  process.exit(code ?? 128 + (constants.signals[signal] ?? 0));
});
