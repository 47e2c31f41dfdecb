// The scheduling priority and the CPU of the calling thread alone — its nice value (workerNice),
// a real-time policy (workerRealtimePriority), its CPU (workerCpus): a forwarding worker sets its
// own when the config asks. A frame waits for the worker to be woken and scheduled on
// each of its hops; the kernel's own forwarding runs in softirq, ahead of every task. A worker at
// nice -10 gets ~9x the CPU weight of a default task and is picked sooner when it wakes, but still
// shares the CPU (unlike a real-time policy, a worker spinning on a flood cannot starve the node).
// workerNice defaults to 0 (config.ts: -10 shortened the RTT tail under load but cost connection
// rate on a quiet node). Measured without effect on our shared VM until the daemon's session group
// was raised with it: under autogroup scheduling a thread's nice ranks it
// only among its own session's threads (autogroup.ts; docs/performance.md, "Tail latency and
// connection rate").
//
// Linux keeps nice per thread: setpriority(PRIO_PROCESS, tid) (Node's os.setPriority) changes
// only the thread with that id, found through /proc/thread-self. Raising priority (a negative
// value) needs CAP_SYS_NICE.
//
// SCHED_FIFO (workerRealtimePriority 1..99) is the other lever: a real-time thread runs as soon
// as it wakes, ahead of every normal task on its CPU, instead of waiting for the scheduler to pick
// it — on a loaded node that wait is what sets a user-space hop's tail latency. What it risks: a
// worker busy with a flood keeps its CPU for up to sched_rt_runtime_us per sched_rt_period_us
// (95% by default; the kernel's fair server keeps the rest for normal tasks), so other tasks move
// to the node's other CPUs. The worker sleeps in poll whenever its rings are empty (unless
// busyPollUs says otherwise), so at any rate below a CPU's worth it takes only what it uses.
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { nativeAddon } from '../ports/native.js';

/** This thread's kernel id (the tid in /proc/thread-self -> "PID/task/TID"), or null off Linux. */
export function currentTid(): number | null {
  try {
    const m = /\/task\/(\d+)$/.exec(readlinkSync('/proc/thread-self'));
    return m ? Number(m[1]) : null;
  } catch { return null; }
}

/** Why `nice` is not a nice value, or null when it is (also the session group's: autogroup.ts). */
export function badNice(nice: number): string | null {
  return Number.isInteger(nice) && nice >= -20 && nice <= 19 ? null : `nice must be an integer in -20..19, got ${nice}`;
}

/** The errno name of a failed call: Node's os.setPriority throws a SystemError whose `code` is
 * ERR_SYSTEM_ERROR and whose `info.code` is the errno's (EACCES, ESRCH); fs calls and the native
 * addon put it in `code`. */
export function errnoCode(e: unknown): string | undefined {
  const err = e as { code?: string; info?: { code?: string } };
  return err.info?.code ?? err.code;
}

/** A refused priority change said as such (EPERM/EACCES: `needs` CAP_SYS_NICE), else its message. */
export function priorityRefusal(e: unknown, what = 'raising priority'): string {
  const code = errnoCode(e);
  return code === 'EPERM' || code === 'EACCES' ? `not permitted (${what} needs CAP_SYS_NICE): ${(e as Error).message}` : (e as Error).message;
}

/** Sets this thread's nice value; null on success, else why not (the thread keeps its nice). */
export function setThreadNice(nice: number): string | null {
  const bad = badNice(nice);
  if (bad) return bad;
  const tid = currentTid();
  if (tid === null) return 'no /proc/thread-self (per-thread priority needs Linux)';
  try { setPriority(tid, nice); return null; } catch (e) { return priorityRefusal(e); }
}

/** Puts this thread in SCHED_FIFO at `priority` (1..99; 0: back to SCHED_OTHER), through the
 * native addon; null on success, else why not (the thread keeps its policy). */
export function setThreadRealtime(priority: number): string | null {
  if (!Number.isInteger(priority) || priority < 0 || priority > 99) return `real-time priority must be an integer in 0..99, got ${priority}`;
  try { nativeAddon().setThreadRealtime(priority); return null; } catch (e) { return priorityRefusal(e, 'a real-time policy'); }
}

/** Pins this thread to `cpu` (sched_setaffinity through the native addon: Node has no API for
 * it); null on success, else why not (the thread keeps running where the scheduler puts it).
 * A pinned worker never migrates away from a CPU another busy task took; it pays where that CPU
 * is kept for it (e.g. the load generator pinned elsewhere; docs/performance.md, "Tried, not kept"). */
export function pinThread(cpu: number): string | null {
  try { nativeAddon().setThreadAffinity([cpu]); return null; } catch (e) { return (e as Error).message; }
}
