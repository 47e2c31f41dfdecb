// The platform facts that set a round trip's floor on this host, printed with `wdp bench e2e`
// (and bench/ab-e2e.mjs) so a reader can tell a slow machine from a slow dataplane.
//
// A UDP round trip through a ClusterIP is a chain of task wake-ups (two through the kernel's
// forwarding, four through a user-space dataplane). On a guest whose idle vCPUs halt, each wake-up
// onto an idle vCPU costs the hypervisor's round trip unless the cpuidle haltpoll driver polls
// first (`guest_halt_poll_ns`); on a busy machine each wake-up may wait for another session's
// slice (`sched_autogroup_enabled` decides how the CPU is shared between sessions); `nproc` and
// the load say how busy. Read-only: the bench never changes any of these.
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';

export interface RttFloorFacts {
  /** /sys/devices/system/cpu/cpuidle/current_driver, e.g. "haltpoll", "intel_idle", "none". */
  cpuidle_driver: string | null;
  cpuidle_governor: string | null;
  /** The idle states of CPU 0 by name (e.g. "POLL,haltpoll idle"). */
  cpuidle_states: string | null;
  /** /sys/module/haltpoll/parameters/guest_halt_poll_ns; null when the module is not loaded. */
  guest_halt_poll_ns: number | null;
  /** kernel.sched_autogroup_enabled (1: CPU time is shared between sessions first). */
  sched_autogroup_enabled: number | null;
  nproc: number;
  loadavg: [number, number, number];
}

function readText(root: string, path: string): string | null {
  try { return readFileSync(join(root, path), 'utf8').trim(); } catch { return null; }
}

function readInt(root: string, path: string): number | null {
  const s = readText(root, path);
  return s !== null && /^-?\d+$/.test(s) ? Number(s) : null;
}

/** Reads the facts; `root` replaces "/" (tests point it at a made-up tree). */
export function rttFloorFacts(root = '/', nproc = availableParallelism(), load: number[] = loadavg()): RttFloorFacts {
  const idle = 'sys/devices/system/cpu/cpuidle';
  const states: string[] = [];
  for (let i = 0; i < 16; i++) {
    const name = readText(root, `sys/devices/system/cpu/cpu0/cpuidle/state${i}/name`);
    if (name === null) break;
    states.push(name);
  }
  return {
    cpuidle_driver: readText(root, `${idle}/current_driver`),
    cpuidle_governor: readText(root, `${idle}/current_governor`) ?? readText(root, `${idle}/current_governor_ro`),
    cpuidle_states: states.length ? states.join(',') : null,
    guest_halt_poll_ns: readInt(root, 'sys/module/haltpoll/parameters/guest_halt_poll_ns'),
    sched_autogroup_enabled: readInt(root, 'proc/sys/kernel/sched_autogroup_enabled'),
    nproc,
    loadavg: [0, 1, 2].map((i) => Math.round((load[i] ?? 0) * 100) / 100) as [number, number, number],
  };
}

/** One line for people, e.g. "cpuidle haltpoll (governor haltpoll; states POLL,haltpoll idle),
 * guest_halt_poll_ns 0, sched_autogroup_enabled 1, 2 CPUs, load 4.86 2.61 2.31". */
export function formatRttFloor(f: RttFloorFacts): string {
  const na = (v: unknown) => (v === null || v === undefined ? 'n/a' : String(v));
  const states = f.cpuidle_states ? `; states ${f.cpuidle_states}` : '';
  const halt = f.guest_halt_poll_ns === null ? 'haltpoll module not loaded' : `guest_halt_poll_ns ${f.guest_halt_poll_ns}`;
  return `cpuidle ${na(f.cpuidle_driver)} (governor ${na(f.cpuidle_governor)}${states}), ${halt}, ` +
    `sched_autogroup_enabled ${na(f.sched_autogroup_enabled)}, ${f.nproc} CPUs, load ${f.loadavg.join(' ')}`;
}
