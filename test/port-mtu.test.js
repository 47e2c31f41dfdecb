// A port's MTU as the worker reads it (src/daemon/port-mtu.ts): natively (SIOCGIFMTU) or from
// sysfs, the same value; loopback's 65536 comes back as 65535 (no IP packet is bigger); a missing
// interface or a bad name is an explanation, never a number. Network namespaces: test e2e-mtu.
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { interfaceMtu } from '../dist/src/daemon/port-mtu.js';
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
