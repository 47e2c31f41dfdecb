// docs/running.md "Trying it by hand", run as a reader pastes it into a root shell in the checkout:
// three namespaces, a daemon with an AF_PACKET uplink and a TAP pod, a Service applied with
// `node bin/wdp.js apply`, curl through the ClusterIP, `wdp get conntrack`, the stop (exit 0) and the
// clean-up. Only the namespace prefix and the directory are made unique: every command runs as written.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootGate } from './lib/root-gate.js';

const ROOT = new URL('../', import.meta.url).pathname;
const gate = rootGate(test, { tools: ['curl', 'python3'] });

/** Pids of the processes whose command line names `dir` (this test's own directory). */
function processesNaming(dir) {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir); } catch { return false; }
  }).map(Number);
}

/** The sh block of running.md's "Trying it by hand". */
function recipe() {
  const doc = readFileSync(join(ROOT, 'docs/running.md'), 'utf8');
  const section = doc.split('\n## Trying it by hand\n')[1]?.split('\n## ')[0] ?? '';
  const m = /```sh\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error('no sh block in running.md "Trying it by hand"');
  return m[1];
}

gate.test('running.md "Trying it by hand": the recipe as written serves the pod through the ClusterIP, lists the flow, stops cleanly and leaves nothing behind', async (t) => {
  const prefix = `wdp-t${process.pid}-try`;
  const dir = mkdtempSync(join(tmpdir(), 'wdp-walk-try-'));
  const nss = ['dp', 'client', 'pod'].map((n) => `${prefix}-${n}`);
  t.teardown(() => {
    for (const pid of processesNaming(dir)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    for (const ns of nss) {
      const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
      for (const pid of pids) { try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ } }
      spawnSync('ip', ['netns', 'del', ns]);
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const text = recipe();
  t.true(text.startsWith('P=wdp-try; D=/tmp/wdp-try;'), 'the recipe names its prefix and directory first');
  // no npx / npm exec: the first run of the local package's bin installs it into npm's cache and
  // runs its `prepare` script (a whole `npm run build`, rewriting dist/ under a running daemon)
  t.notRegex(text, /\bnpx\b|\bnpm exec\b/, 'the recipe runs the CLI as node bin/wdp.js (README "Using it")');
  const script = text.replace('P=wdp-try; D=/tmp/wdp-try;', `P=${prefix}; D=${dir};`);
  const child = spawn('bash', ['-c', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '', err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* ended */ } }, 180000);
  const code = await new Promise((resolve) => child.on('exit', resolve));
  clearTimeout(timer);
  t.is(code, 0, `the recipe's last command succeeded\n${out}\n${err}`);
  t.regex(out, /^hello from pod-a$/m, `curl got the pod's answer through 10.96.0.10\n${out}\n${err}`);
  t.regex(out, /service\/default\/web created/);
  t.regex(out, /TCP\s+10\.0\.0\.2:\d+\s+10\.96\.0\.10:80\s+10\.244\.1\.11:8080\s+\S+\s+default\/web/, `wdp get conntrack shows the flow\n${out}`);
  t.regex(out, /^stopped$/m, 'the daemon stopped with exit status 0');
  t.notRegex(err, /error/i, err);
  const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  t.false(nss.some((ns) => left.includes(ns)), `the recipe removes its namespaces\n${left}`);
  t.false(existsSync(join(dir, 'wdp.yaml')), 'and its directory');
  t.deepEqual(processesNaming(dir), [], 'no daemon is left running');
});
