// `wdp bench kube --json` end to end through the real CLI at a tiny size: the daemon mode runs
// `wdp start` with a kubernetes: section in a namespace of its own against the API-server double
// (src/bench/kube-daemon.ts); every figure is a number, the counts are the cluster's, and the
// namespace is gone afterwards. Never timing thresholds.
import test from 'ava';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rootGate } from './lib/root-gate.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const WDP = join(ROOT, 'bin/wdp.js');
const { serial } = rootGate(test);

function wdp(args, timeoutMs = 300_000) {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [WDP, ...args], { cwd: ROOT, timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr, pid: child.pid });
    });
  });
}

function oneJson(t, r) {
  t.is(r.code, 0, `exit code 0 expected; stderr:\n${r.stderr}`);
  const lines = r.stdout.split('\n').filter((l) => l.length);
  t.is(lines.length, 1, `exactly one line on stdout, got:\n${r.stdout}`);
  const j = JSON.parse(lines[0]);
  t.true(Number.isInteger(j.host.nproc) && j.host.nproc >= 1);
  t.is(typeof j.host.loadavg_1m, 'number');
  return j;
}

const number = (t, j, k, min = 0) => t.true(typeof j[k] === 'number' && Number.isFinite(j[k]) && j[k] >= min, `${k} should be a number >= ${min}, got ${JSON.stringify(j[k])}`);

serial('bench kube: the daemon on the watcher path, 50 x 2, 5 changes, restart; no namespace left behind', async (t) => {
  const r = await wdp(['bench', 'kube', '--services', '50', '--endpoints', '2', '--changes', '5', '--json', '--quiet']);
  const j = oneJson(t, r);
  t.is(j.mode, 'daemon');
  t.is(j.services, 50);
  t.is(j.frontends, 50);
  t.is(j.backends, 100);
  t.is(j.one_endpoint_samples, 5);
  for (const k of ['start_to_api_ms', 'start_to_programmed_ms', 'one_endpoint_p50_ms', 'one_endpoint_p99_ms', 'one_endpoint_max_ms', 'restart_to_ready_ms', 'rss_programmed_mb', 'rss_restarted_mb']) number(t, j, k, Number.MIN_VALUE);
  for (const k of ['seed_ms', 'list_to_programmed_ms', 'list_to_programmed_cpu_ms', 'start_to_programmed_cpu_ms', 'one_endpoint_daemon_cpu_ms', 'stop_ms', 'restart_to_forwarding_ms', 'restart_cpu_ms', 'loadavg_1m_start']) number(t, j, k);
  t.true(j.list_pages >= 2, `a Service list and an EndpointSlice list at least (${j.list_pages})`);
  t.true(j.start_to_programmed_ms >= j.start_to_api_ms);
  // the bench names its namespaces wdp-b<its pid>-...: none may outlive it
  const list = await new Promise((res) => execFile('ip', ['netns', 'list'], (_e, out) => res(out)));
  t.false(list.includes(`wdp-b${r.pid}-`), list);
});

test('bench kube --in-process: the watcher alone over an in-thread core', async (t) => {
  const r = await wdp(['bench', 'kube', '--in-process', '--services', '20', '--endpoints', '2', '--page-size', '7', '--json', '--quiet']);
  const j = oneJson(t, r);
  t.is(j.mode, 'in-process');
  t.is(j.frontends, 20);
  t.is(j.backends, 40);
  for (const k of ['list_ms', 'programmed_ms', 'one_endpoint_change_ms']) number(t, j, k, Number.MIN_VALUE);
});

test('bench kube: bad input is a clear error and nothing on stdout', async (t) => {
  const r = await wdp(['bench', 'kube', '--services', 'lots', '--json']);
  t.not(r.code, 0);
  t.is(r.stdout, '');
  t.regex(r.stderr, /--services must be an integer/);
});
