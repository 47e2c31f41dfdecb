// A CNI GC the daemon takes long over (many stale ports: each is closed in its worker, let back to
// the kernel, saved and the node config re-programmed) is waited for: it is one request that goes
// on in the daemon whether the plugin waits or not, and the runtime bounds the plugin's run
// itself. And a client that gives up waiting says the daemon did not answer in time — not that it
// cannot be reached — since what it sent may still be applied.
import test from 'ava';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCni, defaultDeps, CALL_TIMEOUT_MS, GC_TIMEOUT_MS } from '../dist/src/cni/plugin.js';
import { ApiClient } from '../dist/src/cli/client.js';

/** A stand-in daemon on a unix socket answering every request after `delayMs` with `answer`. */
async function slowDaemon(t, delayMs, answer) {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-slow-'));
  const sock = join(dir, 'api.sock');
  const seen = [];
  const answers = new Set(); // the answers not yet sent: cleared at the teardown (a client that gave up leaves one)
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => {
      const timer = setTimeout(() => { answers.delete(timer); res.setHeader('content-type', 'application/json'); res.end(JSON.stringify(answer)); }, delayMs);
      answers.add(timer);
    });
  });
  await new Promise((r) => server.listen(sock, r));
  t.teardown(() => { for (const timer of answers) clearTimeout(timer); server.closeAllConnections(); server.close(); rmSync(dir, { recursive: true, force: true }); });
  return { server: `unix:${sock}`, seen };
}

// The plugin's own API client (defaultDeps.api) with every wait it is given SCALE times shorter:
// the per-call 20 s is 0.4 s, the GC's 300 s 6 s. A daemon answering 0.6 s past the per-call
// wait then stands for one answering past the 20 s, without the test sitting through them (it
// took 22 s a run). A GC that took the per-call wait (or none: the default) gives up at 0.4 s.
const SCALE = 50;
const scaledDeps = { ...defaultDeps, api: (conf, timeoutMs = CALL_TIMEOUT_MS) => defaultDeps.api(conf, timeoutMs / SCALE) };

test('a GC the daemon answers only after the plugin\'s per-call 20 s succeeds with what it removed', async (t) => {
  t.true(GC_TIMEOUT_MS > CALL_TIMEOUT_MS);
  const d = await slowDaemon(t, CALL_TIMEOUT_MS / SCALE + 600, { network: 'net-a', removed: ['cni-1', 'cni-2'], failed: [] });
  const logs = [];
  const conf = { cniVersion: '1.1.0', name: 'net-a', type: 'wdp-cni', server: d.server, 'cni.dev/valid-attachments': [] };
  const r = await runCni({ CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin' }, JSON.stringify(conf), scaledDeps, (s) => logs.push(s));
  t.deepEqual(d.seen, ['POST /api/v1/cni/gc']);
  t.is(r.exitCode, 0, r.stdout);
  t.is(r.stdout, '');
  t.true(logs.some((l) => l.includes('cni-1, cni-2')), logs.join('\n'));
});

test('a request that gets no answer in time is reported as such, not as a daemon that cannot be reached', async (t) => {
  const d = await slowDaemon(t, 3_000, {});
  const client = new ApiClient({ server: d.server, timeoutMs: 300 });
  const e = await t.throwsAsync(client.call('POST', '/api/v1/objects', '{}'));
  t.is(e.status, 0);
  t.regex(e.message, /no answer from the wdp API at unix:\S+ within 0\.3 s/);
  t.regex(e.message, /may still be applied/);
  t.notRegex(e.message, /cannot reach|is the daemon running/);
});
