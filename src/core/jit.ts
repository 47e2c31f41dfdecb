// V8 keeps one process-wide promise, the "ArrayBuffer detaching protector": while no ArrayBuffer
// has ever been detached, optimised code reads typed arrays without checking for a detached
// buffer. The first detach breaks the promise and throws away every optimised function that
// relied on it — the compiler's hot loops, the table writer's, the Maglev builder's.
//
// In wdp the first detach is the core's first memory.grow(), which a table write does after a
// full compile: so the daemon's first big sync left all of that code to be re-optimised (TurboFan
// takes ~50 ms a function on a busy 2-core machine) in the sync after it, and `--trace-deopt`
// showed the cascade ("code dependencies") right after the first full compile. Detaching one
// throwaway buffer when the control plane loads breaks the promise before any of that code is
// optimised, so it is optimised once, with the check (one compare per typed-array access).
let done = false;

/** Breaks V8's ArrayBuffer-detaching protector now (idempotent; cheap: one 64 KiB page). */
export function detachProtectorEarly(): void {
  if (done) return;
  done = true;
  const m = new WebAssembly.Memory({ initial: 0, maximum: 1 });
  void m.buffer;
  m.grow(1); // detaches the buffer read above
}
