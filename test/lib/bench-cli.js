// `wdp bench ...` through the real CLI, for the bench tests: run it, and read its one JSON line.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WDP = join(ROOT, 'bin/wdp.js');

/** Runs `wdp ARGS`; resolves { code, stdout, stderr, pid } (pid: the bench's, which names its namespaces). */
export function wdp(args, timeoutMs = 240_000) {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [WDP, ...args], { cwd: ROOT, timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr, pid: child.pid });
    });
  });
}

/** stdout must be exactly one JSON object (one line) and nothing else. */
export function oneJson(t, r) {
  t.is(r.code, 0, `exit code 0 expected; stderr:\n${r.stderr}`);
  const lines = r.stdout.split('\n').filter((l) => l.length);
  t.is(lines.length, 1, `exactly one line on stdout, got:\n${r.stdout}`);
  const j = JSON.parse(lines[0]);
  t.true(typeof j === 'object' && j !== null && !Array.isArray(j));
  t.true(Number.isInteger(j.host.nproc) && j.host.nproc >= 1);
  t.is(typeof j.host.kernel, 'string');
  return j;
}
