// `npm start` / `wdp demo`: as root it builds namespaces, runs the daemon, sends real requests
// through a ClusterIP and cleans everything up; not root it runs the core on synthetic traffic.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { canUseNetns, WDP } from './lib/topology.js';
import { childDone } from './lib/child-done.js';

function run(args, opts = {}) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [WDP, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: 'true' }, ...opts });
    let out = '', err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120000);
    void childDone(child).then(({ code }) => { clearTimeout(timer); resolve({ code, out, err, pid: child.pid }); });
  });
}

const root = canUseNetns();

(root ? test : test.skip)('demo (root): real requests through the ClusterIP reach all three pods, then everything is removed', async (t) => {
  const r = await run(['demo', '--rounds', '2']);
  t.is(r.code, 0, `${r.out}\n${r.err}`);
  for (const step of ['[1/6]', '[2/6]', '[3/6]', '[4/6]', '[5/6]', '[6/6]']) t.true(r.out.includes(step), `missing step ${step}`);
  t.regex(r.out, /round 2: 30 requests/);
  t.notRegex(r.out, /FAILED/);
  // every pod answered at least once in the two rounds (60 requests over 3 pods)
  for (const pod of ['pod-a', 'pod-b', 'pod-c']) {
    const counts = [...r.out.matchAll(new RegExp(`${pod} [█ ]+ (\\d+)`, 'g'))].map((m) => Number(m[1]));
    t.is(counts.length, 2, `${pod} rows`);
    t.true(counts.reduce((a, b) => a + b, 0) > 0, `${pod} got no request`);
  }
  const m = /dataplane: (\d+) packets in .* (\d+) forwarded/.exec(r.out);
  t.truthy(m);
  t.true(Number(m[2]) >= 60 * 4, 'at least SYN, request, ACKs per request were forwarded');
  const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  t.false(left.includes(`wdp-d${r.pid}-`), `namespaces left behind:\n${left}`);
  const sock = /unix:(\S+)\/api\.sock/.exec(r.out);
  t.truthy(sock);
  t.false(existsSync(sock[1]), 'temp dir removed');
});

test('demo (synthetic): the core forwards every synthetic packet, spread over the three pods', async (t) => {
  const r = await run(['demo', '--mode', 'synthetic', '--duration', '1']);
  t.is(r.code, 0, `${r.out}\n${r.err}`);
  t.regex(r.out, /Mpps/);
  for (const pod of ['pod-a', 'pod-b', 'pod-c']) {
    const m = new RegExp(`${pod} \\([\\d.]+\\): (\\d+) packets`).exec(r.out);
    t.truthy(m, pod);
    t.true(Number(m[1]) > 0, `${pod} got no packets`);
  }
});

// Needs a user that can read this checkout (a clone under /root is not readable by nobody).
const nobodyCanRun = root && existsSync('/usr/bin/setpriv') &&
  spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', `require('fs').accessSync(${JSON.stringify(WDP)})`]).status === 0;

(nobodyCanRun ? test : test.skip)('demo as a non-root user says so and falls back to synthetic traffic', async (t) => {
  const r = await new Promise((resolve) => {
    const child = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, WDP, 'demo', '--duration', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    void childDone(child).then(({ code }) => resolve({ code, out, err }));
  });
  t.is(r.code, 0, r.err);
  t.regex(r.out, /not running as root/);
  t.regex(r.out, /Mpps/);
});

test('demo rejects nonsense options', async (t) => {
  const r = await run(['demo', '--duration', '-3']);
  t.is(r.code, 2);
  t.regex(r.err, /--duration must be a positive duration/);
});
