// Page faults as a line item of a benchmark.
//
// A full compile touches tens of MB of memory the process has not used before (the Ir's objects,
// the Maglev tables). Each first touch of a 4 KiB page is a minor fault. On bare metal that costs
// ~0.1–0.5 µs; in the nested VMs CI runs on it has been measured at ~18 µs, where 10k faults are
// 180 ms — more than the compile's own work. The benchmarks therefore print the faults a stage
// took and this machine's measured cost per fault, so a reader can tell the two apart.

/** Minor page faults of this process so far. */
export function minorFaults(): number { return process.resourceUsage().minorPageFault; }

/** Microseconds per minor fault on this machine: touches `mb` MiB of fresh memory a page at a
 * time and divides the time by the faults it took. Best of `tries` (the least-disturbed run). */
export function pageFaultCostUs(mb = 16, tries = 3): number {
  let best = Infinity;
  for (let t = 0; t < tries; t++) {
    const f0 = minorFaults(), t0 = performance.now();
    const b = new Uint8Array(mb << 20);
    for (let i = 0; i < b.length; i += 4096) b[i] = 1;
    const us = (performance.now() - t0) * 1000, faults = minorFaults() - f0;
    if (faults > 0) best = Math.min(best, us / faults);
  }
  return Number.isFinite(best) ? best : 0;
}
