// An empty NAME or flag value is refused, naming it, instead of being read as not given:
// `wdp get services ""` listed every Service and `-n ""` every namespace (a script whose variable
// was unset saw the whole state), `wdp delete service "" ` said there was nothing to delete.
// Found by the seeded CLI fuzzer (test/lib/cli-fuzz.js).
import test from 'ava';
import { runWdp } from './lib/wdp-cli.js';

const oneError = (t, r, re) => {
  t.is(r.code, 1, r.stderr);
  t.is(r.stdout, '');
  t.regex(r.stderr.trim(), re);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
};

test('empty NAME, -n and --service values are refused before any request', async (t) => {
  // (no daemon at the address: a request would fail with "cannot reach")
  const server = 'http://127.0.0.1:1';
  oneError(t, await runWdp(['get', 'services', ''], server), /^error: get services: NAME may not be empty$/);
  oneError(t, await runWdp(['get', 'endpointslices', '', '-n', 'shop'], server), /^error: get endpointslices: NAME may not be empty$/);
  oneError(t, await runWdp(['get', 'services', '-n', ''], server), /^error: --namespace may not be empty$/);
  oneError(t, await runWdp(['get', 'frontends', '--service', ''], server), /^error: --service may not be empty$/);
  oneError(t, await runWdp(['get', 'conntrack', '--service', ''], server), /^error: --service may not be empty$/);
  oneError(t, await runWdp(['delete', 'service', ''], server), /^error: delete: NAME may not be empty$/);
  oneError(t, await runWdp(['delete', 'service', 'web', '-n', ''], server), /^error: --namespace may not be empty$/);
  // given, they go on to the daemon
  oneError(t, await runWdp(['get', 'services', 'web', '-n', 'shop'], server), /cannot reach the wdp API/);
});

test('wdp start --kubeconfig "" is refused by the config check (exit 2), not dropped: the daemon would have run without watching the API', async (t) => {
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'wdp-empty-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // a config the check refuses anyway (a port of no type): nothing starts whatever the flag does
  writeFileSync(join(dir, 'wdp.yaml'), `ports:\n  - {name: a, ifname: x, role: pod}\nstateDir: ${join(dir, 'state')}\n`);
  const r = await runWdp(['start', '--config', join(dir, 'wdp.yaml'), '--kubeconfig', ''], 'http://127.0.0.1:1');
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr, /kubernetes\.kubeconfig: must name a kubeconfig file/);
});
