// nativeAvailable() explains why native ports cannot be used, opening one then fails with a coded
// error, and the pure in-process ports keep working. Runs a child node with WDP_NATIVE_ADDON
// pointing at a file that does not exist (no root needed).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { nativeAddonCandidates, nativeAvailable } from '../dist/src/ports/native.js';

const NATIVE_URL = new URL('../dist/src/ports/native.js', import.meta.url).href;
const PCAP_URL = new URL('../dist/src/ports/pcap.js', import.meta.url).href;

test('a missing addon is reported with the path looked at, and opening a port throws ENOTAVAIL', (t) => {
  const script = `
    const m = await import(${JSON.stringify(NATIVE_URL)});
    const p = await import(${JSON.stringify(PCAP_URL)});
    const avail = m.nativeAvailable();
    let code;
    try { new m.AfPacketPort({ ifname: 'lo', index: 0 }); } catch (e) { code = e.code; }
    const port = new p.PcapPort({ records: [{ tsNs: 1n, data: new Uint8Array(60), origLen: 60 }], index: 0 });
    const mem = new WebAssembly.Memory({ initial: 1 }).buffer;
    const n = port.rxBurst({ memory: mem, arenaOff: 1024, slotSize: 2048, descOff: 0 }, 0, 4);
    console.log(JSON.stringify({ avail, code, n }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8', timeout: 20000, env: { ...process.env, WDP_NATIVE_ADDON: '/nonexistent/wdp-native.node' },
  });
  t.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim());
  t.false(out.avail.ok);
  t.regex(out.avail.reason, /\/nonexistent\/wdp-native\.node/);
  t.regex(out.avail.reason, /build:native/);
  t.is(out.code, 'ENOTAVAIL');
  t.is(out.n, 1);
});

test('the default candidates point at native/wdp-native.<platform>.node, and it loads when built', (t) => {
  const c = nativeAddonCandidates();
  t.true(c.some((p) => /native\/wdp-native\.linux-x64-(gnu|musl)\.node$/.test(p) || /native\/wdp-native\./.test(p)));
  const built = c.some((p) => existsSync(p));
  // Where the addon was built it must also load; elsewhere the reason says why not.
  const a = nativeAvailable();
  if (built) t.true(a.ok, a.reason);
  else { t.false(a.ok); t.truthy(a.reason); }
});
