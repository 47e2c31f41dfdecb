// How many of a new flow's first packets a daemon worker holds for a backend address without a
// neighbour yet, and for how long (src/daemon/hold-queue.ts's defaults, the kernel's small
// unres_qlen). Here, below both, so the compiler's no-neighbour warning states the figures the
// hold queue uses without importing the daemon.

/** Frames held per unresolved address. */
export const HOLD_PER_ADDRESS = 3;
/** How long a held frame may wait, ms: the neighbour probes' give-up time. */
export const HOLD_MS = 3000;
