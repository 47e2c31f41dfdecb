// The daemon's first NodeConfig program is built when its turn in the control plane's queue comes
// (ControlPlaneCore.apply of a function), like its re-programs (test daemon-worker-dataplane, "the
// daemon's own NodeConfig, queued behind a user's apply"): an apply queued ahead of it during the
// start-up that changes the node addresses is adopted (onNodeChange) and kept, never overwritten
// by a NodeConfig the daemon built before that apply ran. The daemon runs in this process; its
// one TAP port is created in a network namespace the test makes (DaemonOptions.portNetns), its
// API on a unix socket. No packets are sent.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import pino from 'pino';
import { canUseNetns, NetnsLab } from '../dist/src/netns.js';
import { parseConfig } from '../dist/src/daemon/config.js';
import { startDaemon } from '../dist/src/daemon/daemon.js';

const root = canUseNetns();

(root ? test : test.skip)(`an apply queued ahead of the daemon's first NodeConfig program keeps its node addresses: the program is built at its turn${root ? '' : ' (skipped: needs root and ip: the TAP port goes in a network namespace)'}`, async (t) => {
  const lab = new NetnsLab('fp');
  const dir = mkdtempSync(join(tmpdir(), 'wdp-firstprog-'));
  let daemon;
  t.teardown(async () => { await daemon?.stop().catch(() => undefined); await lab.destroy(); rmSync(dir, { recursive: true, force: true }); });
  const ns = lab.namespace('dp');
  const cfg = parseConfig({
    node: { name: 'n1', addresses: ['192.168.100.2'] }, stateDir: join(dir, 'state'), workers: 1,
    api: { listen: `unix:${join(dir, 'api.sock')}`, healthz: 'off' },
    ports: [{ name: 'pods', type: 'tap', ifname: 'wdpfp0', role: 'pod' }],
  });
  const USER = ['192.168.100.2', '192.168.100.9'];
  let user, seen = [];
  daemon = await startDaemon(cfg, {
    logger: pino({ level: 'silent' }), portNetns: ns,
    beforeFirstProgram: (core, nodeConfig) => {
      core.onNodeChange((n) => seen.push(n?.addresses ?? null));
      // a user's NodeConfig with one more node address, queued before the daemon's own program
      // (as an API apply programs it: the daemon's, with the name it was applied as, applied-as.ts)
      const mine = nodeConfig();
      user = core.apply([{ ...mine, metadata: { ...mine.metadata, annotations: { 'wdp.io/applied-as': 'user' } }, spec: { ...mine.spec, nodeAddresses: USER } }]);
    },
  });
  const r = await user;
  t.is(r.objects[0].action, 'configured', 'the user\'s apply changed the node config');
  t.deepEqual(seen, [USER], 'the daemon\'s first program put no other addresses back');
});
