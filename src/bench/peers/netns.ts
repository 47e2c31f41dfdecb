// Minimal private-namespace helper for the benchmarks. src/netns.ts (lead) is the shared one for
// tests; this one exists so the bench does not depend on its landing and because the bench needs
// exactly three things: create a uniquely named namespace, run a tool inside it with stdin, and
// delete it on every path out. Nothing here touches the root namespace's addresses or routes.
import { spawn, spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { SYSTEM_DIRS, systemTool } from '../../util/system-tool.js';

let seq = 0;

export { systemTool };

function absArgv(argv: string[]): string[] {
  const exe = systemTool(argv[0]);
  if (!exe) throw new Error(`${argv[0]} not found in ${SYSTEM_DIRS.join(':')} — install with: ${INSTALL_HINT}`);
  return [exe, ...argv.slice(1)];
}

/** argv to spawn, wrapped in `ip netns exec NS` when `ns` is given; every program absolute. */
export function nsArgv(argv: string[], ns?: string): string[] {
  const inner = absArgv(argv);
  return ns ? [...absArgv(['ip']), 'netns', 'exec', ns, ...inner] : inner;
}

/** `wdp-b<pid>-<tag><n>`; kept <= 15 chars where possible is not required for netns names, but
 * the same stem is reused for veth names (IFNAMSIZ 16), so tags stay short. */
export function uniqueNsName(tag: string): string {
  return `wdp-b${process.pid}-${tag}${seq++}`;
}

export interface RunResult { code: number; stdout: string; stderr: string; ms: number }

/** Runs argv (inside `ns` when given), feeding `input` on stdin. `ms` is spawn-to-exit wall time:
 * it includes process start-up, as kube-proxy pays it too on every sync. */
export function run(argv: string[], opts: { ns?: string; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    let full: string[];
    try { full = nsArgv(argv, opts.ns); } catch (e) {
      resolve({ code: 127, stdout: '', stderr: (e as Error).message, ms: 0 });
      return;
    }
    const t0 = performance.now();
    const child = spawn(full[0], full.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [], err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    let timedOut = false;
    const timer = opts.timeoutMs ? setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, opts.timeoutMs) : undefined;
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      resolve({ code: 127, stdout: '', stderr: String(e.message), ms: performance.now() - t0 });
    });
    child.on('close', (code, signal) => {
      const ms = performance.now() - t0;
      if (timer) clearTimeout(timer);
      const stderr = Buffer.concat(err).toString() + (timedOut ? `killed after the ${opts.timeoutMs! / 1000} s time limit` : '');
      resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString(), stderr, ms });
    });
    child.stdin.on('error', () => { /* child exited before reading everything: its exit code says why */ });
    child.stdin.end(opts.input ?? '');
  });
}

/** Like run() but throws with the tool's stderr when it fails. */
export async function runOk(argv: string[], opts: { ns?: string; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const r = await run(argv, opts);
  if (r.code !== 0) {
    const where = opts.ns ? ` (in netns ${opts.ns})` : '';
    throw new Error(`${argv.join(' ')}${where} failed with exit code ${r.code}: ${r.stderr.trim().split('\n').slice(0, 5).join(' | ')}`);
  }
  return r;
}

export function commandExists(cmd: string): boolean {
  return systemTool(cmd) !== null;
}

const INSTALL_HINT = 'apt-get install -y iptables nftables netsniff-ng iperf3 iproute2';

/** Throws a clear message naming the missing tools and how to install them. */
export function requireTools(cmds: string[]): void {
  const missing = cmds.filter((c) => !commandExists(c));
  if (missing.length) throw new Error(`missing tool(s): ${missing.join(', ')} — install with: ${INSTALL_HINT}`);
}

/** Namespaces created by this process, so an exit handler can remove what a crash left behind. */
const live = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const ip = systemTool('ip') ?? 'ip';
  const cleanup = (): void => { for (const ns of live) spawnSync(ip, ['netns', 'del', ns], { stdio: 'ignore' }); live.clear(); };
  process.on('exit', cleanup);
  // SIGHUP too (the terminal went away): its default action ends the process without the exit
  // hooks, leaving the namespaces and the control bench's daemon (its own session: no SIGHUP) behind
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => { cleanup(); process.exit(130); });
  }
}

export async function createNs(tag: string): Promise<string> {
  requireTools(['ip']);
  installExitHook();
  const name = uniqueNsName(tag);
  await runOk(['ip', 'netns', 'add', name]);
  live.add(name);
  await runOk(['ip', 'link', 'set', 'lo', 'up'], { ns: name });
  return name;
}

export async function deleteNs(name: string): Promise<void> {
  // deleting the namespace also deletes the veth ends inside it (and their peers)
  await run(['ip', 'netns', 'del', name]);
  live.delete(name);
}

/** Runs `fn` with fresh namespaces and removes them afterwards, also when `fn` throws. */
export async function withNamespaces<T>(tags: string[], fn: (names: string[]) => Promise<T>): Promise<T> {
  const names: string[] = [];
  try {
    for (const t of tags) names.push(await createNs(t));
    return await fn(names);
  } finally {
    for (const n of names) await deleteNs(n);
  }
}
