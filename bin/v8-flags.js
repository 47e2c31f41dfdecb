// The V8 flags every wdp process runs with, set before any of wdp's modules is loaded (bin/wdp.js
// imports this first). Both take effect when set at run time, for the main thread and for every
// worker thread started after (the flags are the process's); flags that V8 reads only when an
// isolate's heap is set up (its collectors' threads, the young generation's size) would have to
// be on node's command line instead (docs/performance.md, "V8 flags").
import { setFlagsFromString } from 'node:v8';

export const V8_FLAGS = [
  // Feedback (the types an operation has seen) from a function's first call on, not only from its
  // ~8th: the compiler's once-per-table paths (the first node name, the first next hop) run in a
  // function's first calls, and without feedback there the optimised code of a daemon's first
  // full sync deoptimised at them in the next one ("insufficient type feedback";
  // docs/running.md). Costs a feedback vector for functions called only a few times.
  '--no-lazy-feedback-allocation',
  // A function is optimised (TurboFan, on a background thread) after 8x the default 66 KiB of
  // its bytecode has run: a full sync runs much of its code once, over a large input, and at the
  // default its functions were compiled while the sync and the first changes after it ran and
  // wanted the same two CPUs; what stays hot (the incremental path, the workers' loops) is still
  // optimised within its first changes or packets.
  '--interrupt-budget=540672',
];
for (const f of V8_FLAGS) setFlagsFromString(f);
