// A young-generation collection on demand, for the moment the control plane knows two things at
// once: a large apply (a full sync) just built its long-lived state — the model, the compiled
// tables' objects — in the young generation, and its main thread has nothing to do while the
// forwarding workers take the change. V8's first scavenge after such an apply copies (and the
// next one promotes) every one of those survivors: 10–60 ms on the main thread at 10k Services ×
// 10 on a loaded 2-vCPU VM, and it landed on one of the next one-endpoint changes — the slowest of
// a run (docs/performance.md, "One-endpoint change"). Run here,
// twice (the first copies the survivors, the second promotes them to the old generation), it
// costs the same while the main thread would otherwise wait, and the changes after the apply
// start with a young generation of their own garbage only.
//
// V8 offers this only through its `gc` extension: the flag is set when first needed, the
// function taken from a fresh context (the extension is installed in contexts made after the flag),
// and the flag cleared again at once — it is process-wide: left set, every worker thread started
// later (a store writer thread that replaces one, a restarted dataplane worker) and every vm
// context would get a global `gc`. The function taken keeps working without it.
// Without it (a V8 that refuses the flag) nothing runs: the collection is an optimisation only, and
// one that throws is ignored (it runs on the apply's path, after the commit).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type GcFunction = (options: { type: 'minor' | 'major' }) => void;
let gc: GcFunction | null | undefined;

function gcFunction(): GcFunction | null {
  if (gc !== undefined) return gc;
  // (a process started with --expose-gc has it here already: its flag is left as it is)
  const own = (globalThis as { gc?: unknown }).gc;
  if (typeof own === 'function') return (gc = own as GcFunction);
  try {
    setFlagsFromString('--expose-gc');
    try {
      gc = runInNewContext('typeof gc === "function" ? gc : null') as GcFunction | null;
    } finally { setFlagsFromString('--no-expose-gc'); }
  } catch { gc = null; }
  return gc;
}

/** Promotes what the young generation holds now to the old generation (two scavenges on this
 * thread, synchronously); a no-op where V8 does not offer it. */
export function promoteYoungGeneration(): void {
  const f = gcFunction();
  if (!f) return;
  try {
    f({ type: 'minor' });
    f({ type: 'minor' });
  } catch { /* an optimisation only */ }
}
