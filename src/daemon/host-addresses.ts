// The host's interface addresses, which kubernetes.nodePortAddresses CIDRs select NodePort
// addresses from as kube-proxy does: its proxiers' NodePortAddresses.GetNodeIPs reads every
// address of the host's interfaces (net.InterfaceAddrs: a netlink RTM_GETADDR dump of the network
// namespace it runs in) at every sync and puts those inside the CIDRs, loopback ones skipped, in
// the nodeport-ips set. The "host" is the network namespace the daemon's ports are in (the one
// the daemon runs in: the node's own with hostNetwork in deploy/; a test's namespace in tests).
//
// What counts (hostAddressesOf):
//   * every address (`local`) of every interface, as kube-proxy reads them, except:
//   * loopback addresses (127.0.0.0/8, ::1): kube-proxy's nftables proxier skips them ("localhost
//     NodePorts are not supported");
//   * IPv6 link-local addresses (fe80::/10): an address of its own link only (RFC 4291 2.5.6): a
//     NodePort address is answered for on the uplinks, which are other links;
//   * the addresses of the interfaces wdp owns as ports (an AF_PACKET/AF_XDP port's interface, a
//     TAP in this namespace — the host port's among them): their frames are wdp's, not the host
//     stack's, and the host port's TAP carries every node address (host-stack.ts), so reading it
//     back would keep an address selected after it left the interface it came from. The host
//     port's configured `hostAddresses` count, though: they are the host's own addresses (those
//     it had on the NIC wdp took), set from the config, never from a selection.
//
// Followed with `ip -o monitor address` (one child process, netlink RTM_NEWADDR/RTM_DELADDR
// events: idle it costs its memory, ~2-3 MB, and no CPU): an event schedules a re-read (`ip -j addr
// show`, one fork, ~3-5 ms; longer with hundreds of interfaces) REREAD_MS later, so a burst of
// events (an IPv6 address's DAD, a pod's veth coming up) is one read; the list is reported only
// when it changed. kube-proxy sees a change at its next sync (within its syncPeriod); here within
// REREAD_MS. A monitor that exits is started again after a backoff (1 s doubling to 30 s), with a
// re-read, so a change it missed meanwhile is still seen. The monitor is killed at stop and when
// the daemon's process exits, and runs under `setpriv --pdeathsig KILL` (util-linux; Debian's
// node images have it) so that the kernel ends it when the daemon dies outright (SIGKILL, OOM);
// without setpriv such a monitor lives until its next event, whose write to the closed pipe ends
// it (SIGPIPE).
import { execFileSync, execFile, spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { canonicalAddr } from './l2.js';
import { systemTool } from '../util/system-tool.js';

const REREAD_MS = 100;
const BACKOFF_MS = [1000, 30_000] as const;

/** What the host's addresses leave out: the interfaces wdp owns in this namespace, and the
 * addresses the host port's config gives the host (hostAddresses, without their prefix). */
export interface OwnedInterfaces { ifnames: string[]; hostAddresses: string[] }

/** What `ports` (port configs) own in the host's namespace: every AF_PACKET / AF_XDP port's
 * interface and every TAP not moved into a namespace of its own (`netns:`), and the host port's
 * hostAddresses (the header). */
export function ownedInterfaces(ports: ReadonlyArray<{ type: string; ifname: string; netns?: string; role: string; hostAddresses?: string[] }>): OwnedInterfaces {
  return {
    ifnames: ports.filter((p) => p.type !== 'tap' || !p.netns).map((p) => p.ifname),
    hostAddresses: ports.flatMap((p) => (p.role === 'host' ? p.hostAddresses ?? [] : [])),
  };
}

interface IpAddrJson { ifname?: string; addr_info?: Array<{ family?: string; local?: string }> }

function loopbackOrLinkLocal(a: string): boolean {
  if (!a.includes(':')) return a.startsWith('127.');
  return a === '::1' || /^fe[89ab][0-9a-f]:/.test(a);
}

/** The host's addresses (canonical, sorted, each once) from `ip -j addr show`'s output, as the
 * header says; throws on output that is not that JSON. */
export function hostAddressesOf(json: string, owned: OwnedInterfaces): string[] {
  const links = JSON.parse(json) as IpAddrJson[];
  if (!Array.isArray(links)) throw new Error('ip -j addr show: not a list of interfaces');
  const skip = new Set(owned.ifnames);
  const out = new Set<string>();
  for (const l of links) {
    if (!l || typeof l !== 'object' || skip.has(l.ifname ?? '')) continue;
    for (const i of l.addr_info ?? []) {
      if ((i.family !== 'inet' && i.family !== 'inet6') || typeof i.local !== 'string') continue;
      let a: string;
      try { a = canonicalAddr(i.local); } catch { continue; }
      if (!loopbackOrLinkLocal(a)) out.add(a);
    }
  }
  for (const h of owned.hostAddresses) {
    try { const a = canonicalAddr(h.split('/')[0]); if (!loopbackOrLinkLocal(a)) out.add(a); } catch { /* refused by the config already */ }
  }
  return [...out].sort();
}

const ipArgs = (netns: string | undefined, args: string[]) => (netns ? ['-n', netns, ...args] : args);

/** `ip -o monitor address`, ended by the kernel when the thread that started it (the daemon's
 * main thread) dies, where setpriv is there to ask for that (PR_SET_PDEATHSIG; see the header). */
function monitorCommand(netns: string | undefined): [string, string[]] {
  const args = ipArgs(netns, ['-o', 'monitor', 'address']);
  const setpriv = systemTool('setpriv');
  return setpriv ? [setpriv, ['--pdeathsig', 'KILL', 'ip', ...args]] : ['ip', args];
}

/** The host's addresses now (synchronous: the start reads them before the workers answer). */
export function readHostAddresses(netns: string | undefined, owned: OwnedInterfaces): string[] {
  return hostAddressesOf(execFileSync('ip', ipArgs(netns, ['-j', 'addr', 'show']), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 }), owned);
}

/** Follows the host's addresses (the header): `changed` gets the new list each time it differs
 * from the last one read (`initial`, the start's read). */
export class HostAddressWatch {
  private monitor: ChildProcess | undefined;
  private timer: NodeJS.Timeout | undefined;
  private restart: NodeJS.Timeout | undefined;
  private reading = false;
  private again = false;
  private stopped = false;
  private backoff: number = BACKOFF_MS[0];
  private last: string;
  private warned = false;
  private hooked = false;
  private readonly onExit = () => { this.monitor?.kill('SIGTERM'); };

  constructor(private readonly netns: string | undefined, private readonly owned: () => OwnedInterfaces,
    private readonly changed: (addrs: string[]) => void, private readonly log: Logger, initial: readonly string[]) {
    this.last = initial.join(',');
  }

  /** Starts the monitor, and reads once (what changed since `initial` was read). */
  start(): void {
    if (this.stopped) return;
    if (!this.hooked) { this.hooked = true; process.once('exit', this.onExit); }
    const [cmd, args] = monitorCommand(this.netns);
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    this.monitor = child;
    child.stdout!.on('data', () => { this.backoff = BACKOFF_MS[0]; this.schedule(); });
    child.on('error', (e) => this.lost(child, e.message));
    child.on('exit', (code, signal) => this.lost(child, `exited (${signal ?? code})`));
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    process.removeListener('exit', this.onExit);
    clearTimeout(this.timer); clearTimeout(this.restart);
    const m = this.monitor;
    this.monitor = undefined;
    if (m && m.exitCode === null && m.signalCode === null) m.kill('SIGTERM');
  }

  private lost(child: ChildProcess, why: string): void {
    if (this.monitor !== child || this.stopped) return;
    this.monitor = undefined;
    this.log.warn({ error: why, retryMs: this.backoff }, 'the watch of the host\'s addresses (ip monitor address) stopped: started again after a pause (NodePort addresses selected from them follow then)');
    this.restart = setTimeout(() => this.start(), this.backoff);
    this.restart.unref();
    this.backoff = Math.min(this.backoff * 2, BACKOFF_MS[1]);
  }

  private schedule(): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => { this.timer = undefined; this.read(); }, REREAD_MS);
    this.timer.unref();
  }

  /** One read at a time; an event during a read reads again after it. */
  private read(): void {
    if (this.reading) { this.again = true; return; }
    this.reading = true;
    execFile('ip', ipArgs(this.netns, ['-j', 'addr', 'show']), { encoding: 'utf8', maxBuffer: 64 << 20 }, (err, out) => {
      this.reading = false;
      if (this.stopped) return;
      try {
        if (err) throw err;
        const addrs = hostAddressesOf(out, this.owned());
        this.warned = false;
        const key = addrs.join(',');
        if (key !== this.last) { this.last = key; this.changed(addrs); }
      } catch (e) {
        // kept as they were; the next event (or the monitor's restart) reads again
        if (!this.warned) this.log.warn({ error: (e as Error).message.split('\n')[0] }, 'the host\'s addresses could not be read: the NodePort addresses selected from them stay as they were');
        this.warned = true;
      }
      if (this.again) { this.again = false; this.schedule(); }
    });
  }
}
