// One daemon per state directory. Two daemons on one state directory would both forward on the
// same ports, write the same store, checkpoint and table images, and the second would take the
// first's API socket (a stale socket is unlinked before listening). `stateDir/wdp.lock` is a
// symbolic link whose target names its holder, "<pid> <start time>" (the start time is
// /proc/<pid>/stat's field 22, so a pid the kernel reused for another process is not taken for
// the holder): created in one step with its content, and needing no data block (a short target
// lives in the inode), so a full disk does not keep a start from taking it. It is taken before anything
// else of the start and removed at stop; a lock whose holder is gone (SIGKILL, a crash, OOM) is
// taken over, so a crash never keeps the next start out.
import { mkdirSync, readFileSync, readlinkSync, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';

export const LOCK_FILE = 'wdp.lock';

export class StateDirInUseError extends Error {
  constructor(message: string) { super(message); this.name = 'StateDirInUseError'; }
}

/** State directories this process holds (an in-process start on one of them is refused too). */
const held = new Set<string>();

/** The start time of process `pid` (clock ticks since boot), null when it does not exist or has
 * exited (a zombie its parent has not reaped yet); '' when /proc cannot tell (then only the pid is
 * compared). */
function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return null;
    return fields[19] ?? '';
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return '';
    return null;
  }
}

export interface StateDirLock {
  /** The holder found gone and replaced, if any (its "<pid> <start time>"). */
  tookOver?: string;
  release(): void;
}

/** Takes `dir`'s lock; throws StateDirInUseError when a live process holds it. */
export function lockStateDir(dir: string): StateDirLock {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, LOCK_FILE);
  const me = `${process.pid} ${startTime(process.pid) ?? ''}`;
  let tookOver: string | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      symlinkSync(me, file);
      held.add(file);
      let released = false;
      return {
        ...(tookOver !== undefined ? { tookOver } : {}),
        release() {
          if (released) return;
          released = true;
          held.delete(file);
          try { if (readlinkSync(file) === me) unlinkSync(file); } catch { /* gone */ }
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let text = '';
    try { text = readlinkSync(file).trim(); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;   // removed meanwhile
      text = '';   // not a link (another tool's file): nobody's
    }
    const [pidText, start = ''] = text.split(' ');
    const pid = Number(pidText);
    const now = Number.isInteger(pid) && pid > 0 ? startTime(pid) : null;
    const alive = now !== null && (now === '' || start === '' || now === start) && (pid !== process.pid || held.has(file));
    if (alive) {
      throw new StateDirInUseError(`the state directory ${dir} is in use by another wdp (pid ${pid}, ${file}); stop it first, or give this one another stateDir`);
    }
    tookOver = text;
    try { unlinkSync(file); } catch { /* removed meanwhile */ }
  }
  throw new StateDirInUseError(`the state directory ${dir} could not be locked (${file} keeps coming back)`);
}
