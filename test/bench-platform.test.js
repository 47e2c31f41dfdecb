// The round-trip floor facts the e2e bench prints (src/bench/platform.ts), read from a made-up
// /sys and /proc tree: present, absent (no haltpoll module, no cpuidle) and malformed values.
import test from 'ava';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { rttFloorFacts, formatRttFloor } from '../dist/src/bench/platform.js';

function tree(t, files) {
  const root = mkdtempSync(join(tmpdir(), 'wdp-platform-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  for (const [p, v] of Object.entries(files)) {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    writeFileSync(join(root, p), v);
  }
  return root;
}

test('a haltpoll guest: driver, governor, idle states, guest_halt_poll_ns, autogroup, CPUs and load', (t) => {
  const root = tree(t, {
    'sys/devices/system/cpu/cpuidle/current_driver': 'haltpoll\n',
    'sys/devices/system/cpu/cpuidle/current_governor': 'haltpoll\n',
    'sys/devices/system/cpu/cpu0/cpuidle/state0/name': 'POLL\n',
    'sys/devices/system/cpu/cpu0/cpuidle/state1/name': 'haltpoll idle\n',
    'sys/module/haltpoll/parameters/guest_halt_poll_ns': '200000\n',
    'proc/sys/kernel/sched_autogroup_enabled': '1\n',
  });
  const f = rttFloorFacts(root, 2, [4.567, 3, 2.1]);
  t.deepEqual(f, {
    cpuidle_driver: 'haltpoll', cpuidle_governor: 'haltpoll', cpuidle_states: 'POLL,haltpoll idle',
    guest_halt_poll_ns: 200000, sched_autogroup_enabled: 1, nproc: 2, loadavg: [4.57, 3, 2.1],
  });
  t.is(formatRttFloor(f), 'cpuidle haltpoll (governor haltpoll; states POLL,haltpoll idle), guest_halt_poll_ns 200000, sched_autogroup_enabled 1, 2 CPUs, load 4.57 3 2.1');
});

test('absent or malformed: nulls, the read-only governor as a fallback, and "not loaded" in the line', (t) => {
  const root = tree(t, {
    'sys/devices/system/cpu/cpuidle/current_governor_ro': 'menu\n',
    'proc/sys/kernel/sched_autogroup_enabled': 'yes\n',
  });
  const f = rttFloorFacts(root, 4, [0, 0, 0]);
  t.is(f.cpuidle_driver, null);
  t.is(f.cpuidle_governor, 'menu');
  t.is(f.cpuidle_states, null);
  t.is(f.guest_halt_poll_ns, null);
  t.is(f.sched_autogroup_enabled, null);
  t.regex(formatRttFloor(f), /^cpuidle n\/a \(governor menu\), haltpoll module not loaded, sched_autogroup_enabled n\/a, 4 CPUs, load 0 0 0$/);
});

test('this host: the facts read without throwing', (t) => {
  const f = rttFloorFacts();
  t.true(f.nproc >= 1);
  t.is(f.loadavg.length, 3);
  t.is(typeof formatRttFloor(f), 'string');
});
