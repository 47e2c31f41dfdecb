// `wdp start` without `sudo`, as a person forgets it: the start failed on `ip link set dev eth1 up`
// and printed the tool's two lines ("Command failed: ...", "RTNETLINK answers: Operation not
// permitted") with nothing on what to do. One line, the command and the kernel's answer, and
// that wdp start needs root (or CAP_NET_ADMIN and CAP_NET_RAW). Run as nobody inside a network
// namespace the test creates (a veth there as the uplink), removed at the end.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootGate } from './lib/root-gate.js';
import { ROOT } from './lib/wdp-cli.js';
import { startErrorText } from '../dist/src/daemon/start-error.js';

const gate = rootGate(test, { tools: ['setpriv'] });

test('startErrorText: a failed command on one line; a refused permission says what to do', (t) => {
  t.is(startErrorText('Command failed: ip link set dev eth1 up\nRTNETLINK answers: Operation not permitted\n', 65534),
    'ip link set dev eth1 up: RTNETLINK answers: Operation not permitted (not root: run wdp start as root, e.g. sudo node bin/wdp.js start ..., or with CAP_NET_ADMIN and CAP_NET_RAW: docs/running.md "Preparing the node")');
  t.regex(startErrorText('socket: EPERM', 0), /^socket: EPERM \(wdp start needs CAP_NET_ADMIN and CAP_NET_RAW/);
  t.is(startErrorText('port "up": interface "eth9" does not exist', 65534), 'port "up": interface "eth9" does not exist');
});

gate.test('wdp start as nobody in a namespace: one line naming the refusal and root', async (t) => {
  const ns = `wdp-t${process.pid}-nr`;
  const dir = mkdtempSync(join(tmpdir(), 'wdp-start-nr-'));
  t.teardown(() => { spawnSync('ip', ['netns', 'del', ns]); rmSync(dir, { recursive: true, force: true }); });
  chmodSync(dir, 0o777);
  t.is(spawnSync('ip', ['netns', 'add', ns]).status, 0);
  t.is(spawnSync('ip', ['-n', ns, 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'eth1p']).status, 0);
  const cfg = join(dir, 'wdp.yaml');
  writeFileSync(cfg, `node: { name: node-a, addresses: [192.168.100.2] }
ports:
  - { name: up, type: afpacket, ifname: eth1, role: uplink, gateways: [10.0.0.1] }
api: { listen: "unix:${dir}/api.sock", healthz: "off" }
stateDir: ${dir}/state
`);
  chmodSync(cfg, 0o644);
  const r = await new Promise((resolve, reject) => {
    const p = spawn('ip', ['netns', 'exec', ns, 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, join(ROOT, 'bin', 'wdp.js'), 'start', '--config', cfg, '--ports', 'native'],
      { cwd: '/', env: { ...process.env, WDP_RUN_DIR: join(dir, 'run') } });
    let stderr = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), 90_000);
    p.stdout.resume();
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('error', reject);
    p.on('close', (code) => { clearTimeout(timer); resolve({ code, stderr }); });
  });
  t.is(r.code, 1, r.stderr);
  const lines = r.stderr.split('\n').filter(Boolean);
  t.is(lines.length, 1, r.stderr);
  t.regex(lines[0], /^wdp start: cannot start: .*(Operation not permitted|EPERM|EACCES).* \(not root: run wdp start as root/);
});
