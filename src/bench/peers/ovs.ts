// The Open vSwitch userspace datapath as a `bench e2e` contender: the dataplane OVN-Kubernetes
// uses for Services, reduced to what a ClusterIP needs — conntrack NAT (ct(commit,nat(dst=…)))
// on the way in, reverse NAT (ct(nat)) on the way back, MAC rewrite and TTL decrement.
//
// Private instance: ovsdb-server and ovs-vswitchd run as children of the bench inside the router
// namespace, with their database, sockets, pid and log files under a temporary directory
// (OVS_RUNDIR/OVS_DBDIR/OVS_LOGDIR/OVS_SYSCONFDIR point there, every socket is passed
// explicitly), so a system OVS — if there is one — is never contacted. The bridge has
// datapath_type=netdev (no kernel module); r0/r1 are AF_XDP ports polled by a PMD thread (which
// busy-polls one CPU: that is the datapath's design, and its CPU per packet shows it), or
// AF_PACKET (type system) when AF_XDP cannot be used. Stopping kills both processes; the XDP
// programs go with the namespace.
//
// ARP: the flows do not answer ARP; the client and server namespaces get permanent neighbour
// entries for their gateway addresses instead (ARP is not on the measured path of any test).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { commandExists, run, runOk } from './netns.js';

export const OVS_TOOLS = ['ovsdb-tool', 'ovsdb-server', 'ovs-vswitchd', 'ovs-vsctl', 'ovs-ofctl', 'ovs-appctl'];
const SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';

/** Why the OVS contender cannot run here, or null. */
export function ovsUnavailable(): string | null {
  const missing = OVS_TOOLS.filter((t) => !commandExists(t));
  if (missing.length) return `Open vSwitch is not installed (missing ${missing.join(', ')}): apt-get install -y openvswitch-switch`;
  return null;
}

/** One DNAT'd service: VIP:port/proto → endpoint addr:port. */
export interface OvsService { vip: string; port: number; proto: 'tcp' | 'udp'; addr: string; target: number }

export interface OvsTopology {
  router: string;
  toClient: { dev: string; mac: string }; // r0: frames from the client come in here
  toServer: { dev: string; mac: string }; // r1
  clientMac: string; serverMac: string;
  /** Everything behind toClient (the blast test's random sources are inside it). */
  clientPrefix: string;
}

/** OpenFlow rules (ovs-ofctl add-flows syntax) for the services. Zone 1 holds the NAT state. */
export function ovsFlows(t: OvsTopology, svcs: OvsService[]): string {
  const lines: string[] = [];
  for (const s of svcs) {
    // commit on every packet of the direction: a no-op for a committed connection, the NAT
    // binding for a new one (the pattern of OVS's own conntrack NAT tests)
    lines.push(`table=0,priority=100,${s.proto},in_port=${t.toClient.dev},nw_dst=${s.vip},tp_dst=${s.port},actions=ct(commit,zone=1,nat(dst=${s.addr}:${s.target}),table=1)`);
  }
  // replies (and anything else from the server side): reverse NAT of a known connection
  lines.push(`table=0,priority=90,ip,in_port=${t.toServer.dev},actions=ct(zone=1,nat,table=2)`);
  lines.push('table=0,priority=0,actions=drop');
  lines.push(`table=1,priority=10,ip,ct_state=+trk,actions=mod_dl_src:${t.toServer.mac},mod_dl_dst:${t.serverMac},dec_ttl,output:${t.toServer.dev}`);
  lines.push('table=1,priority=0,actions=drop');
  lines.push(`table=2,priority=10,ip,ct_state=+trk+est,nw_dst=${t.clientPrefix},actions=mod_dl_src:${t.toClient.mac},mod_dl_dst:${t.clientMac},dec_ttl,output:${t.toClient.dev}`);
  lines.push('table=2,priority=0,actions=drop');
  return lines.join('\n') + '\n';
}

export interface OvsInstance {
  /** ovs-vswitchd's pid (its PMD and handler threads are threads of it). */
  vswitchdPid: number;
  /** 'afxdp' or 'system' (AF_PACKET), as the ports were added. */
  portType: string;
  stop(): Promise<void>;
  log(): string;
}

interface ChildLike { pid?: number; exitCode: number | null; signalCode: NodeJS.Signals | null }

export interface OvsStartDeps {
  /** Spawns argv inside a namespace (own process group, killed on exit). */
  startInNs(ns: string, argv: string[], env?: Record<string, string>): ChildLike;
  stopChild(c: ChildLike, sig?: NodeJS.Signals): Promise<void>;
  sleep(ms: number): Promise<void>;
}

/** Starts the private OVS in `t.router`, state under `dir`, with the services programmed. */
export async function startOvs(t: OvsTopology, svcs: OvsService[], dir: string, deps: OvsStartDeps, conntrackMax: number): Promise<OvsInstance> {
  const d = join(dir, 'ovs');
  mkdirSync(d, { recursive: true });
  const env = { OVS_RUNDIR: d, OVS_DBDIR: d, OVS_LOGDIR: d, OVS_SYSCONFDIR: d, OVS_PKGDATADIR: '/usr/share/openvswitch' };
  const db = `unix:${join(d, 'db.sock')}`;
  const vsctl = (...args: string[]) => runOk(['ovs-vsctl', `--db=${db}`, '--timeout=20', ...args]);
  const appctl = (...args: string[]) => runOk(['ovs-appctl', '-t', join(d, 'vswitchd.ctl'), ...args]);
  await runOk(['ovsdb-tool', 'create', join(d, 'conf.db'), SCHEMA]);
  const children: ChildLike[] = [];
  const stop = async () => { for (const c of children.reverse()) await deps.stopChild(c, 'SIGTERM'); };
  try {
    const dbs = deps.startInNs(t.router, ['ovsdb-server', join(d, 'conf.db'), `--remote=p${db}`, `--unixctl=${join(d, 'ovsdb.ctl')}`, `--log-file=${join(d, 'ovsdb.log')}`, '-vconsole:off'], env);
    children.push(dbs);
    await waitFor(async () => (await run(['ovs-vsctl', `--db=${db}`, '--no-wait', '--timeout=2', 'init'])).code === 0, 'ovsdb-server', deps, dbs);
    const vsd = deps.startInNs(t.router, ['ovs-vswitchd', db, `--unixctl=${join(d, 'vswitchd.ctl')}`, `--log-file=${join(d, 'vswitchd.log')}`, '-vconsole:off'], env);
    children.push(vsd);
    await waitFor(async () => (await run(['ovs-appctl', '-t', join(d, 'vswitchd.ctl'), 'version'])).code === 0, 'ovs-vswitchd', deps, vsd);
    await vsctl('add-br', 'br0', '--', 'set', 'bridge', 'br0', 'datapath_type=netdev', 'fail-mode=secure');
    let portType = 'afxdp';
    try {
      for (const p of [t.toClient.dev, t.toServer.dev]) await vsctl('add-port', 'br0', p, '--', 'set', 'interface', p, 'type=afxdp', 'options:n_rxq=1');
      await assertPortsUp(vsctl, [t.toClient.dev, t.toServer.dev]);
    } catch {
      // AF_XDP refused (no XDP on these interfaces): the netdev datapath's AF_PACKET ports
      for (const p of [t.toClient.dev, t.toServer.dev]) await run(['ovs-vsctl', `--db=${db}`, '--timeout=20', '--if-exists', 'del-port', 'br0', p]);
      portType = 'system';
      for (const p of [t.toClient.dev, t.toServer.dev]) await vsctl('add-port', 'br0', p);
      await assertPortsUp(vsctl, [t.toClient.dev, t.toServer.dev]);
    }
    await appctl('dpctl/ct-set-maxconns', String(conntrackMax));
    await runOk(['ovs-ofctl', 'add-flows', `unix:${join(d, 'br0.mgmt')}`, '-'], { input: ovsFlows(t, svcs) });
    return { vswitchdPid: vsd.pid!, portType, stop, log: () => join(d, 'vswitchd.log') };
  } catch (e) {
    await stop();
    throw e;
  }
}

async function assertPortsUp(vsctl: (...a: string[]) => Promise<{ stdout: string }>, ports: string[]): Promise<void> {
  for (const p of ports) {
    const r = await vsctl('get', 'interface', p, 'error');
    const err = r.stdout.trim();
    if (err && err !== '[]') throw new Error(`port ${p}: ${err}`);
  }
}

async function waitFor(ok: () => Promise<boolean>, what: string, deps: OvsStartDeps, child: ChildLike): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what} exited (${child.exitCode ?? child.signalCode})`);
    if (await ok()) return;
    if (Date.now() > deadline) throw new Error(`${what} did not come up within 20 s`);
    await deps.sleep(100);
  }
}
