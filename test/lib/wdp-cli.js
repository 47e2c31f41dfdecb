// The `wdp` CLI spawned as a real process against the control API at `server` (WDP_SERVER), no
// token; resolves with its exit code, the signal that ended it and its output.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'wdp.js');

/** `o.killAfterMs`: SIGKILL it then (a CLI that hangs fails its test instead of holding it);
 * `o.spawn`: more spawn options (cwd, uid, gid), `o.env`: more environment. */
export function runWdp(args, server, o = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, ...o.spawn, env: { ...process.env, WDP_SERVER: server, WDP_TOKEN: '', ...o.env } });
    let stdout = '', stderr = '';
    const timer = o.killAfterMs ? setTimeout(() => p.kill('SIGKILL'), o.killAfterMs) : undefined;
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('error', reject);
    p.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
    p.stdin.end();
  });
}
