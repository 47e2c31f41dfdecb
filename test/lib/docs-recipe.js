// A docs/running.md shell recipe run as a reader pastes it into a root shell in the checkout: only
// its first line (the namespace prefix and the directory) is replaced by unique ones; whatever it
// leaves (processes naming the directory, the namespaces, the directory) is removed at the end.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { childDone } from './child-done.js';

export const ROOT = new URL('../../', import.meta.url).pathname;

/** Pids of the processes whose command line names `dir`. */
export function processesNaming(dir) {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir); } catch { return false; }
  }).map(Number);
}

/** The first sh block of running.md's section `title`. */
export function recipe(title) {
  const doc = readFileSync(join(ROOT, 'docs/running.md'), 'utf8');
  const section = doc.split(`\n## ${title}\n`)[1]?.split('\n## ')[0] ?? '';
  const m = /```sh\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error(`no sh block in running.md "${title}"`);
  return m[1];
}

/** Runs `script` (whose first `head` is replaced by `P=<prefix>; D=<a new directory>;`) with bash in
 * the checkout, killed after 180 s; the namespaces `<prefix>-<role>` and the directory are removed
 * at the test's end. Resolves with { code, out, err, dir, nss }. */
export async function runRecipe(t, script, { head, prefix, roles, dirPrefix }) {
  const dir = mkdtempSync(join(tmpdir(), dirPrefix));
  const nss = roles.map((n) => `${prefix}-${n}`);
  t.teardown(() => {
    for (const pid of processesNaming(dir)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    for (const ns of nss) {
      const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
      for (const pid of pids) { try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ } }
      spawnSync('ip', ['netns', 'del', ns]);
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const child = spawn('bash', ['-c', script.replace(head, `P=${prefix}; D=${dir};`)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '', err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* ended */ } }, 180000);
  const { code } = await childDone(child);
  clearTimeout(timer);
  return { code, out, err, dir, nss };
}
