// One wdp per interface. The state directory's lock (state-lock.ts) keeps two daemons off one state
// directory; two daemons with different state directories could still name the same interface as
// a port — the second would put its drop chain, its XDP program or AF_PACKET sockets and its IPv6
// and link changes over the first's, and break the first's forwarding (or fail late, after it
// changed them). So an AF_PACKET / AF_XDP port claims its interface before anything touches it,
// and a claim held by another live wdp refuses the port (at start: the start, before any port's
// interface is touched) naming that wdp.
//
// What identifies an interface: its network namespace and its ifindex in it (a name is reused by
// the next pod's veth; an ifindex is unique within a namespace, the namespace by its nsfs inode,
// the same whatever mount or PID namespace looks at it). The claim is an exclusive lock on
// <runDir>/interfaces/net<nsInode>-if<ifindex>.lock — a POSIX record lock, taken through SQLite
// (a write transaction opened on the empty file and never committed, its journal in memory, as
// state-lock.ts does): the kernel drops it when the holder dies (SIGKILL, OOM), so a dead wdp's
// claim never blocks. runDir is /run/wdp (WDP_RUN_DIR sets another: every wdp of a node must use
// the same one — the DaemonSet mounts the node's /run/wdp, as for its API socket). Beside it,
// `.holder` says who holds it (pid, state directory, port), for the refusal's message.
// A claim released (the port removed, the daemon stopped) removes both files while still locked,
// and a claim taken checks afterwards that the path is still the file it locked: a start that
// opened the file just before it was removed locks a dead inode and tries again. A killed
// holder's files stay until the interface is claimed again (or the node boots: /run is a tmpfs),
// as does the record of what the interface had before it was taken (interface-record.ts), which
// the next holder reads.
// Cost: a file, an open SQLite connection (a descriptor, a few KiB) per claimed interface.
//
// Within one process the claims of one state directory are shared (each released by its own
// holder): PortManagers of the same daemon built again in-process (tests) are one wdp. A claim
// taken in a named namespace (portNetns, in-process use) that has been deleted since is over: a
// new namespace may have its inode: this process's is taken over; one another thread or process
// holds (its holder file names the namespace) leaves the new claim unclaimed. (A daemon started by
// `wdp start` has its ports in its own namespace, alive while it runs: not its case.) Where the directory cannot be used (no /run/wdp and
// no permission to make it) the port goes on unclaimed, logged once.
import Database from 'better-sqlite3';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const DEFAULT_RUN_DIR = '/run/wdp';
/** The claims' directory under runDir (the interfaces' hand-back records live there too:
 * interface-record.ts). */
export const CLAIM_SUBDIR = 'interfaces';
const SUBDIR = CLAIM_SUBDIR;

export const runDir = (): string => process.env.WDP_RUN_DIR || DEFAULT_RUN_DIR;

/** A port's interface is another live wdp's. */
export class InterfaceInUseError extends Error {
  constructor(message: string, readonly holderPid?: number) { super(message); this.name = 'InterfaceInUseError'; }
}

/** Who holds a claim, as its holder wrote it. */
interface Holder { pid?: number; stateDir?: string; port?: string; netns?: string; nsInode?: number }

/** The inode of network namespace `netns` (a name under /run/netns), else of this process's. */
export function netnsInode(netns: string | undefined): number {
  return statSync(netns ? `/run/netns/${netns}` : '/proc/self/ns/net').ino;
}

export const claimKey = (nsInode: number, ifindex: number): string => `net${nsInode}-if${ifindex}`;

/** A claim this process holds: the state directory of each daemon (PortManager) holding it, by a
 * token per claim; the named namespace it was taken in (checked for having been deleted). */
interface Held { db: Database.Database; path: string; netns?: string; nsInode: number; holders: Map<symbol, string> }
/** This process's claims, by key (see above: shared by the PortManagers of one state directory). */
const held = new Map<string, Held>();

/** Opens `path` and takes its write lock: the connection, or 'busy'. */
function lockFile(path: string): Database.Database | 'busy' {
  const db = new Database(path, { timeout: 0 });
  try {
    if (String(db.pragma('journal_mode = MEMORY', { simple: true })).toLowerCase() !== 'memory') throw new Error('journal_mode MEMORY refused');
    db.exec('BEGIN IMMEDIATE');
    return db;
  } catch (e) {
    try { db.close(); } catch { /* closing anyway */ }
    if ((e as { code?: string }).code === 'SQLITE_BUSY') return 'busy';
    throw e;
  }
}

function readHolder(path: string): Holder {
  try { return JSON.parse(readFileSync(`${path}.holder`, 'utf8')) as Holder; } catch { return {}; }
}

export interface Claim {
  /** Set when the interface could not be claimed for want of the directory (see above). */
  unclaimed?: string;
  release(): void;
}

/** Claims interface `ifname` (ifindex `ifindex` in namespace `netns`) for port `port` of the daemon
 * of `stateDir`; throws InterfaceInUseError when another live wdp holds it. */
export function claimInterface(ifname: string, netns: string | undefined, ifindex: number, stateDir: string, port: string): Claim {
  let key: string, nsInode: number;
  try { nsInode = netnsInode(netns); key = claimKey(nsInode, ifindex); } catch (e) { return { unclaimed: `network namespace unreadable: ${(e as Error).message}`, release() {} }; }
  const mine = held.get(key);
  if (mine && mine.holders.size) {
    const token = Symbol(port);
    if (namespaceGone(mine)) {
      // taken in a named namespace deleted since (in-process use, portNetns: its PortManager was
      // never closed), whose inode a new namespace has now: that claim is over, this one takes it
      mine.holders.clear();
      mine.netns = netns;
      writeHolder(mine.path, stateDir, port, ifname, ifindex, netns, nsInode);
    } else if (![...mine.holders.values()].includes(stateDir)) throw inUse(ifname, netns, readHolder(mine.path));
    mine.holders.set(token, stateDir);
    return releaser(key, token);
  }
  const dir = join(runDir(), SUBDIR);
  const path = join(dir, `${key}.lock`);
  try {
    makeDirs(dir);
    for (let attempt = 0; attempt < 5; attempt++) {
      closeSync(openSync(path, 'a', 0o600));
      const ino = statOrNull(path);
      if (ino === null) continue;
      const db = lockFile(path);
      if (db === 'busy') {
        const h = readHolder(path);
        // held for a named namespace deleted since, whose inode this one has now (in-process use:
        // a PortManager never closed, in another thread of this process or another process): not
        // this interface's claim — but its lock stays until that holder closes, so this one goes on
        // unclaimed
        if (h.netns && h.nsInode !== undefined && !sameNamespace(h.netns, h.nsInode)) return { unclaimed: `${path} is held for network namespace ${h.netns}, which is gone`, release() {} };
        throw inUse(ifname, netns, h);
      }
      // the file may have been removed by its last holder's release (see above) between the stat
      // and the lock: then the lock is on a dead inode, and another start may lock the new file
      if (statOrNull(path) !== ino) { db.close(); continue; }
      writeHolder(path, stateDir, port, ifname, ifindex, netns, nsInode);
      const token = Symbol(port);
      held.set(key, { db, path, ...(netns ? { netns } : {}), nsInode, holders: new Map([[token, stateDir]]) });
      return releaser(key, token);
    }
    return { unclaimed: `${path} keeps being replaced`, release() {} };
  } catch (e) {
    if (e instanceof InterfaceInUseError) throw e;
    return { unclaimed: `${path}: ${(e as Error).message}`, release() {} };
  }
}

/** mkdir -p, one level at a time: Node's recursive mkdir loops for ever where the kernel answers
 * ENOENT to a mkdir whose parent exists (under /proc, say). */
function makeDirs(dir: string): void {
  const parts = dir.split('/');
  for (let i = 2; i <= parts.length; i++) {
    const at = parts.slice(0, i).join('/');
    if (!at) continue;
    try { mkdirSync(at, { mode: 0o755 }); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; }
  }
}

function writeHolder(path: string, stateDir: string, port: string, ifname: string, ifindex: number, netns: string | undefined, nsInode: number): void {
  writeFileSync(`${path}.holder`, JSON.stringify({ pid: process.pid, stateDir, port, ifname, ifindex, ...(netns ? { netns, nsInode } : {}) }), { mode: 0o644 });
}

/** Whether named namespace `netns` is still the one of inode `nsInode`. */
function sameNamespace(netns: string, nsInode: number): boolean {
  try { return netnsInode(netns) === nsInode; } catch { return false; }
}

/** Whether the named namespace claim `h` was taken in is gone (or another namespace now). */
function namespaceGone(h: Held): boolean {
  if (!h.netns) return false;   // (this process's own namespace: alive while it runs)
  return !sameNamespace(h.netns, h.nsInode);
}

function statOrNull(path: string): number | null {
  try { return statSync(path).ino; } catch { return null; }
}

function releaser(key: string, token: symbol): Claim {
  let done = false;
  return {
    release() {
      if (done) return;
      done = true;
      const h = held.get(key);
      if (!h || !h.holders.delete(token) || h.holders.size) return;
      held.delete(key);
      // removed while still locked (see above), then unlocked
      try { unlinkSync(`${h.path}.holder`); } catch { /* gone */ }
      try { unlinkSync(h.path); } catch { /* gone */ }
      try { h.db.close(); } catch { /* closed */ }
    },
  };
}

/** Whether this process (one of its daemons) holds the claim on interface `ifindex` of the
 * namespace of inode `nsInode`. */
export function claimedHere(nsInode: number, ifindex: number): boolean {
  return !!held.get(claimKey(nsInode, ifindex))?.holders.size;
}

/** Whether interface `ifindex` of `netns` is claimed by a live wdp other than this process's
 * daemons (a stale drop chain on it is that wdp's, not one to remove). */
export function claimedElsewhere(netns: string | undefined, ifindex: number): Holder | null {
  let key: string;
  try { key = claimKey(netnsInode(netns), ifindex); } catch { return null; }
  return heldByOther(key);
}

/** Another live wdp with a port in network namespace `netns` (its first claim found there), or
 * null. What is namespace-wide rather than per interface — the host port's policy-routing rules —
 * may be that wdp's: a start without a host port must not take them for a dead daemon's. One
 * directory read and, per claim file of the namespace, one lock attempt. */
export function otherWdpIn(netns: string | undefined): Holder | null {
  let prefix: string;
  try { prefix = `net${netnsInode(netns)}-if`; } catch { return null; }
  let names: string[];
  try { names = readdirSync(join(runDir(), SUBDIR)); } catch { return null; }
  for (const n of names) {
    if (!n.startsWith(prefix) || !n.endsWith('.lock')) continue;
    const h = heldByOther(n.slice(0, -'.lock'.length));
    if (h) return h;
  }
  return null;
}

function heldByOther(key: string): Holder | null {
  if (held.get(key)?.holders.size) return null;
  const path = join(runDir(), SUBDIR, `${key}.lock`);
  if (statOrNull(path) === null) return null;
  let db: Database.Database;
  try { db = new Database(path, { timeout: 0, fileMustExist: true }); } catch { return null; }
  try {
    db.pragma('journal_mode = MEMORY');
    db.exec('BEGIN IMMEDIATE');
    db.exec('ROLLBACK');
    return null;
  } catch (e) {
    if ((e as { code?: string }).code !== 'SQLITE_BUSY') return null;
    const h = readHolder(path);
    return h.netns && h.nsInode !== undefined && !sameNamespace(h.netns, h.nsInode) ? null : h;
  } finally { try { db.close(); } catch { /* closed */ } }
}

function inUse(ifname: string, netns: string | undefined, h: Holder): InterfaceInUseError {
  const where = netns ? ` in network namespace ${netns}` : '';
  const who = h.pid ? `pid ${h.pid} in its PID namespace${h.stateDir ? `, state directory ${h.stateDir}` : ''}${h.port ? `, its port "${h.port}"` : ''}` : 'its pid unknown';
  return new InterfaceInUseError(`interface "${ifname}"${where} is a port of another running wdp (${who}): two daemons on one interface break each other's forwarding; stop that one first, or give this one another interface`, h.pid);
}
