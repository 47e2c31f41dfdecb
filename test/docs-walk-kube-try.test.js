// docs/running.md "Trying the Kubernetes watcher without a cluster", run as a reader pastes it into a
// root shell in the checkout: the API-server double in the dataplane's namespace seeded over its
// control socket, a daemon with a kubernetes: section and a kubeconfig, healthz awaited, the
// Service listed and served through its ClusterIP, its EndpointSlice deleted in the "API server"
// and the ClusterIP then refusing, the stop (exit 0) and the clean-up. Only the namespace prefix and
// the directory are made unique: every command runs as written.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootGate } from './lib/root-gate.js';

const ROOT = new URL('../', import.meta.url).pathname;
const gate = rootGate(test, { tools: ['curl'] });
const HEAD = 'P=wdp-kube; D=/tmp/wdp-kube;';

/** Pids of the processes whose command line names `dir` (this test's own directory). */
function processesNaming(dir) {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir); } catch { return false; }
  }).map(Number);
}

/** The sh block of running.md's "Trying the Kubernetes watcher without a cluster". */
function recipe() {
  const doc = readFileSync(join(ROOT, 'docs/running.md'), 'utf8');
  const section = doc.split('\n## Trying the Kubernetes watcher without a cluster\n')[1]?.split('\n## ')[0] ?? '';
  const m = /```sh\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error('no sh block in running.md "Trying the Kubernetes watcher without a cluster"');
  return m[1];
}

gate.test('running.md "Trying the Kubernetes watcher without a cluster": the recipe as written programs the double\'s Service, follows its EndpointSlice away, stops cleanly and leaves nothing behind', async (t) => {
  const prefix = `wdp-t${process.pid}-kt`;
  const dir = mkdtempSync(join(tmpdir(), 'wdp-walk-kube-'));
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
  t.true(text.startsWith(HEAD), 'the recipe names its prefix and directory first');
  t.notRegex(text, /\bnpx\b|\bnpm exec\b/, 'the recipe runs the CLI as node bin/wdp.js (README "Using it")');
  const script = text.replace(HEAD, `P=${prefix}; D=${dir};`);
  const child = spawn('bash', ['-c', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '', err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* ended */ } }, 180000);
  const code = await new Promise((resolve) => child.on('exit', resolve));
  clearTimeout(timer);
  t.is(code, 0, `the recipe's last command succeeded\n${out}\n${err}`);
  t.regex(out, /^default\s+web\s+ClusterIP\s+10\.96\.0\.10\s/m, `wdp get services lists the API server's Service\n${out}\n${err}`);
  t.regex(out, /^hello from pod-a$/m, `curl got the pod's answer through 10.96.0.10\n${out}\n${err}`);
  t.regex(err, /curl: \(7\) Failed to connect to 10\.96\.0\.10 port 80/, `the ClusterIP refuses once the slice is deleted\n${out}\n${err}`);
  t.regex(out, /^reject_no_endpoints\s+[1-9]/m, `the counters name the reject\n${out}`);
  t.regex(out, /^stopped$/m, 'the daemon stopped with exit status 0');
  t.is(err.split('\n').filter((l) => l && !/^curl: \(7\)/.test(l)).join('\n'), '', 'nothing else on stderr');
  const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  t.false(nss.some((ns) => left.includes(ns)), `the recipe removes its namespaces\n${left}`);
  t.false(existsSync(join(dir, 'wdp.yaml')), 'and its directory');
  t.deepEqual(processesNaming(dir), [], 'no daemon or API-server double is left running');
});
