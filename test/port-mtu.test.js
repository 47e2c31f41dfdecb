// A port's MTU as the worker reads it (src/daemon/port-mtu.ts): natively (SIOCGIFMTU) or from
// sysfs, the same value; loopback's 65536 comes back as 65535 (no IP packet is bigger); a missing
// interface or a bad name is an explanation, never a number. interfaceMtuAsync (a port opening in
// the worker: `ip -n` without blocking the thread) reads the same. Network namespaces: test e2e-mtu.
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { interfaceMtu, interfaceMtuAsync } from '../dist/src/daemon/port-mtu.js';
import { rootGate } from './lib/root-gate.js';
import { nativeAddon, nativeAvailable } from '../dist/src/ports/native.js';

const sysLo = existsSync('/sys/class/net/lo/mtu') ? Number(readFileSync('/sys/class/net/lo/mtu', 'utf8')) : undefined;
const withSysfs = sysLo !== undefined ? test : (title, fn) => test.skip(`${title} (skipped: no /sys/class/net/lo)`, fn);
const withNative = nativeAvailable().ok && sysLo !== undefined ? test : (title, fn) => test.skip(`${title} (skipped: native addon or sysfs unavailable)`, fn);

withSysfs('sysfs: the loopback MTU, capped at 65535', (t) => {
  t.is(interfaceMtu('lo', undefined), Math.min(sysLo, 65535));
});

withNative('native: the same as sysfs; a missing interface is explained', (t) => {
  const addon = nativeAddon();
  t.is(interfaceMtu('lo', undefined, addon), Math.min(sysLo, 65535));
  t.is(addon.interfaceMtu('lo', null), sysLo);
  const gone = interfaceMtu('wdpnosuch0', undefined, addon);
  t.is(typeof gone, 'string');
  t.regex(gone, /does not exist/);
});

test('a bad interface name is refused before anything is read', (t) => {
  t.regex(interfaceMtu('../x', undefined), /not an interface name/);
  t.regex(interfaceMtu('a-name-longer-than-15', undefined), /not an interface name/);
});

test('interfaceMtuAsync: a bad name refused the same; in this namespace the same as interfaceMtu', async (t) => {
  t.regex(await interfaceMtuAsync('../x', 'somewhere'), /not an interface name/);
  t.is(await interfaceMtuAsync('lo', undefined), interfaceMtu('lo', undefined));
});

rootGate(test).test('interfaceMtuAsync in another namespace (`ip -n`): its interface\'s MTU; a missing one explained', async (t) => {
  const { NetnsLab } = await import('../dist/src/netns.js');
  const lab = new NetnsLab('mtu');
  t.teardown(() => lab.destroy());
  const ns = lab.namespace('a');
  lab.exec(ns, 'ip', ['link', 'set', 'lo', 'mtu', '1400']);
  t.is(await interfaceMtuAsync('lo', ns), 1400);
  t.is(await interfaceMtuAsync('lo', ns), interfaceMtu('lo', ns));
  const gone = await interfaceMtuAsync('wdpnosuch0', ns);
  t.is(typeof gone, 'string');
});
