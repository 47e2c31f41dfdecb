// The daemon's API socket is mode 0600 (its user's, root's on a node): a person running `wdp get
// services` as another user got "cannot reach the wdp API ... (EACCES): is the daemon running?" —
// it is running. The error says the socket is not this user's and how to run the CLI instead.
import test from 'ava';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runWdp } from './lib/wdp-cli.js';
import { oneLine } from './lib/cli-expect.js';

const root = process.getuid?.() === 0;
const maybe = root ? test : test.skip;

maybe(`the API socket (mode 0600) run as another user: "permission denied", not "is the daemon running?"${root ? '' : ' (skipped: needs root to run the CLI as another user)'}`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-cli-sock-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  const sock = join(dir, 'api.sock');
  const srv = createServer((c) => c.destroy());
  await new Promise((r) => srv.listen(sock, r));
  t.teardown(() => srv.close());
  chmodSync(sock, 0o600);
  const r = await runWdp(['get', 'services'], `unix:${sock}`, { killAfterMs: 60_000, spawn: { cwd: '/', uid: 65534, gid: 65534 } });
  oneLine(t, r, new RegExp(`^error: cannot open the wdp API socket ${sock.replace(/[.]/g, '\\.')} \\(EACCES: permission denied\\): it is the daemon's user's, mode 0600`));
});
