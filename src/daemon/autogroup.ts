// The daemon's session scheduling group (autogroup), raised with its most raised thread.
//
// With autogroup scheduling (CONFIG_SCHED_AUTOGROUP and kernel.sched_autogroup_enabled = 1, for
// tasks in the root cgroup — a daemon started from a shell, by setsid, or on a VM like ours; not
// one in a container or a cgroup with the cpu controller) the kernel first shares a CPU between
// sessions, each with the weight of its group's nice value (/proc/PID/autogroup), and only then
// between the threads of a session by their own nice. A thread's nice (workerNice, controlNice)
// therefore ranks it against the daemon's other threads alone: a worker at nice -10 still waited
// behind every other session's task when it woke, which is why workerNice measured without effect
// here. Measured (docs/performance.md, "Tail latency and connection rate"): with the session's group raised too, the
// paired RTT p99 fell from a median 1.74x the kernel's to 1.10x at load 11–20.
//
// Only a daemon that leads its own session changes the group: a daemon started in a terminal
// without setsid shares the group with the shell and everything else started from it, which it
// must not raise. Lowering a group's nice needs CAP_SYS_NICE, as lowering a thread's does.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { badNice, priorityRefusal } from './thread-priority.js';

export type AutogroupResult = { raised: true; from: number; to: number } | { raised: false; reason: string };

/** This process's session id (field 6 of /proc/self/stat), or null off Linux. */
export function sessionId(): number | null {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    // the command name (field 2) may hold spaces and parentheses: fields after the last ')'
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const sid = Number(rest[3]);
    return Number.isInteger(sid) ? sid : null;
  } catch { return null; }
}

/** The nice value of this process's autogroup ("/autogroup-N nice V"), or null where there is
 * none (autogroup not built in, or the process is not in the root cgroup). */
export function autogroupNice(): number | null {
  try {
    const m = /nice\s+(-?\d+)/.exec(readFileSync('/proc/self/autogroup', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch { return null; }
}

/** Raises this process's autogroup to `nice` when the process leads its session and the group's
 * nice is higher; otherwise says why not (nothing changed). */
export function raiseAutogroup(nice: number): AutogroupResult {
  const bad = badNice(nice);
  if (bad) return { raised: false, reason: bad };
  if (!existsSync('/proc/self/autogroup')) return { raised: false, reason: 'no autogroup scheduling here (/proc/self/autogroup missing)' };
  try {
    if (readFileSync('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').trim() === '0') return { raised: false, reason: 'autogroup scheduling is off (kernel.sched_autogroup_enabled = 0)' };
  } catch { /* no sysctl: the group file decides */ }
  const sid = sessionId();
  if (sid !== process.pid) return { raised: false, reason: `the daemon does not lead its session (session ${sid}, pid ${process.pid}): its group is shared with the processes that started it` };
  const from = autogroupNice();
  if (from === null) return { raised: false, reason: 'the autogroup\'s nice value is unreadable' };
  if (from <= nice) return { raised: false, reason: `the session's group is at nice ${from} already` };
  try { writeFileSync('/proc/self/autogroup', String(nice)); } catch (e) { return { raised: false, reason: priorityRefusal(e) }; }
  return { raised: true, from, to: autogroupNice() ?? nice };
}

/** Sets the group's nice (no checks: raiseAutogroup decided this process may). */
function writeGroupNice(nice: number): boolean {
  try { writeFileSync('/proc/self/autogroup', String(nice)); return true; } catch { return false; }
}

/** Frames per second above which the group goes back to `base`, and below which it is raised
 * again: a raised worker is picked the moment a frame wakes it, so at a high packet rate it runs
 * for a few frames at a time and preempts whoever produces them (on veth: the sender, whose
 * transmit runs the XDP program) — batches of ~10 frames instead of ~160, ~15% more CPU per
 * packet and a lower rate in the paired blasts (docs/performance.md, "Tail latency and
 * connection rate"). Below the
 * lower mark a frame's wait for a CPU is what counts; between the marks the group stays as it is. */
export const BUSY_FPS = 100_000;
export const QUIET_FPS = 50_000;

/**
 * The session group raised while the packet rate is low (latency: a woken worker runs at once)
 * and at `base` while it is high (throughput: the worker waits for its CPU and takes bigger
 * batches) — the choice NAPI makes between interrupts and polling. `frames` counts frames
 * received so far (the addon's process-wide counter); read every `periodMs` on the main thread.
 */
export class AdaptiveGroup {
  private timer?: NodeJS.Timeout;
  private last = 0;
  private lastAt = 0;
  raisedNow = true;
  /** group changes made (both ways) */
  switches = 0;

  private refusedOnce = false;

  /** `write` sets the group's nice (tests pass their own; the default writes /proc/self/autogroup).
   * `onRefused` hears of the first write refused (a refused one is tried again at the next change
   * of rate, harmlessly: only the first is worth a log line, not one every `periodMs`). */
  constructor(private readonly raised: number, private readonly base: number, private readonly frames: () => number,
    private readonly periodMs = 100, private readonly write: (nice: number) => boolean = writeGroupNice,
    private readonly onRefused?: (nice: number) => void) {}

  start(): void {
    this.last = this.frames();
    this.lastAt = Date.now();
    this.timer = setInterval(() => this.tick(), this.periodMs);
    this.timer.unref();
  }

  /** One look at the rate; public for tests. `now`/`count` default to the clock and the counter. */
  tick(now = Date.now(), count = this.frames()): void {
    const dt = (now - this.lastAt) / 1000;
    if (!(dt > 0)) return;
    const fps = (count - this.last) / dt;
    this.last = count; this.lastAt = now;
    const want = this.raisedNow ? fps <= BUSY_FPS : fps < QUIET_FPS;
    if (want === this.raisedNow) return;
    const nice = want ? this.raised : this.base;
    if (this.write(nice)) { this.raisedNow = want; this.switches++; }
    else if (!this.refusedOnce) { this.refusedOnce = true; this.onRefused?.(nice); }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** The daemon's session group while it runs: raised to `nice` (raiseAutogroup) and, when `frames`
 * counts the frames received, adapted to the packet rate (AdaptiveGroup). stop() ends the adapting
 * and puts the group back to the nice it had: a daemon stopped inside a process that goes on (a
 * test, an embedding) leaves no timer that keeps writing the group, and the group as it found it. */
export function holdSessionGroup(nice: number, frames?: () => number, onRefused?: (nice: number) => void): { result: AutogroupResult; stop(): void } {
  const result = raiseAutogroup(nice);
  if (!result.raised) return { result, stop: () => {} };
  const adaptive = frames ? new AdaptiveGroup(result.to, result.from, frames, 100, writeGroupNice, onRefused) : undefined;
  adaptive?.start();
  let held = true;
  return {
    result,
    stop: () => {
      if (!held) return;
      held = false;
      adaptive?.stop();
      writeGroupNice(result.from); // (back up to a higher nice: always permitted)
    },
  };
}
