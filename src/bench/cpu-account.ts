// CPU accounting for `wdp bench e2e`: how much CPU a forwarder spends per packet it forwards.
//
// On veth the kernel does part of every forwarder's work in the *sender's* context: trafgen's
// transmit runs the receiving veth's softirq inline (the kernel contender forwards and NATs there;
// for wdp and OVS the XDP program / AF_PACKET tap runs there). Without IRQ time accounting (this
// VM's kernel: CONFIG_TICK_CPU_ACCOUNTING) a tick that lands in softirq is charged to the task it
// interrupted, so that work shows up in trafgen's own stime — or, when the kernel defers softirq
// work, in the ksoftirqd threads. System-wide softirq time would also count every other user of
// the machine, so it is not used.
//
// One formula for every contender, built from per-process counters (utime+stime from
// /proc/PID/stat, summed over a process and its descendants):
//
//   forwarder CPU = Δ(forwarder processes) + Δ(generator tree) + Δ(ksoftirqd)
//                   − baseline × frames offered
//
// where `baseline` is the generator tree's + ksoftirqd's CPU per offered frame in the
// generator-alone run (the same trafgen, frames dropped at the router's netdev ingress). What is
// left is what forwarding added on top of generating the frames: the kernel's forwarding and NAT
// for the kernel contender, the daemon plus its kernel rx path for wdp, ovs-vswitchd plus its XDP
// path for OVS. Divided by the frames that reached the server translated. Resolution: USER_HZ
// ticks (10 ms) sampled at the kernel's tick rate, so a 3 s window is good to ~1%; other load on
// the machine that lands in ksoftirqd is counted too (small: this topology's softirqs run inline).
//
// Also per-thread CPU and run-queue wait in ns from schedstat (threadSchedStats), for `wdp bench
// control`'s per-change figures of the daemon.
import { readFileSync, readdirSync } from 'node:fs';

const CLK_TCK = 100; // USER_HZ: /proc/PID/stat is in 1/100 s on every Linux ABI

/** utime + stime of one process, all its threads (null when it is gone). */
export function processCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch { return null; }
}

interface ProcEntry { pid: number; ppid: number; comm: string }

function procTable(): ProcEntry[] {
  const out: ProcEntry[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      const comm = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
      const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
      out.push({ pid: Number(d), ppid, comm });
    } catch { /* exited meanwhile */ }
  }
  return out;
}

/** `pid` and every descendant (trafgen forks its worker; `ip netns exec` execs in place). */
export function processTree(pid: number, table: ProcEntry[] = procTable()): number[] {
  const children = new Map<number, number[]>();
  for (const e of table) {
    const list = children.get(e.ppid) ?? [];
    list.push(e.pid);
    children.set(e.ppid, list);
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(children.get(p) ?? []));
  }
  return out;
}

/** utime+stime of `pid` and every descendant. */
export function processTreeCpuSeconds(pid: number): number | null {
  if (processCpuSeconds(pid) === null) return null;
  return processTree(pid).reduce((s, p) => s + (processCpuSeconds(p) ?? 0), 0);
}

/** The kernel's per-CPU softirq threads. */
export function ksoftirqdPids(): number[] {
  return procTable().filter((e) => /^ksoftirqd\/\d+$/.test(e.comm)).map((e) => e.pid);
}

/** CPU seconds of a fixed set of processes, read at the start and end of a window. Process trees
 * are resolved once, at the start (the processes measured live through the window). */
export class CpuMeter {
  private readonly pids: number[];
  constructor(roots: number[], singles: number[] = []) {
    const table = procTable();
    this.pids = [...new Set([...roots.flatMap((r) => processTree(r, table)), ...singles])];
  }
  seconds(): number { return this.pids.reduce((s, p) => s + (processCpuSeconds(p) ?? 0), 0); }
}

/** CPU seconds per offered frame of the generator alone (trafgen + ksoftirqd), the baseline. */
export interface GeneratorBaseline { cpuPerFrameS: number }

/** The forwarder's CPU over a window (see the file comment), never below zero. */
export function forwarderCpuSeconds(w: { forwarderS: number; generatorS: number; offered: number }, base: GeneratorBaseline | null): number | null {
  if (!base) return null;
  return Math.max(0, w.forwarderS + w.generatorS - base.cpuPerFrameS * w.offered);
}

/** Per thread of process `pid`: [tid, ns on a CPU, ns runnable but waiting for one]
 * (/proc/PID/task/TID/schedstat: nanoseconds, unlike /proc/PID/stat's 10 ms ticks); empty when
 * not readable (a kernel without schedstats, or the process is gone). */
export function threadSchedStats(pid: number | undefined): Array<[number, number, number]> {
  if (pid === undefined) return [];
  const out: Array<[number, number, number]> = [];
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      try {
        const [run, wait] = readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ').map(Number);
        if (Number.isFinite(run) && Number.isFinite(wait)) out.push([Number(t), run, wait]);
      } catch { /* the thread ended */ }
    }
  } catch { return []; }
  return out;
}

/** threadSchedStats summed: [ns on a CPU, ns waiting for one], or null. */
export function schedTotals(pid: number | undefined): [number, number] | null {
  const ts = threadSchedStats(pid);
  return ts.length ? ts.reduce<[number, number]>((a, [, r, w]) => [a[0] + r, a[1] + w], [0, 0]) : null;
}
