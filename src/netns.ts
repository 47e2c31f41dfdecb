// Network-namespace lab: the only way tests, the demo and benchmarks build packet topologies.
//
// Rules it enforces so parallel test files and a crashed run cannot hurt the host:
//   * every namespace name carries the creating process id (`wdp-t<pid>-<n>-<role>`), so two
//     processes never collide and `sweepStale()` can remove what a dead process left behind;
//   * nothing is ever added to the root namespace: veth pairs are created with both ends directly
//     inside their target namespaces (interface names then only need to be unique per namespace);
//   * everything created is recorded in a cleanup registry that runs on `lab.destroy()`, on
//     process exit, and on SIGINT/SIGTERM/uncaught exceptions. Deleting a namespace deletes the
//     veths/TAPs inside it; processes we spawned are killed first so the namespace really goes.
//
// Cost: every operation forks `ip`/`sysctl` (~2-5 ms each). Topologies are built once per test
// file, so simplicity wins over netlink sockets.
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';

export interface ExecResult { code: number; stdout: string; stderr: string }

export class NetnsError extends Error {
  constructor(message: string, readonly result?: ExecResult) { super(message); this.name = 'NetnsError'; }
}

/** Whether this process can create namespaces (root, or CAP_SYS_ADMIN+CAP_NET_ADMIN). */
export function canUseNetns(): boolean {
  if (process.platform !== 'linux') return false;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return false;
  try { execFileSync('ip', ['-V'], { stdio: 'ignore' }); return true; } catch { return false; }
}

/** Run a command synchronously; never throws — inspect `code`. */
export function run(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): ExecResult {
  try {
    const stdout = execFileSync(cmd, args, {
      input: opts.input, timeout: opts.timeoutMs ?? 15000, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'],
    });
    return { code: 0, stdout, stderr: '' };
  } catch (e) {
    const err = e as { status?: number | null; stdout?: string; stderr?: string; message: string };
    return { code: err.status ?? -1, stdout: String(err.stdout ?? ''), stderr: String(err.stderr ?? err.message) };
  }
}

/** Run a command and throw a NetnsError with its stderr when it fails. */
export function must(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  const r = run(cmd, args, opts);
  if (r.code !== 0) throw new NetnsError(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`, r);
  return r.stdout;
}

/** Run a command asynchronously (does not block the event loop: use it when the dataplane under
 * test runs in this same process). Resolves with the exit code; rejects only on timeout kill. */
export function runAsync(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout!.on('data', (d) => { stdout += d; });
    child.stderr!.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); stderr += `\n(killed after ${opts.timeoutMs ?? 15000} ms)`; }, opts.timeoutMs ?? 15000);
    child.on('error', (e) => { clearTimeout(timer); resolve({ code: -1, stdout, stderr: stderr + e.message }); });
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr }); });
    if (opts.input !== undefined) child.stdin!.end(opts.input); else child.stdin!.end();
  });
}

// ---- global cleanup registry --------------------------------------------------------------
// Sync callbacks only: they must be able to run inside process.on('exit').
const registry = new Set<() => void>();
let hooksInstalled = false;

function runRegistry(): void {
  for (const fn of [...registry].reverse()) {
    registry.delete(fn);
    try { fn(); } catch { /* best effort: keep cleaning the rest */ }
  }
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', runRegistry);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      // If the program handles this signal itself (the demo stops its daemon gracefully first),
      // leave it to that handler: the 'exit' hook above still cleans up whatever is left.
      if (process.listenerCount(sig) > 1) return;
      runRegistry();
      process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
    });
  }
}

/** Register a synchronous cleanup that runs on exit/signal; returns an unregister function. */
export function onCleanup(fn: () => void): () => void {
  installHooks();
  registry.add(fn);
  return () => { registry.delete(fn); };
}

// ---- names --------------------------------------------------------------------------------
let labCounter = 0;
const NAME_RE = /^wdp-[a-z]{0,3}(\d+)-/;

/** Delete namespaces left behind by processes that no longer exist (names carry the pid). */
export function sweepStale(): string[] {
  const removed: string[] = [];
  if (!existsSync('/run/netns')) return removed;
  for (const name of readdirSync('/run/netns')) {
    const m = NAME_RE.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = true;
    try { process.kill(pid, 0); } catch (e) { alive = (e as NodeJS.ErrnoException).code === 'EPERM'; }
    if (alive) continue;
    killNamespacePids(name);
    if (run('ip', ['netns', 'del', name]).code === 0) removed.push(name);
  }
  return removed;
}

function killNamespacePids(ns: string): void {
  const r = run('ip', ['netns', 'pids', ns]);
  if (r.code !== 0) return;
  for (const p of r.stdout.split(/\s+/).filter(Boolean)) {
    const pid = Number(p);
    if (pid > 0 && pid !== process.pid) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  }
}

export interface VethOptions { macA?: string; macB?: string; mtu?: number; up?: boolean;
  /** transmit and receive queues of each end (default: the kernel's, one) */
  queues?: number }

/**
 * A set of namespaces and everything inside them, torn down together.
 *
 *   const lab = new NetnsLab('t');          // namespaces wdp-t<pid>-<n>-<role>
 *   const client = lab.namespace('cli');
 *   lab.veth(client, 'eth0', dp, 'c0', { macA: '02:00:00:00:00:01' });
 *   lab.addr(client, 'eth0', '10.0.0.2/24'); lab.route(client, 'default', '10.0.0.1');
 *   lab.spawn(client, 'node', ['server.js']);
 *   await lab.destroy();                     // also runs automatically on exit / SIGINT
 */
export class NetnsLab {
  readonly tag: string;
  private readonly namespaces: string[] = [];
  private readonly children = new Set<ChildProcess>();
  private readonly unregister: () => void;
  private destroyed = false;

  constructor(kind = 't') {
    if (!/^[a-z]{0,3}$/.test(kind)) throw new NetnsError(`lab kind must be 0-3 lowercase letters, got "${kind}"`);
    this.tag = `wdp-${kind}${process.pid}-${++labCounter}`;
    this.unregister = onCleanup(() => this.destroySync());
  }

  /** Create a namespace `<tag>-<role>` with loopback up and IPv6 DAD/RS noise disabled. */
  namespace(role: string): string {
    if (!/^[a-z0-9]{1,12}$/.test(role)) throw new NetnsError(`namespace role must be 1-12 of [a-z0-9], got "${role}"`);
    const name = `${this.tag}-${role}`;
    must('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    must('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    this.quietIpv6(name);
    return name;
  }

  /** Deterministic IPv6: no duplicate address detection delay, no router solicitations, no
   * autoconf addresses appearing mid-test. Applied to `default` so new links inherit it. */
  quietIpv6(ns: string): void {
    // one `sysctl` with every key: each `ip netns exec` costs ~50-100 ms (it remounts /sys)
    const kv: string[] = [];
    for (const scope of ['all', 'default']) {
      for (const [k, v] of [['accept_dad', '0'], ['dad_transmits', '0'], ['router_solicitations', '0'], ['accept_ra', '0'], ['autoconf', '0']]) {
        kv.push(`net.ipv6.conf.${scope}.${k}=${v}`);
      }
    }
    run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', ...kv]);
  }

  /** A veth pair with end `ifA` in `nsA` and `ifB` in `nsB`, both up, with the kernel's default
   * offloads (checksum, TSO/GSO on): wdp's ports finish partial checksums and segment
   * super-frames themselves (native/src/offload.rs), as they must for real pods. */
  veth(nsA: string, ifA: string, nsB: string, ifB: string, opts: VethOptions = {}): void {
    checkIfName(ifA); checkIfName(ifB);
    const args = ['link', 'add', ifA, 'netns', nsA];
    if (opts.queues !== undefined && !(Number.isInteger(opts.queues) && opts.queues >= 1 && opts.queues <= 64)) throw new NetnsError(`veth queues must be an integer in 1..64, got ${opts.queues}`);
    const q = opts.queues ? ['numtxqueues', String(opts.queues), 'numrxqueues', String(opts.queues)] : [];
    if (opts.macA) args.push('address', opts.macA);
    if (opts.mtu) args.push('mtu', String(opts.mtu));
    args.push(...q, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB);
    if (opts.macB) args.push('address', opts.macB);
    if (opts.mtu) args.push('mtu', String(opts.mtu));
    args.push(...q);
    // Created from the root namespace but never *in* it: both ends land in their target ns.
    must('ip', args);
    if (opts.up !== false) { this.up(nsA, ifA); this.up(nsB, ifB); }
  }

  up(ns: string, ifname: string): void { must('ip', ['-n', ns, 'link', 'set', ifname, 'up']); }

  mac(ns: string, ifname: string, mac?: string): string {
    if (mac) must('ip', ['-n', ns, 'link', 'set', ifname, 'address', mac]);
    const out = must('ip', ['-n', ns, '-o', 'link', 'show', ifname]);
    const m = /link\/ether ([0-9a-f:]{17})/.exec(out);
    if (!m) throw new NetnsError(`no MAC for ${ifname} in ${ns}`);
    return m[1];
  }

  /** Add an address (`10.0.0.2/24`, `fd00::2/64`); IPv6 addresses are added `nodad`. */
  addr(ns: string, ifname: string, cidr: string, opts: { deprecated?: boolean } = {}): void {
    const args = ['-n', ns, 'addr', 'add', cidr, 'dev', ifname];
    if (cidr.includes(':')) args.push('nodad');
    // deprecated (IPv6): answered, but never chosen as the source of a reply from a socket bound
    // to the wildcard (RFC 6724 rule 3), so that such replies come from the interface's first address
    if (opts.deprecated && cidr.includes(':')) args.push('preferred_lft', '0');
    must('ip', args);
  }

  /** Add a route. `prefix` may be `default`; IPv6 is detected from `via`/`prefix`. */
  route(ns: string, prefix: string, via?: string, dev?: string): void {
    const v6 = prefix.includes(':') || (via?.includes(':') ?? false);
    const args = [...(v6 ? ['-6'] : []), '-n', ns, 'route', 'add', prefix];
    if (via) args.push('via', via);
    if (dev) args.push('dev', dev);
    must('ip', args);
  }

  /** Static neighbour entry (skips ARP/ND in the namespace). */
  neigh(ns: string, ifname: string, ip: string, mac: string): void {
    must('ip', ['-n', ns, 'neigh', 'replace', ip, 'lladdr', mac, 'dev', ifname, 'nud', 'permanent']);
  }

  sysctl(ns: string, key: string, value: string, ...more: Array<[string, string]>): void {
    must('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `${key}=${value}`, ...more.map(([k, v]) => `${k}=${v}`)]);
  }

  /** Move a link (e.g. a TAP the daemon created in its namespace) into another namespace. The
   * process holding the TAP fd keeps it: the fd follows the device, not the namespace. */
  moveLink(fromNs: string, ifname: string, toNs: string): void {
    must('ip', ['-n', fromNs, 'link', 'set', ifname, 'netns', toNs]);
  }

  /** Wait until `ifname` exists in `ns` (a TAP created asynchronously by the daemon). */
  async waitLink(ns: string, ifname: string, timeoutMs = 10000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (run('ip', ['-n', ns, 'link', 'show', ifname]).code === 0) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new NetnsError(`link ${ifname} did not appear in ${ns} within ${timeoutMs} ms`);
  }

  /** Run a command inside `ns`, synchronously (blocks the event loop). */
  exec(ns: string, cmd: string, args: string[] = [], opts: { input?: string; timeoutMs?: number } = {}): ExecResult {
    return run('ip', ['netns', 'exec', ns, cmd, ...args], opts);
  }

  /** Run a command inside `ns` without blocking the event loop. */
  execAsync(ns: string, cmd: string, args: string[] = [], opts: { input?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
    return runAsync('ip', ['netns', 'exec', ns, cmd, ...args], opts);
  }

  /** Start a long-running process inside `ns`; it is killed on destroy(). It gets its own
   * process group, so a terminal Ctrl-C reaches only our program, which then stops the children
   * in order (daemon gracefully first) instead of everything dying at once. */
  spawn(ns: string, cmd: string, args: string[] = [], opts: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...opts });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  get names(): readonly string[] { return this.namespaces; }

  /** Kill spawned processes (SIGTERM, then SIGKILL after `graceMs`) and delete the namespaces. */
  async destroy(graceMs = 3000): Promise<void> {
    if (this.destroyed) return;
    const alive = [...this.children].filter((c) => c.exitCode === null && c.signalCode === null);
    await Promise.all(alive.map((c) => new Promise<void>((resolve) => {
      const t = setTimeout(() => { try { c.kill('SIGKILL'); } catch { /* gone */ } resolve(); }, graceMs);
      c.once('exit', () => { clearTimeout(t); resolve(); });
      try { c.kill('SIGTERM'); } catch { clearTimeout(t); resolve(); }
    })));
    this.destroySync();
  }

  /** Synchronous teardown (used from exit/signal hooks). */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.unregister();
    for (const c of this.children) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
    this.children.clear();
    for (const ns of [...this.namespaces].reverse()) {
      killNamespacePids(ns);
      run('ip', ['netns', 'del', ns]);
    }
    this.namespaces.length = 0;
  }
}

function checkIfName(n: string): void {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(n)) throw new NetnsError(`interface name must be 1-15 of [A-Za-z0-9_.-], got "${n}"`);
}
