// The runtime's helper threads — V8's platform threads (its parallel and concurrent garbage
// collection, its background optimising compiles), Node's own and libuv's pool — at a lower
// priority than the daemon's own threads (helperNice).
//
// Why: after a full sync V8 spends ~0.4 s of CPU compiling the functions the sync made hot, on
// these threads, while the first one-endpoint changes run; on a 2-CPU node the forwarding worker
// and the main thread then wait 2–10 ms for a CPU, which set the changes' p99 (docs/performance.md,
// "Thread priorities"). A helper at a higher nice still runs
// whenever a CPU is idle; the daemon's main thread does more of a parallel collection itself when
// the helpers are slow to start (V8's jobs are joined by the thread that posts them).
//
// Which threads: every thread of the process other than the main thread when this module is
// evaluated — before the daemon starts any thread of its own (forwarding workers, the Maglev and
// store-writer threads take their nice from the main thread that starts them, so they are not
// touched). Node names none of them, so "existed before the daemon started a thread" is the rule.
// Only in the process's main thread: wdp started in a worker thread (a test runner's) leaves
// the process's threads alone.
//
// Except V8's CPU profiler thread (`--cpu-prof`, named v8:ProfEvntProc), which wakes every
// sampling interval to sample the main thread: at nice 5 it would sample the main thread on other
// terms than the workers' profiler threads (started by nice-0 threads) sample theirs. A busy main
// thread beside two busy processes on 2 CPUs got a median 2,100 samples in 2 s with it at 5 against
// 3,125 at 0 (4 runs each, ranges overlapping: 1,678–3,217 and 1,447–5,858).
import { readdirSync, readFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { isMainThread } from 'node:worker_threads';
import { badNice, errnoCode, priorityRefusal } from './thread-priority.js';

/** The name (comm) of V8's CPU profiler thread. */
const PROFILER_THREAD = 'v8:ProfEvntProc';

/** The helper threads' ids: every thread but the main one and the profiler's when this module was
 * evaluated. */
const HELPERS: readonly number[] = isMainThread ? (threadIds() ?? []).filter((t) => t !== process.pid && threadName(t) !== PROFILER_THREAD) : [];

/** This process's threads now; null when /proc/self/task cannot be read. */
function threadIds(): number[] | null {
  try { return readdirSync('/proc/self/task').map(Number).filter(Number.isInteger); } catch { return null; }
}

function threadName(tid: number): string | null {
  try { return readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim(); } catch { return null; }
}

/** How many helper threads got the nice value; `reason`: why some (or all: set 0) did not. */
export interface HelperNiceResult { set: number; reason?: string }

/** Sets every helper thread's nice (those that still exist); says how many, and why not where not. */
export function setHelperThreadsNice(nice: number): HelperNiceResult {
  const bad = badNice(nice);
  if (bad) return { set: 0, reason: bad };
  if (!isMainThread) return { set: 0, reason: 'not the process\'s main thread: the process\'s threads are not the daemon\'s' };
  // only those still this process's: an ended thread's id may be another process's thread by now
  const now = threadIds();
  if (!HELPERS.length || !now) return { set: 0, reason: 'no helper threads found (/proc/self/task unreadable)' };
  const live = new Set(now);
  let set = 0, refused: unknown;
  for (const tid of HELPERS) {
    if (!live.has(tid)) continue;
    try { setPriority(tid, nice); set++; } catch (e) {
      // a thread that ended since the listing (ESRCH) is no failure
      if (errnoCode(e) !== 'ESRCH') refused ??= e;
    }
  }
  if (refused !== undefined) return { set, reason: priorityRefusal(refused) };
  return set ? { set } : { set, reason: 'every helper thread found at start has ended' };
}
