// `wdp replay` of a capture taken in both directions (wdp capture's default, docs/observe.md's
// first example): the frames the dataplane itself sent on the port (its source MAC is the port's
// own, known from --ports) are not frames that arrived there; replayed as received they would be
// counted as to_host and, on a pod port, run through the core as if the pod had sent them. They are
// skipped and said so.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { frame } from '../dist/src/packet/build.js';
import { encodePcap } from '../dist/src/ports/pcap.js';
import { ROOT } from './lib/wdp-cli.js';

const WDP = join(ROOT, 'bin', 'wdp.js');
const PORT_MAC = '02:00:00:00:00:01', CLIENT_MAC = '02:00:00:00:00:02';

test('replay with --ports skips the frames the in port sent (its own source MAC) and says how many', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-replay-dir-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const syn = frame({ src: '10.1.0.1', dst: '10.96.12.34', proto: 'TCP', sport: 41000, dport: 80, flags: 'S', srcMac: CLIENT_MAC, dstMac: PORT_MAC });
  // what wdp sent back on that port (a reply after reverse translation)
  const sent = frame({ src: '10.96.12.34', dst: '10.1.0.1', proto: 'TCP', sport: 80, dport: 41000, flags: 'SA', srcMac: PORT_MAC, dstMac: CLIENT_MAC });
  writeFileSync(join(dir, 'both.pcap'), encodePcap([{ tsNs: 1_700_000_000_000_000_000n, data: syn }, { tsNs: 1_700_000_000_001_000_000n, data: sent }]));
  writeFileSync(join(dir, 'ports.yaml'), `items:\n  - {name: client, index: 0, mac: "${PORT_MAC}"}\n`);
  const args = ['replay', join(dir, 'both.pcap'), '-f', join(ROOT, 'examples/node.yaml'), '-f', join(ROOT, 'examples/nodeport.yaml'), '-o', 'json'];
  const r = spawnSync(process.execPath, [WDP, ...args, '--in-port', 'client', '--ports', join(dir, 'ports.yaml')], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  t.is(events.length, 1, r.stdout);
  t.is(events[0].verdict, 'forward');
  t.regex(r.stderr, /^1 frame\(s\) replayed: 1 forward$/m);
  t.regex(r.stderr, /skipped 1 frame\(s\) the dataplane sent on port client/);
  // by index, without --ports: the port's MAC is unknown, every frame is replayed
  const all = spawnSync(process.execPath, [WDP, ...args, '--in-port', '0'], { encoding: 'utf8' });
  t.is(all.status, 0, all.stderr);
  t.is(all.stdout.trim().split('\n').length, 2);
});
