// `wdp bench kube --json` end to end through the real CLI at a tiny size: the daemon mode runs
// `wdp start` with a kubernetes: section in a namespace of its own against the API-server double
// (src/bench/kube-daemon.ts); every figure is a number, the counts are the cluster's, and the
// namespace is gone afterwards. Never timing thresholds.
import test from 'ava';
import { execFile } from 'node:child_process';
import { rootGate } from './lib/root-gate.js';
import { wdp, oneJson } from './lib/bench-cli.js';

const { serial } = rootGate(test);

const number = (t, j, k, min = 0) => t.true(typeof j[k] === 'number' && Number.isFinite(j[k]) && j[k] >= min, `${k} should be a number >= ${min}, got ${JSON.stringify(j[k])}`);

serial('bench kube: the daemon on the watcher path, 50 x 2, 5 changes, restart; no namespace left behind', async (t) => {
  const r = await wdp(['bench', 'kube', '--services', '50', '--endpoints', '2', '--changes', '5', '--page-size', '10', '--json', '--quiet'], 300_000);
  const j = oneJson(t, r);
  t.is(typeof j.host.loadavg_1m, 'number');
  t.is(j.mode, 'daemon');
  t.is(j.services, 50);
  t.is(j.frontends, 50);
  t.is(j.backends, 100);
  t.is(j.one_endpoint_samples, 5);
  for (const k of ['start_to_api_ms', 'start_to_programmed_ms', 'one_endpoint_p50_ms', 'one_endpoint_p99_ms', 'one_endpoint_max_ms', 'restart_to_ready_ms', 'rss_programmed_mb', 'rss_restarted_mb']) number(t, j, k, Number.MIN_VALUE);
  for (const k of ['seed_ms', 'list_to_programmed_ms', 'list_to_saved_ms', 'list_to_programmed_cpu_ms', 'start_to_programmed_cpu_ms', 'list_to_programmed_double_cpu_ms', 'one_endpoint_daemon_cpu_ms', 'one_endpoint_updated_p50_ms', 'one_endpoint_updated_p99_ms', 'one_endpoint_put_p50_ms', 'stop_ms', 'restart_to_forwarding_ms', 'restart_cpu_ms', 'loadavg_1m_start']) number(t, j, k);
  t.is(j.watch_cache, false);
  t.is(j.list_pages, 12, '50 Services and 50 EndpointSlices in pages of 10, the Node and the ServiceCIDRs');
  t.true(j.start_to_programmed_ms >= j.start_to_api_ms);
  // the bench names its namespaces wdp-b<its pid>-...: none may outlive it
  const list = await new Promise((res) => execFile('ip', ['netns', 'list'], (_e, out) => res(out)));
  t.false(list.includes(`wdp-b${r.pid}-`), list);
});

serial('bench kube --watch-cache: the first lists in one response each', async (t) => {
  const r = await wdp(['bench', 'kube', '--services', '50', '--endpoints', '2', '--changes', '2', '--page-size', '10', '--watch-cache', '--json', '--quiet'], 300_000);
  const j = oneJson(t, r);
  t.is(j.watch_cache, true);
  t.is(j.list_pages, 4);
  t.is(j.backends, 100);
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
