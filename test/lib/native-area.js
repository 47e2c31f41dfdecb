// Shared by the native-port tests: a Wasm-memory burst area (descriptors at 0, slots after them)
// with helpers to stage tx frames and read rx frames, a bounded receive loop, and the root check
// and namespace teardown every native test file does the same way.
import { spawnSync } from 'node:child_process';
import * as L from '../../dist/assembly/layout.js';
import { NetnsLab, run } from '../../dist/src/netns.js';
import { rootGate } from './root-gate.js';
import { nativeAvailable, wait } from '../../dist/src/ports/native.js';

/** Root test function (test.serial) when namespaces can be made, else test.skip with the reason
 * (root-gate.js); `needs` says what root is needed for. */
export function rootOnly(test, file, needs) {
  const gate = rootGate(test);
  if (!gate.ok) console.log(`${file}: skipped — ${gate.reason} (${needs})`);
  return { isRoot: gate.ok, rootTest: gate.serial };
}

/** Destroys `lab` and fails if any of its namespaces is still there (test.after.always). */
export async function destroyLab(lab) {
  if (!lab) return;
  const names = [...lab.names];
  await lab.destroy();
  const left = run('ip', ['netns', 'list']).stdout;
  for (const n of names) if (left.includes(n)) throw new Error(`namespace ${n} left behind`);
}

/** A Wasm-memory-backed burst area: descriptors at 0, `slots` slots of `slotSize` after them. */
export function makeArea(slots = 256, slotSize = 2048) {
  const arenaOff = Math.ceil((slots * L.DESC_SIZE) / 64) * 64;
  const mem = new WebAssembly.Memory({ initial: Math.ceil((arenaOff + slots * slotSize) / 65536) + 1 });
  return { memory: mem.buffer, arenaOff, slotSize, descOff: 0 };
}

/** Stages frame `bytes` in slot i for txBurst (the descriptor's length can be overridden to test bad lengths). */
export function putTx(area, i, bytes, outPort, verdict = L.V_FORWARD, lenOverride) {
  new Uint8Array(area.memory).set(bytes, area.arenaOff + i * area.slotSize);
  const dv = new DataView(area.memory);
  const d = area.descOff + i * L.DESC_SIZE;
  dv.setUint16(d + L.D_LEN, lenOverride ?? bytes.length, true);
  dv.setUint16(d + L.D_OUT_PORT, outPort, true);
  dv.setUint8(d + L.D_VERDICT, verdict);
}

/** The frame rxBurst left in slot i. */
export function getRx(area, i) {
  const dv = new DataView(area.memory);
  const d = area.descOff + i * L.DESC_SIZE;
  const len = dv.getUint16(d + L.D_LEN, true);
  const s = area.arenaOff + i * area.slotSize;
  return { len, inPort: dv.getUint16(d + L.D_IN_PORT, true), bytes: new Uint8Array(area.memory).slice(s, s + len) };
}

/** Receives until `want` frames arrived or `boundMs` passed (a bound, not an assertion), at most
 * `maxBurst` frames per rxBurst. */
export function receive(port, area, want, boundMs = 3000, maxBurst = 256) {
  const out = [];
  const deadline = Date.now() + boundMs;
  const slots = Math.floor((area.memory.byteLength - area.arenaOff) / area.slotSize);
  while (out.length < want && Date.now() < deadline) {
    wait([port], 20);
    const n = port.rxBurst(area, 0, Math.min(maxBurst, slots));
    for (let i = 0; i < n; i++) out.push(getRx(area, i));
  }
  return out;
}

/** Frames of the test's own EtherType (nothing else on the link uses it). */
export function ofEthertype(frames, ethertype) {
  return frames.filter((f) => f.len >= 14 && f.bytes[12] === ethertype >> 8 && f.bytes[13] === (ethertype & 0xff));
}

const NATIVE_URL = new URL('../../dist/src/ports/native.js', import.meta.url).href;

/** Runs `openExpr` (an expression over `m`, the native module, e.g. "new m.TapPort({...})") in a
 * child process as nobody with no capabilities; returns the child's status, stderr and what the
 * open threw ({ code, message }) or 'opened'. */
export function openWithoutCaps(openExpr) {
  const script = `import(${JSON.stringify(NATIVE_URL)}).then((m) => {
    try { ${openExpr}; console.log(JSON.stringify('opened')); }
    catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }
  });`;
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, '-e', script], { encoding: 'utf8', timeout: 20000 });
  let out = null;
  try { out = JSON.parse(r.stdout.trim()); } catch { out = null; }
  return { status: r.status, stderr: r.stderr, out };
}

/** Two namespaces joined by a veth pair `ifA`–`ifB` (`macs`: { macA, macB }, optional), IPv6 off in
 * both so that every frame on the link is one the test sent (no MLD, no ND); throws when the addon
 * is not there (the caller runs as root). Remove it with destroyLab(lab). */
export function vethPairLab(prefix, ifA, ifB, macs) {
  const avail = nativeAvailable();
  if (!avail.ok) throw new Error(`native addon unavailable as root: ${avail.reason}`);
  const lab = new NetnsLab(prefix);
  const nsA = lab.namespace('a'), nsB = lab.namespace('b');
  for (const ns of [nsA, nsB]) for (const k of ['all', 'default']) lab.sysctl(ns, `net.ipv6.conf.${k}.disable_ipv6`, '1');
  lab.veth(nsA, ifA, nsB, ifB, macs);
  return { lab, nsA, nsB };
}
