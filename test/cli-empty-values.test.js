// An empty NAME or flag value is refused, naming it, instead of being read as not given:
// `wdp get services ""` listed every Service and `-n ""` every namespace (a script whose variable
// was unset saw the whole state), `wdp port add --netns ""` made the TAP in the daemon's own
// namespace, `wdp trace --live --service ""` traced every packet, `wdp port remove ""` answered
// "no route DELETE /api/v1/ports/".
// Found by the seeded CLI fuzzer (test/lib/cli-fuzz.js).
import test from 'ava';
import { runWdp } from './lib/wdp-cli.js';

const oneError = (t, r, re) => {
  t.is(r.code, 1, r.stderr);
  t.is(r.stdout, '');
  t.regex(r.stderr.trim(), re);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
};

test('an empty NAME or option value is refused before any request, naming it', async (t) => {
  // (no daemon at the address: a request would fail with "cannot reach")
  const server = 'http://127.0.0.1:1';
  oneError(t, await runWdp(['get', 'services', ''], server), /^error: get: NAME may not be empty$/);
  oneError(t, await runWdp(['get', 'endpointslices', '', '-n', 'shop'], server), /^error: get: NAME may not be empty$/);
  oneError(t, await runWdp(['get', 'services', '-n', ''], server), /^error: --namespace may not be empty$/);
  oneError(t, await runWdp(['get', 'frontends', '--service', ''], server), /^error: --service may not be empty$/);
  oneError(t, await runWdp(['get', 'conntrack', '--service', ''], server), /^error: --service may not be empty$/);
  oneError(t, await runWdp(['delete', 'service', ''], server), /^error: delete: NAME may not be empty$/);
  oneError(t, await runWdp(['delete', 'service', 'web', '-n', ''], server), /^error: --namespace may not be empty$/);
  oneError(t, await runWdp(['port', 'remove', ''], server), /^error: port remove: NAME may not be empty$/);
  // a TAP made in the daemon's own namespace instead of --netns's
  oneError(t, await runWdp(['port', 'add', '--name', 'x', '--type', 'tap', '--ifname', 'y', '--netns', ''], server), /^error: --netns may not be empty$/);
  // a live trace of every packet instead of one Service's
  oneError(t, await runWdp(['trace', '--live', '--service', ''], server), /^error: --service may not be empty$/);
  oneError(t, await runWdp(['capture', '--port', 'p0', '-w', ''], server), /^error: --write may not be empty$/);
  oneError(t, await runWdp(['apply', '-f', 'examples/', '-f', ''], server), /^error: --filename may not be empty$/);
  oneError(t, await runWdp(['--server', '', 'status'], server), /^error: --server may not be empty$/);
  // (an empty --flags is a TCP segment without flags; an empty --token none, as WDP_TOKEN='')
  oneError(t, await runWdp(['trace', '--src', '10.0.0.1', '--dst', '10.96.0.1', '--flags', ''], server), /cannot reach the wdp API/);
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
