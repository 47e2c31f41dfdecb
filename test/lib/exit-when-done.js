// Loaded into every ava worker (package.json "ava"."require"). ava ends a test file's worker only
// once its event loop is empty: a timer or handle left behind after the file's last test (a
// bounding `Promise.race([p, sleep(60_000)])` that `p` won, a wait left pending) held the worker,
// and with it one of the run's slots, for up to a minute, with nothing to run — five such files
// cost the run ~4 minutes. When the file's tests and hooks are done (after.always and teardowns
// included; results already reported), this gives the worker GRACE_MS to end on its own, then
// names what still holds it (so the leak can be found and fixed) and ends it. Namespaces a
// NetnsLab made are removed by its exit handler either way (src/netns.ts).
//
// WDP_TEST_FILE_TIMES=<file>: each worker appends one JSON line { file, loadedMs, doneMs, exitMs }
// (epoch ms: loaded, tests and hooks done, process exit) — where a run's time goes, per file.
import { appendFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { registerCompletionHandler } from 'ava';

const GRACE_MS = 2000;
const loadedMs = Date.now();

/** The worker's test file (ava's worker options are internal: best effort, '?' otherwise). */
function testFile() {
  try {
    const require = createRequire(import.meta.url);
    return require(join(dirname(require.resolve('ava')), '../lib/worker/options.cjs')).get().file;
  } catch { return '?'; }
}

registerCompletionHandler(() => {
  const times = process.env.WDP_TEST_FILE_TIMES;
  if (times) {
    const doneMs = Date.now(), file = testFile();
    process.once('exit', () => appendFileSync(times, `${JSON.stringify({ file, loadedMs, doneMs, exitMs: Date.now() })}\n`));
  }
  setTimeout(() => {
    // (ava's own IPC channel and the stdio pipes are always there: only what is left over is named)
    const held = process.getActiveResourcesInfo().filter((r) => r !== 'PipeWrap' && r !== 'TTYWrap');
    console.log(`test/lib/exit-when-done.js: ${GRACE_MS / 1000} s after the last test of ${testFile()} the worker is still held (${held.join(', ') || 'pipes: child processes?'}); ending it`);
    process.exit(0);
  }, GRACE_MS).unref();
});
