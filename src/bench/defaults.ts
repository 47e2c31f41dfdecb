// What `wdp bench core` and `wdp bench io` measure when a flag is not given: read by the suites
// (core.ts, core-workers.ts, io.ts) and by their help text (cli.ts), which must not load the
// suites to show them.
import { DEFAULT_BATCH_MAX } from '../../assembly/layout.js';

/** `wdp bench core` (runCoreBench; runCoreWorkersBench's seconds are `workersSeconds`). */
export const CORE_BENCH_DEFAULTS = { services: 1000, endpoints: 10, flows: 100_000, seconds: 3, workersSeconds: 2, batch: DEFAULT_BATCH_MAX } as const;

/** `wdp bench io` (runIoBench). */
export const IO_BENCH_DEFAULTS = { seconds: 3, batch: 256, size: 60, warmupSeconds: 0.5 } as const;
