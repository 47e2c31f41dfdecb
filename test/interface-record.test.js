// The record of what an interface had before a port took it (src/daemon/interface-record.ts, kept by
// src/daemon/link-handback.ts beside the interface's claim), on its own: LinkHandback in this
// process on a veth of a network namespace this test makes (portNetns), with a run directory of the
// test's (WDP_RUN_DIR). A record is taken for the interface's original state only while the
// interface shows what a port left (its MAC, IPv6 off) and only in the boot that wrote it; a
// start puts back the records of its namespace no live wdp holds and removes those whose interface
// is gone; an interface re-created under its name leaves no record of the old one.
// test/port-link-handback.test.js has the daemons' side (a kill, another state directory, upgrades).
import test from 'ava';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { LinkHandback } from '../dist/src/daemon/link-handback.js';
import { canUseNetns, NetnsLab, must } from '../dist/src/netns.js';

const root = canUseNetns();
const serial = root ? test.serial : test.skip;

const MAC0 = '02:00:00:dd:00:01', PORT_MAC = '02:00:00:dd:00:02', HAND_MAC = '02:00:00:dd:00:03';

/** A log that keeps its records' messages. */
function memLog() {
  const lines = [];
  const log = pino({ level: 'info' }, { write: (l) => { lines.push(JSON.parse(l).msg); } });
  return { log, said: (re) => lines.some((m) => re.test(m)) };
}

function setup(t, kind) {
  const lab = new NetnsLab(kind);
  const dir = mkdtempSync(join(tmpdir(), 'wdp-irec-'));
  const before = process.env.WDP_RUN_DIR;
  process.env.WDP_RUN_DIR = join(dir, 'run');
  t.teardown(async () => {
    if (before === undefined) delete process.env.WDP_RUN_DIR; else process.env.WDP_RUN_DIR = before;
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  const ns = lab.namespace('a'), peer = lab.namespace('b');
  lab.veth(ns, 'a0', peer, 'a0p');
  const ipn = (...args) => must('ip', ['-n', ns, ...args]);
  ipn('link', 'set', 'dev', 'a0', 'down');
  ipn('link', 'set', 'dev', 'a0', 'address', MAC0);
  ipn('-6', 'addr', 'add', 'fd00:88::1/64', 'dev', 'a0', 'nodad');
  return { lab, dir, ns, peer, ipn };
}

/** The interface's MAC, up flag, IPv6 addresses and disable_ipv6. */
function snapshot(ns, ifname = 'a0') {
  const [l] = JSON.parse(must('ip', ['-n', ns, '-j', 'link', 'show', 'dev', ifname]));
  const v6 = (JSON.parse(must('ip', ['-n', ns, '-j', '-6', 'addr', 'show', 'dev', ifname]) || '[]')[0]?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`).sort();
  const disableIpv6 = must('ip', ['netns', 'exec', ns, 'sysctl', '-n', `net.ipv6.conf.${ifname}.disable_ipv6`]).trim();
  return { mac: l.address, up: l.flags.includes('UP'), ifindex: l.ifindex, v6, disableIpv6 };
}

const recordsIn = (dir) => { try { return readdirSync(join(dir, 'run', 'interfaces')).filter((n) => n.endsWith('.handback.json')); } catch { return []; } };

serial(`a killed holder's record is taken by another state directory's take; one of another boot is not${root ? '' : ' (skipped: needs root and ip)'}`, async (t) => {
  const { dir, ns, ipn } = setup(t, 'ra');
  const before = snapshot(ns);
  const a = new LinkHandback(join(dir, 'x'), memLog().log);
  a.take('a0', ns, 'up', PORT_MAC);
  t.is(recordsIn(dir).length, 1, 'written at the take, before the port touches the interface');
  t.deepEqual(snapshot(ns), before, 'the take itself changes nothing');
  ipn('link', 'set', 'dev', 'a0', 'address', PORT_MAC);
  ipn('link', 'set', 'dev', 'a0', 'up');
  must('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.a0.disable_ipv6=1']);
  // (a is "killed": never handed back) another state directory takes it, keeping the MAC it finds
  const m = memLog(), b = new LinkHandback(join(dir, 'y'), m.log);
  b.take('a0', ns, 'up');
  t.true(m.said(/a wdp did not hand back \(killed\)/));
  b.giveBack('a0', ns, 'test');
  t.deepEqual(snapshot(ns), before, 'what it had before the first take');
  t.deepEqual(recordsIn(dir), [], 'the record removed at the hand-back');

  // the same, but the record says another boot: not this interface's state
  a.take('a0', ns, 'up', PORT_MAC);
  const [name] = recordsIn(dir), file = join(dir, 'run', 'interfaces', name);
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), bootId: 'another-boot' }));
  ipn('link', 'set', 'dev', 'a0', 'address', PORT_MAC);
  ipn('link', 'set', 'dev', 'a0', 'up');
  must('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.a0.disable_ipv6=1']);
  const left = snapshot(ns);
  const c = new LinkHandback(join(dir, 'z'), memLog().log);
  c.take('a0', ns, 'up');
  c.giveBack('a0', ns, 'test');
  t.deepEqual(snapshot(ns), left, 'another boot\'s record ignored: the interface gets what it had at this take');
  t.deepEqual(recordsIn(dir), []);
});

serial('a record whose interface does not show what a port left (put back by hand, its MAC changed, another interface under the key) is dropped', async (t) => {
  const { dir, ns, ipn } = setup(t, 'rb');
  const a = new LinkHandback(join(dir, 'x'), memLog().log);
  // IPv6 back on by hand (or a new interface under a reused namespace inode and ifindex, its own IPv6)
  a.take('a0', ns, 'up');
  ipn('link', 'set', 'dev', 'a0', 'up');
  ipn('-6', 'addr', 'add', 'fd00:89::1/64', 'dev', 'a0', 'nodad');
  const now = snapshot(ns);
  const m = memLog(), b = new LinkHandback(join(dir, 'y'), m.log);
  b.take('a0', ns, 'up');
  t.true(m.said(/not this interface's any more/));
  must('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.a0.disable_ipv6=1']);
  b.giveBack('a0', ns, 'test');
  t.deepEqual(snapshot(ns), now, 'what it had at this take, not the record\'s');

  // IPv6 off as a port left it, but its MAC changed by hand since
  const c = new LinkHandback(join(dir, 'z'), memLog().log);
  c.take('a0', ns, 'up', PORT_MAC);
  ipn('link', 'set', 'dev', 'a0', 'address', HAND_MAC);
  must('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.a0.disable_ipv6=1']);
  const handSet = snapshot(ns);
  const m2 = memLog(), d = new LinkHandback(join(dir, 'w'), m2.log);
  d.take('a0', ns, 'up');
  t.true(m2.said(/not this interface's any more/));
  d.giveBack('a0', ns, 'test');
  t.deepEqual(snapshot(ns), handSet);
  t.deepEqual(recordsIn(dir), []);
});

serial('a start puts back the records of its namespace no live wdp holds that none of its ports takes, and removes those of interfaces gone', async (t) => {
  const { lab, dir, ns, peer, ipn } = setup(t, 'rc');
  const before = snapshot(ns);
  lab.veth(ns, 'g0', peer, 'g0p');
  const a = new LinkHandback(join(dir, 'x'), memLog().log);
  a.take('a0', ns, 'up', PORT_MAC);
  a.take('g0', ns, 'pod');
  ipn('link', 'set', 'dev', 'a0', 'address', PORT_MAC);
  ipn('link', 'set', 'dev', 'a0', 'up');
  must('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.a0.disable_ipv6=1']);
  ipn('link', 'del', 'g0');
  t.is(recordsIn(dir).length, 2);
  // (a is "killed") a start in that namespace (another state directory) whose ports are others
  const m = memLog(), b = new LinkHandback(join(dir, 'y'), m.log);
  b.giveBackStale(new Set(), ns);
  t.true(m.said(/a killed wdp left, that no port being opened takes: given what it had back/));
  t.deepEqual(snapshot(ns), before, 'a0 as before the take');
  t.deepEqual(recordsIn(dir), [], 'a0\'s record removed, and g0\'s (gone)');
  t.deepEqual(readdirSync(join(dir, 'run', 'interfaces')).filter((n) => n.endsWith('.lock')), [], 'the claim taken meanwhile released');
});

serial('an interface re-created under its name and taken again leaves no record of the old one', async (t) => {
  const { lab, dir, ns, peer, ipn } = setup(t, 'rd');
  const a = new LinkHandback(join(dir, 'x'), memLog().log);
  a.take('a0', ns, 'up');
  const first = recordsIn(dir);
  t.is(first.length, 1);
  ipn('link', 'del', 'a0');
  lab.veth(ns, 'a0', peer, 'a1p');
  a.take('a0', ns, 'up');
  const second = recordsIn(dir);
  t.is(second.length, 1);
  t.notDeepEqual(second, first, 'the new interface\'s (its ifindex)');
  a.giveBack('a0', ns, 'test');
  t.deepEqual(recordsIn(dir), []);
  t.false(existsSync(join(dir, 'x', 'link-handback.json')), 'nothing in the state directory');
});
