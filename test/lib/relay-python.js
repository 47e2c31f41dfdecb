// The relay port helper tests' set-up (relay-port-python*): a scratch directory put first on PATH
// (for a stand-in `python3`), a network namespace with lo up, and `open(i)` starting a relay
// AF_PACKET port on its lo; everything removed and PATH restored at the test's end.
import { mkdtempSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetnsLab } from '../../dist/src/netns.js';
import { RelayPort } from '../../dist/src/daemon/relay-port.js';

export function relayPythonLab(t, kind) {
  const dir = mkdtempSync(join(tmpdir(), `wdp-py-${kind}-`));
  const lab = new NetnsLab(kind);
  const ports = [];
  const path = process.env.PATH;
  t.teardown(async () => {
    for (const p of ports) p.close();
    process.env.PATH = path;
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  /** The interpreter `python3` on PATH runs (its sys.executable). */
  const real = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
  process.env.PATH = `${dir}:${path}`;
  const ns = lab.namespace('a');
  lab.exec(ns, 'ip', ['link', 'set', 'lo', 'up']);
  const open = (i) => {
    const p = new RelayPort({ name: `p${i}`, index: i, kind: 'afpacket', ifname: 'lo', mac: '02:00:00:00:00:01', netns: ns });
    ports.push(p);
    return p.ready;
  };
  return { dir, real, ports, open };
}
