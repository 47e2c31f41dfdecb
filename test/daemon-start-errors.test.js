// `wdp start` and an exception nothing in the daemon handles (a bug, a failing callback): one
// clear line on stderr and exit code 1 — not a raw stack — and the stack only with WDP_DEBUG=1.
// The exception is injected from outside the product (`node --import` of a module that throws from
// a timer while the daemon runs, in a network namespace the test creates with one TAP port).
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootGate } from './lib/root-gate.js';
import { NetnsLab } from '../dist/src/netns.js';

const WDP = new URL('../bin/wdp.js', import.meta.url).pathname;
const { serial } = rootGate(test);
// thrown 3 s in: the daemon has loaded its entry point (and is starting or running) by then
const THROWS = `data:text/javascript,setTimeout(() => { throw new TypeError('injected failure\\nwith a second line') }, 3000)`;

async function startThatThrows(t, env = []) {
  const lab = new NetnsLab('se');
  const dir = mkdtempSync(join(tmpdir(), 'wdp-start-err-'));
  t.teardown(() => { lab.destroySync(); rmSync(dir, { recursive: true, force: true }); });
  const ns = lab.namespace('d');
  const config = join(dir, 'wdp.json');
  writeFileSync(config, JSON.stringify({
    node: { name: 'n', addresses: ['192.168.77.1'] }, ports: [{ name: 'pods', type: 'tap', ifname: 'wdpse0', role: 'pod' }],
    api: { listen: `unix:${join(dir, 'api.sock')}`, healthz: 'off' }, stateDir: join(dir, 'state'), logLevel: 'warn',
  }));
  return lab.execAsync(ns, 'env', [...env, process.execPath, `--import=${THROWS}`, WDP, 'start', '--config', config], { timeoutMs: 60_000 });
}

serial('an unexpected exception ends `wdp start` with one clear line and exit code 1, no stack', async (t) => {
  const r = await startThatThrows(t);
  t.is(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split('\n');
  t.deepEqual(lines, ['wdp start: unexpected error, exiting: injected failure; with a second line (WDP_DEBUG=1 prints its stack)']);
});

serial('with WDP_DEBUG=1 the stack follows the line', async (t) => {
  const r = await startThatThrows(t, ['WDP_DEBUG=1']);
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, /^wdp start: unexpected error, exiting: injected failure; with a second line\nTypeError: injected failure\nwith a second line\n\s+at /);
});
